"""Settings: validated once, errors that name the setting, secrets kept out of repr."""

from __future__ import annotations

import pytest

from integration.settings import Settings, SettingsError


def load(**env: str) -> Settings:
    return Settings.from_env({f"ONSTRATEGY_{k}": v for k, v in env.items()})


def error(**env: str) -> str:
    with pytest.raises(SettingsError) as raised:
        load(**env)
    return str(raised.value)


def test_defaults():
    settings = load()
    assert settings.rules_dir == "rules"
    assert settings.redis_url == ""
    assert settings.database_url == "sqlite:///onstrategy.db"
    assert settings.crms == ("sandbox",) and settings.crm == "sandbox"
    assert settings.hubspot_api_url == "https://api.hubapi.com"
    assert settings.admin_token == ""
    assert (settings.batch_wait_ms, settings.prune_interval_hours) == (250, 0)


def test_unknown_crm_names_the_setting():
    assert error(CRM="hubspto") == (
        "ONSTRATEGY_CRM must be one of hubspot, salesforce, sandbox; got 'hubspto'"
    )
    assert "got 'zoho'" in error(CRM="hubspot, zoho")


def test_crm_list_and_detection():
    assert load(CRM="hubspot, salesforce").crms == ("hubspot", "salesforce")
    assert load(HUBSPOT_ACCESS_TOKEN="pat-1").crms == ("hubspot",)
    detected = load(SALESFORCE_INSTANCE_URL="https://acme.my.salesforce.com")
    assert detected.crms == ("salesforce",)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("REDIS_URL", "localhost:6379", "ONSTRATEGY_REDIS_URL must be a redis/rediss/unix URL"),
        ("REDIS_URL", "http://localhost", "ONSTRATEGY_REDIS_URL must be a redis/rediss/unix URL"),
        ("HUBSPOT_API_URL", "ftp://x", "ONSTRATEGY_HUBSPOT_API_URL must be a http/https URL"),
        (
            "SALESFORCE_INSTANCE_URL",
            "acme.my.salesforce.com",
            "ONSTRATEGY_SALESFORCE_INSTANCE_URL must be a http/https URL",
        ),
        ("DATABASE_URL", "onstrategy.db", "ONSTRATEGY_DATABASE_URL must be a SQLAlchemy URL"),
        ("SALESFORCE_ORG_ID", "00D12345", "ONSTRATEGY_SALESFORCE_ORG_ID must be a 15- or 18-"),
        ("SALESFORCE_ORG_ID", "00D0000000000001", "ONSTRATEGY_SALESFORCE_ORG_ID must be a 15- or"),
        ("SALESFORCE_ORG_ID", "00D00000000000!", "ONSTRATEGY_SALESFORCE_ORG_ID must be a 15- or"),
        ("SALESFORCE_API_VERSION", "latest", "ONSTRATEGY_SALESFORCE_API_VERSION must look like"),
        ("HUBSPOT_ALLOW_V1V2", "maybe", "ONSTRATEGY_HUBSPOT_ALLOW_V1V2 must be true or false"),
        ("RECONCILE_INTERVAL_MINUTES", "-5", "ONSTRATEGY_RECONCILE_INTERVAL_MINUTES must not"),
        ("RECONCILE_INTERVAL_MINUTES", "soon", "ONSTRATEGY_RECONCILE_INTERVAL_MINUTES must be"),
        ("HUBSPOT_CALLS_PER_10S", "5", "ONSTRATEGY_HUBSPOT_CALLS_PER_10S must be at least 20"),
        ("HUBSPOT_CALLS_PER_10S", "lots", "ONSTRATEGY_HUBSPOT_CALLS_PER_10S must be a whole"),
        ("HUBSPOT_SEARCH_PER_SECOND", "1", "ONSTRATEGY_HUBSPOT_SEARCH_PER_SECOND must be at"),
        ("BATCH_WAIT_MS", "60000", "ONSTRATEGY_BATCH_WAIT_MS must be at most 10000; got 60000"),
        ("BATCH_WAIT_MS", "-1", "ONSTRATEGY_BATCH_WAIT_MS must not be negative"),
        ("PRUNE_INTERVAL_HOURS", "daily", "ONSTRATEGY_PRUNE_INTERVAL_HOURS must be a whole"),
        ("PROXY_HOPS", "9", "ONSTRATEGY_PROXY_HOPS must be at most 5; got 9"),
    ],
)
def test_wrong_settings_name_the_setting_and_value(name, value, message):
    text = error(**{name: value})
    assert text.startswith(message)
    assert "\n" not in text


@pytest.mark.parametrize("org_id", ["00D000000000001", "00D000000000001AAA"])
def test_org_id_15_or_18_characters(org_id):
    assert load(SALESFORCE_ORG_ID=org_id).salesforce_org_id == org_id


def test_good_urls_are_kept():
    settings = load(
        REDIS_URL="redis://127.0.0.1:6379/0",
        HUBSPOT_API_URL="http://127.0.0.1:8080/",
        SALESFORCE_INSTANCE_URL="https://acme.my.salesforce.com/",
        DATABASE_URL="postgresql+psycopg://u:p@db/onstrategy",
    )
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.hubspot_api_url == "http://127.0.0.1:8080"
    assert settings.salesforce_instance_url == "https://acme.my.salesforce.com"


def test_a_password_in_a_bad_url_is_not_shown():
    text = error(REDIS_URL="http://user:s3cr3t-pw@host:6379")
    assert "s3cr3t-pw" not in text and "***" in text


SECRETS = {
    "ADMIN_TOKEN": "admin-tok-123",
    "HUBSPOT_ACCESS_TOKEN": "pat-na1-secret",
    "HUBSPOT_CLIENT_SECRET": "client-secret-xyz",
    "SALESFORCE_ACCESS_TOKEN": "00Dxx!sessiontoken",
    "SALESFORCE_PASSWORD": "hunter2hunter2",
    "SALESFORCE_SECURITY_TOKEN": "sectok987",
    "SALESFORCE_WEBHOOK_SECRET": "hmac-secret-456",
}


def test_secrets_not_in_repr():
    settings = load(**SECRETS, CRM="sandbox")
    shown = repr(settings) + str(settings)
    for value in SECRETS.values():
        assert value not in shown
    assert settings.admin_token == "admin-tok-123"  # still usable
    assert "sandbox" in shown  # repr still says something useful


def test_settings_are_immutable():
    settings = load()
    with pytest.raises(AttributeError):
        settings.rules_dir = "elsewhere"  # type: ignore[misc]
    assert settings.replace(rules_dir="x").rules_dir == "x" and settings.rules_dir == "rules"


def test_app_start_up_stops_with_one_line_naming_the_setting(monkeypatch):
    from integration.app.factory import create_app

    monkeypatch.setenv("ONSTRATEGY_CRM", "hubspto")
    with pytest.raises(SystemExit) as stopped:
        create_app()
    assert str(stopped.value) == (
        "onstrategy: ONSTRATEGY_CRM must be one of hubspot, salesforce, sandbox; got 'hubspto'"
    )
