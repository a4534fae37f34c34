"""Schemathesis hooks for riskdesk's schema fuzzing (see scripts/schemathesis.sh).

An Idempotency-Key replays the first answer for the same request and refuses the same key on a
different request (422, as draft-ietf-httpapi-idempotency-key-header says). Generated data
reuses a few short keys across different bodies, which would test that rule over and over
instead of the operation: a well-formed generated key is made unique per call. Malformed keys
(the negative cases) are sent as generated.
"""
import re
import uuid

import schemathesis

KEY = re.compile(r"^[\x21-\x7E]{1,255}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key":
            value = headers[name]
            if isinstance(value, str) and KEY.match(value):
                headers[name] = "st-" + uuid.uuid4().hex
