"""A synthetic *original release*: ``Microtubules/Cell_XXX/*.mrc`` in BioSR's MRC dialect.

Each cell gets 9 raw SIM stacks (one per signal level, uint16, 9 frames of
``size x size`` at 62.6 nm, orientation-major), a high-SNR raw stack
(``RawSIMData_gt.mrc``, :data:`RAW_GT_PHOTONS` photons) and a float32 SIM
reconstruction at 31.3 nm (``SIM_gt.mrc``, ``2 size``), in photons per GT
pixel at the high-SNR level (flux-conserving: it sums to the WF's sum). The
noise-free frames are computed once per cell; each stack draws its own noise.
This is the input the builder (:func:`biosr.build.builder.build`) consumes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from biosr import layout
from biosr._progress import bar
from biosr.build import produce
from biosr.dataset.manifest import card_base, write_card
from biosr.errors import BiosrError
from biosr.io.mrc import write_mrc
from biosr.simulate import camera, output
from biosr.simulate.field import NOISE, cell_seeds, simulate_field

#: Photons per frame on the structure of the high-SNR raw stack (``RawSIMData_gt.mrc``).
RAW_GT_PHOTONS = 2000.0
#: Key of the release in the cells' seed tree (patches use their split numbers).
RELEASE_KEY = 9


def simulate_cell(folder: str | os.PathLike[str], cell: int, *, size: int, seed: int) -> Path:
    """Simulate and write one cell's 11 MRC files into ``folder/Cell_XXX``; return that folder."""
    seeds = cell_seeds(seed, RELEASE_KEY, cell)
    field = simulate_field(size, seeds, frames=True)
    frames = field.clean.frames
    noise = [np.random.default_rng(s) for s in seeds[NOISE].spawn(len(layout.LEVELS) + 1)]
    files = layout.release_files(folder, cell)
    files["raw_gt"].parent.mkdir(parents=True, exist_ok=True)
    stacks = [(f"level_{lv:02d}", layout.PHOTONS[lv]) for lv in layout.LEVELS]
    stacks.append(("raw_gt", RAW_GT_PHOTONS))
    for (key, photons), rng in zip(stacks, noise, strict=True):
        scale = camera.photon_scale(field.clean.wf, photons, field.structure)
        counts = camera.expose(frames * scale, rng)
        label = f"biosr simulate: cell {cell} {key} {photons:.1f} photons seed {seed}"
        write_mrc(files[key], counts, voxel_size_nm=layout.PIXEL_SIZE_WF_NM, label=label)
    scale = camera.photon_scale(field.clean.wf, RAW_GT_PHOTONS, field.structure)
    write_mrc(
        files["sim_gt"],
        (field.clean.gt * scale).astype(np.float32),
        voxel_size_nm=layout.PIXEL_SIZE_GT_NM,
        label=f"biosr simulate: cell {cell} SIM ground truth seed {seed}",
    )
    return files["raw_gt"].parent


def _job(args: tuple[str, int, int, int]) -> None:
    folder, cell, size, seed = args
    simulate_cell(folder, cell, size=size, seed=seed)


def simulate_release(
    out: str | os.PathLike[str],
    *,
    cells: int = layout.RELEASE_CELLS,
    size: int = layout.RELEASE_RAW_SIZE,
    seed: int = 0,
    overwrite: bool = False,
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
    overwrite : bool, optional
        Replace the ``Cell_XXX`` folders and card of an existing release.
        Without it a non-empty ``out/Microtubules`` is refused.
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
        On `cells` outside 1..999, a `size` odd or below 16, or if the output
        folder is not empty and `overwrite` is False.
    """
    folder = Path(out) / layout.STRUCTURE
    if cells < 1 or cells > 999:
        raise BiosrError(f"{folder}: cells must be 1..999, got {cells}")
    if size < 16 or size % 2:
        raise BiosrError(f"{folder}: size must be an even number of pixels >= 16, got {size}")
    owned = [p.name for p in folder.glob("Cell_*") if layout.parse_cell_dir(p.name) is not None]
    owned.append(layout.CARD_FILE)
    produce.prepare_folder(folder, owned, overwrite=overwrite)
    jobs = [(str(folder), cell, size, seed) for cell in range(1, cells + 1)]
    for _ in bar(
        produce.run_jobs(_job, jobs, workers=workers),
        enabled=progress,
        total=len(jobs),
        desc="simulate cells",
        unit="cell",
    ):
        pass
    write_card(folder, release_card(cells=cells, size=size, seed=seed))
    return folder


def release_card(*, cells: int, size: int, seed: int) -> dict[str, Any]:
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
        raw_gt_photons=RAW_GT_PHOTONS,
        physics=output.physics(),
    )
