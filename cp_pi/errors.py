"""One vocabulary for what goes wrong: every failure cp-pi reports to a person is a `CpPiError`.

The command line catches it in one place (:func:`report`) and prints it as ``cp-pi: <message>``,
a line per problem, then ends with the error's ``exit_status``: 2 for a mistake the user can put
right (a configuration key, a port in use, a second instance on one data directory), 1 for a
failure at run time (GPIO access that cannot work on this machine). A traceback is for bugs.
"""

from __future__ import annotations

import sys
from typing import TextIO


class CpPiError(Exception):
    """A failure to tell a person in a sentence; the process ends with ``exit_status``."""

    #: 1: something failed while running; subclasses for user mistakes say 2.
    exit_status = 1
    #: What to do about it, added after the message by whoever knows (the command line names
    #: the flag that changes a port, say).
    hint: str | None = None

    def report_lines(self) -> list[str]:
        """What the command line prints, each line after ``cp-pi: ``."""
        return [str(self) if self.hint is None else f"{self}; {self.hint}"]


class UserError(CpPiError):
    """A mistake in what the user asked for (a setting, an option, an address): exit status 2."""

    exit_status = 2


def report(error: CpPiError, file: TextIO | None = None) -> int:
    """Print ``error`` as the command line does and return the exit status it ends with."""
    for line in error.report_lines():
        print(f"cp-pi: {line}", file=file or sys.stderr)
    return error.exit_status
