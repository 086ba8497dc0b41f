"""Salesforce sign-in: one small function per mode, chosen by a dict.

Three modes, tried in this order, the first whose settings are complete wins:

- ``jwt``: OAuth 2.0 JWT bearer (connected app client id + private key file +
  integration username). Recommended for production: no password to rotate and
  a fresh session can be minted whenever the old one expires.
- ``password``: username + password + security token (SOAP ``login()``).
- ``token``: a bare access token + instance URL. It cannot be renewed: when it
  expires the service stops with :class:`connectors.base.AuthError`.

``simple_salesforce.Salesforce`` rebuilds every URL as ``https://`` and keeps
only the host (and a non-443 port) of the instance URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import requests
from simple_salesforce import Salesforce

from integration.settings import Settings, SettingsError

#: Tag on every REST call, so Change Data Capture's ``changeOrigin`` names us
#: (Salesforce REST "Call Options Header").
CALL_OPTIONS = {"Sforce-Call-Options": "client=onstrategy"}

Login = Callable[[], Salesforce]


@dataclass(frozen=True)
class Auth:
    """How to get a client, and whether a new session can be minted on expiry."""

    mode: str
    login: Login
    renewable: bool


def _session() -> requests.Session:
    session = requests.Session()
    session.headers.update(CALL_OPTIONS)
    return session


def _domain(instance_url: str) -> str:
    """The login domain simple-salesforce expects: ``acme.my`` for My Domain, else ``login``."""
    host = urlparse(instance_url).hostname or ""
    suffix = ".salesforce.com"
    return host[: -len(suffix)] if host.endswith(suffix) else "login"


def _jwt_domain(instance_url: str) -> str:
    """The JWT ``aud`` must be login.salesforce.com, or test.salesforce.com for a sandbox
    (Salesforce "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration")."""
    host = urlparse(instance_url).hostname or ""
    return "test" if ".sandbox." in host or host.startswith("test.") else "login"


def _jwt(settings: Settings) -> Login:
    return lambda: Salesforce(
        username=settings.salesforce_username,
        consumer_key=settings.salesforce_client_id,
        privatekey_file=settings.salesforce_private_key_file,
        domain=_jwt_domain(settings.salesforce_instance_url),
        version=settings.salesforce_api_version,
        session=_session(),
    )


def _password(settings: Settings) -> Login:
    return lambda: Salesforce(
        username=settings.salesforce_username,
        password=settings.salesforce_password,
        security_token=settings.salesforce_security_token,
        domain=_domain(settings.salesforce_instance_url),
        version=settings.salesforce_api_version,
        session=_session(),
    )


def _token(settings: Settings) -> Login:
    return lambda: Salesforce(
        session_id=settings.salesforce_access_token,
        instance_url=settings.salesforce_instance_url,
        version=settings.salesforce_api_version,
        session=_session(),
    )


#: mode -> (settings attributes that must all be set, login builder, renewable)
MODES: dict[str, tuple[tuple[str, ...], Callable[[Settings], Login], bool]] = {
    "jwt": (
        ("salesforce_client_id", "salesforce_private_key_file", "salesforce_username"),
        _jwt,
        True,
    ),
    "password": (
        ("salesforce_username", "salesforce_password", "salesforce_security_token"),
        _password,
        True,
    ),
    "token": (("salesforce_access_token", "salesforce_instance_url"), _token, False),
}


def choose(settings: Settings) -> Auth:
    """The first complete sign-in mode, or a :class:`SettingsError` naming what is missing."""
    for mode, (needed, build, renewable) in MODES.items():
        if all(getattr(settings, name) for name in needed):
            return Auth(mode, build(settings), renewable)
    raise SettingsError(
        "Salesforce credentials are incomplete: set ONSTRATEGY_SALESFORCE_ACCESS_TOKEN + "
        "_INSTANCE_URL, or _USERNAME + _PASSWORD + _SECURITY_TOKEN, or JWT: "
        "_CLIENT_ID + _PRIVATE_KEY_FILE + _USERNAME"
    )
