"""Salesforce Outbound Messages (SOAP 1.1): parse, check, and the documented answers.

Pure functions, no Flask. The request is a ``notifications`` call in the
namespace ``http://soap.sforce.com/2005/09/outbound`` with ``OrganizationId``,
``ActionId``, ``SessionId``, the two endpoint URLs and up to 100
``Notification`` elements, each an ``Id`` plus an ``sObject`` whose children
are the fields the admin chose to send (Salesforce "Understanding the
Outbound Messaging WSDL").

Parsing uses defusedxml with DTDs, entities and external references all
forbidden: a message never needs them, so any of them means a hostile or
broken sender (XXE, "billion laughs") and is refused before expansion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from integration.domain.sfid import to18
from webhooks.errors import Malformed, NotAuthentic

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_NOTIFICATIONS = 100  # WSDL: Notification maxOccurs="100"
CONTENT_TYPE = "text/xml; charset=utf-8"

#: The acknowledgement, exactly as documented; one Ack covers every notification.
ACK = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
   <Ack>true</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>
"""


@dataclass(frozen=True)
class Notification:
    """One notification: its id (``04l...``), the sObject type and the values sent."""

    id: str
    sobject_type: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def record_id(self) -> str:
        return to18(self.fields.get("Id", ""))


@dataclass(frozen=True)
class OutboundMessage:
    organization_id: str
    action_id: str
    notifications: tuple[Notification, ...]


def parse(body: bytes) -> OutboundMessage:
    """The message in ``body``, or :class:`Malformed` (400) for anything malformed or hostile."""
    root = _xml(body)
    notifications = _child(_child(root, SOAP_NS, "Body"), OUTBOUND_NS, "notifications")
    items = notifications.findall(f"{{{OUTBOUND_NS}}}Notification")
    if not items:
        raise Malformed("no Notification elements")
    if len(items) > MAX_NOTIFICATIONS:
        raise Malformed(f"{len(items)} notifications; at most {MAX_NOTIFICATIONS} allowed")
    return OutboundMessage(
        organization_id=_id(_text(notifications, "OrganizationId"), "OrganizationId"),
        action_id=_text(notifications, "ActionId", required=False),
        notifications=tuple(_notification(item) for item in items),
    )


def check_org(message: OutboundMessage, expected: str) -> None:
    """Only the configured org may send (compared in 18-character form): else 403."""
    if not expected:
        raise NotAuthentic("ONSTRATEGY_SALESFORCE_ORG_ID is not set; refusing all messages", 403)
    if to18(message.organization_id) != to18(expected):
        raise NotAuthentic("OrganizationId does not match this service's org", 403)


def fault(code: str, message: str) -> str:
    """A SOAP 1.1 fault; ``code`` is ``Client`` (sender's fault) or ``Server``."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>soapenv:{escape(code)}</faultcode>"
        f"<faultstring>{escape(message)}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>\n"
    )


def _xml(body: bytes) -> Element:
    try:
        return fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Malformed(f"forbidden XML construct: {type(exc).__name__}") from None
    except (ParseError, ValueError) as exc:
        raise Malformed(f"not well-formed XML: {exc}") from None


def _child(parent: Element, ns: str, name: str) -> Element:
    found = parent.find(f"{{{ns}}}{name}")
    if found is None:
        raise Malformed(f"missing {name}")
    return found


def _text(parent: Element, name: str, required: bool = True) -> str:
    found = parent.find(f"{{{OUTBOUND_NS}}}{name}")
    text = (found.text or "").strip() if found is not None else ""
    if required and not text:
        raise Malformed(f"missing {name}")
    return text


def _id(value: str, what: str) -> str:
    if len(value) not in (15, 18) or not value.isalnum() or not value.isascii():
        raise Malformed(f"{what} is not a Salesforce id")
    return value


def _notification(item: Element) -> Notification:
    sobject = _child(item, OUTBOUND_NS, "sObject")
    values = {
        child.tag.rpartition("}")[2]: _value(child)
        for child in sobject
        if child.tag.startswith(f"{{{SOBJECT_NS}}}")
    }
    _id(values.get("Id", ""), "sObject Id")
    return Notification(
        id=to18(_id(_text(item, "Id"), "Notification Id")),
        sobject_type=_sobject_type(sobject),
        fields=values,
    )


def _sobject_type(sobject: Element) -> str:
    """``xsi:type="sf:Opportunity"`` -> ``Opportunity``."""
    declared = sobject.get(f"{{{XSI_NS}}}type", "")
    name = declared.rpartition(":")[2]
    if not name.isidentifier():
        raise Malformed("sObject without a type")
    return name


def _value(element: Element) -> str:
    if element.get(f"{{{XSI_NS}}}nil") == "true":
        return ""
    return (element.text or "").strip()
