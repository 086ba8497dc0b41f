"""How figures read on the page: percentages, money, changes, links.

Kept apart from the views so templates stay declarative and the rules of
presentation (a share is a whole percent, a change is in points, a deal links
to its record in the CRM) live in one place.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from flask import url_for

if TYPE_CHECKING:
    from integration.app.insights_source import Query
    from integration.settings import Settings


FILTERS = ("status", "start", "end", "team", "rep", "by")
NONE = "\N{EN DASH}"  # a figure that does not exist (no baseline, nothing closed)


class Presenter:
    """Formatting and links for one request's query."""

    def __init__(self, settings: Settings, query: Query, today: date | None = None) -> None:
        self.settings = settings
        self.query = query
        self.today = today or date.today()

    # -- numbers ----------------------------------------------------------------------------
    @staticmethod
    def pct(value: float | None) -> str:
        return NONE if value is None else f"{value * 100:.0f}%"

    @staticmethod
    def points(change: float | None) -> str:
        """A change of share in percentage points, signed; NONE when there is no baseline."""
        if change is None:
            return NONE
        pts = round(change * 100)
        return "±0 pts" if pts == 0 else f"{pts:+d} pts"

    @staticmethod
    def trend_class(change: float | None) -> str:
        if change is None or round(change * 100) == 0:
            return "flat"
        return "up" if change > 0 else "down"

    @staticmethod
    def money(value: float | None) -> str:
        value = value or 0.0
        for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= size:
                return f"${value / size:.1f}{suffix}"
        return f"${value:,.0f}"

    @staticmethod
    def count(value: int | None) -> str:
        return f"{value or 0:,}"

    # -- links ------------------------------------------------------------------------------
    def url(self, endpoint: str = "dashboard.overview", **changes: Any) -> str:
        """This view's URL with some filters changed (``team=""`` drops a filter); other
        keywords (``fit="off"``) are added as they are."""
        filters = {k: v for k, v in changes.items() if k in FILTERS}
        extra = {k: v for k, v in changes.items() if k not in FILTERS and v}
        return url_for(endpoint, **self.query.params(**filters), **extra)

    def crm_url(self, crm: str, opportunity_id: str) -> str | None:
        """The deal's record in its CRM, or None when the CRM's address is not known."""
        ident = quote(str(opportunity_id), safe="")
        if crm == "hubspot" and self.settings.hubspot_portal_id:
            return f"https://app.hubspot.com/contacts/{self.settings.hubspot_portal_id}/record/0-3/{ident}"
        if crm == "salesforce" and self.settings.salesforce_instance_url:
            base = self.settings.salesforce_instance_url
            return f"{base}/lightning/r/Opportunity/{ident}/view"
        return None

    def periods(self) -> list[tuple[str, date, date]]:
        """Named periods a leader asks about, as (label, from, to)."""
        today = self.today
        q_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        prev_end = q_start - timedelta(days=1)
        prev_start = date(prev_end.year, 3 * ((prev_end.month - 1) // 3) + 1, 1)
        return [
            ("This quarter", q_start, today),
            ("Last quarter", prev_start, prev_end),
            ("Year to date", date(today.year, 1, 1), today),
            ("Last 12 months", today - timedelta(days=365), today),
        ]

    def period_label(self, scope: dict[str, Any]) -> str:
        for label, start, end in self.periods():
            if scope.get("from") == start.isoformat() and scope.get("to") == end.isoformat():
                return label
        return f"{scope.get('from')} to {scope.get('to')}"
