"""Sizes of a simulated dataset (the ``--preset`` of ``biosr simulate``) and its ``--gt`` kinds.

Kept apart from :mod:`biosr.simulate.patches` and importing only
:mod:`biosr.layout`, so that the command line can list the presets and kinds
without loading the simulator (scipy, mrcfile).
"""

from __future__ import annotations

from typing import NamedTuple

from biosr import layout


class Preset(NamedTuple):
    """Size of a simulated dataset.

    Attributes
    ----------
    field : int
        Side in WF pixels of each simulated cell's field.
    cells : dict
        Cells per split.
    crops : dict
        Training/validate: crops per (cell, level, flip); test: crops per cell.
    """

    field: int
    cells: dict[str, int]
    crops: dict[str, int]

    def counts(self, structure: str | layout.Structure | None = None) -> dict[str, int]:
        """Pairs per split (test: per level) for a structure's levels (default Microtubules)."""
        n = len(layout.get_structure(structure).levels) * layout.FLIPS
        return {
            "training": self.cells["training"] * n * self.crops["training"],
            "validate": self.cells["validate"] * n * self.crops["validate"],
            "test": self.cells["test"] * self.crops["test"],
        }


#: Presets: ``tiny`` (seconds, tests), ``small`` (under a minute), ``published`` (exact counts).
PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        160, {"training": 1, "validate": 1, "test": 1}, {"training": 1, "validate": 1, "test": 2}
    ),
    "small": Preset(
        256, {"training": 4, "validate": 1, "test": 3}, {"training": 8, "validate": 4, "test": 10}
    ),
    "published": Preset(
        layout.RELEASE_RAW_SIZE,
        {s: len(c) for s, c in layout.PUBLISHED_CELLS.items()},
        dict(layout.PUBLISHED_CROPS),
    ),
}


def preset_for(name: str, structure: str | layout.Structure | None = None) -> Preset:
    """The preset `name` for a structure: ``published`` takes the structure's crops.

    ``published`` gives a structure the DL-SR counts its
    :attr:`~biosr.layout.Structure.crops` make (Microtubules: exactly the
    published 41,040 / 2,160 / 150 x 9); the others are the same for every
    structure (a structure's levels multiply their pairs).

    Raises
    ------
    KeyError
        On an unknown `name`.
    """
    s = layout.get_structure(structure)
    chosen = PRESETS[name]
    if name == "published":
        return chosen._replace(field=s.raw_size, crops=dict(s.crops))
    return chosen


#: Kinds of ground truth (:mod:`biosr.simulate.truth`): a SIM reconstruction of simulated
#: high-SNR raw sets, as BioSR's, or the noise-free ideal image.
GT_KINDS: tuple[str, ...] = ("sim", "ideal")
#: The default kind.
GT_KIND = "sim"
