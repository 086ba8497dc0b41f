"""``setup --crm salesforce``: fields and picklist values created once, or a package to deploy."""

from __future__ import annotations

from xml.etree.ElementTree import fromstring

import pytest
import responses

from connectors.salesforce_setup import SetupPermissionError, field_metadata, metadata_package
from sf_fake import SalesforceFake

TAGS = ["On Strategy", "Off Strategy", "Off Strategy (Approved)"]
ALL_FIELDS = [
    "Opportunity.Strategy_Fit__c",
    "Opportunity.Strategy_Fit_Reason__c",
    "Opportunity.Strategy_Warning__c",
    "Opportunity.Comp_Eligible__c",
    "Opportunity.Strategy_Exception_Reason__c",
]


@pytest.fixture
def org():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = SalesforceFake()
        fake.register(rsps)
        yield fake


def test_creates_every_missing_field(org):
    created = org.connector().ensure_fields(TAGS)
    assert created == ALL_FIELDS
    fit = org.custom_fields["Strategy_Fit__c"]["Metadata"]
    assert fit["type"] == "Picklist"
    assert [v["fullName"] for v in fit["valueSet"]["valueSetDefinition"]["value"]] == TAGS
    assert org.custom_fields["Comp_Eligible__c"]["Metadata"]["defaultValue"] == "false"


def test_second_run_creates_nothing(org):
    connector = org.connector()
    connector.ensure_fields(TAGS)
    before = len(org.calls)
    assert connector.ensure_fields(TAGS) == []
    assert [c.kind for c in org.calls[before:]] == ["describe"]


def test_new_tag_is_added_to_the_picklist(org):
    org.add_custom_field("Strategy_Fit__c", field_metadata("fit", TAGS[:2]))
    created = org.connector().ensure_fields(TAGS)
    assert "Opportunity.Strategy_Fit__c: Off Strategy (Approved)" in created
    values = org.custom_fields["Strategy_Fit__c"]["Metadata"]["valueSet"]["valueSetDefinition"]
    assert [v["fullName"] for v in values["value"]] == TAGS


def test_existing_exception_field_is_left_alone(org):
    org.add_custom_field("Strategy_Exception_Reason__c", {"type": "LongTextArea", "label": "X"})
    created = org.connector().ensure_fields(TAGS)
    assert "Opportunity.Strategy_Exception_Reason__c" not in created
    assert org.custom_fields["Strategy_Exception_Reason__c"]["Metadata"]["label"] == "X"


def test_permission_denied_carries_a_deployable_package(org):
    org.deny_metadata = True
    with pytest.raises(SetupPermissionError) as raised:
        org.connector().ensure_fields(TAGS)
    text = str(raised.value)
    assert "package.xml" in text and "<members>Opportunity.Strategy_Fit__c</members>" in text
    assert "<fullName>Off Strategy (Approved)</fullName>" in text
    assert set(raised.value.files) == {
        "package.xml",
        "objects/Opportunity.object",
        "permissionsets/OnStrategy_Integration.permissionset",
    }


def test_metadata_package_is_well_formed_xml():
    for name, text in metadata_package(TAGS).items():
        root = fromstring(text.encode())
        assert root.tag.startswith("{http://soap.sforce.com/2006/04/metadata}"), name
