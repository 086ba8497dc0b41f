"""Publishing a rulebook: store it as the live version, then re-evaluate what it changes.

The version is stored first (every process switches to it within seconds), then
exactly the opportunities the preview found are queued for re-evaluation in
batches, like any other work: on RQ when Redis is configured (each job names
the publication, so no worker runs it under older rules), else in this process
before the command returns. A coaching refresh per CRM follows, so slots freed
by closed tasks or a raised cap go to the next queued tasks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from integration.engine.rulebook import Files, rulebook_from_files
from integration.jobs.context import bound
from integration.jobs.handlers import reevaluate_published, refresh_coaching_job
from integration.jobs.queues import make_queue
from integration.pipeline.preview import Change
from integration.store.versions import Publication

if TYPE_CHECKING:
    from integration.runtime import Runtime

#: Opportunities per re-evaluation job: one CRM read and one write batch each.
BATCH = 100


class PublishError(ValueError):
    """The files cannot be published (they do not load); nothing was stored."""


def publish_files(runtime: Runtime, files: Files, *, who: str, note: str = "") -> Publication:
    """Store ``files`` as the live version and switch this process to it at once."""
    rulebook, problems = rulebook_from_files(files)
    if rulebook is None:
        raise PublishError("; ".join(map(str, problems[:3])))
    publication = runtime.store.versions.publish(
        files, who=who, note=note, target_list_version=rulebook.targets.version
    )
    runtime.rules.refresh()
    return publication


def queue_reevaluation(
    runtime: Runtime, changes: Iterable[Change], publication: Publication, crms: Iterable[str]
) -> dict[str, int]:
    """Queue (or run) the re-evaluation of ``changes``, batched; jobs per CRM."""
    jobs: dict[str, int] = {}
    batch: dict[str, list[str]] = {}
    for change in changes:
        ids = batch.setdefault(change.crm, [])
        ids.append(change.opportunity_id)
        if len(ids) >= BATCH:
            _submit(runtime, reevaluate_published, (change.crm, ids, publication.id), jobs)
            batch[change.crm] = []
    for crm, ids in batch.items():
        if ids:
            _submit(runtime, reevaluate_published, (crm, ids, publication.id), jobs)
    for crm in sorted(set(crms) | set(batch)):
        _submit(runtime, refresh_coaching_job, (crm,), {})
    return jobs


def _submit(runtime: Runtime, job: Any, args: tuple, jobs: dict[str, int]) -> None:
    crm = args[0]
    jobs[crm] = jobs.get(crm, 0) + 1
    if runtime.redis is not None:
        make_queue(runtime.redis).enqueue(job, *args)
        return
    with bound(runtime):
        job(*args)
