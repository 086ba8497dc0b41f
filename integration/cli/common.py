"""What every command shares: settings, the runtime, progress bars, expected errors.

An expected error (a wrong setting, missing credentials, an unreachable Redis or
database, a CRM refusing a call, no published rules) is one line on stderr and
exit 1: :class:`Commands` turns them into ``click`` errors, so no command prints
a traceback for them. Usage errors exit 2 (click's own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from redis.exceptions import RedisError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from rq.exceptions import NoSuchJobError
from sqlalchemy.exc import OperationalError

from connectors.base import ConnectorError
from connectors.config import ConfigError
from integration.engine.rulebook import RulesUnavailable
from integration.jobs.publish import PublishError
from integration.runtime import Runtime
from integration.settings import Settings, SettingsError

#: The example rules shipped inside the package, for ``demo`` run outside a checkout.
EXAMPLE_RULES = Path(__file__).resolve().parent.parent / "engine" / "example_rules"

EXPECTED: tuple[type[BaseException], ...] = (
    SettingsError,
    ConfigError,
    ConnectorError,
    RulesUnavailable,
    PublishError,
    RedisError,
    OperationalError,
    NoSuchJobError,
    OSError,
)

RULES_OPTION = click.option(
    "--rules",
    "rules_dir",
    type=click.Path(file_okay=False),
    help="The rules folder, the admin's working copy (default: ONSTRATEGY_RULES_DIR).",
)


def one_line(exc: BaseException) -> str:
    """The first line of an error, without SQL or a background link."""
    if isinstance(exc, OperationalError):
        return f"the store cannot be reached: {str(exc.orig).splitlines()[0]}"
    if isinstance(exc, RedisError):
        return f"Redis cannot be reached: {str(exc).splitlines()[0] if str(exc) else exc!r}"
    if isinstance(exc, NoSuchJobError):
        return f"no such job: {exc}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Commands(click.Group):
    """The command group: expected errors become one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EXPECTED as exc:
            raise click.ClickException(one_line(exc)) from None


def settings(rules_dir: str | None = None, **overrides: Any) -> Settings:
    loaded = Settings.from_env()
    if rules_dir:
        overrides["rules_dir"] = rules_dir
    return loaded.replace(**{k: v for k, v in overrides.items() if v is not None})


def runtime(loaded: Settings | None = None, *, publish_first: bool = True) -> Runtime:
    """A migrated runtime; on a fresh store it publishes the working copy as the first version."""
    made = Runtime(loaded or settings(), publish_first=publish_first)
    made.store.migrate()
    return made


def live_rulebook(made: Runtime) -> Any:
    """The live rulebook, or one clear line saying why there is none."""
    rulebook = made.rules.refresh()
    if rulebook is None:
        raise click.ClickException(
            "; ".join(str(p) for p in made.rules.problems[:3]) or "no live rules version"
        )
    return rulebook


def require_credentials(made: Runtime, crm: str) -> None:
    problem = made.settings.credentials_problem(crm)
    if problem:
        raise click.ClickException(problem)


class RateColumn(ProgressColumn):
    """Items per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "-/s", style="progress.data.speed")


@contextmanager
def progress(
    console: Console, what: str, total: int | None = None
) -> Iterator[Callable[[int], None]]:
    """A progress bar with count, rate and time left (elapsed when the total is unknown).

    Drawn on stderr, so ``--format json|csv`` output on stdout stays clean.
    """
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if total else TextColumn("{task.completed:,} done"),
        RateColumn(),
        TimeRemainingColumn() if total else TimeElapsedColumn(),
    ]
    err = Console(stderr=True, width=console.width)
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def confirm_unknown(made: Runtime, unknown: list[str]) -> list[str]:
    """Target ids (``crm:id``) the store does not know, checked with the CRM where it can say.

    The store knows the accounts of known opportunities only; a CRM connector that
    can look accounts up (``existing_accounts``) tells an account without deals
    from one that does not exist at all.
    """
    by_crm: dict[str, list[str]] = {}
    for item in unknown:
        crm, _, account = item.partition(":")
        by_crm.setdefault(crm, []).append(account)
    confirmed = []
    for crm, ids in by_crm.items():
        connector = made.connector(crm) if crm in made.settings.crms else None
        lookup = getattr(connector, "existing_accounts", None)
        existing = lookup(ids) if lookup else set()
        confirmed.extend(f"{crm}:{a}" for a in ids if a not in existing)
    return confirmed
