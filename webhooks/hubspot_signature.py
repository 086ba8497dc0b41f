"""HubSpot request signatures (v3, and v1/v2 where HubSpot still sends them). Pure functions.

v3: base64 HMAC-SHA256, keyed with the app's client secret, over
``method + uri + raw body + timestamp``; the URI has a fixed set of %-escapes
decoded first, and a timestamp older than 5 minutes is refused (HubSpot
"Validating requests"). v1: hex SHA-256 of ``secret + body``; v2: hex SHA-256
of ``secret + method + uri + body`` (workflow webhooks). The raw bytes as
received are signed, never re-serialised JSON.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from webhooks.errors import NotAuthentic

MAX_AGE_MS = 5 * 60 * 1000

# The only escapes HubSpot decodes before signing the URI (v3 rule 2).
URI_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_ESCAPE = re.compile("|".join(URI_DECODE), re.IGNORECASE)


@functools.lru_cache(maxsize=256)
def normalize_uri(uri: str) -> str:
    """Apply HubSpot's %-decoding table to ``uri``; other escapes stay as they are.

    Kept per URI: deliveries come to the same few URLs (the configured one)."""
    return _ESCAPE.sub(lambda m: URI_DECODE[m.group(0).upper()], uri)


@functools.lru_cache(maxsize=8)
def _keyed(secret: str) -> Any:
    """HMAC-SHA256 keyed with ``secret`` (its key pads worked out once); callers copy it."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    mac = _keyed(secret).copy()
    mac.update(method.encode() + normalize_uri(uri).encode() + body + timestamp.encode())
    return base64.b64encode(mac.digest()).decode()


def v1_signature(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def v2_signature(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + method.encode() + uri.encode() + body).hexdigest()


def verify(
    headers: Mapping[str, str],
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    *,
    now_ms: int,
    allow_v1v2: bool = False,
) -> str:
    """Return the signature version that matched, or raise :class:`NotAuthentic`.

    v3 is used whenever its header is present; v1/v2 only when ``allow_v1v2``
    and no v3 header was sent (workflow webhooks sign with v2 only).
    """
    if not secret:
        raise NotAuthentic("no client secret configured")
    v3 = headers.get("X-HubSpot-Signature-v3")
    if v3:
        _check_v3(v3, headers.get("X-HubSpot-Request-Timestamp"), secret, method, uri, body, now_ms)
        return "v3"
    legacy = headers.get("X-HubSpot-Signature")
    if not legacy:
        raise NotAuthentic("missing signature headers")
    if not allow_v1v2:
        raise NotAuthentic("v1/v2 signatures are not enabled")
    version = (headers.get("X-HubSpot-Signature-Version") or "v1").lower()
    if version == "v1":
        expected = v1_signature(secret, body)
    elif version == "v2":
        expected = v2_signature(secret, method, uri, body)
    else:
        raise NotAuthentic(f"unknown signature version {version!r}")
    if not hmac.compare_digest(expected.encode(), legacy.strip().lower().encode()):
        raise NotAuthentic(f"{version} signature mismatch")
    return version


def _check_v3(
    signature: str,
    timestamp: str | None,
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    now_ms: int,
) -> None:
    if not timestamp or not timestamp.strip().isdigit():
        raise NotAuthentic("missing or malformed X-HubSpot-Request-Timestamp")
    if abs(now_ms - int(timestamp)) > MAX_AGE_MS:
        raise NotAuthentic("timestamp outside the 5-minute window")
    expected = v3_signature(secret, method, uri, body, timestamp.strip())
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise NotAuthentic("v3 signature mismatch")
