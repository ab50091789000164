"""Exceptions biosr raises for problems with a user's data or arguments.

The command line turns a :class:`BiosrError` into one line on standard error and
a non-zero exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class BiosrError(Exception):
    """A problem with the user's input that biosr can describe in one line."""


class DataError(BiosrError, ValueError):
    """A file or folder does not hold what it should (missing, truncated, wrong shape...)."""


class UnreachableError(BiosrError):
    """The server could not be reached at all (offline, blocked, unknown host)."""
