"""Every HubSpot API call goes through :class:`HubSpotApi.call`: one place for limits and errors.

It takes a token from the shared rate-limit bucket, passes a timeout, counts the
call by kind (so tests and benchmarks can assert ceilings), retries a 429 a few
times after the advised pause, drained from the shared bucket so every worker
pauses (the SDK's urllib3 retry never retries POST or PATCH, which is every
batch endpoint), retries a 5xx or a dropped connection twice after a short pause
when the call can safely run again (reads and property updates; never a create,
whose first attempt may have happened), and turns the SDK's exceptions into the
typed errors of :mod:`connectors.base`. A failure that outlasts these retries
fails the job, which runs again later (:func:`integration.jobs.handlers.retried`).

Calls are made with ``_preload_content=False`` and the documented JSON read
directly: one shape across the SDK's generated packages, 207 per-input errors
kept with their ``context``, and no parsing of timestamps we never use.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import hubspot
import urllib3
from hubspot.crm.associations.v4 import exceptions as assoc_exc
from hubspot.crm.companies import exceptions as companies_exc
from hubspot.crm.deals import exceptions as deals_exc
from hubspot.crm.line_items import exceptions as line_items_exc
from hubspot.crm.objects.tasks import exceptions as tasks_exc
from hubspot.crm.owners import exceptions as owners_exc
from hubspot.crm.pipelines import exceptions as pipelines_exc
from hubspot.crm.properties import exceptions as properties_exc

from connectors.base import (
    AuthError,
    ConnectorError,
    NotFound,
    RateLimited,
    RejectedError,
    TransientError,
)
from connectors.ratelimit import TokenBucket, hubspot_buckets

# Each generated package has its own exception classes (hubspot.crm.deals.ApiException
# is not hubspot.crm.objects.tasks.ApiException), so catch every package's base class.
API_ERRORS: tuple[type[Exception], ...] = tuple(
    module.OpenApiException
    for module in (
        assoc_exc,
        companies_exc,
        deals_exc,
        line_items_exc,
        tasks_exc,
        owners_exc,
        pipelines_exc,
        properties_exc,
    )
)

REQUEST_TIMEOUT = (5, 30)  # (connect, read) seconds
DEFAULT_RETRY_AFTER = 10.0  # Retry-After is not guaranteed on a 429: wait out the 10 s window
MAX_PAUSE = 15.0
RATE_LIMIT_ATTEMPTS = 3
#: Pauses before the second and third attempt of a call that may run again after a
#: 5xx or a dropped connection: a moment's blip costs a second, not a whole job
#: re-run 10 s later with every one of its reads.
TRANSIENT_PAUSES = (0.5, 1.0)

_BY_STATUS: dict[int, type[ConnectorError]] = {
    401: AuthError,
    403: AuthError,
    404: NotFound,
    429: RateLimited,
}


class HubSpotApi:
    """The SDK client plus rate limiting, retries, error translation and call counts."""

    def __init__(
        self,
        client: Any,
        buckets: dict[str, TokenBucket] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.buckets = buckets or hubspot_buckets()
        self.sleep = sleep
        self.api_calls: Counter[str] = Counter()
        self._apis: dict[str, Any] = {}

    @classmethod
    def create(cls, access_token: str, host: str, **kwargs: Any) -> HubSpotApi:
        return cls(hubspot.Client.create(access_token=access_token, host=host), **kwargs)

    def api(self, path: str) -> Any:
        """``api("crm.deals.batch_api")``, built once: each SDK access makes a new client."""
        if path not in self._apis:
            target = self.client
            for part in path.split("."):
                target = getattr(target, part)
            self._apis[path] = target
        return self._apis[path]

    def call(self, kind: str, path: str, method: str, *args: Any, **kwargs: Any) -> dict:
        """Call ``path.method`` and return the decoded JSON body (``{}`` when empty).

        A 207 multi-status body is returned like a 200: its ``errors`` are for
        the caller to attach to the inputs they name.
        """
        bucket = self.buckets["search" if kind.endswith("search") else "general"]
        pauses = list(TRANSIENT_PAUSES) if not kind.endswith(".create") else []
        for attempt in range(1, RATE_LIMIT_ATTEMPTS + len(pauses) + 1):
            if not bucket.acquire():
                raise RateLimited("hubspot", 429, body="local rate limit budget exhausted")
            self.api_calls[kind] += 1
            try:
                return self._send(path, method, args, kwargs)
            except RateLimited as exc:
                # Draining the shared bucket pauses every worker, this one included:
                # the next acquire() waits out the pause.
                bucket.drain(min(exc.retry_after or DEFAULT_RETRY_AFTER, MAX_PAUSE))
                if attempt >= RATE_LIMIT_ATTEMPTS:
                    raise
            except TransientError:
                if not pauses:
                    raise
                self.sleep(pauses.pop(0))
        raise AssertionError("unreachable")

    def _send(self, path: str, method: str, args: tuple, kwargs: dict) -> dict:
        fn = getattr(self.api(path), method)
        try:
            response = fn(*args, _request_timeout=REQUEST_TIMEOUT, _preload_content=False, **kwargs)
            data = response.data
        except API_ERRORS as exc:
            raise translate(exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise TransientError("hubspot", None, body=type(exc).__name__) from exc
        return json.loads(data) if data else {}


def translate(exc: Exception) -> ConnectorError:
    """The typed error for an SDK exception, chosen by its HTTP status."""
    status = getattr(exc, "status", None)
    body = _text(getattr(exc, "body", None)) or str(getattr(exc, "reason", "") or "")
    if not isinstance(status, int) or status == 0 or status >= 500:
        return TransientError("hubspot", status or None, body=body)
    error_type = _BY_STATUS.get(status, RejectedError)
    retry_after = _retry_after(getattr(exc, "headers", None)) if status == 429 else None
    return error_type("hubspot", status, body=body, retry_after=retry_after)


def _retry_after(headers: Any) -> float:
    value = (headers or {}).get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value)) if value is not None else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _text(body: Any) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return body or ""
