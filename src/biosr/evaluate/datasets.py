"""Which dataset an evaluation or a baseline reads: its folder under a root, and its structure.

One resolution for :mod:`biosr.evaluate.evaluation`, :mod:`biosr.evaluate.baselines`
and :mod:`biosr.evaluate.sim_baseline`, so that ``--structure`` means the
same everywhere: it selects among the structures under ``ROOT/BioSR/``, and
the dataset folder's own structure (:func:`biosr.layout.structure_of`) gives
the levels, their photon counts and the pixel sizes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from biosr import layout
from biosr.errors import DataError


def dataset_of(
    data: str | os.PathLike[str], structure: str | layout.Structure | None = None
) -> tuple[Path, layout.Structure]:
    """The dataset folder under `data` and its structure.

    Parameters
    ----------
    data : path-like
        A root holding ``BioSR/``, or a dataset folder.
    structure : str or Structure, optional
        Which structure under ``data/BioSR/``; None takes the default
        (Microtubules), or the only structure there.

    Returns
    -------
    folder : Path
        The dataset folder (``.../BioSR/<structure>``).
    structure : Structure
        `structure` when given, else the folder's own (its card's ``structure``,
        else its name, else Microtubules).

    Raises
    ------
    DataError
        An unknown structure name, or no dataset at `data`.
    """
    chosen = None if structure is None else layout.get_structure(structure, error=DataError)
    try:
        base = layout.dataset_dir(data, structure=chosen)
    except FileNotFoundError as exc:
        raise DataError(str(exc)) from None
    return base, chosen or layout.structure_of(base)


def check_levels(
    levels: Iterable[int] | None, base: Path, structure: layout.Structure
) -> list[int] | None:
    """`levels` as ints if each is one of `structure`'s levels (None stays None).

    Raises
    ------
    DataError
        ``BASE: unknown level 10 for ER; valid levels: 1..6``.
    """
    if levels is None:
        return None
    out = []
    for value in levels:
        try:
            out.append(layout.check_level(value, structure=structure))
        except ValueError as exc:
            reason = str(exc).replace("; valid", f" for {structure.name}; valid", 1)
            raise DataError(f"{base}: {reason}") from None
    return out
