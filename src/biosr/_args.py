"""The command line's argparse types: one per kind of number, shared by every command.

Each type parses the text and hands the number to the library's own check in
:mod:`biosr._checks`, so ``--seed -1`` is refused by argparse (exit 2, one line)
with the same words the library would use. Written by hand: argparse's ``type=int``
accepts any integer and ``type=float`` accepts ``nan``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from biosr import _checks
from biosr.errors import BiosrError


def _argtype(parse: Callable[[str], Any], check: Callable[[Any, str], Any], kind: str):
    """An argparse type: ``parse`` the text, then ``check`` the number (named ``kind``)."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}; got {text!r}") from None
        try:
            return check(value, "")
        except BiosrError as exc:
            raise argparse.ArgumentTypeError(str(exc).strip()) from None

    convert.__name__ = kind.replace(" ", "_")
    convert.__doc__ = f"argparse type: {kind}."
    return convert


#: An integer >= 1 (steps, cells, crops, files read, processes).
positive_int = _argtype(int, _checks.check_positive_int, "a positive integer")
#: An integer >= 0 (retries, margins, patience, data-loading workers).
non_negative_int = _argtype(int, _checks.check_non_negative_int, "a non-negative integer")
#: A seed, 0 .. ``biosr._checks.SEED_MAX``.
seed = _argtype(int, _checks.check_seed, f"a seed (0 .. {_checks.SEED_MAX})")
#: Processes: an integer >= 1 (a command's default may be None = all CPUs).
workers = _argtype(int, _checks.check_workers, "a positive number of processes")
#: A finite number > 0 (learning rates).
positive_float = _argtype(float, _checks.check_positive_float, "a positive number")
#: A finite number >= 0 (loss weights, learning-rate floors).
non_negative_float = _argtype(float, _checks.check_non_negative_float, "a non-negative number")
#: A number strictly between 0 and 1 (decay factors).
fraction = _argtype(float, _checks.check_fraction, "a number strictly between 0 and 1")
#: A number in [0, 1] (probabilities, shares).
probability = _argtype(float, _checks.check_probability, "a probability in [0, 1]")


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr, then exit status 2.

    argparse prints the whole usage block before the error; a user (and a script
    reading stderr) needs the error and where to look, in one line.
    """

    def error(self, message: str) -> None:
        """Print ``PROG: error: MESSAGE (see PROG --help)`` and exit with status 2."""
        message = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
