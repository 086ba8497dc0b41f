"""The two ways a webhook delivery is refused, one exception each, for every source.

:class:`NotAuthentic`: the request is not provably from the sender we trust (a
bad, missing or stale signature: 401; another Salesforce org: 403).
:class:`Malformed`: the request is not the documented shape (400) or is over the
limits (413). A single bad event inside a good delivery is not a refusal: the
view skips it, logs it and counts it, and acknowledges the rest.
"""

from __future__ import annotations


class NotAuthentic(Exception):
    """Not provably from the configured sender; ``reason`` is for the log only."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Malformed(ValueError):
    """Not the documented shape (400), or over the limits (413); ``reason`` is safe to answer."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
