"""A progress bar that library functions show only when asked (``progress=True``)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def bar(
    iterable: Iterable[T],
    *,
    enabled: bool,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
) -> Iterator[T]:
    """Wrap `iterable` in a tqdm bar on stderr when `enabled`, else return it unchanged."""
    if not enabled:
        return iter(iterable)
    from tqdm.auto import tqdm  # only when drawn: importing it costs every command ~35 ms

    return iter(tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False))


def close_bars() -> None:
    """Erase every bar still drawn (a loop that an error left), so that the one-line error
    printed next starts on a line of its own instead of after a half-drawn bar."""
    if "tqdm" not in sys.modules:  # no bar was ever drawn
        return
    from tqdm import tqdm

    for drawn in list(getattr(tqdm, "_instances", ())):
        drawn.close()
