"""One simulated cell, reproducibly: the seeds of its parts, its noise-free images and structure.

Every cell draws from its own :class:`numpy.random.SeedSequence`, keyed by the
run's seed and the cell's place (a split number and the cell number), so a
cell's images never depend on which worker simulates it or in what order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from biosr import layout
from biosr.build import produce
from biosr.simulate import camera, imaging, specimen, structures
from biosr.simulate.microscope import DEFAULT, Microscope

#: Children of a cell's SeedSequence, by purpose (TRUTH: the ground truth's raw sets).
SPECIMEN, PATTERN, NOISE, CROPS, TRUTH = range(5)


class Field(NamedTuple):
    """A simulated cell: noise-free images and where the structure is.

    Attributes
    ----------
    clean : imaging.CleanImages
        Noise-free WF (62.6 nm), GT (31.3 nm; the structure's grid) and raw frames if asked.
    structure : ndarray
        Boolean mask on the WF grid (:func:`biosr.simulate.camera.structure_mask`).
    specimen : specimen.Specimen
        The drawn specimen (label positions, cell shape, background).
    """

    clean: imaging.CleanImages
    structure: np.ndarray
    specimen: specimen.Specimen


def cell_seeds(seed: int, *key: int) -> list[np.random.SeedSequence]:
    """The five SeedSequences (specimen, pattern, noise, crops, truth) of the cell at `key`.

    Children are numbered, so the first four are those of a four-way spawn.
    """
    return produce.cell_seed(seed, *key).spawn(5)


def simulate_field(
    size: int,
    seeds: list[np.random.SeedSequence],
    *,
    frames: bool = False,
    density_per_nm: float | None = None,
    microscope: Microscope = DEFAULT,
    cell_radius: tuple[float, float] = specimen.CELL_RADIUS,
    structure: str | layout.Structure | None = None,
) -> Field:
    """Draw a cell and image it without noise.

    Parameters
    ----------
    size : int
        Side of the WF field in pixels (GT: ``gt_scale * size``).
    seeds : list of SeedSequence
        From :func:`cell_seeds`.
    frames : bool, optional
        Also compute the raw SIM frames (the structure's orientations x phases).
    density_per_nm : float, optional
        Density of the specimen in the structure's unit
        (:data:`biosr.simulate.structures.DENSITY_UNITS`; filament length per
        area for Microtubules); default drawn per cell.
    microscope : Microscope, optional
        Optics, illumination and haze (default
        :data:`~biosr.simulate.microscope.DEFAULT`; a structure's own from
        :func:`biosr.simulate.microscope.for_structure`).
    cell_radius : tuple of float, optional
        Range of the cell's radius as a fraction of the field
        (:func:`biosr.simulate.specimen.random_cell`).
    structure : str or Structure, optional
        What is imaged and on which grid (default Microtubules): its specimen
        (:func:`biosr.simulate.structures.draw_specimen`), orientations,
        phases, pixel and GT scale.

    Returns
    -------
    Field
    """
    s = layout.get_structure(structure)
    rng = np.random.default_rng(seeds[SPECIMEN])
    spec = structures.draw_specimen(
        s, imaging.field_nm(size, s), rng, density=density_per_nm, cell_radius=cell_radius
    )
    haze = float(rng.uniform(*microscope.haze_ratio))
    pattern = None
    if frames:
        pattern = imaging.random_pattern(
            np.random.default_rng(seeds[PATTERN]),
            period_nm=microscope.pattern_period_nm,
            angle_start_rad=microscope.angle_start_rad,
            modulation=microscope.modulation,
            orientations=s.orientations,
            phases=s.phases,
            saturation=microscope.saturation,
        )
    clean = imaging.image_specimen(
        spec,
        size,
        frames=frames,
        pattern=pattern,
        otf_kind=microscope.otf_kind,
        haze=haze,
        structure=s,
        period_nm=microscope.pattern_period_nm,
    )
    return Field(clean, camera.structure_mask(clean.wf), spec)
