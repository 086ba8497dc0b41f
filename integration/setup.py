"""``onstrategy setup``: create the fields the service writes, idempotently."""

from __future__ import annotations

from typing import Any

from rich.console import Console


def run_setup(runtime: Any, crm: str, rulebook: Any, console: Console) -> list[str]:
    connector = runtime.connector(crm)
    created = connector.ensure_fields(rulebook.ruleset.tags)
    if created:
        for name in created:
            console.print(f"created {name}")
    else:
        console.print(f"{crm}: every field already exists; nothing to do.")
    return created
