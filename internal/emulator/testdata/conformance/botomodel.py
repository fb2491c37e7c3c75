"""The harness the conformance scripts share (sqs.py, sagemaker.py,
events.py): checking raw answers against botocore's service model,
checking errors against the modelled exception classes, and reporting.

The scripts run as `python3 testdata/conformance/<script>.py`, so this
folder is first on sys.path and `import botomodel` finds this module.
Every problem is printed on its own line starting with "FAIL".
"""

import base64
import json
import re
import sys

import botocore.exceptions

problems = []
called = set()
checks = 0


def fail(msg):
    problems.append(msg)
    print("FAIL", msg, flush=True)


def check(shape, value, path):
    """Checks a raw JSON value against a botocore shape."""
    global checks
    checks += 1
    t = shape.type_name
    m = shape.metadata
    if t == "structure":
        if not isinstance(value, dict):
            return fail(f"{path}: {type(value).__name__}, want an object")
        wire = {mem.serialization.get("name", name): mem for name, mem in shape.members.items()}
        for key, v in value.items():
            if key not in wire:
                fail(f"{path}: member {key!r} is not in the model ({sorted(wire)})")
                continue
            check(wire[key], v, f"{path}.{key}")
        for req in shape.required_members:
            wname = shape.members[req].serialization.get("name", req)
            if wname not in value:
                fail(f"{path}: required member {wname!r} missing")
    elif t == "list":
        if not isinstance(value, list):
            return fail(f"{path}: {type(value).__name__}, want a list")
        if "min" in m and len(value) < m["min"] or "max" in m and len(value) > m["max"]:
            fail(f"{path}: {len(value)} items, want {m.get('min')}..{m.get('max')}")
        for i, v in enumerate(value):
            check(shape.member, v, f"{path}[{i}]")
    elif t == "map":
        if not isinstance(value, dict):
            return fail(f"{path}: {type(value).__name__}, want an object")
        for k, v in value.items():
            check(shape.key, k, f"{path}<key {k!r}>")
            check(shape.value, v, f"{path}[{k!r}]")
    elif t == "string":
        if not isinstance(value, str):
            return fail(f"{path}: {type(value).__name__} {value!r}, want a string")
        if shape.enum and value not in shape.enum:
            fail(f"{path}: {value!r} is not one of {shape.enum}")
        if "min" in m and len(value) < m["min"] or "max" in m and len(value) > m["max"]:
            fail(f"{path}: length {len(value)}, want {m.get('min')}..{m.get('max')}")
        if "pattern" in m and not re.search(m["pattern"], value):
            fail(f"{path}: {value!r} does not match {m['pattern']}")
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            return fail(f"{path}: {value!r}, want an integer")
        if "min" in m and value < m["min"] or "max" in m and value > m["max"]:
            fail(f"{path}: {value}, want {m.get('min')}..{m.get('max')}")
    elif t == "boolean":
        if not isinstance(value, bool):
            fail(f"{path}: {value!r}, want a boolean")
    elif t in ("float", "double"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            fail(f"{path}: {value!r}, want a number")
    elif t == "timestamp":
        # The AWS JSON protocols write timestamps as epoch seconds.
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            fail(f"{path}: {value!r}, want epoch seconds")
        elif not 1e9 < value < 1e11:
            fail(f"{path}: {value!r} is not a plausible epoch-seconds time")
    elif t == "blob":
        try:
            base64.b64decode(value, validate=True)
        except Exception:
            fail(f"{path}: {value!r} is not base64")
    else:
        fail(f"{path}: shape type {t} not handled by the checker")


def answer_hook(content_type=None, unmodelled_errors=None, generic_members=()):
    """Returns an after-call handler that checks the raw body of every
    answer, success or error, against the operation's model.

    content_type: the Content-Type every answer must carry, with an
    x-amzn-RequestId header (None: neither is checked).
    unmodelled_errors: the error codes allowed although the operation does
    not model them (None: any code is allowed).
    generic_members: error members botocore reads for every error though
    the error shapes do not model them; each must be a string.
    """
    def on_after_call(http_response, parsed, model, **_):
        called.add(model.name)
        status = http_response.status_code
        try:
            body = json.loads(http_response.content or b"{}")
        except ValueError:
            return fail(f"{model.name}: HTTP {status} body is not JSON: {http_response.content[:200]!r}")
        if content_type is not None:
            ctype = http_response.headers.get("content-type", "")
            if ctype != content_type:
                fail(f"{model.name}: Content-Type {ctype!r}, want {content_type}")
            if not http_response.headers.get("x-amzn-requestid"):
                fail(f"{model.name}: no x-amzn-RequestId header")
        if status >= 300:
            code = body.get("__type", "").rsplit("#", 1)[-1]
            shapes = {s.name: s for s in model.error_shapes}
            if code in shapes:
                for member in generic_members:
                    if not isinstance(body.get(member), str):
                        fail(f"{model.name} error {code}: no string member {member!r} in {body!r}")
                rest = {k: v for k, v in body.items() if k != "__type" and k not in generic_members}
                check(shapes[code], rest, f"{model.name} error {code}")
            elif unmodelled_errors is not None and code not in unmodelled_errors:
                fail(f"{model.name}: error code {code!r} is not modelled for the operation ({sorted(shapes)})")
            return
        if model.output_shape is None:
            if body:
                fail(f"{model.name}: answer {body!r}; the model has no output")
            return
        check(model.output_shape, body, model.name)
    return on_after_call


def error_checker(client, require_message=True):
    """Returns expect_error(exc_name, fn, *args, **kwargs), which calls fn
    and checks that it raises client's modelled exception exc_name (or,
    for codes the model does not define, a ClientError with that code),
    with a message if require_message."""
    def expect_error(exc_name, fn, *args, **kwargs):
        try:
            fn(*args, **kwargs)
        except botocore.exceptions.ClientError as err:
            cls = getattr(client.exceptions, exc_name, None)
            if cls is not None and not isinstance(err, cls):
                fail(f"{fn.__name__}: raised {type(err).__name__} ({err}); want the modelled {exc_name}")
            if cls is None and err.response["Error"]["Code"] != exc_name:
                fail(f"{fn.__name__}: error code {err.response['Error']['Code']}; want {exc_name}")
            if require_message and not err.response["Error"].get("Message"):
                fail(f"{fn.__name__}: {exc_name} without a message")
            return err
        fail(f"{fn.__name__}: no error; want {exc_name}")
    return expect_error


def check_served(served):
    """Fails for every served operation the script never called."""
    for op in sorted(served - called):
        fail(f"operation {op} is served but the conformance script never called it")


def finish(summary):
    """Prints the summary line and exits 1 if there was any problem."""
    print(f"{summary}, {len(problems)} problems", flush=True)
    sys.exit(1 if problems else 0)
