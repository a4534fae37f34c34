#!/usr/bin/env python3
"""Derive data/country-codes/iso3166.tsv (the table compiled into riskdesk-domain)
from the upstream data/country-codes/country-codes.csv. Run after updating the CSV."""
import csv, pathlib
root = pathlib.Path(__file__).resolve().parent.parent / "data" / "country-codes"
rows = []
with open(root / "country-codes.csv", newline="", encoding="utf-8") as f:
    for r in csv.DictReader(f):
        a2 = (r["ISO3166-1-Alpha-2"] or "").strip()
        if len(a2) != 2:
            continue
        rows.append((a2, r["ISO3166-1-Alpha-3"].strip(), r["CLDR display name"].strip() or r["official_name_en"].strip(),
                     (r["Dial"] or "").strip(), (r["ISO4217-currency_alphabetic_code"] or "").strip(),
                     (r["ISO4217-currency_minor_unit"] or "").strip()))
rows.sort()
with open(root / "iso3166.tsv", "w", encoding="utf-8") as out:
    out.write("# alpha2\talpha3\tname\tdial\tcurrency\tminor_unit  (derived by scripts/derive-country-table.py)\n")
    for r in rows:
        out.write("\t".join(r) + "\n")
print(len(rows), "countries")
