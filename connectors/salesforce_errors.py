"""Salesforce failures mapped onto the typed errors of :mod:`connectors.base`.

simple-salesforce picks its exception class by HTTP status only, so the
meaning is read from the body's ``errorCode`` first: Salesforce reports
``UNABLE_TO_LOCK_ROW`` as a 400 and ``REQUEST_LIMIT_EXCEEDED`` as a 403
(REST API "Status Codes and Error Responses"). Per-record results of sObject
Collections use the key ``statusCode`` instead of ``errorCode``.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError

from connectors.base import (
    AuthError,
    ConnectorError,
    NotFound,
    RateLimited,
    RejectedError,
    TransientError,
)

CRM = "salesforce"

#: Error codes whose meaning beats the HTTP status.
CODE_TO_ERROR: dict[str, type[ConnectorError]] = {
    "REQUEST_LIMIT_EXCEEDED": RateLimited,
    "UNABLE_TO_LOCK_ROW": TransientError,
    "SERVER_UNAVAILABLE": TransientError,
    "INVALID_SESSION_ID": AuthError,
    "INSUFFICIENT_ACCESS": AuthError,
    "INSUFFICIENT_ACCESS_OR_READONLY": AuthError,
    "API_DISABLED_FOR_ORG": AuthError,
    "ENTITY_IS_DELETED": NotFound,
    "NOT_FOUND": NotFound,
}

STATUS_TO_ERROR: dict[int, type[ConnectorError]] = {
    401: AuthError,
    403: AuthError,
    404: NotFound,
    429: RateLimited,
}

#: Record-level codes that may succeed when tried again (lock contention).
RETRYABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW"})


def error_code(content: Any) -> str:
    """The first ``errorCode``/``statusCode`` of a Salesforce error body, or ``""``."""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return str(first.get("errorCode") or first.get("statusCode") or "")
    return ""


def error_class(status: int | None, code: str, message: str = "") -> type[ConnectorError]:
    """Which error a status + code means; lock errors wrapped by a flow count as locks."""
    if code in CODE_TO_ERROR:
        return CODE_TO_ERROR[code]
    if "UNABLE_TO_LOCK_ROW" in message:
        return TransientError
    if status is not None and status in STATUS_TO_ERROR:
        return STATUS_TO_ERROR[status]
    if status is None or status >= 500:
        return TransientError
    return RejectedError


def from_salesforce(exc: SalesforceError, object_id: str = "") -> ConnectorError:
    """A typed error for a simple-salesforce exception, body kept for diagnosis."""
    content = exc.content
    body = content if isinstance(content, str) else json.dumps(content)
    cls = error_class(exc.status, error_code(content), body)
    return cls(CRM, status=exc.status, object_id=object_id, body=body)


def from_login(exc: SalesforceAuthenticationFailed) -> AuthError:
    return AuthError(CRM, status=401, body=f"sign-in failed: {exc.code}: {exc.auth_message}")


def from_requests(exc: requests.RequestException) -> ConnectorError:
    """Timeouts and dropped connections are worth retrying; other transport faults too."""
    return TransientError(CRM, status=None, body=f"{type(exc).__name__}: {exc}")


def record_error(errors: list[dict[str, Any]]) -> tuple[str, bool]:
    """The message and retryability of one failed collection item."""
    codes = [str(e.get("statusCode") or e.get("errorCode") or "") for e in errors]
    text = "; ".join(f"{c}: {e.get('message', '')}" for c, e in zip(codes, errors, strict=True))
    retryable = any(c in RETRYABLE_CODES for c in codes) or "UNABLE_TO_LOCK_ROW" in text
    return text or "unknown error", retryable
