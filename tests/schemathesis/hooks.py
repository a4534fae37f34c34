"""Schemathesis hooks for riskdesk's schema fuzzing (see scripts/schemathesis.sh).

An Idempotency-Key replays the first answer for the same request and refuses the same key on a
different request (422, as draft-ietf-httpapi-idempotency-key-header says). Generated data
reuses a few short keys across different bodies, which would test that rule over and over
instead of the operation: a well-formed generated key is made unique per call. Malformed keys
(the negative cases) are sent as generated.

CPython 3.11 keeps the AST constructor's recursion counter in interpreter-wide state, so two
threads in `ast.parse` at once can fail with "SystemError: AST constructor recursion depth
mismatch" (python/cpython#106905). Hypothesis parses source with `ast.parse` to describe
lambdas, and `--workers 2` runs two threads: one CI run failed that way on two operations.
`ast.parse` is serialised by a lock here (only AST-returning compiles touch that counter).
"""
import ast
import re
import threading
import uuid

import schemathesis

KEY = re.compile(r"^[\x21-\x7E]{1,255}$")

_AST_LOCK = threading.RLock()
_ast_parse = ast.parse


def _parse_serialised(*args, **kwargs):
    with _AST_LOCK:
        return _ast_parse(*args, **kwargs)


ast.parse = _parse_serialised


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key":
            value = headers[name]
            if isinstance(value, str) and KEY.match(value):
                headers[name] = "st-" + uuid.uuid4().hex
