"""Sign-in for people, tokens for programs, loopback only without a token: through the real app."""

from __future__ import annotations

import logging
import re

import pytest
from flask import Response

from integration.app.factory import create_app
from integration.store.database import Store

TOKEN = "s3cret-admin-token"
OUTSIDE = {"REMOTE_ADDR": "10.0.0.5"}  # WSGI environ only: no network traffic is sent
PAGES = ["/dashboard", "/dashboard/deals?status=won"]
APIS = ["/api/report", "/api/rules"]


@pytest.fixture
def open_client(runtime):
    return create_app(runtime=runtime).test_client()


@pytest.fixture
def token_app(runtime):
    return create_app(settings=runtime.settings.replace(admin_token=TOKEN), runtime=runtime)


@pytest.fixture
def client(token_app):
    return token_app.test_client()


def _csrf(client, path="/signin") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _sign_in(client, token=TOKEN, next_path="/dashboard"):
    return client.post(
        "/signin", data={"csrf_token": _csrf(client), "token": token, "next": next_path}
    )


# -- no token: direct loopback requests only ---------------------------------------------------


@pytest.mark.parametrize("path", PAGES + APIS)
def test_without_a_token_only_loopback_is_served(open_client, path):
    assert open_client.get(path).status_code == 200
    assert open_client.get(path, environ_base=OUTSIDE).status_code == 403


@pytest.mark.parametrize(
    "header", [{"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}]
)
@pytest.mark.parametrize("path", ["/dashboard", "/api/report"])
def test_without_a_token_a_proxied_request_is_refused_and_logged(open_client, caplog, header, path):
    with caplog.at_level(logging.WARNING, logger="integration.app.auth"):
        response = open_client.get(path, headers=header)
    assert response.status_code == 403
    [record] = [r for r in caplog.records if r.name == "integration.app.auth"]
    said = record.getMessage()
    assert "no ONSTRATEGY_ADMIN_TOKEN is set" in said and "came through a proxy" in said
    assert next(iter(header)) in said
    if path.startswith("/api/"):
        assert response.get_json()["error"] == "forbidden"


# -- tokens for programs -----------------------------------------------------------------------


@pytest.mark.parametrize("path", APIS)
def test_api_wants_a_bearer_token_and_says_so(client, path):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        response = client.get(path, headers=headers, environ_base=OUTSIDE)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["error"] == "unauthorized"
    # A token is needed even on loopback once one is set.
    assert client.get(path).status_code == 401


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(client, scheme):
    headers = {"Authorization": f"{scheme} {TOKEN}"}
    response = client.get("/api/report", headers=headers, environ_base=OUTSIDE)
    assert response.status_code == 200
    assert TOKEN.encode() not in response.data


def test_a_program_may_read_a_page_with_its_token(client):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/dashboard", headers=headers, environ_base=OUTSIDE).status_code == 200


def test_api_errors_are_json(client):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    missing = client.get("/api/opportunities/sandbox/OPP-404", headers=headers)
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
    bad = client.get("/api/report?status=someday", headers=headers)
    assert bad.status_code == 400 and "status must be one of" in bad.get_json()["message"]
    assert client.get("/api/nowhere", headers=headers).get_json()["error"] == "not_found"


# -- sign-in for people ------------------------------------------------------------------------


def test_a_browser_is_sent_to_sign_in_and_back(client):
    response = client.get("/dashboard?team=East", environ_base=OUTSIDE)
    assert response.status_code == 302
    assert response.headers["Location"] == "/signin?next=/dashboard?team%3DEast"
    signed = _sign_in(client, next_path="/dashboard?team=East")
    assert signed.status_code == 302 and signed.headers["Location"] == "/dashboard?team=East"
    assert client.get("/dashboard", environ_base=OUTSIDE).status_code == 200
    assert client.get("/api/report", environ_base=OUTSIDE).status_code == 200


def test_the_session_cookie_is_signed_secure_http_only_and_same_site(client):
    cookie = _sign_in(client).headers["Set-Cookie"]
    assert cookie.startswith("onstrategy_session=")
    assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Expires=" in cookie
    assert TOKEN not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    client.set_cookie("onstrategy_session", forged)
    assert client.get("/dashboard").status_code == 302


def test_a_wrong_token_does_not_sign_in(client, caplog):
    with caplog.at_level(logging.WARNING, logger="integration.app.auth"):
        response = _sign_in(client, token="guess")
    assert response.status_code == 401
    assert "That token is not right" in response.get_data(as_text=True)
    assert "onstrategy_session" not in response.headers.get("Set-Cookie", "") or (
        client.get("/dashboard").status_code == 302
    )
    assert any("wrong token" in r.getMessage() for r in caplog.records)
    assert all("guess" not in r.getMessage() for r in caplog.records)


def test_sign_in_needs_the_form_csrf_token(client):
    client.get("/signin")
    missing = client.post("/signin", data={"token": TOKEN})
    wrong = client.post("/signin", data={"token": TOKEN, "csrf_token": "forged"})
    assert missing.status_code == wrong.status_code == 400
    assert client.get("/dashboard").status_code == 302


def test_sign_out_needs_csrf_and_ends_the_session(client):
    _sign_in(client)
    assert client.post("/signout").status_code == 400
    assert client.get("/dashboard").status_code == 200
    out = client.post("/signout", data={"csrf_token": _csrf(client, "/dashboard")})
    assert out.status_code == 302 and out.headers["Location"] == "/signin?signed_out=1"
    assert client.get("/dashboard").status_code == 302


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
def test_sign_in_never_redirects_off_site(client, target):
    assert _sign_in(client, next_path=target).headers["Location"] == "/dashboard"


def test_changing_the_token_signs_everyone_out(client, runtime):
    _sign_in(client)
    settings = runtime.settings.replace(admin_token="new-token")
    rotated = create_app(settings=settings, runtime=runtime)
    other = rotated.test_client()
    other.set_cookie("onstrategy_session", client.get_cookie("onstrategy_session").value)
    assert other.get("/dashboard").status_code == 302


# -- the secret that signs the cookie ----------------------------------------------------------


def test_unset_secret_is_generated_once_and_shared_through_the_store(runtime, token_app):
    key = token_app.config["SECRET_KEY"]
    assert len(key) >= 48
    again = create_app(settings=runtime.settings.replace(admin_token=TOKEN), runtime=runtime)
    assert again.config["SECRET_KEY"] == key
    assert Store(runtime.store.url).app_key("session-secret", lambda: "other") == key
    first, second = token_app.test_client(), again.test_client()
    _sign_in(first)
    second.set_cookie("onstrategy_session", first.get_cookie("onstrategy_session").value)
    assert second.get("/dashboard").status_code == 200  # another process, same key


def test_a_secret_from_the_environment_wins(runtime):
    secret = "x" * 40
    settings = runtime.settings.replace(admin_token=TOKEN, secret_key=secret)
    assert create_app(settings=settings, runtime=runtime).config["SECRET_KEY"] == secret


def test_pages_load_nothing_from_elsewhere(open_client):
    response = open_client.get("/dashboard")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["Cache-Control"] == "no-store"


def test_every_answer_gets_the_security_headers_and_a_views_own_are_kept(runtime):
    app = create_app(runtime=runtime)

    @app.get("/own-headers")
    def own() -> Response:
        headers = {"cache-control": "max-age=5", "x-frame-options": "SAMEORIGIN"}
        return Response("{}", headers=headers, mimetype="application/json")

    client = app.test_client()
    answer = client.get("/own-headers")
    assert answer.headers.getlist("Cache-Control") == ["max-age=5"]
    assert answer.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    refused = client.post("/webhooks/hubspot", data=b"[]")  # unsigned: refused, same headers
    assert refused.status_code == 401
    assert refused.headers.getlist("X-Frame-Options") == ["DENY"]
    assert refused.headers["Referrer-Policy"] == "same-origin"
    assert refused.headers["Cache-Control"] == "no-store"
