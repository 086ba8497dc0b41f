"""Big fake CRMs for the benchmarks, built in seconds by filling the fakes' dicts directly.

``build_salesforce`` and ``build_hubspot`` make the same shape of book of
business in each CRM: ``accounts`` accounts, ``opportunities`` deals spread
evenly over them, a sales team of reps with managers, one or two products per
deal, most deals open. Calling the fakes' ``add_*`` helpers 100,000 times would
take minutes (each HubSpot ``add_deal`` formats timestamps, each association
builds new type lists), so the records are written straight into the fakes'
internal dicts in the shapes those helpers produce.

:class:`IndexedSalesforceFake` is ``tests/sf_fake.SalesforceFake`` with two
changes that do not alter what the connector sees: ``AccountId IN``/``Id IN``
lists are parsed once per query and looked up in an index (the stock fake
re-parses the 200-id list for every row of the org, which is quadratic at this
size), and the ``Sforce-Query-Options: batchSize`` header is honoured (clamped
to 200..2,000 as Salesforce documents), so query paging costs what it would
against a real org.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from tests.fakes.hubspot_server import FakeHubSpot
from tests.sf_fake import SalesforceFake, _matches, sfid

INDUSTRIES = ("Manufacturing", "Healthcare", "Retail", "Software", "Financial Services")
HS_INDUSTRIES = ("MANUFACTURING", "HEALTHCARE", "COMPUTER_SOFTWARE", "MACHINERY", "RETAIL")
PRODUCTS = ("Data Platform", "Analytics Cloud", "Legacy Suite", "Support Plus", "On-Prem ERP")
SF_STAGES = (("Prospecting", 10), ("Qualification", 20), ("Proposal", 60), ("Negotiation", 80))
HS_STAGES = (
    ("appointmentscheduled", "0.2"),
    ("qualifiedtobuy", "0.4"),
    ("presentationscheduled", "0.6"),
    ("contractsent", "0.9"),
)
REPS_PER_MANAGER = 8
OPPORTUNITIES_PER_REP = 400
_IN_LIST = re.compile(r"(?<![\w.])(Account)?Id IN \(([^)]*)\)")


@dataclass(frozen=True)
class Book:
    """What was built: the fake, and the account ids in the CRM's own form."""

    fake: Any
    account_ids: list[str]
    opportunities: int
    reps: int


def deal_state(j: int) -> str:
    """85% open, 10% closed before the freeze date (history), 5% closed after it."""
    bucket = j % 20
    return "open" if bucket < 17 else ("frozen" if bucket < 19 else "recent")


def close_date(state: str, j: int) -> str:
    day = 1 + j % 28
    return {"open": f"2026-12-{day:02d}", "frozen": f"2026-03-{day:02d}"}.get(
        state, f"2026-10-{day:02d}"
    )


def team_size(opportunities: int) -> int:
    """Reps for a book this big: about 400 deals each, at least 8."""
    return max(REPS_PER_MANAGER, opportunities // OPPORTUNITIES_PER_REP)


class IndexedSalesforceFake(SalesforceFake):
    """The stock org fake, with indexed ``IN`` lookups and ``batchSize`` paging."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.by_account: dict[str, list[str]] = defaultdict(list)

    def _query(self, request: Any) -> tuple[int, Any]:
        options = request.headers.get("Sforce-Query-Options", "")
        size = re.search(r"batchSize=(\d+)", options)
        self.page_size = max(200, min(int(size.group(1)), 2000)) if size else 2000
        return super()._query(request)

    def _select(self, soql: str, include_deleted: bool) -> list[dict]:
        match = _IN_LIST.search(soql)
        if match is None:
            return super()._select(soql, include_deleted)
        ids = {part.strip().strip("'") for part in match.group(2).split(",")}
        rest = soql[: match.start()] + soql[match.end() :]
        if " FROM Task" in soql:
            rows = [self.tasks[i] for i in ids if i in self.tasks]
            rows = [t for t in rows if include_deleted or not t["IsDeleted"]]
            return [dict(t) for t in rows if _matches(t, rest)]
        if match.group(1):
            found = [self.opportunities[o] for a in ids for o in self.by_account.get(a, ())]
        else:
            found = [self.opportunities[i] for i in ids if i in self.opportunities]
        rows = sorted((o for o in found if _matches(o, rest)), key=lambda o: o["Id"])
        return [self._opportunity_row(o) for o in rows]


def build_salesforce(accounts: int, opportunities: int) -> Book:
    """An org of ``accounts`` accounts and ``opportunities`` opportunities, in seconds."""
    org = IndexedSalesforceFake()
    reps = _sf_users(org, team_size(opportunities))
    account_ids = [sfid("001", 1_000_000 + i) for i in range(accounts)]
    for i, aid in enumerate(account_ids):
        org.accounts[aid] = {
            "Id": aid,
            "Name": f"Account {i:05d}",
            "Industry": INDUSTRIES[i % 5],
            "NumberOfEmployees": (200, 1500, 5000)[i % 3],
            "AnnualRevenue": 1e6 * (1 + i % 90),
            "BillingCountry": "US",
            "Website": f"account{i}.example",
            "Target_Account__c": False,
        }
    for j in range(opportunities):
        _sf_opportunity(org, j, account_ids[j % accounts], reps[j % len(reps)])
    return Book(org, account_ids, opportunities, len(reps))


def _sf_users(org: IndexedSalesforceFake, count: int) -> list[str]:
    managers = [sfid("005", 10_000 + m) for m in range(max(1, count // REPS_PER_MANAGER))]
    for m, uid in enumerate(managers):
        org.users[uid] = {
            "Id": uid,
            "Name": f"Manager {m}",
            "Email": f"mgr{m}@acme.example",
            "ManagerId": None,
            "Department": "Sales Leadership",
        }
    reps = [sfid("005", 20_000 + r) for r in range(count)]
    for r, uid in enumerate(reps):
        manager = managers[r % len(managers)]
        org.users[uid] = {
            "Id": uid,
            "Name": f"Rep {r}",
            "Email": f"rep{r}@acme.example",
            "ManagerId": manager,
            "Department": "Sales",
        }
    return reps


def _sf_opportunity(org: IndexedSalesforceFake, j: int, account: str, owner: str) -> None:
    oid = sfid("006", 10_000_000 + j)
    state = deal_state(j)
    stage, probability = SF_STAGES[j % 4] if state == "open" else ("Closed Won", 100)
    org.opportunities[oid] = {
        "Id": oid,
        "Name": f"Opportunity {j:06d}",
        "AccountId": account,
        "OwnerId": owner,
        "Amount": float(5_000 + (j * 7919) % 250_000),
        "StageName": stage,
        "Probability": probability,
        "CloseDate": close_date(state, j),
        "IsClosed": state != "open",
        "IsWon": state != "open",
        "Type": "New Business",
        "LastModifiedDate": "2026-01-05T10:00:00.000+0000",
        "Strategy_Exception_Reason__c": None,
    }
    org.line_items[oid] = [PRODUCTS[j % 5]] + ([PRODUCTS[(j + 2) % 5]] if j % 2 else [])
    org.by_account[account].append(oid)


def build_hubspot(accounts: int, opportunities: int) -> Book:
    """A started portal of ``accounts`` companies and ``opportunities`` deals, in seconds."""
    hs = FakeHubSpot().start()
    owners = [str(70_000 + r) for r in range(team_size(opportunities))]
    for r, oid in enumerate(owners):
        hs.add_owner(oid, "Rep", str(r), f"rep{r}@acme.example")
    company_ids = [str(10_000_000 + i) for i in range(accounts)]
    for i, cid in enumerate(company_ids):
        hs.state.objects["companies"][cid] = _hs_record(
            cid,
            {
                "name": f"Company {i:05d}",
                "industry": HS_INDUSTRIES[i % 5],
                "numberofemployees": str((200, 1500, 5000)[i % 3]),
                "country": "US",
                "annualrevenue": str(1_000_000 * (1 + i % 90)),
                "domain": f"company{i}.example",
            },
        )
    for j in range(opportunities):
        _hs_deal(hs, j, company_ids[j % accounts], owners[j % len(owners)])
    return Book(hs, company_ids, opportunities, len(owners))


def hubspot_managers(book: Book) -> list[tuple[str, str]]:
    """(rep, manager) owner ids: HubSpot owners have no manager, the CSV names them."""
    reps = [str(o["id"]) for o in book.fake.state.owners]
    return [(rep, reps[(r // REPS_PER_MANAGER) * REPS_PER_MANAGER]) for r, rep in enumerate(reps)]


_TYPES = {  # shared association type lists, as FakeHubSpot.State.associate writes them
    pair: [{"category": "HUBSPOT_DEFINED", "typeId": t, "label": label} for t, label in kinds]
    for pair, kinds in {
        ("deals", "companies"): [(5, "Primary"), (341, None)],
        ("companies", "deals"): [(6, "Primary"), (342, None)],
        ("deals", "line_items"): [(19, None)],
        ("line_items", "deals"): [(20, None)],
    }.items()
}


def _hs_deal(hs: FakeHubSpot, j: int, company: str, owner: str) -> None:
    did, state = str(20_000_000 + j), deal_state(j)
    stage, probability = HS_STAGES[j % 4] if state == "open" else ("closedwon", "1.0")
    hs.state.objects["deals"][did] = _hs_record(
        did,
        {
            "dealname": f"Deal {j:06d}",
            "amount": str(5_000 + (j * 7919) % 250_000),
            "dealstage": stage,
            "pipeline": "default",
            "hs_deal_stage_probability": probability,
            "closedate": f"{close_date(state, j)}T12:00:00.000Z",
            "deal_currency_code": "USD",
            "hs_is_closed": str(state != "open").lower(),
            "dealtype": "newbusiness",
            "hs_is_closed_won": str(state != "open").lower(),
            "hubspot_owner_id": owner,
        },
    )
    _hs_link(hs, "deals", did, "companies", company)
    products = [PRODUCTS[j % 5]] + ([PRODUCTS[(j + 2) % 5]] if j % 2 else [])
    for k, name in enumerate(products):
        item = str(30_000_000 + 2 * j + k)
        hs.state.objects["line_items"][item] = _hs_record(item, {"name": name})
        _hs_link(hs, "deals", did, "line_items", item)


def _hs_link(hs: FakeHubSpot, a: str, a_id: str, b: str, b_id: str) -> None:
    associations = hs.state.associations
    associations.setdefault((a, b, a_id), {})[b_id] = _TYPES[(a, b)]
    associations.setdefault((b, a, b_id), {})[a_id] = _TYPES[(b, a)]


def _hs_record(object_id: str, props: dict[str, str]) -> dict[str, Any]:
    stamp = "2026-01-05T10:00:00.000Z"
    props = {**props, "hs_object_id": object_id, "createdate": stamp, "hs_lastmodifieddate": stamp}
    return {
        "id": object_id,
        "properties": props,
        "createdAt": stamp,
        "updatedAt": stamp,
        "archived": False,
    }
