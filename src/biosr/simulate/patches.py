"""The published layout, simulated directly: 128 x 128 float32 pairs with manifest and card.

Per split, cells are simulated (noise-free WF of a whole field, see
:mod:`biosr.simulate.field`, and its GT, by default the mean SIM
reconstruction of 3 high-SNR raw sets, see :mod:`biosr.simulate.truth`) and
cut as the authors' protocol does (DL-SR):
training and validation take ``crops`` random patches per (cell, level, flip
variant), centred on structure, with the 4 flip variants; the test split takes
``crops`` patches per cell at the same place for all 9 levels, sharing one GT.
Random rotations are left out: the simulated specimen is isotropic, so they
would only cost time. Each WF patch is the sum of the 9 raw frames drawn in
one step (:func:`biosr.simulate.camera.widefield_counts`: a sum of
independent Poisson counts is Poisson of the summed rate, and the 3 phases'
illumination sums to a constant). WF and GT are then min-max normalised per
patch to [0, 1] float32, like the real release. The GT is brought to the WF
grid by 2 x 2 binning (``gt_scale=1``) or kept at 31.3 nm, 256 x 256
(``gt_scale=2``).

Every structure of :data:`biosr.layout.STRUCTURES` is written the same way
under ``root/BioSR/<Structure>/`` with its levels (6 for ER, 12 for F-actin),
its crops for the ``published`` preset (:attr:`biosr.layout.Structure.crops`),
its frames in the WF sum (25 for nonlinear SIM) and its GT scale (``gt_scale``
1, or the structure's native 2 or 3: 384 x 384 at 60.4 / 3 nm for
F-actin_Nonlinear). One truth per cell serves all levels, ER's included: its
test split has a target folder per level (``test_gt/level_XX``, as the layout
gives it), here each holding the same truth, while the raw release simulates
ER's per-level GTs.

Training and validation indices are a seeded permutation of all the split's
pairs, so any run of consecutive files mixes cells and the 9 levels. Each cell
is one job with its own seeds, so the output is bit-identical for any number
of workers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from biosr import _parallel, layout
from biosr._checks import check_seed, check_workers
from biosr.build import produce, protocol
from biosr.dataset.manifest import card_base, file_row, write_card, write_manifest
from biosr.errors import BiosrError
from biosr.io.tiff import write_tiff
from biosr.simulate import camera, imaging, output, truth
from biosr.simulate.field import CROPS, NOISE, TRUTH, cell_seeds, simulate_field
from biosr.simulate.imaging import bin_by
from biosr.simulate.microscope import DEFAULT, Microscope, load
from biosr.simulate.presets import PRESETS, Preset, preset_for

_SPLIT_KEY = {split: i + 1 for i, split in enumerate(layout.SPLITS)}


class _Job(NamedTuple):
    dataset: str
    split: str
    cell: int
    field: int
    crops: int
    indices: tuple[int, ...]
    gt_scale: int
    seed: int
    gt: str = truth.GT_KIND
    microscope: Microscope = DEFAULT
    structure: str = layout.DEFAULT_STRUCTURE


def crop_corners(structure: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` top-left corners of patches centred on structure pixels (uniform if there is none)."""
    half = layout.PATCH_SIZE // 2
    centres = protocol.valid_centres(structure, half)
    return centres[rng.integers(0, len(centres), size=n)] - half


def _gt_patch(gt: np.ndarray, y: int, x: int, gt_scale: int, native: int = 2) -> np.ndarray:
    """The GT under the WF patch at ``(y, x)``: at the `native` scale, or binned (`gt_scale` 1)."""
    side = layout.PATCH_SIZE
    patch = gt[native * y : native * (y + side), native * x : native * (x + side)]
    # imaging.bin_by keeps float64 (protocol.bin2 rounds to float32 before the
    # normalisation, which changes the published bytes)
    return patch if gt_scale == native else bin_by(patch, native)


def _cell_job(job: _Job) -> list[dict[str, Any]]:
    seeds = cell_seeds(job.seed, _SPLIT_KEY[job.split], job.cell)
    mic, s = job.microscope, layout.get_structure(job.structure)
    # Nonlinear SIM's target is the ideal image for either kind (truth.nonlinear_truth); its
    # raw sets are not written here, so neither they nor the 25 frames are simulated.
    kind = "ideal" if imaging.is_nonlinear(s) else job.gt
    field = simulate_field(job.field, seeds, frames=kind == "sim", microscope=mic, structure=s)
    noise = np.random.default_rng(seeds[NOISE])
    crops = np.random.default_rng(seeds[CROPS])
    gt = truth.cell_truth(field.clean, seeds[TRUTH], kind=kind, microscope=mic, structure=s).gt
    wf, structure = field.clean.wf, field.structure
    photons = {lv: mic.true_photons(s.photons[lv]) for lv in s.levels}
    scales = {lv: camera.photon_scale(wf, photons[lv]) for lv in s.levels}
    expose = {**mic.camera(), "frames": s.frames}
    side, base = layout.PATCH_SIZE, Path(job.dataset)
    native = s.gt_scale
    gt_nm = s.pixel_size_gt_nm if job.gt_scale == native else s.pixel_size_wf_nm
    wf_nm = s.pixel_size_wf_nm
    prov = {"seed": job.seed, "cell": job.cell}
    rows: list[dict[str, Any]] = []
    if job.split == "test":
        corners = crop_corners(structure, job.crops, crops)
        for k, (y, x) in enumerate(corners.tolist()):
            index = job.indices[0] + k
            extra = {**prov, "crop_y": y, "crop_x": x, "flip": "none"}
            target = protocol.normalize(_gt_patch(gt, y, x, job.gt_scale, native))
            for lv in s.levels if s.gt_per_level else s.levels[:1]:
                pair = layout.pair(base, "test", index, lv, structure=s)
                write_tiff(pair.gt, target, pixel_size_nm=gt_nm)
                rows.append(file_row(base, pair, "gt", **extra))
            for lv in s.levels:
                pair = layout.pair(base, "test", index, lv, structure=s)
                rate = wf[y : y + side, x : x + side] * scales[lv]
                image = protocol.normalize(camera.widefield_counts(rate, noise, **expose))
                write_tiff(pair.wf, image, pixel_size_nm=wf_nm)
                rows.append(file_row(base, pair, "wf", **extra))
        return rows
    items = iter(job.indices)
    for lv in s.levels:
        for variant in range(layout.FLIPS):
            for y, x in crop_corners(structure, job.crops, crops).tolist():
                pair = layout.pair(base, job.split, next(items), structure=s)
                rate = wf[y : y + side, x : x + side] * scales[lv]
                image = protocol.flip(
                    protocol.normalize(camera.widefield_counts(rate, noise, **expose)), variant
                )
                target = protocol.flip(
                    protocol.normalize(_gt_patch(gt, y, x, job.gt_scale, native)), variant
                )
                write_tiff(pair.wf, image, pixel_size_nm=wf_nm)
                write_tiff(pair.gt, target, pixel_size_nm=gt_nm)
                extra = {
                    **prov,
                    "photon_level": lv,
                    "crop_y": y,
                    "crop_x": x,
                    "flip": protocol.FLIP_NAMES[variant],
                }
                rows.append(file_row(base, pair, "wf", **extra))
                rows.append(file_row(base, pair, "gt", **extra))
    return rows


def _jobs(
    dataset: Path,
    preset: Preset,
    seed: int,
    gt_scale: int,
    gt: str,
    microscope: Microscope,
    structure: layout.Structure = layout.MICROTUBULES,
) -> list[_Job]:
    jobs: list[_Job] = []
    more = (gt, microscope, structure.name)
    per_cell = len(structure.levels) * layout.FLIPS
    for split in layout.SPLITS:
        n_cells, crops = preset.cells[split], preset.crops[split]
        if split == "test":
            for cell in range(1, n_cells + 1):
                first = (cell - 1) * crops + 1
                job = (str(dataset), split, cell, preset.field, crops, (first,), gt_scale, seed)
                jobs.append(_Job(*job, *more))
            continue
        total = n_cells * per_cell * crops
        key = produce.cell_seed(seed, _SPLIT_KEY[split], 0)
        order = np.random.default_rng(key).permutation(total) + 1
        for cell in range(1, n_cells + 1):
            chunk = order[(cell - 1) * per_cell * crops : cell * per_cell * crops]
            indices = tuple(int(i) for i in chunk)
            jobs.append(
                _Job(str(dataset), split, cell, preset.field, crops, indices, gt_scale, seed, *more)
            )
    return jobs


def simulate_patches(
    root: str | os.PathLike[str],
    *,
    preset: str = "tiny",
    seed: int = 0,
    gt_scale: int = 1,
    gt: str = truth.GT_KIND,
    calibration: Any = None,
    overwrite: bool = False,
    force: bool = False,
    progress: bool = False,
    workers: int | None = None,
    structure: str | layout.Structure | None = None,
) -> Path:
    """Write a simulated dataset in the published layout under ``root/BioSR/<Structure>``.

    Parameters
    ----------
    root : path-like
        Folder to hold ``BioSR/`` (or a ``<Structure>`` folder itself).
    preset : {'tiny', 'small', 'published'}, optional
        Size (:data:`PRESETS`, :func:`~biosr.simulate.presets.preset_for`);
        ``published`` gives exactly 41,040 / 2,160 / 150 x 9 pairs for
        Microtubules, the structure's DL-SR crops for the others.
    seed : int, optional
        Seed; the same seed gives bit-identical files for any `workers`.
    gt_scale : int, optional
        1 (default): GT binned onto the WF grid, 128 x 128 as the published
        release; the structure's native scale (2; 3 for F-actin_Nonlinear):
        GT at 31.3 nm, 256 x 256 (DL-SR geometry; 384 x 384 at 20.1 nm).
    gt : {'sim', 'ideal'}, optional
        Ground truth (:data:`biosr.simulate.truth.GT_KINDS`): ``sim``
        (default) reconstructs 3 high-SNR raw sets of each cell and averages
        them, as BioSR did; ``ideal`` is the noise-free SIM-resolution image.
    calibration : path-like or Calibration, optional
        A real stack's calibration (``biosr calibrate``'s JSON): simulate that
        microscope (:func:`biosr.simulate.microscope.load`). Default: BioSR's.
    overwrite : bool, optional
        Replace the split folders, manifest and card of a dataset ``biosr
        simulate`` made there. Without it a non-empty dataset folder is refused.
    force : bool, optional
        Also replace a dataset another producer made (``build``, a download):
        its images, manifest and card; a user's own files are kept.
    progress : bool, optional
        Show a progress bar (one step per cell).
    workers : int, optional
        Processes (default: all CPUs).
    structure : str or Structure, optional
        Which BioSR structure (default Microtubules); its levels, crops,
        frames, GT scale and illumination (see the module docstring).

    Returns
    -------
    Path
        The ``<Structure>`` folder (with ``manifest.csv`` and ``dataset_card.json``).

    Raises
    ------
    BiosrError
        On an unknown structure or preset, a `gt_scale` other than 1 or the
        structure's, a bad `seed` or `workers`, an unknown `gt`, an unreadable
        `calibration` (all before anything is written), or if the dataset
        folder is not empty and `overwrite` is False, or was not made by
        ``biosr simulate`` and `force` is False.
    """
    s = layout.get_structure(structure, error=BiosrError)
    dataset = layout.dataset_dir(root, structure=s, must_exist=False)
    if preset not in PRESETS:
        raise BiosrError(
            f"{dataset}: unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}"
        )
    if gt_scale not in (1, s.gt_scale):
        raise BiosrError(f"{dataset}: gt_scale must be 1 or {s.gt_scale}, got {gt_scale}")
    if gt not in truth.GT_KINDS:
        raise BiosrError(f"{dataset}: unknown gt {gt!r}; choose one of {', '.join(truth.GT_KINDS)}")
    seed, workers = check_seed(seed), check_workers(workers)
    microscope = load(calibration, structure=s)
    spec = preset_for(preset, s)
    produce.prepare_dataset(dataset, overwrite=overwrite, producer=output.PRODUCER, force=force)
    produce.make_split_dirs(dataset, structure=s)
    jobs = _jobs(dataset, spec, seed, gt_scale, gt, microscope, s)
    rows: list[dict[str, Any]] = []
    results = _parallel.run(
        _cell_job,
        jobs,
        workers=workers,
        chunksize=1,
        progress=progress,
        desc="simulate cells",
        unit="cell",
    )
    for part in results:
        rows.extend(part)
    write_manifest(dataset, rows)
    card = patches_card(
        preset, seed=seed, gt_scale=gt_scale, gt=gt, microscope=microscope, structure=s
    )
    write_card(dataset, card)
    return dataset


def patches_card(
    preset: str,
    *,
    seed: int,
    gt_scale: int,
    gt: str = truth.GT_KIND,
    microscope: Microscope = DEFAULT,
    structure: str | layout.Structure | None = None,
) -> dict[str, Any]:
    """The card of a simulated dataset: preset, counts, seed, geometry, every physical parameter."""
    s = layout.get_structure(structure)
    spec = preset_for(preset, s)
    native = s.gt_scale
    if gt_scale == 1:
        where = f"{native}x{native}-binned onto the WF grid"
    else:
        where = f"at {s.pixel_size_gt_nm:.4g} nm"
    made = "ideal SIM-resolution image, "
    if gt == "sim" and not imaging.is_nonlinear(s):
        made = "SIM reconstruction (mean of 3), "
    return card_base(
        structure=s,
        source="biosr simulate (physics-based simulator, no real data)",
        preset=preset,
        seed=seed,
        gt_scale=gt_scale,
        counts=spec.counts(s),
        cells=dict(spec.cells),
        crops=dict(spec.crops),
        flips=layout.FLIPS,
        field_size=spec.field,
        pixel_size_wf_nm=s.pixel_size_wf_nm,
        pixel_size_gt_nm=s.pixel_size_gt_nm if gt_scale == native else s.pixel_size_wf_nm,
        wf=f"sum of the {s.frames} raw SIM frames (drawn as one Poisson sum), "
        "min-max normalised per patch",
        gt=made + where + ", min-max normalised per patch",
        normalize="min-max per patch to [0, 1]",
        **output.truth_card(gt, structure=s),
        physics=output.physics(microscope, structure=s),
    )
