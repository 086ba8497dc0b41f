"""The JSON API for programs: ``Authorization: Bearer <ONSTRATEGY_ADMIN_TOKEN>``.

A signed-in browser may call it too (same session as the dashboard). Every
answer under ``/api/`` is JSON, errors included, so a program never has to parse
an HTML error page.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, jsonify

from integration.app import auth

bp = Blueprint("api", __name__, url_prefix="/api")

HISTORY_KEYS = (
    "decided_at",
    "trigger",
    "fit",
    "reason",
    "warning",
    "comp_eligible",
    "fired",
    "errors",
    "ruleset_version",
    "target_list_version",
    "frozen",
    "changed",
)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.before_request
def _authorize() -> Response | None:
    return auth.refusal("api")


@bp.get("/opportunities/<crm>/<opportunity_id>")
def opportunity(crm: str, opportunity_id: str) -> Response:
    store = current_app.extensions["onstrategy"].runtime.store
    rows = store.history(crm, opportunity_id)
    if not rows:
        abort(404, description=f"no decision recorded for {crm} opportunity {opportunity_id}")
    return jsonify([{k: _plain(getattr(row, k), k) for k in HISTORY_KEYS} for row in rows])


def _plain(value: Any, key: str) -> Any:
    """``fired`` and ``errors`` are stored as JSON lists: served as lists, not strings."""
    if key == "decided_at":
        return str(value)
    return json.loads(value or "[]") if key in ("fired", "errors") else value


@bp.get("/rules")
def rules() -> Response:
    holder = current_app.extensions["onstrategy"].runtime.rules
    rulebook = holder.current()
    return jsonify(
        version=rulebook.version if rulebook else None,
        tags=rulebook.ruleset.tags if rulebook else [],
        problems=[str(p) for p in holder.problems],
    )
