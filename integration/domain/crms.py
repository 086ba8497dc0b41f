"""The CRMs OnStrategy speaks to, by the names settings and commands use.

The single list: settings validate ``ONSTRATEGY_CRM`` against it, the CLI offers
it, and ``connectors.registry.CONNECTORS`` has one entry per name (a test checks).
"""

CRM_NAMES: tuple[str, ...] = ("hubspot", "salesforce", "sandbox")

#: The CRMs that exist outside this process (``setup`` creates fields in them).
REMOTE_CRMS: tuple[str, ...] = ("hubspot", "salesforce")
