"""The build's protocol options: one frozen, checked object (:class:`BuildOptions`) and its presets.

Kept apart from :mod:`biosr.build.builder`, so that the options are created and
checked in one place and the command line reads the presets from here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from biosr import layout
from biosr._checks import check_positive_int
from biosr.errors import BiosrError, DataError
from biosr.normalize import check_normalization

#: Ratios of GT to WF sampling a build can write: 1 (GT binned onto the WF grid) or
#: a structure's native scale (:attr:`biosr.layout.Structure.gt_scale`: 2, or 3 for
#: nonlinear SIM); :class:`BuildOptions` checks the pair.
GT_SCALES: tuple[int, ...] = tuple(sorted({1} | {s.gt_scale for s in layout.STRUCTURES.values()}))

#: The options given per split (:attr:`BuildOptions.cells`, :attr:`BuildOptions.crops`).
_PER_SPLIT: tuple[str, ...] = ("cells", "crops")


def parse_cells(text: str) -> tuple[int, ...]:
    """Parse ``"6-35"``, ``"1,3,5"`` or ``"1-3,9"`` into a tuple of cell numbers.

    Raises
    ------
    DataError
        On text that is not a list of positive cells, or lists a cell twice.

    Examples
    --------
    >>> parse_cells("1-3,9")
    (1, 2, 3, 9)
    """
    out: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            lo, dash, hi = part.partition("-")
            a, b = int(lo), int(hi) if dash else int(lo)
            if a < 1 or b < a:
                raise ValueError
            out.extend(range(a, b + 1))
    except ValueError:
        raise DataError(
            f"{text}: not a cell list (use ranges or comma lists like 6-35 or 1,3,5)"
        ) from None
    if len(set(out)) != len(out):
        raise DataError(f"{text}: a cell is listed twice")
    return tuple(out)


@dataclass(frozen=True)
class BuildOptions:
    """Protocol options of a build, checked and normalised when created.

    Defaults are the authors' (DL-SR) protocol for the structure. The flat option names
    (:meth:`option_names`: ``training_cells`` ... ``mask_background_sigma``)
    are what :meth:`replace`, :func:`biosr.build.builder.build` and the dataset
    card use.

    Attributes
    ----------
    cells : mapping
        Cells of each split (:data:`biosr.layout.SPLITS`); a value may be
        given as text like ``"6-35"`` or ``"1,3,5"``.
    crops : mapping
        Training/validate: crops per (cell, level, flip); test: crops per cell.
        A split left out (or None) takes the structure's DL-SR count
        (:attr:`biosr.layout.Structure.crops`), and keeps following the
        structure when :meth:`replace` changes it.
    flips : int
        Flip variants per crop, 1..4 (none, up-down, left-right, both).
    rotate : bool
        Rotate training and validation crops by a random angle.
    patch_size : int
        Side of a WF patch in pixels (even, >= 2).
    gt_scale : int
        1: GT binned onto the WF grid (2x2; 3x3 for nonlinear SIM); or the
        structure's native scale (2; 3 for F-actin_Nonlinear): DL-SR's GT.
    normalize : str
        Per-patch normalisation, one of :data:`biosr.normalize.NORMALIZATIONS`
        (percentile-normalised patches are clipped to [0, 1]).
    percentiles : tuple of float
        Low and high percentile of ``normalize="percentile"``.
    mask_threshold, mask_min_pixels, mask_factor, mask_background_sigma
        The foreground mask's parameters
        (:func:`biosr.build.protocol.foreground_mask`).
    structure : str
        The BioSR structure (a name of :data:`biosr.layout.STRUCTURES`, any
        case): its levels, frames, GT scale and file names.

    Raises
    ------
    BiosrError
        On a bad value or a cell in two splits.
    """

    cells: Mapping[str, tuple[int, ...]] = field(
        default_factory=lambda: dict(layout.PUBLISHED_CELLS)
    )
    crops: Mapping[str, int | None] | None = None
    flips: int = layout.FLIPS
    rotate: bool = True
    patch_size: int = layout.PATCH_SIZE
    gt_scale: int = 1
    normalize: str = "minmax"
    percentiles: tuple[float, float] = (0.0, 99.9)
    mask_threshold: float = 1e-2
    mask_min_pixels: int = 1000
    mask_factor: float = 0.8
    mask_background_sigma: float = 50.0
    structure: str = layout.DEFAULT_STRUCTURE

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        chosen = layout.get_structure(self.structure, error=BiosrError)
        set_(self, "structure", chosen.name)
        given_crops = self.crops or {}
        cells, crops, defaulted = {}, {}, []
        for split in layout.SPLITS:
            given = self.cells[split]
            cells[split] = parse_cells(given) if isinstance(given, str) else tuple(given)
            count = given_crops.get(split)
            if count is None:
                count = chosen.crops[split]
                defaulted.append(split)
            # no split may be empty: verify (and training) reject a dataset without one
            crops[split] = check_positive_int(int(count), f"{split}_crops")
        set_(self, "cells", cells)
        set_(self, "crops", crops)
        # not a field: which crop counts are the structure's, so that replace() keeps them so
        set_(self, "_structure_crops", tuple(defaulted))
        seen: dict[int, str] = {}
        for split in layout.SPLITS:
            for cell in cells[split]:
                if cell in seen:
                    raise BiosrError(f"cell {cell} is in both the {seen[cell]} and {split} cells")
                seen[cell] = split
        for name in ("flips", "patch_size", "gt_scale"):
            set_(self, name, int(getattr(self, name)))
        if self.gt_scale not in (1, chosen.gt_scale):
            raise BiosrError(
                f"gt_scale must be 1 or {chosen.gt_scale} for {chosen.name}, got {self.gt_scale}"
            )
        check_normalization(self.normalize)
        if not 1 <= self.flips <= 4:
            raise BiosrError(f"flips must be 1..4, got {self.flips}")
        if self.patch_size < 2 or self.patch_size % 2:
            raise BiosrError(f"patch_size must be an even number >= 2, got {self.patch_size}")
        set_(self, "percentiles", tuple(float(p) for p in self.percentiles))

    @staticmethod
    def option_names() -> tuple[str, ...]:
        """The flat option names, in the dataset card's order."""
        per_split = tuple(f"{s}_{what}" for what in _PER_SPLIT for s in layout.SPLITS)
        rest = tuple(f.name for f in dataclasses.fields(BuildOptions) if f.name not in _PER_SPLIT)
        return per_split + rest

    def flat(self) -> dict[str, Any]:
        """The options as flat names (:meth:`option_names`) to values, as the card records them."""
        out: dict[str, Any] = {}
        for what in _PER_SPLIT:
            out.update({f"{s}_{what}": getattr(self, what)[s] for s in layout.SPLITS})
        rest = (f.name for f in dataclasses.fields(self) if f.name not in _PER_SPLIT)
        out.update({name: getattr(self, name) for name in rest})
        return out

    def replace(self, **overrides: Any) -> BuildOptions:
        """A copy with flat-named `overrides` applied (None values are ignored) and checked.

        Raises
        ------
        BiosrError
            On an unknown option name or a bad value.
        """
        unknown = set(overrides) - set(self.option_names())
        if unknown:
            raise BiosrError(
                f"unknown build option(s) {', '.join(sorted(unknown))}; "
                f"valid: {', '.join(self.option_names())}"
            )
        given = {k: v for k, v in overrides.items() if v is not None}
        cells, crops = dict(self.cells), dict(self.crops)
        follows = getattr(self, "_structure_crops", ())
        for split in layout.SPLITS:
            cells[split] = given.pop(f"{split}_cells", cells[split])
            # a count that was the structure's stays the (maybe new) structure's
            crops[split] = given.pop(f"{split}_crops", None if split in follows else crops[split])
        return dataclasses.replace(self, cells=cells, crops=crops, **given)

    def counts(self) -> dict[str, int]:
        """Pairs per split (test: per level) these options produce."""
        return {s: self.pairs_per_cell(s) * len(self.cells[s]) for s in layout.SPLITS}

    def pairs_per_cell(self, split: str) -> int:
        """Pairs one cell of `split` gives (test: per level)."""
        if split == "test":
            return self.crops[split]
        return len(self.levels) * self.flips * self.crops[split]

    @property
    def levels(self) -> tuple[int, ...]:
        """The structure's signal levels, all of which a build cuts."""
        return layout.get_structure(self.structure).levels

    def native_scale(self) -> int:
        """The structure's GT sampling over its raw frames' (2; 3 for nonlinear SIM)."""
        return layout.get_structure(self.structure).gt_scale

    def all_cells(self) -> tuple[int, ...]:
        """Every cell of every split, in :data:`biosr.layout.SPLITS` order."""
        return tuple(c for s in layout.SPLITS for c in self.cells[s])


#: The preset a build uses unless told otherwise.
DEFAULT_PRESET = "published"

#: Presets. ``published`` is the authors' protocol (for Microtubules 41,040 /
#: 2,160 / 150 x 9 pairs from 50 of 55 cells; another structure's crop counts
#: by the same DL-SR rule); ``small`` cuts a 6-cell release (e.g. a small
#: simulated one) into 216 / 72 / 6 x 9 pairs (levels: the structure's).
PRESETS: dict[str, BuildOptions] = {
    "published": BuildOptions(),
    "small": BuildOptions(
        cells={"training": (2, 3, 4), "validate": (1,), "test": (5, 6)},
        crops={"training": 2, "validate": 2, "test": 3},
    ),
}


def resolve_options(preset: str = DEFAULT_PRESET, **overrides: Any) -> BuildOptions:
    """The options of `preset` with flat-named `overrides` applied and checked.

    Raises
    ------
    BiosrError
        On an unknown preset or option, a bad value, or a cell in two splits.
    """
    if preset not in PRESETS:
        raise BiosrError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[preset].replace(**overrides)
