"""``onstrategy explain``: why a deal is (not) on strategy or comp eligible."""

from __future__ import annotations

import json

from rich.console import Console
from rich.panel import Panel

from integration.cli.tables import history_table
from integration.domain.sfid import to18
from integration.store.database import Store


def print_explanation(store: Store, crm: str, opportunity_id: str, console: Console) -> bool:
    """Print the latest decision, its reasons and history; False when there is none."""
    if crm == "salesforce":
        opportunity_id = to18(opportunity_id)
    latest = store.latest(crm, opportunity_id)
    if latest is None:
        return False
    fired = json.loads(latest.fired)
    errors = json.loads(latest.errors)
    comp = "eligible" if latest.comp_eligible else "NOT eligible"
    target = "on" if latest.on_target_list else "not on"
    lines = [
        f"[bold]{latest.name}[/] ({crm} {latest.opportunity_id}), owner {latest.owner_name or '-'}"
        f" ({latest.team or 'no team'}), {latest.stage}, {latest.amount:,.0f}",
        f"Fit: [bold]{latest.fit}[/] - {latest.reason}",
        f"Decided by fit rule: {latest.fit_rule!r}; rules that held: {', '.join(fired) or 'none'}",
        f"Warning: {latest.warning or '(none)'}",
        f"Compensation: {comp}; account {latest.account_name or latest.account_id or '-'} is "
        f"{target} the target account list (list version {latest.target_list_version}).",
        f"Ruleset version {latest.ruleset_version}; decided {latest.decided_at:%Y-%m-%d %H:%M} "
        f"UTC by {latest.trigger}.",
    ]
    if latest.frozen:
        lines.append("Frozen: closed before the freeze date; its fields are never written again.")
    if errors:
        lines.append(f"[red]Errors: {'; '.join(errors)}[/]")
    console.print(Panel("\n".join(lines), title="Latest decision"))
    history = store.history(crm, opportunity_id)
    console.print(history_table(history))
    changed = [w for w in store.writes_for([row.id for row in history])]
    for write in changed[-10:]:
        error = f": {write.error}" if write.error else ""
        console.print(
            f"  {write.at:%Y-%m-%d %H:%M} {write.field}: {write.old_value!r} -> "
            f"{write.new_value!r} ({write.status}{error})"
        )
    return True
