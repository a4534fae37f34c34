#!/usr/bin/env python3
"""Writes N sign-up assessment requests as JSON lines (the POST /v1/signups/assess body), for
the batch CLI benchmark: `riskdesk signups assess FILE --output out.jsonl`.

Mixed countries and phone numbers (libphonenumber's metadata for each), e-mail domains (some
free-mail), card BINs from the shipped BIN table (some prepaid), bank transfers, and one line in
1,000 invalid. Deterministic (seeded). Usage: scripts/gen-signups.py [N] > batch.jsonl
"""
import csv
import json
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
rnd = random.Random(42)
# (country, phone prefix, national digits after the prefix)
phones = [
    ("GB", "+44207", 7), ("GB", "+447700", 6), ("DE", "+4930", 8), ("DE", "+49151", 8),
    ("FR", "+331", 8), ("FR", "+336", 8), ("US", "+1212", 7), ("US", "+1415", 7),
    ("IN", "+9198", 8), ("BR", "+5511", 9), ("JP", "+813", 8), ("NG", "+23480", 8),
    ("AU", "+612", 8), ("ES", "+3491", 7), ("IT", "+3906", 8), ("NL", "+3120", 7),
]
free = ["gmail.com", "outlook.com", "yahoo.com"]
with open("data/bin-list-data/bin-list-data_mixed_800_subset.csv", newline="") as f:
    bins = [r["BIN"] for r in csv.DictReader(f) if r.get("BIN", "").isdigit()]
for i in range(n):
    country, prefix, digits = rnd.choice(phones)
    phone = prefix + "".join(rnd.choice("0123456789") for _ in range(digits))
    domain = f"c{i}.example.com"
    email = f"ops@{domain}" if rnd.random() < 0.8 else f"user{i}@{rnd.choice(free)}"
    if rnd.random() < 0.5:
        b = rnd.choice(bins)[:8]
        b += "".join(rnd.choice("0123456789") for _ in range(6 - len(b)))  # table BINs may be 4-5 digits
        payment = {"type": "card", "bin": b, "last4": f"{rnd.randrange(10000):04d}"}
    else:
        payment = {"type": "bank_transfer"}
    req = {
        "company": {"name": f"Company {i}", "domain": domain, "country": country},
        "contact": {"email": email, "phone": phone},
        "ip": f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
        "device_id": f"dev-{rnd.randrange(n)}",
        "payment_instrument": payment,
        "cloud_instance": "global",
        "as_of": "2026-11-21T12:00:00Z",
    }
    if i % 1000 == 999:
        req["contact"]["email"] = "not-an-email"
    print(json.dumps(req, separators=(",", ":")))
