"""``onstrategy setup``: create the fields the service writes, idempotently."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from connectors.base import ConnectorError


def run_setup(runtime: Any, crm: str, rulebook: Any, console: Console) -> list[str]:
    """Create what is missing and say what; a CRM error becomes one clear failure.

    When the user may not change metadata (Salesforce), the error carries the
    exact metadata an admin can deploy instead, and it is printed in full.
    """
    connector = runtime.connector(crm)
    try:
        created = connector.ensure_fields(rulebook.ruleset.tags)
    except ConnectorError as exc:
        raise click.ClickException(str(exc)) from None
    for name in created:
        console.print(f"created {name}")
    if not created:
        console.print(f"{crm}: every field already exists; nothing to do.")
    return created
