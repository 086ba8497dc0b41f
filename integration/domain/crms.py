"""The CRMs OnStrategy speaks to, by the names settings and commands use.

The single list: settings validate ``ONSTRATEGY_CRM`` against it, the CLI offers
it, and ``connectors.registry.CONNECTORS`` has one entry per name (a test checks).
"""

CRM_NAMES: tuple[str, ...] = ("hubspot", "salesforce", "sandbox")

#: The CRMs that exist outside this process (``setup`` creates fields in them).
REMOTE_CRMS: tuple[str, ...] = ("hubspot", "salesforce")

#: Records per evaluation job, by CRM: what one job reads, judges and writes back
#: together, sized by each API's batch limits so a job's calls are full ones.
#: HubSpot reads 100 objects per batch call but 1,000 ids per association read, so
#: 500 deals share two association reads, their companies' and line items' reads,
#: and five updates (21 calls where five jobs of 100 make 35). Salesforce writes
#: 200 records per sObject Collections call and reads them in one SOQL query.
JOB_SIZES: dict[str, int] = {"hubspot": 500, "salesforce": 200}
DEFAULT_JOB_SIZE = 100  # the sandbox, and any CRM without a figure of its own


def job_size(crm: str) -> int:
    """How many records of ``crm`` one evaluation job takes."""
    return JOB_SIZES.get(crm, DEFAULT_JOB_SIZE)
