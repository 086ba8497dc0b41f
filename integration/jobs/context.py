"""The runtime a job runs with, bound by whoever runs the job.

Job functions are plain module-level functions (RQ stores them by dotted name),
so they cannot be handed a runtime as an argument. Instead the worker binds its
runtime when it starts a job (:class:`integration.jobs.worker.Worker`), and the
in-process intake binds the app's runtime around the work it does. Nothing is a
module global: the binding is a context variable, reset when the job ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from integration.runtime import Runtime

_bound: ContextVar[Runtime] = ContextVar("onstrategy_runtime")


class NoRuntimeBound(RuntimeError):
    """A job function was called outside a worker or an intake."""


@contextmanager
def bound(runtime: Runtime) -> Iterator[Runtime]:
    """Run the enclosed jobs with ``runtime``."""
    token = _bound.set(runtime)
    try:
        yield runtime
    finally:
        _bound.reset(token)


def current() -> Runtime:
    try:
        return _bound.get()
    except LookupError:
        raise NoRuntimeBound(
            "no runtime is bound: jobs run in `onstrategy worker` or through an intake"
        ) from None
