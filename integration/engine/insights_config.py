"""The rule file's optional ``insights:`` section: what the leaders' report measures against.

```yaml
insights:
  baseline: {from: 2025-10-01, to: 2026-03-31}   # default: the first 13 weeks with data
  red_flag_below: 30                             # percent; default 30
  min_deals: 5                                   # closed deals needed to rank a rep
```
A file without the section keeps its meaning: the defaults below apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from integration.engine.rules_schema import Checker
from integration.engine.yamlsource import LocatedDict


@dataclass(frozen=True)
class InsightsSettings:
    """Baseline period (``None``: the first 13 weeks with data), red flag and ranking floor."""

    baseline_from: date | None = None
    baseline_to: date | None = None
    red_flag_below: float = 30.0  # percent
    min_deals: int = 5


def parse_insights(raw: Any, line: int, c: Checker) -> InsightsSettings:
    """The section, checked; every problem is reported with its line."""
    if raw is None or not c.mapping(raw, line, "insights"):
        return InsightsSettings()
    c.only_keys(raw, ("baseline", "red_flag_below", "min_deals"), "insights")
    start, end = _baseline(raw.get("baseline"), raw.line_of("baseline"), c)
    below = raw.get("red_flag_below", 30)
    if isinstance(below, bool) or not isinstance(below, int | float) or not 0 <= below <= 100:
        c.problem(
            raw.line_of("red_flag_below"),
            f"insights.red_flag_below must be a percent from 0 to 100; got {below!r}",
        )
        below = 30
    min_deals = c.integer(raw, "min_deals", default=5, minimum=1)
    return InsightsSettings(start, end, float(below), min_deals)


def _baseline(raw: Any, line: int, c: Checker) -> tuple[date | None, date | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, LocatedDict):
        c.problem(line, "insights.baseline must be {from: YYYY-MM-DD, to: YYYY-MM-DD}")
        return None, None
    c.only_keys(raw, ("from", "to"), "insights.baseline")
    start, end = raw.get("from"), raw.get("to")
    if not isinstance(start, date) or not isinstance(end, date):
        c.problem(line, "insights.baseline needs both from and to as dates (YYYY-MM-DD)")
        return None, None
    if end < start:
        c.problem(line, f"insights.baseline ends ({end}) before it starts ({start})")
        return None, None
    return start, end
