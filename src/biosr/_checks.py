"""Checks of the numeric arguments every library function shares (counts, seeds, rates).

One function per kind of number, so that a count, a seed or a learning rate is
refused with the same words by every function and by the command line (whose
argparse types in :mod:`biosr._args` are these same checks). Written by hand:
argparse and numpy check types, not ranges, and a NaN passes both.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from biosr.errors import BiosrError

#: The largest seed: what ``lightning.seed_everything`` and a 32-bit
#: ``numpy.random.SeedSequence`` entropy word accept (``SeedSequence`` refuses
#: negative seeds).
SEED_MAX = 2**32 - 1


def check_int(
    value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` as an ``int`` if it is an integer in ``[minimum, maximum]``.

    Parameters
    ----------
    value : int
        The value to check; a bool, a float or a string is refused.
    name : str
        The argument's name, for the message.
    minimum, maximum : int, optional
        Inclusive bounds; None (default) leaves that side open.

    Returns
    -------
    int

    Raises
    ------
    BiosrError
        If ``value`` is not an integer or lies outside the bounds.

    Examples
    --------
    >>> check_int(3, "steps", minimum=1)
    3
    """
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise BiosrError(f"{name} must be an integer; got {value!r}") from None
    low = minimum is not None and number < minimum
    high = maximum is not None and number > maximum
    if low or high:
        raise BiosrError(f"{name} must be {_range(minimum, maximum)}; got {number}")
    return number


def check_float(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_minimum: bool = False,
    open_maximum: bool = False,
) -> float:
    """Return ``value`` as a ``float`` if it is a finite number within the bounds.

    Parameters
    ----------
    value : float
        The value to check; a bool or a string is refused, and so are NaN and infinities.
    name : str
        The argument's name, for the message.
    minimum, maximum : float, optional
        Bounds; None (default) leaves that side open.
    open_minimum, open_maximum : bool
        Whether the bound itself is refused (default False: bounds are inclusive).

    Returns
    -------
    float

    Raises
    ------
    BiosrError
        If ``value`` is not a finite number or lies outside the bounds.

    Examples
    --------
    >>> check_float(1e-4, "lr", minimum=0, open_minimum=True)
    0.0001
    """
    try:
        if isinstance(value, (bool, str, bytes)):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise BiosrError(f"{name} must be a number; got {value!r}") from None
    if not math.isfinite(number):
        raise BiosrError(f"{name} must be a finite number; got {number}")
    bad = (minimum is not None and (number < minimum or (open_minimum and number == minimum))) or (
        maximum is not None and (number > maximum or (open_maximum and number == maximum))
    )
    if bad:
        bounds = _range(minimum, maximum, open_minimum=open_minimum, open_maximum=open_maximum)
        raise BiosrError(f"{name} must be {bounds}; got {number:g}")
    return number


def check_positive_int(value: Any, name: str) -> int:
    """An integer >= 1: a count of steps, cells, crops, files, processes."""
    return check_int(value, name, minimum=1)


def check_non_negative_int(value: Any, name: str) -> int:
    """An integer >= 0: retries, a margin, a patience, loader workers."""
    return check_int(value, name, minimum=0)


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed: an integer in ``0 .. SEED_MAX``."""
    return check_int(value, name, minimum=0, maximum=SEED_MAX)


def check_workers(value: Any, name: str = "workers") -> int | None:
    """Processes: None (all CPUs, where a function allows it) or an integer >= 1."""
    return None if value is None else check_positive_int(value, name)


def check_positive_float(value: Any, name: str) -> float:
    """A finite number > 0: a learning rate, a size in nanometres."""
    return check_float(value, name, minimum=0.0, open_minimum=True)


def check_non_negative_float(value: Any, name: str) -> float:
    """A finite number >= 0: a loss weight, a learning-rate floor."""
    return check_float(value, name, minimum=0.0)


def check_fraction(value: Any, name: str) -> float:
    """A number strictly between 0 and 1: a decay factor."""
    return check_float(value, name, minimum=0.0, maximum=1.0, open_minimum=True, open_maximum=True)


def check_probability(value: Any, name: str) -> float:
    """A number in ``[0, 1]``: a probability, a share."""
    return check_float(value, name, minimum=0.0, maximum=1.0)


def _range(
    minimum: float | None,
    maximum: float | None,
    *,
    open_minimum: bool = False,
    open_maximum: bool = False,
) -> str:
    """``"at least 1"``, ``"strictly between 0 and 1"``, ... for a message."""
    if minimum is not None and maximum is not None:
        if open_minimum and open_maximum:
            return f"strictly between {_num(minimum)} and {_num(maximum)}"
        if not open_minimum and not open_maximum:
            return f"in {_num(minimum)} .. {_num(maximum)}"
        left, right = "(" if open_minimum else "[", ")" if open_maximum else "]"
        return f"in {left}{_num(minimum)}, {_num(maximum)}{right}"
    if minimum is not None:
        return f"greater than {_num(minimum)}" if open_minimum else f"at least {_num(minimum)}"
    if maximum is not None:
        return f"less than {_num(maximum)}" if open_maximum else f"at most {_num(maximum)}"
    return "a number"  # pragma: no cover - every caller gives a bound


def _num(number: float) -> str:
    """An integer bound as written (``4294967295``), a float in ``%g`` form."""
    return str(number) if isinstance(number, int) else f"{number:g}"
