"""The ``onstrategy`` command line."""

from integration.cli.commands import main

__all__ = ["main"]
