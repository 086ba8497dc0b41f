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

from connectors.config import ConfigError, SalesforceConfig

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


def _jwt(config: SalesforceConfig) -> Login:
    return lambda: Salesforce(
        username=config.username,
        consumer_key=config.client_id,
        privatekey_file=config.private_key_file,
        domain=_jwt_domain(config.instance_url),
        version=config.api_version,
        session=_session(),
    )


def _password(config: SalesforceConfig) -> Login:
    return lambda: Salesforce(
        username=config.username,
        password=config.password,
        security_token=config.security_token,
        domain=_domain(config.instance_url),
        version=config.api_version,
        session=_session(),
    )


def _token(config: SalesforceConfig) -> Login:
    return lambda: Salesforce(
        session_id=config.access_token,
        instance_url=config.instance_url,
        version=config.api_version,
        session=_session(),
    )


#: mode -> (settings attributes that must all be set, login builder, renewable)
MODES: dict[str, tuple[tuple[str, ...], Callable[[SalesforceConfig], Login], bool]] = {
    "jwt": (
        ("client_id", "private_key_file", "username"),
        _jwt,
        True,
    ),
    "password": (
        ("username", "password", "security_token"),
        _password,
        True,
    ),
    "token": (("access_token", "instance_url"), _token, False),
}


def choose(config: SalesforceConfig) -> Auth:
    """The first complete sign-in mode, or a ConfigError naming what is missing."""
    for mode, (needed, build, renewable) in MODES.items():
        if all(getattr(config, name) for name in needed):
            return Auth(mode, build(config), renewable)
    raise ConfigError(
        "Salesforce credentials are incomplete: set ONSTRATEGY_SALESFORCE_ACCESS_TOKEN + "
        "_INSTANCE_URL, or _USERNAME + _PASSWORD + _SECURITY_TOKEN, or JWT: "
        "_CLIENT_ID + _PRIVATE_KEY_FILE + _USERNAME"
    )
