"""``onstrategy setup --crm ...``: the command creates the fields, then finds nothing to do."""

from __future__ import annotations

import pytest
import responses
from click.testing import CliRunner

from fakes.hubspot_server import FakeHubSpot
from integration.cli.commands import main
from sf_fake import INSTANCE, VERSION, SalesforceFake

OUTPUT_FIELDS = ("strategy_fit", "strategy_fit_reason", "strategy_warning", "comp_eligible")


@pytest.fixture
def env(tmp_path, rules_dir):
    return {
        "ONSTRATEGY_RULES_DIR": str(rules_dir),
        "ONSTRATEGY_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
    }


def test_setup_hubspot_creates_the_properties_once(env):
    with FakeHubSpot(token="tok") as hs:
        env = {
            **env,
            "ONSTRATEGY_CRM": "hubspot",
            "ONSTRATEGY_HUBSPOT_ACCESS_TOKEN": "tok",
            "ONSTRATEGY_HUBSPOT_API_URL": hs.url,
        }
        first = CliRunner().invoke(main, ["setup", "--crm", "hubspot"], env=env)
        assert first.exit_code == 0, first.output
        assert all(name in first.output for name in OUTPUT_FIELDS)
        tags = {o["value"] for o in hs.property("deals", "strategy_fit")["options"]}
        assert tags == {"On Strategy", "Off Strategy (Approved)", "Off Strategy"}
        second = CliRunner().invoke(main, ["setup", "--crm", "hubspot"], env=env)
        assert second.exit_code == 0 and "nothing to do" in second.output


def test_setup_salesforce_creates_the_fields_once(env):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        org = SalesforceFake()
        org.register(rsps)
        env = {
            **env,
            "ONSTRATEGY_CRM": "salesforce",
            "ONSTRATEGY_SALESFORCE_ACCESS_TOKEN": "TOKEN",
            "ONSTRATEGY_SALESFORCE_INSTANCE_URL": f"https://{INSTANCE}",
            "ONSTRATEGY_SALESFORCE_API_VERSION": VERSION,
        }
        first = CliRunner().invoke(main, ["setup", "--crm", "salesforce"], env=env)
        assert first.exit_code == 0, first.output
        assert {"Strategy_Fit__c", "Comp_Eligible__c"} <= set(org.custom_fields)
        second = CliRunner().invoke(main, ["setup", "--crm", "salesforce"], env=env)
        assert second.exit_code == 0 and "nothing to do" in second.output


def test_setup_salesforce_without_permission_prints_the_metadata_to_deploy(env):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        org = SalesforceFake()
        org.deny_metadata = True
        org.register(rsps)
        env = {
            **env,
            "ONSTRATEGY_CRM": "salesforce",
            "ONSTRATEGY_SALESFORCE_ACCESS_TOKEN": "TOKEN",
            "ONSTRATEGY_SALESFORCE_INSTANCE_URL": f"https://{INSTANCE}",
            "ONSTRATEGY_SALESFORCE_API_VERSION": VERSION,
        }
        result = CliRunner().invoke(main, ["setup", "--crm", "salesforce"], env=env)
        assert result.exit_code == 1
        assert "package.xml" in result.output and "Strategy_Fit__c" in result.output
        assert not org.custom_fields
