"""The Flask app factory: webhooks, health, metrics, admin API and dashboard.

In production: ``gunicorn 'integration.app:create_app()'``. Settings are read and
validated once here; a wrong one stops start-up with a line naming it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

from integration.app import api, auth, insights_api
from integration.app.dashboard import bp as dashboard_bp
from integration.app.metrics import Metrics
from integration.app.throttle import SigninThrottle
from integration.domain.events import MAX_WEBHOOK_BODY
from integration.domain.fields import FieldMap, WatchedFields
from integration.jobs.handlers import listen_for_target_changes
from integration.jobs.intake import make_intake
from integration.runtime import Runtime
from integration.settings import Settings, SettingsError
from webhooks.hubspot import bp as hubspot_bp
from webhooks.salesforce import bp as salesforce_bp

RULES_LOOKUP_SECONDS = 1.0


@dataclass
class AppState:
    """What views reach through ``current_app.extensions["onstrategy"]``."""

    settings: Settings
    runtime: Runtime
    intake: Any
    metrics: Metrics
    signin_throttle: SigninThrottle
    _recent: dict[tuple[str, str], tuple[float, Any]] = field(default_factory=dict)

    def fields(self, crm: str) -> FieldMap:
        return self._at_most_each_second(("fields", crm), lambda: self.runtime.fields(crm))

    def watched(self, crm: str) -> WatchedFields:
        return self._at_most_each_second(("watched", crm), lambda: self.runtime.watched(crm))

    def _at_most_each_second(self, key: tuple[str, str], make: Callable[[], Any]) -> Any:
        """What the webhooks ask of the rules, looked up at most once a second: looking
        up the rules on every delivery cost about a third of the webhook's own time."""
        now = time.monotonic()
        seen = self._recent.get(key)
        if seen is None or now - seen[0] >= RULES_LOOKUP_SECONDS:
            seen = self._recent[key] = (now, make())
        return seen[1]


def create_app(
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    intake: Any = None,
    signin_throttle: SigninThrottle | None = None,
) -> Flask:
    settings = settings or (runtime.settings if runtime else _settings_or_exit())
    runtime = runtime or Runtime(settings)
    runtime.store.migrate()
    runtime.rules.current()  # on a fresh store, publishes the working copy as the first version

    listen_for_target_changes(runtime)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_WEBHOOK_BODY
    if settings.proxy_hops:
        # The client's address, as the given number of trusted proxies recorded it in
        # X-Forwarded-For: what wrong admin tokens are counted by. Nothing else a proxy
        # sends is trusted (signatures cover the URL HubSpot used; redirects are relative).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops)  # type: ignore[method-assign]
    throttle = signin_throttle or SigninThrottle(runtime.redis)
    state = AppState(settings, runtime, intake or make_intake(runtime), Metrics(), throttle)
    app.extensions["onstrategy"] = state
    auth.init_app(app, settings, runtime.store)
    _register_blueprints(app)
    _register_health(app, state)
    state.metrics.instrument(app)
    return app


def _settings_or_exit() -> Settings:
    """Settings from the environment; a wrong one stops start-up with one line naming it."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"onstrategy: {exc}") from None


def _register_blueprints(app: Flask) -> None:
    app.register_blueprint(hubspot_bp)
    app.register_blueprint(salesforce_bp)
    app.register_blueprint(dashboard_bp)
    api.init_app(app)
    insights_api.init_app(app)


def _register_health(app: Flask, state: AppState) -> None:
    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        missing = readiness_problems(state.runtime)
        body = {
            "ready": not missing,
            "missing": missing,
            "warnings": rules_warnings(state.runtime),
            "ruleset": (rb.version if (rb := state.runtime.rules.current()) else None),
            "live_version": rb.version if rb else None,
        }
        return jsonify(body), 200 if not missing else 503

    @app.get("/metrics")
    def metrics() -> Response:
        return state.metrics.response(state.runtime)


def readiness_problems(runtime: Runtime) -> list[str]:
    """What stops the service from doing its work right now, in words."""
    missing = []
    if runtime.redis is not None:
        try:
            runtime.redis.ping()
        except Exception as exc:
            missing.append(f"redis: {exc}")
    try:
        runtime.store.ping()
    except Exception as exc:
        missing.append(f"store: {str(exc).splitlines()[0]}")
    for crm, message in runtime.crm_auth.problems(list(runtime.settings.crms)).items():
        missing.append(f"{crm}: authentication failed on its last call: {message}")
    if runtime.rules.current() is None:
        problems = "; ".join(str(p) for p in runtime.rules.problems[:5])
        missing.append(f"ruleset: no valid ruleset loaded: {problems}")
    return missing


def rules_warnings(runtime: Runtime) -> list[str]:
    """A published version that cannot be loaded while the last good one stays in force."""
    rulebook = runtime.rules.current()
    if rulebook is None or not runtime.rules.problems:
        return []
    return [f"the newest published rules cannot be loaded; keeping {rulebook.version}"] + [
        str(p) for p in runtime.rules.problems[:10]
    ]
