"""Reading a webhook body: the size limit before reading it all, and JSON that cannot surprise.

Both sources use these, so an odd body (too big, too deeply nested, ``NaN``, a
number with thousands of digits, invalid UTF-8) is the same clean 400 or 413
everywhere and never a 500.
"""

from __future__ import annotations

import json
from typing import Any

from flask import request

from integration.domain.events import MAX_WEBHOOK_BODY
from webhooks.errors import Malformed

TOO_LARGE = f"body over {MAX_WEBHOOK_BODY // (1024 * 1024)} MiB"


def read_body() -> bytes:
    """The raw body (signatures are over these exact bytes); above the limit, 413."""
    if (request.content_length or 0) > MAX_WEBHOOK_BODY:
        raise Malformed(TOO_LARGE, 413)
    body = request.stream.read(MAX_WEBHOOK_BODY + 1)
    if len(body) > MAX_WEBHOOK_BODY:
        raise Malformed(TOO_LARGE, 413)
    return body


def load_json(body: bytes) -> Any:
    """The parsed document, or :class:`Malformed` for anything that is not plain JSON."""
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise Malformed("body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise Malformed("body is not JSON") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
