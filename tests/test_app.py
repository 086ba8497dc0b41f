"""The Flask app: health, readiness, metrics, and the admin API behind its token."""

from __future__ import annotations

import os
import time

import pytest

from integration.app.factory import create_app

OUTSIDE = {"REMOTE_ADDR": "10.0.0.5"}  # WSGI environ only: no network traffic is sent


def _touch(path) -> None:
    later = time.time() + 5
    os.utime(path, (later, later))


@pytest.fixture
def app(runtime):
    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    return app.test_client()


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_with_a_valid_ruleset(client, runtime):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["ready"] is True and body["missing"] == [] and body["warnings"] == []
    assert body["ruleset"] == runtime.rulebook().version


def test_readyz_503_when_rules_are_invalid_from_the_start(runtime, rules_dir):
    (rules_dir / "strategy.yaml").write_text(
        (rules_dir / "strategy.yaml").read_text().replace("account.employees", "acount.employees")
    )
    response = create_app(runtime=runtime).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["ready"] is False and body["ruleset"] is None
    [missing] = body["missing"]
    assert missing.startswith("ruleset: no valid ruleset loaded: ")
    assert f"{rules_dir / 'strategy.yaml'}:21: unknown variable 'acount'" in missing


def test_readyz_names_the_live_version_and_ignores_edits_of_the_folder(client, rules_dir):
    good = client.get("/readyz").get_json()
    assert good["live_version"] == good["ruleset"] and good["live_version"]
    path = rules_dir / "strategy.yaml"
    path.write_text(path.read_text().replace("max_open_per_rep: 2", "max_open_per_rep: two"))
    _touch(path)
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["live_version"] == good["live_version"] and body["warnings"] == []


def test_readiness_names_an_unreachable_store(runtime, sandbox):
    from integration.app.factory import readiness_problems
    from integration.runtime import Runtime
    from integration.store.database import Store

    assert readiness_problems(runtime) == []
    broken = Store("sqlite:////nonexistent-dir/for/sure/x.db")
    without_store = Runtime(runtime.settings, store=broken, connectors={"sandbox": sandbox})
    problems = readiness_problems(without_store)
    assert problems[0].startswith("store: ")
    assert all("store" in problem for problem in problems)  # the rules live in the store too


def test_metrics_is_prometheus_text(client, runtime, sandbox):
    sandbox.add_opportunity("OPP-1", name="One", amount=10)
    runtime.processor("sandbox").process_ids(["OPP-1"])
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "# TYPE onstrategy_opportunities gauge" in text
    assert 'onstrategy_opportunities{crm="sandbox",fit="Off Strategy"} 1.0' in text
    assert 'onstrategy_on_strategy_share{crm="sandbox"} 0.0' in text


def test_two_apps_do_not_clash_on_metrics(runtime):
    first = create_app(runtime=runtime).test_client().get("/metrics")
    second = create_app(runtime=runtime).test_client().get("/metrics")
    assert first.status_code == second.status_code == 200


# -- admin API (sign-in and tokens: test_auth.py) ----------------------------------------------


def test_api_report_content(client, runtime, sandbox):
    sandbox.add_owners([{"id": "U-4", "name": "Sean O'Brien", "team": "East"}])
    sandbox.add_opportunity("OPP-1", name="One", amount=10, owner_id="U-4")
    runtime.processor("sandbox").process_ids(["OPP-1"])
    data = client.get("/api/report?by=team").get_json()
    assert data["scope"]["by"] == "team"
    assert data["total"]["deals"] == 1
    assert [line["group"] for line in data["lines"]] == ["East"]
    assert client.get("/api/report?by=planet").status_code == 400
    history = client.get("/api/opportunities/sandbox/OPP-1").get_json()
    assert history[0]["fit"] == "Off Strategy"
    assert isinstance(history[0]["fired"], list) and isinstance(history[0]["errors"], list)
    assert client.get("/api/opportunities/sandbox/OPP-404").status_code == 404
    dashboard = client.get("/dashboard")
    assert dashboard.status_code == 200 and b"East" in dashboard.data


def test_readyz_checks_redis_when_configured(runtime, sandbox, redis_conn):
    from redis import Redis

    from integration.runtime import Runtime

    with_redis = Runtime(
        runtime.settings, store=runtime.store, redis=redis_conn, connectors={"sandbox": sandbox}
    )
    assert create_app(runtime=with_redis).test_client().get("/readyz").status_code == 200
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    without = Runtime(
        runtime.settings, store=runtime.store, redis=dead, connectors={"sandbox": sandbox}
    )
    response = create_app(runtime=without).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["missing"][0].startswith("redis: ")


def test_metrics_count_each_deal_once_by_its_newest_decision(client, runtime, sandbox):
    sandbox.add_opportunity("OPP-1", name="One", amount=10)
    runtime.processor("sandbox").process_ids(["OPP-1"])
    sandbox.set_opportunity("OPP-1", exception_reason="Champion is moving to a target account")
    runtime.processor("sandbox").process_ids(["OPP-1"])
    text = client.get("/metrics").get_data(as_text=True)
    assert 'onstrategy_opportunities{crm="sandbox",fit="Off Strategy (Approved)"} 1.0' in text
    assert 'fit="Off Strategy"}' not in text
