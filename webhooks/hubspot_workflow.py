"""A workflow's "Send a webhook" action: one JSON object, the enrolled record. Pure.

Unlike subscriptions, a workflow posts a single object: the record's properties
(all of them, or the ones the admin chose), flat or under ``properties``, plain
or as ``{"value": ...}``. ``hs_object_id`` names the record. Whether it is a deal
or a company comes from ``objectType`` (``deal``/``company`` or ``0-3``/``0-2``)
when the admin adds it as a static value, else from the properties sent: any
deal property the rules read makes it a deal, else any company one a company.

A workflow has no event id, and a re-enrolment can send a body identical to an
earlier one, so every request is new work: a retry costs one more read (and is
coalesced while the first job still waits), a dropped change would cost a
stale decision.
"""

from __future__ import annotations

import uuid
from typing import Any

from integration.domain.events import ChangeEvent
from integration.domain.fields import WatchedFields
from webhooks.errors import Malformed
from webhooks.hubspot_events import COMPANY, DEAL, record_id

SOURCE = "hubspot:workflow"
OBJECT_TYPES = {"deal": DEAL, "deals": DEAL, DEAL: DEAL, "company": COMPANY, "companies": COMPANY}
OBJECT_TYPES[COMPANY] = COMPANY
#: Properties deals and companies both have: they tell neither apart.
SHARED_PROPERTIES = frozenset(
    {"hs_object_id", "hs_lastmodifieddate", "hubspot_owner_id", "closedate", "createdate"}
)


def parse_workflow(document: dict[str, Any], watched: WatchedFields) -> ChangeEvent:
    """The change event for the record a workflow sent, or :class:`Malformed` (400)."""
    props = _properties(document)
    object_id = record_id(props.get("hs_object_id"), "hs_object_id")
    type_id = _object_type(document, props, watched)
    kind = "opportunity" if type_id == DEAL else "account"
    return ChangeEvent(
        crm="hubspot",
        kind=kind,
        object_id=object_id,
        key=f"hubspot:workflow:{uuid.uuid4().hex}",
        source=SOURCE,
    )


def _properties(document: dict[str, Any]) -> dict[str, Any]:
    """The record's properties, flattened: ``{"amount": {"value": "5"}}`` -> ``{"amount": "5"}``."""
    nested = document.get("properties")
    found = {**document, **nested} if isinstance(nested, dict) else dict(document)
    return {k: v.get("value") if isinstance(v, dict) else v for k, v in found.items()}


def _object_type(document: dict[str, Any], props: dict[str, Any], watched: WatchedFields) -> str:
    declared = document.get("objectType", document.get("objectTypeId"))
    if declared is not None:
        type_id = OBJECT_TYPES.get(str(declared).lower())
        if type_id is None:
            raise Malformed("objectType must be deal or company")
        return type_id
    names = set(props) - SHARED_PROPERTIES
    if names & (watched.opportunity - watched.account):
        return DEAL
    if names & (watched.account - watched.opportunity):
        return COMPANY
    raise Malformed(
        "cannot tell a deal from a company: send a property the rules read, "
        'or add "objectType": "deal" or "company" to the body'
    )
