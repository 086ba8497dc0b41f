"""Who may read the dashboard and the API: people sign in, programs send a token.

- With ``ONSTRATEGY_ADMIN_TOKEN`` set, a browser signs in once on ``/signin`` with
  the token and then carries a signed, HTTP-only, Secure, SameSite session cookie;
  a program sends ``Authorization: Bearer <token>`` (the scheme in any case).
  A refused API call gets 401 with ``WWW-Authenticate``; a page sends the browser
  to the sign-in page instead.
- With no token set, only direct requests from this machine are served. Behind a
  reverse proxy on the same host every request arrives from 127.0.0.1, so a
  request that carries a forwarding header is refused (403) and the log says why.
- Every form carries a CSRF token bound to the session.
- Five wrong tokens from one address (form or header, counted together) make it
  wait until 15 minutes after the first (429 with ``Retry-After``), even with the
  right token: :mod:`integration.app.throttle` keeps the count.

The cookie is signed with ``ONSTRATEGY_SECRET_KEY``; when it is unset, a key is
generated once and kept in the store, so every process and host shares it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from integration.app.throttle import SigninThrottle, Standing

if TYPE_CHECKING:
    from integration.settings import Settings
    from integration.store.database import Store

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

Kind = Literal["page", "api"]
LOOPBACK = frozenset({"127.0.0.1", "::1"})
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
SESSION_LIFETIME = timedelta(hours=12)
SECRET_KEY_NAME = "session-secret"
REALM = 'Bearer realm="onstrategy"'
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def init_app(app: Flask, settings: Settings, store: Store) -> None:
    """Session cookie settings and the secret that signs it."""
    app.config.update(
        SECRET_KEY=settings.secret_key
        or store.app_key(SECRET_KEY_NAME, lambda: secrets.token_urlsafe(48)),
        SESSION_COOKIE_NAME="onstrategy_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["signed_in"] = lambda: bool(_token()) and _session_ok(_token())
    app.register_blueprint(bp)
    app.after_request(_security_headers)


_SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)


def _security_headers(response: Response) -> Response:
    """Nothing loads from outside the app, no framing, no caching of figures.

    A header the view set itself is kept. The names present are read once (each
    ``setdefault`` on werkzeug's headers scans them and raises internally when
    absent: measurable on the webhook path, which answers thousands a second)."""
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}
    for name, value in _SECURITY_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)
    if "cache-control" not in present and response.mimetype in ("text/html", "application/json"):
        headers.add("Cache-Control", "no-store")
    return response


# -- the check every protected view runs first -----------------------------------------------


def refusal(kind: Kind) -> Response | None:
    """None when this request may be served, else the answer that refuses it."""
    token = _token()
    if not token:
        return _loopback_only(kind)
    header = request.headers.get("Authorization")
    if header is not None:
        return _bearer_refusal(kind, header, token)
    if _session_ok(token):
        return None
    if kind == "page":
        return redirect(url_for("auth.signin", next=_here()))
    return _unauthorized(kind)


def bearer_matches(header: str, token: str) -> bool:
    """``Bearer <token>``; the scheme is case-insensitive (RFC 9110, 11.1)."""
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _bearer_refusal(kind: Kind, header: str, token: str) -> Response | None:
    """A program's token, under the same limit on wrong tokens per address as the form:
    otherwise guessing would simply move from ``/signin`` to ``Authorization``."""
    throttle, address = _throttle(), _client()
    before = throttle.standing(address)
    if before.blocked:
        return _too_many(kind, "bearer", before)
    if bearer_matches(header, token):
        throttle.succeeded(address, before)
        return None
    throttle.failed(address)
    return _unauthorized(kind)


def _too_many(kind: Kind, via: str, standing: Standing) -> Response:
    """429: this address gave too many wrong tokens; ``Retry-After`` says for how long."""
    wait = standing.retry_after
    log.warning(
        "refused %s %s from %s: %d wrong admin tokens within %d minutes; it may try again in %d s",
        request.method,
        request.path,
        _client(),
        standing.failures,
        _throttle().window // 60,
        wait,
    )
    current_app.extensions["onstrategy"].metrics.signin_refused(via)
    after = (datetime.now(UTC) + timedelta(seconds=wait)).strftime("%H:%M UTC")
    message = (
        f"Too many wrong tokens from your address. Try again in {_in_words(wait)} (after {after})."
    )
    if kind == "api":
        response = jsonify(error="too_many_attempts", message=message, retry_after=wait)
    else:
        response = current_app.make_response(render_template("refused.html", message=message))
    response.status_code = 429
    response.headers["Retry-After"] = str(wait)
    return response


def _in_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _loopback_only(kind: Kind) -> Response | None:
    forwarded = [name for name in PROXY_HEADERS if name in request.headers]
    if forwarded:
        log.warning(
            "refused %s %s: no ONSTRATEGY_ADMIN_TOKEN is set, so only direct requests from "
            "this machine are served, and this one came through a proxy (it carries %s); "
            "set ONSTRATEGY_ADMIN_TOKEN to serve it behind a proxy",
            request.method,
            request.path,
            ", ".join(forwarded),
        )
        return _forbidden(kind, "served only to direct requests from this machine")
    if request.remote_addr not in LOOPBACK:
        log.warning(
            "refused %s %s from %s: no ONSTRATEGY_ADMIN_TOKEN is set, so only requests "
            "from this machine are served",
            request.method,
            request.path,
            request.remote_addr,
        )
        return _forbidden(kind, "served only to requests from this machine")
    return None


def _forbidden(kind: Kind, why: str) -> Response:
    message = f"No admin token is set: {why}."
    if kind == "api":
        response = jsonify(error="forbidden", message=message)
    else:
        response = current_app.make_response(render_template("refused.html", message=message))
    response.status_code = 403
    return response


def _unauthorized(kind: Kind) -> Response:
    message = "Send Authorization: Bearer <ONSTRATEGY_ADMIN_TOKEN>, or sign in at /signin."
    if kind == "api":
        response = jsonify(error="unauthorized", message=message)
    else:
        response = current_app.make_response(render_template("refused.html", message=message))
    response.status_code = 401
    response.headers["WWW-Authenticate"] = REALM
    return response


# -- session and CSRF --------------------------------------------------------------------------


def _token() -> str:
    return current_app.extensions["onstrategy"].settings.admin_token


def _throttle() -> SigninThrottle:
    return current_app.extensions["onstrategy"].signin_throttle


def _client() -> str:
    """The address the throttle counts: the peer Flask sees, as everywhere in this module
    (no forwarding header is trusted; behind a proxy that is the proxy's address)."""
    return request.remote_addr or "unknown"


def _fingerprint(token: str) -> str:
    """What the cookie holds instead of the token: changing the token signs everyone out."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def _session_ok(token: str) -> bool:
    held = session.get("who", "")
    return bool(held) and hmac.compare_digest(held, _fingerprint(token))


def csrf_token() -> str:
    """The session's CSRF token, made on first use; every form sends it back."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    """Refuse (400) a form post whose CSRF token is missing or not this session's."""
    sent = request.form.get("csrf_token", "")
    held = session.get("csrf", "")
    if not (sent and held and hmac.compare_digest(sent, held)):
        log.warning("refused %s %s: missing or wrong CSRF token", request.method, request.path)
        abort(400, description="The form expired or did not come from this site; try again.")


def _here() -> str:
    return request.full_path.rstrip("?") if request.query_string else request.path


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    parts = urlsplit(target or "")
    if not target or parts.scheme or parts.netloc or not target.startswith("/"):
        return url_for("dashboard.overview")
    if target.startswith("//") or "\\" in target:
        return url_for("dashboard.overview")
    return target


# -- the sign-in and sign-out pages ----------------------------------------------------------


@bp.before_request
def _forms_need_csrf() -> None:
    if request.method == "POST":
        check_csrf()


@bp.get("/signin")
def signin() -> Response | str:
    if not _token():
        return render_template("signin.html", no_token=True, next=_safe_next(None))
    if _session_ok(_token()):
        return redirect(_safe_next(request.args.get("next")))
    return render_template("signin.html", next=_safe_next(request.args.get("next")))


@bp.post("/signin")
def signin_post() -> Response | tuple[str, int]:
    token, throttle, address = _token(), _throttle(), _client()
    target = _safe_next(request.form.get("next"))
    before = throttle.standing(address)  # before the comparison: blocked means blocked
    if before.blocked:
        return _too_many("page", "form", before)
    given = request.form.get("token", "").strip()
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        throttle.failed(address)
        log.warning("sign-in refused from %s: wrong token", address)
        page = render_template("signin.html", next=target, failed=True, no_token=not token)
        return page, 401
    throttle.succeeded(address, before)
    session.clear()
    session.permanent = True
    session["who"] = _fingerprint(token)
    session["csrf"] = secrets.token_urlsafe(32)
    log.info("signed in from %s", address)
    return redirect(target)


@bp.post("/signout")
def signout() -> Response:
    session.clear()
    return redirect(url_for("auth.signin", signed_out=1))
