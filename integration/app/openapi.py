"""``GET /api/openapi.json``: the API described, so programs (and our tests) can rely on it.

The report's schema lists the keys the contract fixes ("Insights") as required;
tests validate real responses against this document, so the description and the
answers cannot drift apart.
"""

from __future__ import annotations

from typing import Any

NUM = {"type": "number"}
INT = {"type": "integer"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


SHARE = {"type": "number", "minimum": 0, "maximum": 1}
RATE = nullable(SHARE)

LINE = obj(
    {
        "group": STR,
        "deals": INT,
        "on_strategy": INT,
        "approved": INT,
        "share": SHARE,
        "amount": NUM,
        "on_strategy_amount": NUM,
        "share_by_amount": SHARE,
        "win_rate_on": RATE,
        "win_rate_off": RATE,
        "comp_share": SHARE,
        "warnings": INT,
    },
    {
        "off_strategy": INT,
        "avg_amount_on": nullable(NUM),
        "avg_amount_off": nullable(NUM),
        "days_to_close_on": nullable(NUM),
        "days_to_close_off": nullable(NUM),
        "baseline_new_share": RATE,
        "baseline_won_share": RATE,
        "new_share": RATE,
        "won_share": RATE,
        "new_share_change": nullable(NUM),
        "won_share_change": nullable(NUM),
    },
)
FLOW = {
    "new_deals": INT,
    "new_on_strategy": INT,
    "new_share": RATE,
    "won_amount": NUM,
    "won_on_strategy_amount": NUM,
    "won_share": RATE,
}
WEEK = obj(
    {
        "week": {"type": "string", "pattern": "^[0-9]{4}-W[0-9]{2}$"},
        "new_share": RATE,
        "won_share": RATE,
        "ruleset_changed": BOOL,
    },
    FLOW,
)
DEAL = obj(
    {"opportunity_id": STR, "name": STR, "owner": STR, "amount": NUM, "stage": STR, "fit": STR},
    {
        "crm": STR,
        "team": STR,
        "probability": INT,
        "fit_rule": STR,
        "counts_as": {"enum": ["on", "approved", "off"]},
    },
)
PATTERN = obj({"value": STR, "count": INT, "amount": NUM}, {"tag": STR})
IN_COMMON = array(obj({"value": STR, "deals": INT}))
SCHEMAS: dict[str, Any] = {
    "Line": LINE,
    "Week": WEEK,
    "Deal": DEAL,
    "Report": obj(
        {
            "scope": obj(
                {
                    "status": {"enum": ["open", "won", "lost", "all"]},
                    "from": STR,
                    "to": STR,
                    "live_version": nullable(STR),
                },
                {"by": {"enum": ["team", "owner"]}, "today": STR},
            ),
            "total": ref("Line"),
            "lines": array(ref("Line")),
            "trend": array(ref("Week")),
            "baseline": nullable(
                obj({"from": STR, "to": STR, "new_share": RATE, "won_share": RATE}, FLOW)
            ),
            "red_flags": array(obj({"group": STR, "share": SHARE}, {"level": STR, "deals": INT})),
            "learn_from": array(
                obj(
                    {
                        "owner": STR,
                        "team": STR,
                        "share": SHARE,
                        "win_rate_on": SHARE,
                        "top_industries": IN_COMMON,
                        "top_products": IN_COMMON,
                    },
                    {"team_share": SHARE, "team_win_rate_on": SHARE, "closed_deals": INT},
                )
            ),
            "patterns": obj(
                {k: array(PATTERN) for k in ("fit_rule", "industry", "product", "stage", "owner")}
            ),
            "top_late_stage": array(ref("Deal")),
            "top_value": array(ref("Deal")),
            "cull": array(ref("Deal")),
            "coaching": array(
                obj(
                    {
                        "manager": STR,
                        "rep": STR,
                        "open": INT,
                        "queued": INT,
                        "completed": INT,
                        "closed": INT,
                    }
                )
            ),
        },
        {
            "trends": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": array(ref("Week")),
                },
            },
            "cull_total": obj({"count": INT, "amount": NUM}),
            "traction": array(
                obj(
                    {
                        "owner": STR,
                        "team": STR,
                        "product": STR,
                        "deals": INT,
                        "amount": NUM,
                        "won": INT,
                    }
                )
            ),
        },
    ),
    "CoachingQueue": obj(
        {
            "manager": STR,
            "manager_id": STR,
            "reps": array(
                obj(
                    {
                        "rep": STR,
                        "open": INT,
                        "queued": INT,
                        "tasks": array(
                            obj(
                                {
                                    "status": {"enum": ["open", "queued"]},
                                    "rule": STR,
                                    "subject": STR,
                                    "deal": obj({"opportunity_id": STR}),
                                },
                                {"priority": STR, "score": NUM},
                            )
                        ),
                    }
                )
            ),
        }
    ),
    "RepView": obj(
        {
            "owner": STR,
            "team": STR,
            "scope": {"type": "object"},
            "rep": nullable(ref("Line")),
            "team_line": ref("Line"),
            "warnings": array(ref("Deal")),
            "coaching": obj({"open": INT, "queued": INT}),
        }
    ),
    "Error": obj({"error": STR, "message": STR}),
}

SCOPE_PARAMS = [
    {
        "name": "status",
        "in": "query",
        "schema": {"enum": ["open", "won", "lost", "all"]},
        "description": "open (default): the open pipeline now; won/lost: closed in the period",
    },
    {
        "name": "from",
        "in": "query",
        "schema": {"type": "string", "format": "date"},
        "description": "first day of the period (default: the quarter's first day)",
    },
    {
        "name": "to",
        "in": "query",
        "schema": {"type": "string", "format": "date"},
        "description": "last day of the period (default: today)",
    },
    {"name": "baseline_from", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "baseline_to", "in": "query", "schema": {"type": "string", "format": "date"}},
    {
        "name": "team",
        "in": "query",
        "schema": {"type": "string"},
        "description": "only this team's deals",
    },
    {
        "name": "rep",
        "in": "query",
        "schema": {"type": "string"},
        "description": "only this rep's deals (name or id)",
    },
]
ERRORS = {
    code: {"description": text, "content": {"application/json": {"schema": ref("Error")}}}
    for code, text in (
        ("400", "a bad parameter, named in the message"),
        ("401", "missing or wrong bearer token"),
        ("403", "no token is set and the request is not a direct one from this machine"),
        ("404", "nothing by that name"),
    )
}


def _get(summary: str, schema: dict[str, Any], params: list | None = None) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params or [],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
                **ERRORS,
            },
        }
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``/api/...``."""
    by = {"name": "by", "in": "query", "schema": {"enum": ["team", "owner"]}}
    person = {"in": "path", "required": True, "schema": STR}
    return {
        "openapi": "3.1.0",
        "info": {"title": "OnStrategy API", "version": "1"},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/report": _get(
                "The insights: shares, win rates, trend, baseline, lists, coaching",
                ref("Report"),
                [by, *SCOPE_PARAMS],
            ),
            "/api/coaching/{manager}": _get(
                "A manager's coaching queue (name or id): open, then queued tasks per rep",
                ref("CoachingQueue"),
                [{"name": "manager", **person}],
            ),
            "/api/reps/{rep}": _get(
                "A rep's own figures (name or id) next to their team's",
                ref("RepView"),
                [{"name": "rep", **person}, *SCOPE_PARAMS],
            ),
            "/api/opportunities/{crm}/{opportunity_id}": _get(
                "One opportunity's decisions, newest first",
                array({"type": "object"}),
                [{"name": "crm", **person}, {"name": "opportunity_id", **person}],
            ),
            "/api/rules": _get(
                "The live ruleset's version and tags, and problems in the rule files",
                obj({"version": nullable(STR), "tags": array(STR), "problems": array(STR)}),
            ),
            "/api/openapi.json": _get("This document", {"type": "object"}),
        },
    }
