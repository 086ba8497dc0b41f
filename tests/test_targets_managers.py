"""Target list (CSV + CRM field) and managers file semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration.domain.model import Account, Facts, Opportunity, Owner
from integration.domain.sfid import same, to18
from integration.engine.managers import load_managers
from integration.engine.targets import load_targets


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def facts(crm: str, account_id: str, flag: bool = False, owner: Owner | None = None) -> Facts:
    return Facts(
        crm=crm,
        opportunity=Opportunity(id="OPP"),
        account=Account(id=account_id, crm_target_flag=flag),
        owner=owner or Owner(),
    )


@pytest.fixture
def targets_csv(tmp_path):
    return write(
        tmp_path,
        "target_accounts.csv",
        "crm,account_id,name\n"
        "sandbox,ACC-1,Listed\n"
        "salesforce,001D000000IqhSL,Acme (15-char id)\n"
        "hubspot,12345,Globex\n",
    )


@pytest.mark.parametrize(
    ("in_csv", "crm_flag", "crm_field", "expected"),
    [
        (True, False, True, True),
        (False, True, True, True),
        (True, True, True, True),
        (False, False, True, False),
        (True, False, False, True),
        (False, True, False, False),  # crm_field false: the CRM's flag does not count
        (True, True, False, True),
        (False, False, False, False),
    ],
)
def test_csv_and_crm_field_combination(targets_csv, in_csv, crm_flag, crm_field, expected):
    targets, problems = load_targets(targets_csv, crm_field)
    assert problems == []
    account_id = "ACC-1" if in_csv else "ACC-2"
    resolved = targets.resolve(facts("sandbox", account_id, crm_flag))
    assert resolved.account.on_target_list is expected


def test_deal_without_account(targets_csv):
    with_field, _ = load_targets(targets_csv, crm_field=True)
    without_field, _ = load_targets(targets_csv, crm_field=False)
    assert with_field.resolve(facts("sandbox", "")).account.on_target_list is False
    assert without_field.resolve(facts("sandbox", "", flag=True)).account.on_target_list is False


def test_the_csv_is_per_crm(targets_csv):
    targets, _ = load_targets(targets_csv, crm_field=False)
    assert targets.in_file("hubspot", "12345")
    assert not targets.in_file("sandbox", "12345")
    assert not targets.in_file("hubspot", "ACC-1")


def test_no_file_means_only_the_crm_field(tmp_path):
    targets, problems = load_targets(None, crm_field=True)
    assert problems == []
    assert targets.resolve(facts("sandbox", "X", flag=True)).account.on_target_list is True
    assert targets.resolve(facts("sandbox", "X", flag=False)).account.on_target_list is False


def test_salesforce_known_id_pair():
    assert to18("001D000000IqhSL") == "001D000000IqhSLIAZ"
    assert to18("001D000000IqhSLIAZ") == "001D000000IqhSLIAZ"
    assert to18("001D000000IqhSLiaz") == "001D000000IqhSLIAZ"  # the suffix is case-insensitive
    assert same("001D000000IqhSL", "001D000000IqhSLIAZ")
    assert not same("001D000000IqhSL", "001D000000IQHSL")  # case matters in the first 15
    assert to18("ACC-0001") == "ACC-0001" and to18("dana@example.com") == "dana@example.com"


@pytest.mark.parametrize("account_id", ["001D000000IqhSL", "001D000000IqhSLIAZ"])
def test_salesforce_15_and_18_char_ids_match(targets_csv, account_id):
    targets, _ = load_targets(targets_csv, crm_field=False)
    assert targets.resolve(facts("salesforce", account_id)).account.on_target_list is True


def test_salesforce_18_char_id_in_file_matches_15_char_id(tmp_path):
    path = write(tmp_path, "t.csv", "crm,account_id\nsalesforce,001D000000IqhSLIAZ\n")
    targets, problems = load_targets(path, crm_field=False)
    assert problems == []
    assert targets.in_file("salesforce", "001D000000IqhSL")


def test_same_salesforce_account_in_both_forms_with_different_names_conflicts(tmp_path):
    path = write(
        tmp_path,
        "t.csv",
        "crm,account_id,name\nsalesforce,001D000000IqhSL,Acme\nsalesforce,001D000000IqhSLIAZ,Other\n",
    )
    targets, problems = load_targets(path, crm_field=True)
    assert targets is None
    assert [(p.line, "listed on line 2" in p.message) for p in problems] == [(3, True)]


def test_target_list_version_changes_with_content_and_crm_field(targets_csv):
    a, _ = load_targets(targets_csv, crm_field=True)
    b, _ = load_targets(targets_csv, crm_field=False)
    assert a.version != b.version
    targets_csv.write_text(targets_csv.read_text() + "sandbox,ACC-9,New\n")
    c, _ = load_targets(targets_csv, crm_field=True)
    assert c.version != a.version
    assert a.changed_accounts(c, "sandbox") == {"ACC-9"}


# -- managers -----------------------------------------------------------------------------------


@pytest.fixture
def managers(tmp_path):
    path = write(
        tmp_path,
        "managers.csv",
        "crm,rep,manager\n"
        "sandbox,U-004,U-001\n"
        "sandbox,Kevin.Park@example.com,rachel.stein@example.com\n"
        "salesforce,005D0000001AbCd,005D0000002XyZw\n"
        "hubspot,111,222\n",
    )
    loaded, problems = load_managers(path)
    assert problems == []
    return loaded


def test_managers_file_wins_over_the_crm(managers):
    owner = Owner(id="U-004", manager_id="U-999")
    assert managers.resolve(facts("sandbox", "", owner=owner)).owner.manager_id == "U-001"


def test_crm_manager_kept_when_the_file_does_not_name_one(managers):
    owner = Owner(id="U-005", manager_id="U-002")
    assert managers.resolve(facts("sandbox", "", owner=owner)).owner.manager_id == "U-002"


def test_managers_by_email_case_insensitive(managers):
    owner = Owner(id="U-777", email="kevin.park@EXAMPLE.com")
    resolved = managers.resolve(facts("sandbox", "", owner=owner))
    assert resolved.owner.manager_id == "rachel.stein@example.com"


def test_hubspot_owners_get_their_manager_from_the_file(managers):
    assert managers.resolve(facts("hubspot", "", owner=Owner(id="111"))).owner.manager_id == "222"
    assert managers.resolve(facts("sandbox", "", owner=Owner(id="111"))).owner.manager_id == ""


@pytest.mark.parametrize("rep", ["005D0000001AbCd", to18("005D0000001AbCd")])
def test_salesforce_manager_ids_in_either_form(managers, rep):
    resolved = managers.resolve(facts("salesforce", "", owner=Owner(id=rep)))
    assert resolved.owner.manager_id == to18("005D0000002XyZw")
    assert len(resolved.owner.manager_id) == 18


def test_shipped_managers_file_loads(rules_dir):
    loaded, problems = load_managers(rules_dir / "managers.csv")
    assert problems == []
    assert loaded.manager_of("sandbox", "U-004") == "U-001"
    assert loaded.manager_of("sandbox", "U-012", "kevin.park@example.com") == (
        "rachel.stein@example.com"
    )
