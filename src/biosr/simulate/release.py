"""A synthetic *original release*: ``<Structure>/Cell_XXX/*.mrc`` in BioSR's MRC dialect.

Each Microtubules cell gets 9 raw SIM stacks (one per signal level, uint16, 9
frames of ``size x size`` at 62.6 nm, orientation-major), a high-SNR raw stack
(``RawSIMData_gt.mrc``) and a float32 SIM image at 31.3 nm (``SIM_gt.mrc``,
``2 size``). With the default ground truth (``gt='sim'``,
:mod:`biosr.simulate.truth`) these are as BioSR's: the mean of 3 raw sets at
:data:`~biosr.simulate.truth.RAW_GT_PHOTONS` photons (rounded to uint16) and
the mean of their 3 SIM reconstructions; with ``gt='ideal'``, one raw set and
the ideal image in photons per GT pixel (flux-conserving). The noise-free
frames are computed once per cell; each stack draws its own noise.
This is the input the builder (:func:`biosr.build.builder.build`) consumes.

Every structure of :data:`biosr.layout.STRUCTURES` is written with its own
file names (:func:`biosr.layout.release_files`), levels (6 for ER, 12 for
F-actin), frames (25 for F-actin_Nonlinear) and pixel sizes (MRC voxel sizes
from the table: 60.4 nm raw and 60.4 / 3 nm GT for nonlinear SIM):

- **ER** has a GT per level (``GTSIM/GTSIM_level_XX.mrc`` and
  ``RawGTSIMData/RawGTSIMData_level_XX.mrc``): in the real release each level
  was followed by its own high-SNR acquisition. The simulated specimen does
  not move, but each level's truth is its own acquisition: its own 3 raw sets,
  their own noise and reconstruction (for ``gt='ideal'`` the noise-free image
  is the same for every level, the raw GT stacks differ by their noise);
- **F-actin_Nonlinear** writes ``SIM_gt_a.mrc`` (the target, 1506 px for
  502, the ideal nonlinear-support image of :mod:`biosr.simulate.truth`) and
  ``SIM_gt_b.mrc``, its gamma-0.6 view (:data:`SIM_GT_B_GAMMA`,
  :func:`gamma_view`), as the release has both.
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
#: Gamma of the nonlinear release's ``SIM_gt_b.mrc``, a view of ``SIM_gt_a.mrc``
#: (``DATASET_NOTES.md`` section 7).
SIM_GT_B_GAMMA = 0.6


def gamma_view(image: np.ndarray, gamma: float = SIM_GT_B_GAMMA) -> np.ndarray:
    """``max * (image / max) ** gamma`` over the image clipped at 0: its range, gamma-mapped.

    Examples
    --------
    >>> gamma_view(np.array([0.0, 25.0, 100.0]), 0.5).tolist()
    [0.0, 50.0, 100.0]
    """
    image = np.clip(np.asarray(image, dtype=np.float64), 0.0, None)
    top = float(image.max())
    return top * (image / top) ** gamma if top > 0 else image


def _gt_keys(files: dict[str, Path], prefix: str, levels: tuple[int, ...]) -> list[str]:
    """``[prefix]`` for one file per cell, else ``[prefix_01, ...]`` (one per level)."""
    return [prefix] if prefix in files else [f"{prefix}_{lv:02d}" for lv in levels]


def simulate_cell(
    folder: str | os.PathLike[str],
    cell: int,
    *,
    size: int,
    seed: int,
    gt: str = truth.GT_KIND,
    microscope: Microscope = DEFAULT,
    structure: str | layout.Structure | None = None,
) -> Path:
    """Simulate and write one cell's MRC files into ``folder/Cell_XXX``; return that folder.

    The files are :func:`biosr.layout.release_files` of the structure (11 for
    Microtubules), plus its :attr:`~biosr.layout.Structure.extra_files`.
    `microscope` should be the structure's (:func:`~biosr.simulate.microscope.load`).
    """
    s = layout.get_structure(structure)
    seeds = cell_seeds(seed, RELEASE_KEY, cell)
    field = simulate_field(size, seeds, frames=True, microscope=microscope, structure=s)
    frames = field.clean.frames
    files = layout.release_files(folder, cell, structure=s)
    raw_keys = _gt_keys(files, "raw_gt", s.levels)
    gt_keys = _gt_keys(files, "sim_gt", s.levels)
    noise = [np.random.default_rng(q) for q in seeds[NOISE].spawn(len(s.levels) + len(raw_keys))]
    for path in {f.parent for f in files.values()}:
        path.mkdir(parents=True, exist_ok=True)
    if len(gt_keys) == 1:
        truth_seeds = [seeds[TRUTH]]
    else:  # one acquisition per level (ER)
        truth_seeds = seeds[TRUTH].spawn(len(gt_keys))
    targets = [
        truth.cell_truth(field.clean, q, kind=gt, microscope=microscope, structure=s)
        for q in truth_seeds
    ]
    stacks = [(f"level_{lv:02d}", s.photons[lv], None) for lv in s.levels]
    for i, key in enumerate(raw_keys):
        stacks.append((key, truth.RAW_GT_PHOTONS, targets[min(i, len(targets) - 1)].raw_gt))
    for (key, photons, mean_raw), rng in zip(stacks, noise, strict=True):
        if mean_raw is not None:
            counts = np.clip(np.rint(mean_raw), 0, camera.MAX_COUNT).astype(np.uint16)
        else:
            scale = camera.photon_scale(field.clean.wf, microscope.true_photons(photons))
            counts = camera.expose(frames * scale, rng, **microscope.camera())
        label = f"biosr simulate: cell {cell} {key} {photons:.1f} photons seed {seed}"
        write_mrc(files[key], counts, voxel_size_nm=s.pixel_size_wf_nm, label=label)
    for key, target in zip(gt_keys, targets, strict=True):
        write_mrc(
            files[key],
            target.gt.astype(np.float32),
            voxel_size_nm=s.pixel_size_gt_nm,
            label=f"biosr simulate: cell {cell} SIM ground truth ({gt}) seed {seed}",
        )
    cell_dir = layout.release_cell_dir(folder, cell)
    for name in s.extra_files:  # SIM_gt_b.mrc: the gamma view of the (single) target
        write_mrc(
            cell_dir / name,
            gamma_view(targets[0].gt).astype(np.float32),
            voxel_size_nm=s.pixel_size_gt_nm,
            label=f"biosr simulate: cell {cell} SIM ground truth, gamma "
            f"{SIM_GT_B_GAMMA:g} view, seed {seed}",
        )
    return cell_dir


def _job(args: tuple[str, int, int, int, str, Microscope, str]) -> None:
    folder, cell, size, seed, gt, microscope, structure = args
    simulate_cell(
        folder, cell, size=size, seed=seed, gt=gt, microscope=microscope, structure=structure
    )


def simulate_release(
    out: str | os.PathLike[str],
    *,
    cells: int | None = None,
    size: int = layout.RELEASE_RAW_SIZE,
    seed: int = 0,
    gt: str = truth.GT_KIND,
    calibration: Any = None,
    overwrite: bool = False,
    force: bool = False,
    progress: bool = False,
    workers: int | None = None,
    structure: str | layout.Structure | None = None,
) -> Path:
    """Write a synthetic original release under ``out/<Structure>`` (``out/Microtubules``).

    Parameters
    ----------
    out : path-like
        Output folder; the release goes to ``out/<Structure>``.
    cells : int, optional
        Number of cells (default: as the real release, 55 for Microtubules).
    size : int, optional
        Raw frame side in pixels (default 502; the GT is ``gt_scale * size``).
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
    structure : str or Structure, optional
        Which BioSR structure (default Microtubules): its file names, levels,
        frames, GT scale, pixel sizes and illumination (see the module docstring).

    Returns
    -------
    Path
        The ``<Structure>`` folder.

    Raises
    ------
    BiosrError
        On an unknown `structure`, `cells` outside 1..999, a `size` odd or
        below 16, a bad `seed` or `workers`, an unknown `gt`, an unreadable
        `calibration` (all before anything is written), or if the output
        folder is not empty and `overwrite` is False.
    """
    s = layout.get_structure(structure, error=BiosrError)
    folder = Path(out) / s.name
    if gt not in truth.GT_KINDS:
        raise BiosrError(f"{folder}: unknown gt {gt!r}; choose one of {', '.join(truth.GT_KINDS)}")
    microscope = load(calibration, structure=s)
    cells = s.release_cells if cells is None else cells
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
    jobs = [(str(folder), cell, size, seed, gt, microscope, s.name) for cell in range(1, cells + 1)]
    _parallel.run(
        _job,
        jobs,
        workers=workers,
        chunksize=1,
        progress=progress,
        desc="simulate cells",
        unit="cell",
    )
    card = release_card(
        cells=cells, size=size, seed=seed, gt=gt, microscope=microscope, structure=s
    )
    write_card(folder, card)
    return folder


def release_layout(structure: str | layout.Structure | None = None) -> str:
    """The card's ``layout``: the cell files as a pattern.

    Examples
    --------
    >>> release_layout()
    'Microtubules/Cell_XXX/{RawSIMData_level_01..09,RawSIMData_gt,SIM_gt}.mrc'
    """
    s = layout.get_structure(structure)
    names = (s.level_file, s.raw_gt_file, s.sim_gt_file, *s.extra_files)
    levels = f"{s.levels[0]:02d}..{s.levels[-1]:02d}"
    stems = [n.removesuffix(".mrc").replace("{level:02d}", levels) for n in names]
    return f"{s.name}/{layout.CELL_DIR.split('{')[0]}XXX/{{{','.join(stems)}}}.mrc"


def release_card(
    *,
    cells: int,
    size: int,
    seed: int,
    gt: str = truth.GT_KIND,
    microscope: Microscope = DEFAULT,
    structure: str | layout.Structure | None = None,
) -> dict[str, Any]:
    """The card of a simulated release: its geometry, the seed and every physical parameter.

    A structure other than Microtubules adds ``gt_scale`` and the pixel sizes.
    """
    s = layout.get_structure(structure)
    extra: dict[str, Any] = {}
    if not s.published:
        extra.update(
            gt_scale=s.gt_scale,
            pixel_size_wf_nm=s.pixel_size_wf_nm,
            pixel_size_gt_nm=s.pixel_size_gt_nm,
        )
    return card_base(
        structure=s,
        format="biosr-simulated-release/1",
        layout=release_layout(s),
        patch_size=None,
        dtype="uint16 raw stacks (MRC mode 6), float32 SIM_gt (MRC mode 2)",
        source="biosr simulate (physics-based simulator, no real data)",
        **extra,
        seed=seed,
        cells=cells,
        raw_size=size,
        gt_size=s.gt_scale * size,
        raw_frames=s.frames,
        raw_gt_photons=truth.RAW_GT_PHOTONS,
        **output.truth_card(gt, structure=s),
        physics=output.physics(microscope, structure=s),
    )
