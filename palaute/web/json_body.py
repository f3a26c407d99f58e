"""``read_json()``: the one way a JSON endpoint reads its body.

Every JSON endpoint (``/webhooks/telegram``, ``/api/visits``, ``/simulator/api/*``) reads
its body here, so every kind of broken JSON gets the same answer: 400
``{"error": "<reason>", "retryable": false}`` (``InvalidJson``, handled app-wide),
never a 500 and never a strange value stored. Refused:

* bytes that are not UTF-8;
* text that is not JSON;
* nesting deeper than ``MAX_DEPTH`` (``[[[[…]]]]`` would otherwise raise RecursionError,
  here or in whatever walks the value later);
* ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON, though Python's json reads them),
  and numbers too large for a float (``1e400`` would become ``inf``);
* a body that is not an object where the endpoint needs one.

The body's size is limited before this reads it (``MAX_BODY_BYTES_*``, see
``palaute.app``), so reading it whole here is bounded.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import request

MAX_DEPTH = 32  # far more than any Bot API update or visits batch needs


class InvalidJson(ValueError):
    """The body cannot be read as the JSON the endpoint needs; the message says why."""


def _no_constant(name: str) -> Any:
    raise InvalidJson(f"the body is not valid JSON: {name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJson(f"the body is not valid JSON: the number {text[:40]} is too large")
    return value


def _depth_ok(value: Any) -> bool:
    """True when ``value`` nests at most ``MAX_DEPTH`` arrays/objects (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def parse_json(data: bytes, *, want_object: bool = False) -> Any:
    """``data`` as a JSON value, or ``InvalidJson`` with the reason."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidJson(
            f"the body is not UTF-8 (byte {error.start}): send JSON encoded as UTF-8"
        ) from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except InvalidJson:
        raise
    except RecursionError:
        raise InvalidJson(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as error:
        raise InvalidJson(
            f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except ValueError:  # an integer of more than 4300 digits
        raise InvalidJson("the body is not valid JSON: a number has too many digits") from None
    if not _depth_ok(value):
        raise InvalidJson(f"the body nests deeper than {MAX_DEPTH} levels")
    if want_object and not isinstance(value, dict):
        raise InvalidJson(f"the body must be a JSON object, not {_kind(value)}")
    return value


def read_json(*, want_object: bool = False) -> Any:
    """The current request's body as JSON (whatever its Content-Type says)."""
    return parse_json(request.get_data(cache=True), want_object=want_object)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
