"""Counters the insights add deals into, and the figures they give.

Every figure is a plain ratio of counts or amounts kept here, so each number in
a report can be recomputed by hand from the deals behind it. Shares and rates are
fractions from 0 to 1, rounded to 4 places; a rate with nothing to divide by is
``None`` (shown as "-"), never 0.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from integration.reports.deals import Deal


def ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def mean(total: float, count: int) -> float | None:
    return round(total / count, 2) if count else None


def days_between(start: str, end: str) -> int | None:
    try:
        return (date.fromisoformat(end) - date.fromisoformat(start)).days
    except ValueError:
        return None


CLOSED_SLOTS = (
    "closed_all",
    "closed_on",
    "won_on",
    "closed_off",
    "won_off",
    "days_on",
    "n_days_on",
    "days_off",
    "n_days_off",
)


class Line:
    """One group's figures: the deals in scope, and its deals closed in the period."""

    __slots__ = (
        "amount",
        "approved",
        "closed_all",
        "closed_off",
        "closed_on",
        "comp",
        "days_off",
        "days_on",
        "deals",
        "group",
        "n_days_off",
        "n_days_on",
        "off_amount",
        "on",
        "on_amount",
        "warnings",
        "won_off",
        "won_on",
    )

    def __init__(self, group: str) -> None:
        self.group = group
        self.deals = self.on = self.approved = self.comp = self.warnings = 0
        self.amount = self.on_amount = self.off_amount = 0.0
        self.closed_on = self.won_on = self.closed_off = self.won_off = 0
        self.days_on = self.days_off = 0
        self.n_days_on = self.n_days_off = 0
        self.closed_all = 0

    def add(self, deal: Deal) -> None:
        """A deal in scope."""
        self.deals += 1
        self.amount += deal.amount
        if deal.counts_as == "on":
            self.on += 1
            self.on_amount += deal.amount
        elif deal.counts_as == "approved":
            self.approved += 1
        else:
            self.off_amount += deal.amount
        self.comp += deal.comp_eligible
        self.warnings += deal.warned

    def add_closed(self, deal: Deal) -> None:
        """A deal closed in the period: win rates and days to close."""
        self.closed_all += 1
        if deal.counts_as == "approved":
            return
        days = days_between(deal.created_date, deal.close_date) if deal.is_won else None
        if deal.counts_as == "on":
            self.closed_on += 1
            self.won_on += deal.is_won
            if days is not None:
                self.days_on += days
                self.n_days_on += 1
        else:
            self.closed_off += 1
            self.won_off += deal.is_won
            if days is not None:
                self.days_off += days
                self.n_days_off += 1

    def merge(self, other: Line) -> None:
        """Add another group's deals in scope (a rep's into their team's)."""
        self.deals += other.deals
        self.on += other.on
        self.approved += other.approved
        self.amount += other.amount
        self.on_amount += other.on_amount
        self.off_amount += other.off_amount
        self.comp += other.comp
        self.warnings += other.warnings

    def merge_closed(self, other: Line) -> None:
        """Add another group's closed deals (win rates, days to close)."""
        for name in CLOSED_SLOTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def off(self) -> int:
        return self.deals - self.on - self.approved

    @property
    def share(self) -> float | None:
        return ratio(self.on, self.deals)

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "deals": self.deals,
            "on_strategy": self.on,
            "approved": self.approved,
            "off_strategy": self.off,
            "share": ratio(self.on, self.deals) or 0.0,
            "amount": round(self.amount, 2),
            "on_strategy_amount": round(self.on_amount, 2),
            "share_by_amount": ratio(self.on_amount, self.amount) or 0.0,
            "win_rate_on": ratio(self.won_on, self.closed_on),
            "win_rate_off": ratio(self.won_off, self.closed_off),
            "closed_on": self.closed_on,
            "won_on": self.won_on,
            "closed_off": self.closed_off,
            "won_off": self.won_off,
            "avg_amount_on": mean(self.on_amount, self.on),
            "avg_amount_off": mean(self.off_amount, self.off),
            "days_to_close_on": mean(self.days_on, self.n_days_on),
            "days_to_close_off": mean(self.days_off, self.n_days_off),
            "comp_share": ratio(self.comp, self.deals) or 0.0,
            "warnings": self.warnings,
        }


class Flow:
    """New pipeline and bookings over some weeks: what the trend and baseline count."""

    __slots__ = ("new", "new_on", "won_amount", "won_on_amount")

    def __init__(self) -> None:
        self.new = self.new_on = 0
        self.won_amount = self.won_on_amount = 0.0

    def add_new(self, deal: Deal) -> None:
        self.new += 1
        self.new_on += deal.counts_as == "on"

    def add_counts(self, counts: list[float]) -> None:
        """Add a cell: [new deals, of them on strategy, amount won, of it on strategy]."""
        self.new += int(counts[0])
        self.new_on += int(counts[1])
        self.won_amount += counts[2]
        self.won_on_amount += counts[3]

    def add_won(self, deal: Deal) -> None:
        self.won_amount += deal.amount
        if deal.counts_as == "on":
            self.won_on_amount += deal.amount

    @property
    def new_share(self) -> float | None:
        return ratio(self.new_on, self.new)

    @property
    def won_share(self) -> float | None:
        return ratio(self.won_on_amount, self.won_amount)

    def as_dict(self) -> dict[str, Any]:
        return {
            "new_deals": self.new,
            "new_on_strategy": self.new_on,
            "new_share": self.new_share,
            "won_amount": round(self.won_amount, 2),
            "won_on_strategy_amount": round(self.won_on_amount, 2),
            "won_share": self.won_share,
        }


def change(now: float | None, before: float | None) -> float | None:
    """Points of share gained against the baseline (as a fraction), or None."""
    return None if now is None or before is None else round(now - before, 4)
