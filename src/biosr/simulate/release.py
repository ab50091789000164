"""A synthetic *original release*: ``Microtubules/Cell_XXX/*.mrc`` in BioSR's MRC dialect.

Each cell gets 9 raw SIM stacks (one per signal level, uint16, 9 frames of
``size x size`` at 62.6 nm, orientation-major), a high-SNR raw stack
(``RawSIMData_gt.mrc``) and a float32 SIM image at 31.3 nm (``SIM_gt.mrc``,
``2 size``). With the default ground truth (``gt='sim'``,
:mod:`biosr.simulate.truth`) these are as BioSR's: the mean of 3 raw sets at
:data:`~biosr.simulate.truth.RAW_GT_PHOTONS` photons (rounded to uint16) and
the mean of their 3 SIM reconstructions; with ``gt='ideal'``, one raw set and
the ideal image in photons per GT pixel (flux-conserving). The noise-free
frames are computed once per cell; each stack draws its own noise.
This is the input the builder (:func:`biosr.build.builder.build`) consumes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from biosr import _parallel, layout
from biosr._checks import check_seed, check_workers
from biosr.build import produce
from biosr.dataset.manifest import card_base, write_card
from biosr.errors import BiosrError
from biosr.io.mrc import write_mrc
from biosr.simulate import camera, output, truth
from biosr.simulate.field import NOISE, TRUTH, cell_seeds, simulate_field
from biosr.simulate.microscope import DEFAULT, Microscope, load

#: Key of the release in the cells' seed tree (patches use their split numbers).
RELEASE_KEY = 9


def simulate_cell(
    folder: str | os.PathLike[str],
    cell: int,
    *,
    size: int,
    seed: int,
    gt: str = truth.GT_KIND,
    microscope: Microscope = DEFAULT,
) -> Path:
    """Simulate and write one cell's 11 MRC files into ``folder/Cell_XXX``; return that folder."""
    seeds = cell_seeds(seed, RELEASE_KEY, cell)
    field = simulate_field(size, seeds, frames=True, microscope=microscope)
    frames = field.clean.frames
    noise = [np.random.default_rng(s) for s in seeds[NOISE].spawn(len(layout.LEVELS) + 1)]
    files = layout.release_files(folder, cell)
    files["raw_gt"].parent.mkdir(parents=True, exist_ok=True)
    target = truth.cell_truth(field.clean, seeds[TRUTH], kind=gt, microscope=microscope)
    stacks = [(f"level_{lv:02d}", layout.PHOTONS[lv]) for lv in layout.LEVELS]
    stacks.append(("raw_gt", truth.RAW_GT_PHOTONS))
    for (key, photons), rng in zip(stacks, noise, strict=True):
        if key == "raw_gt" and target.raw_gt is not None:
            counts = np.clip(np.rint(target.raw_gt), 0, camera.MAX_COUNT).astype(np.uint16)
        else:
            scale = camera.photon_scale(field.clean.wf, microscope.true_photons(photons))
            counts = camera.expose(frames * scale, rng, **microscope.camera())
        label = f"biosr simulate: cell {cell} {key} {photons:.1f} photons seed {seed}"
        write_mrc(files[key], counts, voxel_size_nm=layout.PIXEL_SIZE_WF_NM, label=label)
    write_mrc(
        files["sim_gt"],
        target.gt.astype(np.float32),
        voxel_size_nm=layout.PIXEL_SIZE_GT_NM,
        label=f"biosr simulate: cell {cell} SIM ground truth ({gt}) seed {seed}",
    )
    return files["raw_gt"].parent


def _job(args: tuple[str, int, int, int, str, Microscope]) -> None:
    folder, cell, size, seed, gt, microscope = args
    simulate_cell(folder, cell, size=size, seed=seed, gt=gt, microscope=microscope)


def simulate_release(
    out: str | os.PathLike[str],
    *,
    cells: int = layout.RELEASE_CELLS,
    size: int = layout.RELEASE_RAW_SIZE,
    seed: int = 0,
    gt: str = truth.GT_KIND,
    calibration: Any = None,
    overwrite: bool = False,
    force: bool = False,
    progress: bool = False,
    workers: int | None = None,
) -> Path:
    """Write a synthetic original release under ``out/Microtubules``.

    Parameters
    ----------
    out : path-like
        Output folder; the release goes to ``out/Microtubules``.
    cells : int, optional
        Number of cells (default 55, as the real release).
    size : int, optional
        Raw frame side in pixels (default 502; the GT is ``2 * size``).
    seed : int, optional
        Seed; the same seed gives bit-identical files for any `workers`.
    gt : {'sim', 'ideal'}, optional
        Ground truth (:data:`biosr.simulate.truth.GT_KINDS`): ``sim``
        (default) reconstructs 3 high-SNR raw sets and averages them, as
        BioSR did; ``ideal`` is the noise-free SIM-resolution image.
    calibration : path-like or Calibration, optional
        A real stack's calibration (``biosr calibrate``'s JSON): simulate that
        microscope's camera, haze and illumination
        (:func:`biosr.simulate.microscope.load`). Default: BioSR's.
    overwrite : bool, optional
        Replace the ``Cell_XXX`` folders and card of a release ``biosr
        simulate`` made. Without it a non-empty ``out/Microtubules`` is refused.
    force : bool, optional
        Also replace a release biosr did not make (the real one): its
        ``Cell_XXX`` stacks and card; other files are kept.
    progress : bool, optional
        Show a progress bar (one step per cell).
    workers : int, optional
        Processes (default: all CPUs).

    Returns
    -------
    Path
        The ``Microtubules`` folder.

    Raises
    ------
    BiosrError
        On `cells` outside 1..999, a `size` odd or below 16, a bad `seed` or
        `workers`, an unknown `gt`, an unreadable `calibration` (all before
        anything is written), or if the output folder is not empty and
        `overwrite` is False.
    """
    folder = Path(out) / layout.STRUCTURE
    if gt not in truth.GT_KINDS:
        raise BiosrError(f"{folder}: unknown gt {gt!r}; choose one of {', '.join(truth.GT_KINDS)}")
    microscope = load(calibration)
    if cells < 1 or cells > 999:
        raise BiosrError(f"{folder}: cells must be 1..999, got {cells}")
    if size < 16 or size % 2:
        raise BiosrError(f"{folder}: size must be an even number of pixels >= 16, got {size}")
    seed, workers = check_seed(seed), check_workers(workers)
    owned = [p.name for p in folder.glob("Cell_*") if layout.parse_cell_dir(p.name) is not None]
    owned.append(layout.CARD_FILE)
    produce.prepare_folder(
        folder, owned, overwrite=overwrite, producer=output.PRODUCER, force=force
    )
    jobs = [(str(folder), cell, size, seed, gt, microscope) for cell in range(1, cells + 1)]
    _parallel.run(
        _job,
        jobs,
        workers=workers,
        chunksize=1,
        progress=progress,
        desc="simulate cells",
        unit="cell",
    )
    write_card(
        folder, release_card(cells=cells, size=size, seed=seed, gt=gt, microscope=microscope)
    )
    return folder


def release_card(
    *, cells: int, size: int, seed: int, gt: str = truth.GT_KIND, microscope: Microscope = DEFAULT
) -> dict[str, Any]:
    """The card of a simulated release: its geometry, the seed and every physical parameter."""
    return card_base(
        format="biosr-simulated-release/1",
        layout="Microtubules/Cell_XXX/{RawSIMData_level_01..09,RawSIMData_gt,SIM_gt}.mrc",
        patch_size=None,
        dtype="uint16 raw stacks (MRC mode 6), float32 SIM_gt (MRC mode 2)",
        source="biosr simulate (physics-based simulator, no real data)",
        seed=seed,
        cells=cells,
        raw_size=size,
        gt_size=2 * size,
        raw_frames=layout.RAW_FRAMES,
        raw_gt_photons=truth.RAW_GT_PHOTONS,
        **output.truth_card(gt),
        physics=output.physics(microscope),
    )
