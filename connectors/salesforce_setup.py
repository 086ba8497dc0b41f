"""``onstrategy setup --crm salesforce``: create the Opportunity fields the service uses.

Fields are created through the Tooling API (``tooling/sobjects/CustomField``,
JSON over the same REST session) rather than the SOAP Metadata API client in
simple-salesforce: that client answers errors with a bare ``Exception`` string
(no status, no error code), so a missing permission could not be told apart
from a bad request, and its zeep/WSDL plumbing cannot share our error mapping
and test fake. The metadata written is the same ``CustomField`` shape.

Idempotent: a field that exists is left alone, except that missing tags are
added to the fit picklist. When the integration user may not change metadata,
:class:`SetupPermissionError` carries a package an admin can deploy instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from xml.sax.saxutils import escape

from simple_salesforce import Salesforce, format_soql

from connectors.base import AuthError, RejectedError
from integration.domain.fields import FieldMap

Call = Callable[[str, Callable[[Salesforce], Any]], Any]

METADATA_NS = "http://soap.sforce.com/2006/04/metadata"
PERMISSION_SET = "OnStrategy_Integration"
CUSTOM_FIELD = "tooling/sobjects/CustomField"
#: Logical fields ``setup`` creates, in order; the fit field is the only picklist.
SETUP_FIELDS = ("fit", "reason", "warning", "comp_eligible", "exception_reason")


class SetupPermissionError(AuthError):
    """The user may not create fields; ``files`` is a deployable metadata package."""

    files: dict[str, str]

    def __str__(self) -> str:
        listing = "\n\n".join(f"==> {name} <==\n{text}" for name, text in self.files.items())
        return (
            f"salesforce: cannot create fields ({self.body[:200]}). Ask an admin to deploy "
            f"this metadata (e.g. `sf project deploy start --metadata-dir DIR`):\n\n{listing}"
        )


def field_metadata(logical: str, tags: Sequence[str]) -> dict[str, Any]:
    """The ``CustomField`` metadata for one logical field (Metadata API names)."""
    specs: dict[str, dict[str, Any]] = {
        "fit": {"label": "Strategy Fit", "type": "Picklist", "valueSet": _value_set(tags)},
        "reason": {"label": "Strategy Fit Reason", "type": "Text", "length": 255},
        "warning": {
            "label": "Strategy Warning",
            "type": "LongTextArea",
            "length": 4000,
            "visibleLines": 3,
        },
        "comp_eligible": {"label": "Comp Eligible", "type": "Checkbox", "defaultValue": "false"},
        "exception_reason": {
            "label": "Strategy Exception Reason",
            "type": "Text",
            "length": 255,
            "inlineHelpText": "Why this deal is worth pursuing although it is off strategy.",
        },
    }
    return specs[logical]


def _value_set(tags: Sequence[str]) -> dict[str, Any]:
    values = [{"fullName": t, "label": t, "default": False} for t in tags]
    return {"restricted": False, "valueSetDefinition": {"sorted": False, "value": values}}


def ensure_fields(call: Call, fields: FieldMap, tags: Sequence[str]) -> list[str]:
    """Create missing fields and fit tags; return ``Opportunity.X`` / ``X: tag`` for each."""
    existing = _describe(call)
    created: list[str] = []
    try:
        for logical in SETUP_FIELDS:
            api_name = fields[logical]
            if api_name not in existing:
                _create(call, api_name, field_metadata(logical, tags))
                created.append(f"Opportunity.{api_name}")
        fit = existing.get(fields["fit"])
        if fit is not None and fit["type"] == "picklist":
            created += _add_tags(call, fields["fit"], fit, tags)
    except AuthError as exc:
        raise _permission_error(exc, fields, tags) from exc
    return created


def _describe(call: Call) -> dict[str, dict[str, Any]]:
    """Opportunity fields by API name, from the REST describe."""
    result = call("describe", lambda sf: sf.restful("sobjects/Opportunity/describe"))
    return {f["name"]: f for f in result["fields"]}


def _create(call: Call, api_name: str, metadata: dict[str, Any]) -> None:
    body = {"FullName": f"Opportunity.{api_name}", "Metadata": metadata}
    try:
        call("setup", lambda sf: sf.restful(CUSTOM_FIELD, method="POST", json=body))
    except RejectedError as exc:
        if "DUPLICATE" not in exc.body:
            raise
        # The field exists but the describe did not show it: no field-level security.
        raise RejectedError(
            exc.crm,
            exc.status,
            f"Opportunity.{api_name}",
            "the field exists but the "
            f"integration user cannot see it; grant access in {PERMISSION_SET}: {exc.body}",
        ) from exc


def _add_tags(
    call: Call, api_name: str, described: dict[str, Any], tags: Sequence[str]
) -> list[str]:
    """Append missing tags to the fit picklist (existing values and order kept)."""
    have = {v["value"] for v in described.get("picklistValues") or []}
    missing = [t for t in tags if t not in have]
    if not missing:
        return []
    field_id = _tooling_id(call, api_name)
    path = f"{CUSTOM_FIELD}/{field_id}"
    record = call("setup", lambda sf: sf.restful(path))
    metadata = record["Metadata"]
    definition = metadata.setdefault("valueSet", {}).setdefault("valueSetDefinition", {})
    values = definition.setdefault("value", [])
    values += [{"fullName": t, "label": t, "default": False} for t in missing]
    call("setup", lambda sf: sf.restful(path, method="PATCH", json={"Metadata": metadata}))
    return [f"Opportunity.{api_name}: {t}" for t in missing]


def _tooling_id(call: Call, api_name: str) -> str:
    soql = format_soql(
        "SELECT Id FROM CustomField WHERE TableEnumOrId = 'Opportunity' AND DeveloperName = {n}",
        n=api_name.removesuffix("__c"),
    )
    result = call("setup", lambda sf: sf.restful("tooling/query", params={"q": soql}))
    return result["records"][0]["Id"]


def _permission_error(exc: AuthError, fields: FieldMap, tags: Sequence[str]) -> AuthError:
    error = SetupPermissionError(exc.crm, status=exc.status, body=exc.body)
    error.files = metadata_package(tags, fields)
    return error


def metadata_package(
    tags: Sequence[str] = (), fields: FieldMap | None = None, api_version: str = "62.0"
) -> dict[str, str]:
    """filename -> XML of a Metadata API package: the fields plus a permission set.

    The permission set grants the integration user field-level security on the
    fields and the Task rights it needs; assign it after deploying.
    """
    fields = fields or FieldMap.for_crm("salesforce")
    names = [fields[logical] for logical in SETUP_FIELDS]
    body = "".join(
        _element("fields", {"fullName": fields[logical], **field_metadata(logical, tags)})
        for logical in SETUP_FIELDS
    )
    return {
        "package.xml": _package(names, api_version),
        "objects/Opportunity.object": _document("CustomObject", body),
        f"permissionsets/{PERMISSION_SET}.permissionset": _permission_set(fields),
    }


def _package(names: Sequence[str], api_version: str) -> str:
    members = "".join(f"<members>Opportunity.{escape(n)}</members>" for n in names)
    return _document(
        "Package",
        f"<types>{members}<name>CustomField</name></types>"
        f"<types><members>{PERMISSION_SET}</members><name>PermissionSet</name></types>"
        f"<version>{escape(api_version)}</version>",
    )


def _permission_set(fields: FieldMap) -> str:
    grants = [
        {
            "editable": logical != "exception_reason",
            "field": f"Opportunity.{fields[logical]}",
            "readable": True,
        }
        for logical in SETUP_FIELDS
    ]
    grants.append(
        {"editable": False, "field": f"Account.{fields['account_target']}", "readable": True}
    )
    body = "".join(_element("fieldPermissions", g) for g in grants)
    for obj, edit in (("Account", False), ("Opportunity", True), ("Task", True)):
        rights = {
            "allowCreate": obj == "Task",
            "allowDelete": False,
            "allowEdit": edit,
            "allowRead": True,
            "modifyAllRecords": False,
            "object": obj,
            "viewAllRecords": False,
        }
        body += _element("objectPermissions", rights)
    return _document("PermissionSet", f"{body}<label>OnStrategy Integration</label>")


def _document(root: str, body: str) -> str:
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return f'{head}<{root} xmlns="{METADATA_NS}">{body}</{root}>\n'


def _element(tag: str, value: Any) -> str:
    """Metadata XML for a value: dicts nest (fullName first, then by name), lists repeat."""
    if isinstance(value, list):
        return "".join(_element(tag, item) for item in value)
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (k != "fullName", k))
        return f"<{tag}>{''.join(_element(k, value[k]) for k in keys)}</{tag}>"
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{tag}>{escape(str(value))}</{tag}>"
