"""CRM name -> connector factory. Adding a CRM costs a module and a line here."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from connectors.base import Connector
from integration.domain.fields import FieldMap

#: CRM name -> "module:factory"; modules are imported on first use so a sandbox
#: demo never loads a CRM client library it does not need.
CONNECTORS: dict[str, str] = {
    "hubspot": "connectors.hubspot:from_config",
    "salesforce": "connectors.salesforce:from_config",
    "sandbox": "connectors.sandbox:SandboxConnector.from_config",
}


def _factory(crm: str) -> Callable[..., Connector]:
    module_name, _, attribute = CONNECTORS[crm].partition(":")
    target: Any = import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def build_connector(crm: str, config: Any, fields: FieldMap, redis: Any = None) -> Connector:
    """A connector for ``crm``, checked against the :class:`Connector` protocol."""
    if crm not in CONNECTORS:
        raise ValueError(f"unknown CRM {crm!r} (known: {', '.join(CONNECTORS)})")
    connector = _factory(crm)(config, fields, redis)
    if not isinstance(connector, Connector):
        raise TypeError(f"{crm} connector does not implement connectors.base.Connector")
    return connector
