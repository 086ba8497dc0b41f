"""The insights for programs: ``/api/coaching/<manager>``, ``/api/reps/<rep>``,
``/api/openapi.json``; every answer under ``/api/`` is JSON, errors included.

``/api/report`` answers from the same :class:`integration.reports.service.Insights`
as ``onstrategy report`` and the dashboard, so they never disagree. Programs send
``Authorization: Bearer <ONSTRATEGY_ADMIN_TOKEN>``; with no token set only direct
requests from this machine are served (one that came through a proxy is refused).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from integration.app import auth
from integration.app.openapi import document
from integration.reports.service import Ask

bp = Blueprint("insights_api", __name__, url_prefix="/api")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, json_error)


def json_error(exc: HTTPException) -> Any:
    """JSON for anything under /api/ (unknown paths included); the usual page elsewhere."""
    if not request.path.startswith("/api/"):
        return exc
    name = (exc.name or "error").lower().replace(" ", "_")
    response = jsonify(error=name, message=exc.description or exc.name)
    response.status_code = exc.code or 500
    return response


@bp.before_request
def _authorize() -> Response | None:
    """Bearer token or a signed-in browser; with no token set, direct local requests only
    (one that came through a proxy is refused): see :mod:`integration.app.auth`."""
    return auth.refusal("api")


def _insights() -> Any:
    return current_app.extensions["onstrategy"].runtime.insights


def ask() -> Ask:
    """The request's scope; a bad parameter is a 400 naming it."""
    try:
        return Ask.from_args(request.args)
    except ValueError as exc:
        abort(400, description=str(exc))


@bp.get("/report")
def report() -> Response:
    """``GET /api/report``: the whole report (the CLI's ``--format json``)."""
    try:
        return jsonify(_insights().report(ask()))
    except ValueError as exc:
        abort(400, description=str(exc))


@bp.get("/coaching/<manager>")
def coaching(manager: str) -> Response:
    view = _insights().manager_view(manager)
    if view is None:
        abort(404, description=f"no manager named {manager!r}")
    return jsonify(view)


@bp.get("/reps/<rep>")
def rep(rep: str) -> Response:
    try:
        view = _insights().rep_view(rep, ask())
    except ValueError as exc:
        abort(400, description=str(exc))
    if view is None:
        abort(404, description=f"no rep named {rep!r}")
    return jsonify(view)


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())
