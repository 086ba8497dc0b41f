"""Admin API and dashboard, behind ``ONSTRATEGY_ADMIN_TOKEN``.

Without a token they answer only on loopback, so a fresh install is never
exposed by accident.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, render_template, request

from integration.reports import figures as report_module

bp = Blueprint("admin", __name__, template_folder="templates")
LOOPBACK = ("127.0.0.1", "::1")


@bp.before_request
def _authorize() -> None:
    token = current_app.extensions["onstrategy"].settings.admin_token
    if not token:
        if request.remote_addr not in LOOPBACK:
            abort(403)
        return
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        abort(401)


def _report(by: str) -> Any:
    store = current_app.extensions["onstrategy"].runtime.store
    return report_module.build(
        store.latest_decisions(), store.all_decisions(), store.tasks.summary(), by
    )


@bp.get("/api/opportunities/<crm>/<opportunity_id>")
def api_opportunity(crm: str, opportunity_id: str) -> Any:
    store = current_app.extensions["onstrategy"].runtime.store
    rows = store.history(crm, opportunity_id)
    if not rows:
        abort(404)
    keys = (
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
    return jsonify([{k: _plain(k, getattr(r, k)) for k in keys} for r in rows])


def _plain(key: str, value: Any) -> Any:
    """``fired`` and ``errors`` are stored as JSON lists: served as lists, not strings."""
    if key == "decided_at":
        return str(value)
    return json.loads(value or "[]") if key in ("fired", "errors") else value


@bp.get("/api/rules")
def api_rules() -> Any:
    holder = current_app.extensions["onstrategy"].runtime.rules
    rulebook = holder.current()
    return jsonify(
        version=rulebook.version if rulebook else None,
        tags=rulebook.ruleset.tags if rulebook else [],
        problems=[str(p) for p in holder.problems],
    )


@bp.get("/dashboard")
def dashboard() -> str:
    by = request.args.get("by", "team")
    return render_template(
        "dashboard.html",
        r=_report(by if by in ("owner", "team") else "team"),
        pct=lambda v: f"{v * 100:.0f}%",
    )
