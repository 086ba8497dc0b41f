"""The JSON API: real answers validated against ``/api/openapi.json``; errors are JSON."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator
from test_insights_store import seed

from integration.app.factory import create_app
from integration.reports.service import Ask

OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}
TOKEN = {"Authorization": "Bearer s3cret-admin"}


@pytest.fixture
def api(runtime, sandbox):
    seed(runtime, sandbox)
    settings = runtime.settings.replace(admin_token="s3cret-admin")
    client = create_app(settings=settings, runtime=runtime).test_client()

    def get(path, status=200, headers=TOKEN):
        response = client.get(path, headers=headers, environ_base=OUTSIDE)
        assert response.status_code == status, response.data
        assert response.mimetype == "application/json"
        return response.get_json()

    return get


def validate(document, path, data, status="200"):
    """Check ``data`` against the schema the document gives for ``path`` and ``status``."""
    answer = document["paths"][path]["get"]["responses"][status]
    schema = answer["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": document["components"]})
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_the_document_itself_is_served(api):
    document = api("/api/openapi.json")
    assert document["openapi"].startswith("3.1")
    assert {"/api/report", "/api/coaching/{manager}", "/api/reps/{rep}"} <= set(document["paths"])


@pytest.mark.parametrize(
    "query", ["", "?status=all&from=2026-07-01&to=2026-12-31", "?by=owner&status=won"]
)
def test_report_answers_match_the_document(api, query):
    document = api("/api/openapi.json")
    validate(document, "/api/report", api(f"/api/report{query}"))


def test_views_and_other_answers_match_the_document(api):
    document = api("/api/openapi.json")
    validate(document, "/api/coaching/{manager}", api("/api/coaching/Margaret%20Chen"))
    validate(document, "/api/reps/{rep}", api("/api/reps/Dana%20Reyes"))
    validate(document, "/api/rules", api("/api/rules"))
    validate(
        document,
        "/api/opportunities/{crm}/{opportunity_id}",
        api("/api/opportunities/sandbox/O1"),
    )


def test_errors_are_json_and_match_the_document(api):
    document = api("/api/openapi.json")
    bad = api("/api/report?status=closed", status=400)
    assert "status must be one of" in bad["message"]
    validate(document, "/api/report", bad, "400")
    validate(document, "/api/report", api("/api/report", 401, headers={}), "401")
    validate(document, "/api/reps/{rep}", api("/api/reps/Nobody", status=404), "404")
    assert api("/api/nothing-here", status=404)["error"] == "not_found"
    assert "from must be a date" in api("/api/report?from=yesterday", status=400)["message"]


def test_without_a_token_a_proxied_request_is_refused(runtime, sandbox):
    client = create_app(runtime=runtime).test_client()
    assert client.get("/api/report").status_code == 200
    refused = client.get("/api/report", headers={"X-Forwarded-For": "203.0.113.9"})
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"


def test_api_and_cli_computation_agree(api, runtime):
    assert api("/api/report?status=all&by=owner") == runtime.insights.report(
        Ask(status="all", by="owner")
    )
