"""Signed JSON change events: the HMAC check, nothing else.

The sender (Apex, a Flow HTTP callout, a Change Data Capture relay) sends
``X-OnStrategy-Timestamp`` (unix seconds) and ``X-OnStrategy-Signature:
sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>``. Signing the
timestamp with the body, and refusing timestamps more than five minutes away,
stops a captured request from being replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from webhooks.errors import NotAuthentic

MAX_SKEW_SECONDS = 300
PREFIX = "sha256="


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value a sender computes (also used by the tests and docs)."""
    message = timestamp.encode() + b"." + body
    return PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float | None = None,
) -> None:
    """Return if the request is authentic and fresh, else raise :class:`NotAuthentic`."""
    if not secret:
        raise NotAuthentic("ONSTRATEGY_SALESFORCE_WEBHOOK_SECRET is not set")
    if not timestamp or not signature:
        raise NotAuthentic("missing X-OnStrategy-Timestamp or X-OnStrategy-Signature")
    if not timestamp.isdigit():
        raise NotAuthentic("X-OnStrategy-Timestamp must be unix seconds")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > MAX_SKEW_SECONDS:
        raise NotAuthentic("timestamp is more than 5 minutes away")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        raise NotAuthentic("signature does not match")
