"""The seeds' lists: red flags, reps to learn from, patterns, top deals, the cull list.

- "If only 30% of the business is On Strategy, that's a red flag."
- "Identify the top late stage opportunities AND the top value opportunities at
  all stages"; "cull the pipeline of accounts that don't meet your ideal client
  profile" (seed 002).
- Positive deviance: "look for patterns", spot "what works against all odds" and
  let reps learn from peers "just like me" (seed 004).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from integration.reports.deals import Deal
from integration.reports.tally import ratio

if TYPE_CHECKING:
    from integration.reports.insights import Params

TOP = 10
CULL_LIMIT = 100
LATE_STAGE = 60  # probability (%) from which a deal is late stage
IN_COMMON = 3


def red_flags(levels: Mapping[str, Any], below_percent: float) -> list[dict[str, Any]]:
    """The company, teams and reps whose on-strategy share (in scope) is below the line."""
    flags = []
    for level in ("company", "team", "owner"):
        for group, line in sorted(levels[level].lines.items()):
            share = line.share
            if line.deals and share is not None and share * 100 < below_percent:
                flags.append({"level": level, "group": group, "share": share, "deals": line.deals})
    return flags


def learn_from(
    levels: Mapping[str, Any],
    team_of: Mapping[str, str],
    on_deals: Mapping[str, Sequence[Deal]],
    params: Params,
) -> list[dict[str, Any]]:
    """Reps whose on-strategy share of new pipeline and on-strategy win rate both beat
    their team's, with at least ``min_deals`` closed deals (in the trend's window)."""
    reps, teams = levels["owner"], levels["team"]
    found = []
    for rep, closed in reps.closed.items():
        if closed.closed_all < params.min_deals:
            continue
        team = team_of.get(rep, "(no team)")
        share, rate = reps.window[rep].new_share, ratio(closed.won_on, closed.closed_on)
        team_share = teams.window[team].new_share
        team_closed = teams.closed.get(team)
        team_rate = ratio(team_closed.won_on, team_closed.closed_on) if team_closed else None
        if None in (share, rate, team_share, team_rate) or share <= team_share:
            continue
        if rate <= team_rate:
            continue
        found.append(
            {
                "owner": rep,
                "team": team,
                "share": share,
                "team_share": team_share,
                "win_rate_on": rate,
                "team_win_rate_on": team_rate,
                "closed_deals": closed.closed_all,
                **_in_common(on_deals.get(rep, ()), params),
            }
        )
    return sorted(found, key=lambda r: (-r["share"], r["owner"]))


def _in_common(deals: Iterable[Deal], params: Params) -> dict[str, list[dict[str, Any]]]:
    """The industries and products most frequent among a rep's on-strategy deals."""
    w_from, w_to = params.window
    industries: Counter[str] = Counter()
    products: Counter[str] = Counter()
    for deal in deals:
        if not (w_from <= deal.created_date <= w_to or w_from <= deal.close_date <= w_to):
            continue
        industries[deal.industry] += 1
        products.update(set(deal.products))
    return {
        "top_industries": [{"value": k, "deals": n} for k, n in _top(industries)],
        "top_products": [{"value": k, "deals": n} for k, n in _top(products)],
    }


def _top(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:IN_COMMON]


PATTERN_KEYS = ("fit_rule", "industry", "product", "stage", "owner")


def patterns(open_deals: Iterable[Deal]) -> dict[str, list[dict[str, Any]]]:
    """Open off-strategy pipeline by reason (fit rule), industry, product, stage and owner.

    A deal with two products counts under each; ``(no products)`` when it has none.
    """
    counts = {key: Counter() for key in PATTERN_KEYS}
    amounts = {key: Counter() for key in PATTERN_KEYS}
    tags: dict[str, str] = {}
    single = (
        ("fit_rule", lambda d: d.fit_rule or d.fit),
        ("industry", lambda d: d.industry),
        ("stage", lambda d: d.stage),
        ("owner", lambda d: d.owner),
    )
    off = [deal for deal in open_deals if deal.counts_as == "off"]
    for key, value_of in single:
        count, amount = counts[key], amounts[key]
        for deal in off:
            value = value_of(deal)
            count[value] += 1
            amount[value] += deal.amount
    for deal in off:
        tags.setdefault(deal.fit_rule or deal.fit, deal.fit)
        for product in dict.fromkeys(deal.products) or ("(no products)",):
            counts["product"][product] += 1
            amounts["product"][product] += deal.amount
    result = {}
    for key in PATTERN_KEYS:
        ranked = sorted(counts[key], key=lambda v, k=key: (-amounts[k][v], v))
        result[key] = [
            {"value": v, "count": counts[key][v], "amount": round(amounts[key][v], 2)}
            | ({"tag": tags[v]} if key == "fit_rule" else {})
            for v in ranked
        ]
    return result


def item(deal: Deal) -> dict[str, Any]:
    """One opportunity in a list: enough to find it in the CRM and see why it is there."""
    return {
        "crm": deal.crm,
        "opportunity_id": deal.opportunity_id,
        "name": deal.name,
        "owner": deal.owner,
        "team": deal.team,
        "amount": deal.amount,
        "stage": deal.stage,
        "probability": deal.probability,
        "fit": deal.fit,
        "fit_rule": deal.fit_rule,
        "counts_as": deal.counts_as,
    }


def _largest(deals: Iterable[Deal]) -> list[Deal]:
    return sorted(deals, key=lambda d: (-d.amount, d.crm, d.opportunity_id))


def top_lists(open_deals: Sequence[Deal]) -> dict[str, Any]:
    """Top 10 late-stage and top 10 value (all stages) open deals, and the cull list."""
    ranked = _largest(open_deals)
    late = [d for d in ranked if d.probability >= LATE_STAGE][:TOP]
    cull = [d for d in ranked if d.counts_as == "off"]
    return {
        "top_late_stage": [item(d) for d in late],
        "top_value": [item(d) for d in ranked[:TOP]],
        "cull": [item(d) for d in cull[:CULL_LIMIT]],
        "cull_total": {"count": len(cull), "amount": round(sum(d.amount for d in cull), 2)},
    }


def traction(
    on_deals: Mapping[str, Sequence[Deal]], period: tuple[str, str], status: str
) -> list[dict[str, Any]]:
    """Per rep, the products of their on-strategy deals in scope: how the strategic
    offerings take hold (deals, amount and wins per product)."""
    p_from, p_to = period
    cells: dict[tuple[str, str, str], list[float]] = {}
    for deals in on_deals.values():
        for deal in deals:
            if deal.is_closed:
                kind = "won" if deal.is_won else "lost"
                if status not in (kind, "all") or not p_from <= deal.close_date <= p_to:
                    continue
            elif status not in ("open", "all"):
                continue
            for product in dict.fromkeys(deal.products):
                cell = cells.setdefault((deal.owner, deal.team, product), [0, 0.0, 0])
                cell[0] += 1
                cell[1] += deal.amount
                cell[2] += deal.is_won
    return [
        {"owner": o, "team": t, "product": p, "deals": c[0], "amount": round(c[1], 2), "won": c[2]}
        for (o, t, p), c in sorted(cells.items())
    ]


def coaching_lines(
    tasks: Iterable[tuple[str, str, str, str, int]], names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Coaching tasks per manager and rep, by name: open, queued, completed, closed."""
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    for _crm, manager, rep, status, count in tasks:
        key = (names.get(manager, manager), names.get(rep, rep))
        line = lines.setdefault(
            key,
            {"manager": key[0], "rep": key[1], "open": 0, "queued": 0, "completed": 0, "closed": 0},
        )
        if status in line:
            line[status] += count
    return [lines[key] for key in sorted(lines)]
