"""The BioSR Microtubules dataset as code: folders, file names, levels, counts, physics.

This module is the single source of truth for everything the published dataset
(and the original release it is cut from) promises. Every other part of biosr
imports it; it imports nothing of biosr.

Published layout, under a root that contains ``BioSR/``::

    BioSR/Microtubules/
        training_wf/00000001.tif   training_gt/00000001.tif   (41,040 pairs)
        validate_wf/00000001.tif   validate_gt/00000001.tif   ( 2,160 pairs)
        test_wf/level_01/001.tif ... level_09/150.tif          (150 x 9 inputs)
        test_gt/001.tif ... 150.tif                            (150 targets)

Photon counts per level are *nominal*, by the authors' definition (the
blurred widefield's mean over its brighter pixels, per raw frame; see
:func:`biosr.simulate.calibrate.average_photons`). The dataset states only
"about 15 to about 600 photons" and no per-level table has been published, so
the nine levels are assumed to follow a geometric ladder, :data:`PHOTON_RANGE`.
Its bottom is set by real data: a real low-signal BioSR stack
(``../shared/fixtures/real``) measures about 9 photons with its own camera
gain (12.5 with the authors' 0.6026) and a widefield SNR of about 17, which
the simulator reaches near 6 photons; the ladder starts there (ratio
100 ** (1 / 8), about 1.78 per level), so that stack's SNR lies inside the
three lowest levels. Treat these as assumptions, not measurements.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

# --------------------------------------------------------------------------- #
# The published (preprocessed) dataset
# --------------------------------------------------------------------------- #

#: The structure: names the dataset folder, the release's folder and its archive.
STRUCTURE = "Microtubules"

#: Folder of the dataset below a root, as the published copy nests it.
DATASET_DIR = Path("BioSR") / STRUCTURE

#: Split names, in the order they are listed everywhere.
SPLITS: tuple[str, ...] = ("training", "validate", "test")

#: Signal levels of the test split, lowest photon count first.
LEVELS: tuple[int, ...] = tuple(range(1, 10))

#: Lowest and highest nominal photon count (an assumption, see the module docstring).
PHOTON_RANGE: tuple[float, float] = (6.0, 600.0)

#: Nominal average photon count of each level (geometric ladder over :data:`PHOTON_RANGE`).
PHOTONS: dict[int, float] = {
    level: float(
        PHOTON_RANGE[0]
        * (PHOTON_RANGE[1] / PHOTON_RANGE[0]) ** ((level - LEVELS[0]) / (len(LEVELS) - 1))
    )
    for level in LEVELS
}

#: Pair counts of the published copy (test: pairs per level).
PUBLISHED_COUNTS: dict[str, int] = {"training": 41_040, "validate": 2_160, "test": 150}

#: Side of a published patch in pixels (WF and GT alike in the float32 release).
PATCH_SIZE = 128

#: Pixel type of every published image.
DTYPE = np.dtype("float32")

#: File extension of every image.
SUFFIX = ".tif"

#: Digits of the file names: training/validate ``%08d.tif``, test ``%03d.tif``.
NAME_DIGITS: dict[str, int] = {"training": 8, "validate": 8, "test": 3}

#: Provenance and description files a producer writes beside the split folders.
MANIFEST_FILE = "manifest.csv"
CARD_FILE = "dataset_card.json"

#: Folder of the packed (memory-mapped) cache, beside the split folders.
PACK_DIR = ".biosr_pack"

#: Folder of an unfinished build's plan and finished-cell records (removed when done).
BUILD_DIR = ".biosr_build"

# --------------------------------------------------------------------------- #
# Physics of the acquisition (BioSR, Qiao et al. 2021)
# --------------------------------------------------------------------------- #

#: Pixel size of raw SIM frames and widefield images, in nm.
PIXEL_SIZE_WF_NM = 62.6
#: Pixel size of the SIM reconstruction (ground truth) before any resampling, in nm.
PIXEL_SIZE_GT_NM = 31.3
#: Excitation and (approximate) emission wavelengths, in nm.
EXCITATION_NM = 488.0
EMISSION_NM = 525.0
#: Numerical aperture of the objective (the release reports about 1.3 to 1.35).
NA = 1.3
#: Refractive index of the immersion oil (the authors' settings).
IMMERSION_INDEX = 1.515
#: Camera background offset in counts, and photons per count.
CAMERA_OFFSET = 100.0
PHOTONS_PER_COUNT = 0.6026


def gt_pixel_size_nm(wf_shape: tuple[int, ...], gt_shape: tuple[int, ...]) -> float:
    """Pixel size in nm of a GT image of `gt_shape` whose widefield input has `wf_shape`.

    Examples
    --------
    >>> gt_pixel_size_nm((128, 128), (256, 256)), gt_pixel_size_nm((128, 128), (128, 128))
    (31.3, 62.6)
    """
    return PIXEL_SIZE_WF_NM * wf_shape[1] / gt_shape[1]


# --------------------------------------------------------------------------- #
# The original release (figshare 10.6084/m9.figshare.13264793), builder input
# --------------------------------------------------------------------------- #

RELEASE_DOI = "10.6084/m9.figshare.13264793.v9"
RELEASE_ARCHIVE = f"{STRUCTURE}.zip"
RELEASE_CELLS = 55
RELEASE_RAW_SIZE = 502
RELEASE_GT_SIZE = 1004
#: Raw SIM frames per stack: 3 orientations x 3 phases.
RAW_FRAMES = 9
CELL_DIR = "Cell_{cell:03d}"
RAW_LEVEL_FILE = "RawSIMData_level_{level:02d}.mrc"
RAW_GT_FILE = "RawSIMData_gt.mrc"
SIM_GT_FILE = "SIM_gt.mrc"

#: Cells of each split in the authors' protocol (DL-SR), 1-based, inclusive.
PUBLISHED_CELLS: dict[str, tuple[int, ...]] = {
    "training": tuple(range(6, 36)),
    "validate": tuple(range(1, 6)),
    "test": tuple(range(36, 51)),
}
#: Crops per (cell, level, flip variant); test: crops per cell, shared by all levels.
PUBLISHED_CROPS: dict[str, int] = {"training": 38, "validate": 12, "test": 10}
#: Flip variants per crop in training and validation (none, up-down, left-right, both).
FLIPS = 4

# --------------------------------------------------------------------------- #
# Paths
# --------------------------------------------------------------------------- #

_LEVEL_RE = re.compile(r"^level_(\d{2})$")
_CELL_RE = re.compile(r"^Cell_(\d{3})$")


class Pair(NamedTuple):
    """One input/target pair of the dataset.

    Attributes
    ----------
    split : str
        ``"training"``, ``"validate"`` or ``"test"``.
    level : int or None
        Signal level 1..9 for the test split, None otherwise.
    index : int
        1-based index, the number in the file name.
    wf : Path
        Widefield (input) image.
    gt : Path
        SIM ground truth (target) image.
    """

    split: str
    level: int | None
    index: int
    wf: Path
    gt: Path


def check_split(split: str, *, error: type[Exception] = ValueError) -> str:
    """Return `split` if it is a known split name, else raise `error` listing them.

    This module imports nothing of biosr, so a caller checking a user's input
    names the exception to raise (:class:`biosr.errors.DataError`); the
    default, ValueError, is for a programming error.
    """
    if split not in SPLITS:
        raise error(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return split


def check_level(level: int, *, error: type[Exception] = ValueError) -> int:
    """Return `level` as int if it is 1..9, else raise `error` listing the levels.

    `error` as in :func:`check_split`.
    """
    try:
        known = not isinstance(level, bool) and int(level) == level and int(level) in LEVELS
    except (TypeError, ValueError):
        known = False
    if not known:
        raise error(f"unknown level {level!r}; valid levels: {LEVELS[0]}..{LEVELS[-1]}")
    return int(level)


def dataset_dir(root: str | os.PathLike[str], *, must_exist: bool = True) -> Path:
    """Resolve a user's root to the ``Microtubules`` folder.

    Parameters
    ----------
    root : path-like
        Either the folder that contains ``BioSR/`` or the ``Microtubules``
        folder itself.
    must_exist : bool, optional
        If True (default), raise FileNotFoundError when neither form exists.
        If False, a root with neither form is taken as the folder that will
        contain ``BioSR/`` (for writers).

    Returns
    -------
    Path
        The ``.../BioSR/Microtubules`` folder.

    Examples
    --------
    >>> dataset_dir("/data", must_exist=False).as_posix()
    '/data/BioSR/Microtubules'
    """
    root = Path(root)
    nested = root / DATASET_DIR
    if nested.is_dir():
        return nested
    if root.is_dir() and _looks_like_dataset(root):
        return root
    if must_exist:
        raise FileNotFoundError(
            f"{root}: no BioSR dataset here (expected {nested} or a Microtubules folder "
            f"with {split_roots('training')[0]}/ etc.); "
            "`biosr download` or `biosr simulate` can make one"
        )
    return root if root.name == DATASET_DIR.name else nested


def _looks_like_dataset(folder: Path) -> bool:
    if folder.name == DATASET_DIR.name:
        return True
    return any((folder / d).is_dir() for split in SPLITS for d in split_roots(split))


def split_roots(split: str) -> tuple[str, str]:
    """Top-level folder names ``(wf, gt)`` of a split (for test, ``test_wf`` holds the levels).

    Examples
    --------
    >>> split_roots("test")
    ('test_wf', 'test_gt')
    """
    check_split(split)
    return f"{split}_wf", f"{split}_gt"


def split_dirs(split: str, level: int | None = None) -> tuple[Path, Path]:
    """Relative folders ``(wf, gt)`` of a split (and level, for the test split).

    Examples
    --------
    >>> [p.as_posix() for p in split_dirs("test", 3)]
    ['test_wf/level_03', 'test_gt']
    """
    wf_root, gt_root = split_roots(split)
    wf = Path(wf_root)
    if split == "test":
        if level is None:
            raise ValueError("the test split needs a level (1..9)")
        wf = wf / level_dir(level)
    elif level is not None:
        raise ValueError(f"the {split} split has no levels; pass level=None")
    return wf, Path(gt_root)


def level_dir(level: int) -> str:
    """Folder name of a test level, e.g. ``level_01``."""
    return f"level_{check_level(level):02d}"


def parse_level_dir(name: str) -> int | None:
    """Level number of a folder name like ``level_07``, or None if it is not one."""
    match = _LEVEL_RE.match(name)
    if match is None:
        return None
    level = int(match.group(1))
    return level if level in LEVELS else None


def file_name(split: str, index: int) -> str:
    """File name of image `index` (1-based) in `split`.

    Examples
    --------
    >>> file_name("training", 7), file_name("test", 7)
    ('00000007.tif', '007.tif')
    """
    digits = NAME_DIGITS[check_split(split)]
    if index < 1 or index >= 10**digits:
        raise ValueError(f"index {index} out of range for {split} (1..{10**digits - 1})")
    return f"{index:0{digits}d}{SUFFIX}"


def parse_file_name(split: str, name: str) -> int | None:
    """Index encoded in a file name of `split`, or None if the name is not valid there.

    Examples
    --------
    >>> parse_file_name("test", "012.tif"), parse_file_name("test", "12.tif")
    (12, None)
    """
    digits = NAME_DIGITS[check_split(split)]
    stem, dot, ext = name.partition(".")
    if dot + ext != SUFFIX or len(stem) != digits or not stem.isdigit():
        return None
    index = int(stem)
    return index if index >= 1 else None


def split_levels(
    split: str,
    level: int | Iterable[int] | None = None,
    *,
    error: type[Exception] = ValueError,
) -> tuple[int | None, ...]:
    """Levels to iterate for a split: ``(None,)`` outside test, the given or all levels in it.

    Raises `error` (as in :func:`check_split`) on an unknown split or level, or
    a level given for a split that has none.
    """
    check_split(split, error=error)
    if split != "test":
        if level is not None:
            raise error(f"the {split} split has no levels; pass level=None")
        return (None,)
    if level is None:
        return LEVELS
    if isinstance(level, Iterable) and not isinstance(level, str):
        return tuple(check_level(v, error=error) for v in level)
    return (check_level(level, error=error),)


def pair(root: str | os.PathLike[str], split: str, index: int, level: int | None = None) -> Pair:
    """The :class:`Pair` of `index` in `split` (and `level`), whether or not it exists.

    `root` is taken as given (a dataset folder from :func:`dataset_dir`).
    """
    base = Path(root)
    wf_dir, gt_dir = split_dirs(split, level)
    name = file_name(split, index)
    return Pair(split, level, index, base / wf_dir / name, base / gt_dir / name)


def pairs(
    root: str | os.PathLike[str],
    split: str,
    level: int | Iterable[int] | None = None,
    count: int | None = None,
) -> list[Pair]:
    """Enumerate the pairs of a split, in order (level, then index).

    Parameters
    ----------
    root : path-like
        The folder containing ``BioSR/`` or the ``Microtubules`` folder.
    split : {'training', 'validate', 'test'}
        Which split.
    level : int, sequence of int or None, optional
        Test levels to include; None (default) means all nine. Must be None
        for training and validation.
    count : int, optional
        If given, enumerate indices ``1..count`` without looking at the disk
        (for writers). Otherwise the validly named input files present on disk
        are enumerated; their targets may or may not exist
        (:func:`biosr.dataset.verify.verify` reports which).

    Returns
    -------
    list of Pair
    """
    base = dataset_dir(root, must_exist=count is None)
    out: list[Pair] = []
    for lev in split_levels(split, level):
        if count is not None:
            indices: Iterable[int] = range(1, count + 1)
        else:
            indices = indices_on_disk(base / split_dirs(split, lev)[0], split)
        out.extend(pair(base, split, i, lev) for i in indices)
    return out


def indices_on_disk(folder: str | os.PathLike[str], split: str) -> list[int]:
    """Sorted image numbers of the validly named files of `split` in `folder` ([] if none)."""
    try:
        names = [e.name for e in os.scandir(folder) if e.is_file()]
    except FileNotFoundError:
        return []
    found = (parse_file_name(split, n) for n in names)
    return sorted(i for i in found if i is not None)


def parse_cell_dir(name: str) -> int | None:
    """Cell number of a release folder name like ``Cell_007``, or None if it is not one.

    Examples
    --------
    >>> parse_cell_dir("Cell_007"), parse_cell_dir("Cell_7")
    (7, None)
    """
    match = _CELL_RE.match(name)
    return int(match.group(1)) if match else None


def release_cell_dir(release: str | os.PathLike[str], cell: int) -> Path:
    """Folder of `cell` (1-based) in an extracted original release."""
    return Path(release) / CELL_DIR.format(cell=cell)


def release_files(release: str | os.PathLike[str], cell: int) -> dict[str, Path]:
    """Files of one cell of the original release: ``level_01..level_09``, ``raw_gt``, ``sim_gt``."""
    folder = release_cell_dir(release, cell)
    files = {f"level_{lv:02d}": folder / RAW_LEVEL_FILE.format(level=lv) for lv in LEVELS}
    files["raw_gt"] = folder / RAW_GT_FILE
    files["sim_gt"] = folder / SIM_GT_FILE
    return files
