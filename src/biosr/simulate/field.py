"""One simulated cell, reproducibly: the seeds of its parts, its noise-free images and structure.

Every cell draws from its own :class:`numpy.random.SeedSequence`, keyed by the
run's seed and the cell's place (a split number and the cell number), so a
cell's images never depend on which worker simulates it or in what order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from biosr.build import produce
from biosr.simulate import camera, imaging, specimen

#: Children of a cell's SeedSequence, by purpose.
SPECIMEN, PATTERN, NOISE, CROPS = range(4)


class Field(NamedTuple):
    """A simulated cell: noise-free images and where the structure is.

    Attributes
    ----------
    clean : imaging.CleanImages
        Noise-free WF (62.6 nm), GT (31.3 nm) and raw frames if asked.
    structure : ndarray
        Boolean mask on the WF grid (:func:`biosr.simulate.camera.structure_mask`).
    specimen : specimen.Specimen
        The drawn specimen (label positions, cell shape, background).
    """

    clean: imaging.CleanImages
    structure: np.ndarray
    specimen: specimen.Specimen


def cell_seeds(seed: int, *key: int) -> list[np.random.SeedSequence]:
    """The four SeedSequences (specimen, pattern, noise, crops) of the cell at `key`."""
    return produce.cell_seed(seed, *key).spawn(4)


def simulate_field(
    size: int,
    seeds: list[np.random.SeedSequence],
    *,
    frames: bool = False,
    density_per_nm: float | None = None,
) -> Field:
    """Draw a cell and image it without noise.

    Parameters
    ----------
    size : int
        Side of the WF field in pixels (GT: ``2 * size``).
    seeds : list of SeedSequence
        From :func:`cell_seeds`.
    frames : bool, optional
        Also compute the 9 raw SIM frames.
    density_per_nm : float, optional
        Filament length per area; default drawn per cell.

    Returns
    -------
    Field
    """
    spec = specimen.random_specimen(
        imaging.field_nm(size),
        np.random.default_rng(seeds[SPECIMEN]),
        density_per_nm=density_per_nm,
    )
    pattern = imaging.random_pattern(np.random.default_rng(seeds[PATTERN])) if frames else None
    clean = imaging.image_specimen(spec, size, frames=frames, pattern=pattern)
    return Field(clean, camera.structure_mask(clean.wf), spec)
