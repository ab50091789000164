"""The BioSR dataset as code: structures, folders, file names, levels, counts, physics.

This module is the single source of truth for everything the published dataset
(and the original release it is cut from) promises. Every other part of biosr
imports it; it imports nothing of biosr.

BioSR has five structures (:data:`STRUCTURES`, ``DATASET_NOTES.md`` section
7): CCPs, ER, Microtubules, F-actin and F-actin_Nonlinear. Each is a
:class:`Structure`: its release archive, cells, levels, frames per stack, GT
scale and file names. Microtubules (:data:`DEFAULT_STRUCTURE`) is the one with
a published patch copy and the default everywhere; the module-level constants
below (:data:`LEVELS`, :data:`RELEASE_ARCHIVE`, ...) are its values, and every
function that depends on the structure takes a ``structure`` argument (a
:class:`Structure` or its name) that defaults to it. Facts marked uncertain in
the notes are listed in :attr:`Structure.uncertain`; ``biosr build`` checks
them against the files it reads.

Published layout, under a root that contains ``BioSR/``::

    BioSR/Microtubules/          (BioSR/<structure>/ for the others)
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

import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

# --------------------------------------------------------------------------- #
# What every structure shares: splits, file names, the patch protocol
# --------------------------------------------------------------------------- #

#: Split names, in the order they are listed everywhere.
SPLITS: tuple[str, ...] = ("training", "validate", "test")

#: Lowest and highest nominal photon count (an assumption, see the module docstring).
PHOTON_RANGE: tuple[float, float] = (6.0, 600.0)

#: Pair counts of the published Microtubules copy (test: pairs per level). For
#: every structure these are the target totals its crop counts are cut to
#: (:attr:`Structure.crops`).
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

#: Top folder of every dataset below a root: ``ROOT/BioSR/<structure>/``.
COLLECTION_DIR = "BioSR"

#: Cells of each split in the authors' protocol (DL-SR), 1-based, inclusive; the
#: same for every structure.
PUBLISHED_CELLS: dict[str, tuple[int, ...]] = {
    "training": tuple(range(6, 36)),
    "validate": tuple(range(1, 6)),
    "test": tuple(range(36, 51)),
}
#: Flip variants per crop in training and validation (none, up-down, left-right, both).
FLIPS = 4
#: Crops per cell in the test split, shared by all of its levels.
TEST_CROPS = PUBLISHED_COUNTS["test"] // len(PUBLISHED_CELLS["test"])

# --------------------------------------------------------------------------- #
# Physics of the acquisition (BioSR, Qiao et al. 2021; DATASET_NOTES section 6)
# --------------------------------------------------------------------------- #

#: Pixel size of raw SIM frames and widefield images, in nm (all but nonlinear SIM).
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

# --------------------------------------------------------------------------- #
# The structures of the original release (figshare 10.6084/m9.figshare.13264793)
# --------------------------------------------------------------------------- #

RELEASE_DOI = "10.6084/m9.figshare.13264793.v9"
#: Folder of one cell in every structure's release.
CELL_DIR = "Cell_{cell:03d}"


@dataclass(frozen=True)
class Structure:
    """One BioSR structure: its release, its acquisition and the dataset cut from it.

    Attributes
    ----------
    name : str
        Names the dataset folder (``BioSR/<name>``), the release's folder and
        its archive (``<name>.zip``).
    description : str
        What is imaged, in a few words.
    modality : str
        ``"GI-SIM"``, ``"TIRF-SIM"`` or ``"nonlinear SIM"``.
    archive_bytes, archive_md5 : int, str
        Size and MD5 of the release archive on figshare.
    release_cells : int
        Cells in the release (``Cell_001`` ...).
    n_levels : int
        Signal levels of the raw stacks (``RawSIMData_level_01`` ...).
    orientations, phases : int
        Illumination pattern orientations and phases; a stack has
        ``orientations * phases`` frames.
    gt_scale : int
        Sampling of the release's SIM GT relative to the raw frames.
    line_spacing_nm : float
        Illumination line spacing of the authors' reconstruction settings.
    notch : float
        Attenuation of each order's centre in the authors' reconstruction.
    pixel_size_wf_nm : float
        Pixel size of the raw frames.
    level_file, raw_gt_file, sim_gt_file : str
        File names inside ``Cell_XXX/``, relative, ``/``-separated; a
        ``{level}`` field means one file per level.
    extra_files : tuple of str
        Further files of a cell that biosr does not read (``SIM_gt_b.mrc``).
    uncertain : tuple of str
        Attributes whose value rests on third-party readings only
        (``DATASET_NOTES.md`` section 7); the builder checks them.
    """

    name: str
    description: str
    modality: str
    archive_bytes: int
    archive_md5: str
    release_cells: int
    n_levels: int
    orientations: int = 3
    phases: int = 3
    gt_scale: int = 2
    line_spacing_nm: float = 180.0
    notch: float = 0.7
    pixel_size_wf_nm: float = PIXEL_SIZE_WF_NM
    raw_size: int = 502
    level_file: str = "RawSIMData_level_{level:02d}.mrc"
    raw_gt_file: str = "RawSIMData_gt.mrc"
    sim_gt_file: str = "SIM_gt.mrc"
    extra_files: tuple[str, ...] = ()
    uncertain: tuple[str, ...] = field(default=())

    @property
    def levels(self) -> tuple[int, ...]:
        """Signal levels, lowest photon count first (``1..n_levels``)."""
        return tuple(range(1, self.n_levels + 1))

    @property
    def frames(self) -> int:
        """Raw frames per stack: orientations x phases."""
        return self.orientations * self.phases

    @property
    def archive(self) -> str:
        """File name of the release archive."""
        return f"{self.name}.zip"

    @property
    def dataset_dir(self) -> Path:
        """Folder of the dataset below a root: ``BioSR/<name>``."""
        return Path(COLLECTION_DIR) / self.name

    @property
    def gt_size(self) -> int:
        """Side of the release's SIM GT in pixels."""
        return self.raw_size * self.gt_scale

    @property
    def pixel_size_gt_nm(self) -> float:
        """Pixel size of the release's SIM GT in nm."""
        return self.pixel_size_wf_nm / self.gt_scale

    @property
    def gt_per_level(self) -> bool:
        """True when the release has one SIM GT per level (ER)."""
        return per_level(self.sim_gt_file)

    @property
    def published(self) -> bool:
        """True for the structure with a published patch copy (Microtubules)."""
        return self.name == DEFAULT_STRUCTURE

    @property
    def photons(self) -> dict[int, float]:
        """Nominal photon count of each level: a geometric ladder over :data:`PHOTON_RANGE`.

        An assumption for every structure (no per-level table is published);
        the ladder has this structure's number of levels.
        """
        lo, hi = PHOTON_RANGE
        steps = max(self.n_levels - 1, 1)
        return {lv: float(lo * (hi / lo) ** ((lv - 1) / steps)) for lv in self.levels}

    @property
    def crops(self) -> dict[str, int]:
        """Crops per (cell, level, flip) for training/validation, per cell for test.

        The DL-SR rule: ``ceil(total / cells / levels / flips)`` for the target
        totals :data:`PUBLISHED_COUNTS`, so that Microtubules gives its
        published 38 and 12 and a structure with other levels about the same
        totals.
        """
        out = {
            split: math.ceil(
                PUBLISHED_COUNTS[split] / len(PUBLISHED_CELLS[split]) / self.n_levels / FLIPS
            )
            for split in ("training", "validate")
        }
        out["test"] = TEST_CROPS
        return out

    @property
    def counts(self) -> dict[str, int]:
        """Pair counts of the full dataset (test: pairs per level)."""
        crops = self.crops
        return {
            split: len(PUBLISHED_CELLS[split])
            * (crops[split] if split == "test" else crops[split] * self.n_levels * FLIPS)
            for split in SPLITS
        }

    def level_file_name(self, level: int) -> str:
        """Relative name (inside ``Cell_XXX``) of the raw stack of `level`."""
        return self._file_name(self.level_file, "raw stack", level)

    def sim_gt_file_name(self, level: int | None = None) -> str:
        """Relative name of the SIM GT (of `level` when the release has one per level)."""
        return self._file_name(self.sim_gt_file, "SIM GT", level)

    def raw_gt_file_name(self, level: int | None = None) -> str:
        """Relative name of the high-SNR raw GT stack (of `level` when there is one per level)."""
        return self._file_name(self.raw_gt_file, "raw GT stack", level)

    def _file_name(self, pattern: str, what: str, level: int | None) -> str:
        if not per_level(pattern):
            return pattern
        if level is None:
            raise ValueError(f"{self.name} has one {what} per level; pass a level")
        return pattern.format(level=check_level(level, structure=self))


def per_level(pattern: str) -> bool:
    """True when a release file name `pattern` has a ``{level}`` field (one file per level)."""
    return "{level" in pattern


#: Name of the structure used wherever none is given.
DEFAULT_STRUCTURE = "Microtubules"

#: Every BioSR structure, in the release's order (DATASET_NOTES.md section 7).
STRUCTURES: dict[str, Structure] = {
    s.name: s
    for s in (
        Structure(
            name="CCPs",
            description="clathrin-coated pits: hollow rings and spots of about 100-200 nm",
            modality="TIRF-SIM",
            archive_bytes=1_176_569_302,
            archive_md5="41771b9fd0a7c9fd939bdb71b106fa6e",
            release_cells=54,
            n_levels=9,
            line_spacing_nm=173.0,
            notch=0.4,
            uncertain=("release_cells",),
        ),
        Structure(
            name="ER",
            description="endoplasmic reticulum: a tubular network with three-way junctions",
            modality="GI-SIM",
            archive_bytes=2_956_077_632,
            archive_md5="2bd05c7dba69a10b36a141407927d585",
            release_cells=68,
            n_levels=6,
            level_file="RawSIMData/RawSIMData_level_{level:02d}.mrc",
            raw_gt_file="RawGTSIMData/RawGTSIMData_level_{level:02d}.mrc",
            sim_gt_file="GTSIM/GTSIM_level_{level:02d}.mrc",
            uncertain=("level_file", "raw_gt_file", "sim_gt_file"),
        ),
        Structure(
            name="Microtubules",
            description="microtubules: long, sparse, gently curved filaments",
            modality="GI-SIM",
            archive_bytes=1_633_356_198,
            archive_md5="df983755a1b45d512b000475e3072fc7",
            release_cells=55,
            n_levels=9,
        ),
        Structure(
            name="F-actin",
            description="F-actin: dense thin filaments with bundles and stress fibres",
            modality="TIRF-SIM",
            archive_bytes=2_233_338_886,
            archive_md5="80fafab68f26fb71de12be0141face74",
            release_cells=51,
            n_levels=12,
            line_spacing_nm=173.0,
        ),
        Structure(
            name="F-actin_Nonlinear",
            description="F-actin by nonlinear SIM: 5 x 5 frames, saturated excitation, 3x GT",
            modality="nonlinear SIM",
            archive_bytes=4_480_187_050,
            archive_md5="b2884114e5fb034b9261855b3c8dbf77",
            release_cells=51,
            n_levels=9,
            orientations=5,
            phases=5,
            gt_scale=3,
            pixel_size_wf_nm=60.4,
            sim_gt_file="SIM_gt_a.mrc",
            extra_files=("SIM_gt_b.mrc",),
            uncertain=("pixel_size_wf_nm", "line_spacing_nm"),
        ),
    )
}

#: The default structure's entry.
MICROTUBULES = STRUCTURES[DEFAULT_STRUCTURE]

#: The structure with the most levels (F-actin's 12): every level of any structure is one of
#: its, for checks made before the structure is known (a command line's ``--levels``).
WIDEST = max(STRUCTURES.values(), key=lambda s: s.n_levels)


def get_structure(
    name: str | Structure | None = None, *, error: type[Exception] = ValueError
) -> Structure:
    """The :class:`Structure` called `name` (the default when None).

    Raises `error` (as in :func:`check_split`) listing the names when it is
    unknown; case is not significant (``er`` is ``ER``).

    Examples
    --------
    >>> get_structure("er").name, get_structure().name
    ('ER', 'Microtubules')
    """
    if isinstance(name, Structure):
        return name
    if name is None:
        return MICROTUBULES
    by_lower = {k.lower(): v for k, v in STRUCTURES.items()}
    found = by_lower.get(str(name).lower())
    if found is None:
        raise error(f"unknown structure {name!r}; valid structures: {', '.join(STRUCTURES)}")
    return found


# The default structure's values, under the names the rest of biosr has always used.

#: The default structure: names the dataset folder, the release's folder and its archive.
STRUCTURE = MICROTUBULES.name
#: Folder of the default dataset below a root, as the published copy nests it.
DATASET_DIR = MICROTUBULES.dataset_dir
#: Signal levels of the default structure's test split, lowest photon count first.
LEVELS: tuple[int, ...] = MICROTUBULES.levels
#: Nominal average photon count of each level (geometric ladder over :data:`PHOTON_RANGE`).
PHOTONS: dict[int, float] = MICROTUBULES.photons
#: Crops per (cell, level, flip variant); test: crops per cell, shared by all levels.
PUBLISHED_CROPS: dict[str, int] = MICROTUBULES.crops
RELEASE_ARCHIVE = MICROTUBULES.archive
RELEASE_CELLS = MICROTUBULES.release_cells
RELEASE_RAW_SIZE = MICROTUBULES.raw_size
RELEASE_GT_SIZE = MICROTUBULES.gt_size
#: Raw SIM frames per stack: 3 orientations x 3 phases.
RAW_FRAMES = MICROTUBULES.frames
RAW_LEVEL_FILE = MICROTUBULES.level_file
RAW_GT_FILE = MICROTUBULES.raw_gt_file
SIM_GT_FILE = MICROTUBULES.sim_gt_file


def sample_levels(levels: Iterable[int]) -> tuple[int, ...]:
    """The lowest, middle and highest of `levels` (sorted, distinct): what montages show.

    Examples
    --------
    >>> sample_levels(range(1, 10)), sample_levels(range(1, 7)), sample_levels([9])
    ((1, 5, 9), (1, 3, 6), (9,))
    """
    ordered = sorted(set(levels))
    if not ordered:
        return ()
    return tuple(sorted({ordered[0], ordered[(len(ordered) - 1) // 2], ordered[-1]}))


def gt_pixel_size_nm(
    wf_shape: tuple[int, ...],
    gt_shape: tuple[int, ...],
    *,
    structure: str | Structure | None = None,
) -> float:
    """Pixel size in nm of a GT image of `gt_shape` whose widefield input has `wf_shape`.

    Examples
    --------
    >>> gt_pixel_size_nm((128, 128), (256, 256)), gt_pixel_size_nm((128, 128), (128, 128))
    (31.3, 62.6)
    """
    return get_structure(structure).pixel_size_wf_nm * wf_shape[1] / gt_shape[1]


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


def check_level(
    level: int,
    *,
    structure: str | Structure | None = None,
    error: type[Exception] = ValueError,
) -> int:
    """Return `level` as int if it is one of the structure's levels, else raise `error`.

    `error` as in :func:`check_split`; `structure` as in :func:`get_structure`.
    """
    levels = get_structure(structure).levels
    try:
        known = not isinstance(level, bool) and int(level) == level and int(level) in levels
    except (TypeError, ValueError):
        known = False
    if not known:
        raise error(f"unknown level {level!r}; valid levels: {levels[0]}..{levels[-1]}")
    return int(level)


def dataset_dir(
    root: str | os.PathLike[str],
    *,
    structure: str | Structure | None = None,
    must_exist: bool = True,
) -> Path:
    """Resolve a user's root to a structure's dataset folder (``BioSR/<structure>``).

    Parameters
    ----------
    root : path-like
        Either the folder that contains ``BioSR/`` or the dataset folder
        itself (``Microtubules``, ``ER``, ... or any folder with split folders).
    structure : str or Structure, optional
        Which structure under ``ROOT/BioSR/``. None means the default,
        Microtubules, or, when ``ROOT/BioSR/`` holds exactly one structure and
        it is another, that one.
    must_exist : bool, optional
        If True (default), raise FileNotFoundError when neither form exists.
        If False, a root with neither form is taken as the folder that will
        contain ``BioSR/`` (for writers).

    Returns
    -------
    Path
        The ``.../BioSR/<structure>`` folder.

    Examples
    --------
    >>> dataset_dir("/data", must_exist=False).as_posix()
    '/data/BioSR/Microtubules'
    >>> dataset_dir("/data", structure="ER", must_exist=False).as_posix()
    '/data/BioSR/ER'
    """
    root = Path(root)
    chosen = get_structure(structure)
    nested = root / chosen.dataset_dir
    if nested.is_dir():
        return nested
    if structure is None and must_exist:
        present = [n for n in STRUCTURES if (root / COLLECTION_DIR / n).is_dir()]
        if len(present) == 1:
            return root / COLLECTION_DIR / present[0]
    if root.is_dir() and _looks_like_dataset(root):
        return root
    if must_exist:
        raise FileNotFoundError(
            f"{root}: no BioSR dataset here (expected {nested} or a {chosen.name} folder "
            f"with {split_roots('training')[0]}/ etc.); "
            "`biosr download` or `biosr simulate` can make one"
        )
    return root if root.name == chosen.name else nested


def structure_of(folder: str | os.PathLike[str]) -> Structure:
    """The structure of a dataset folder: its card's ``structure``, else its name, else the default.

    Parameters
    ----------
    folder : path-like
        A dataset folder (as :func:`dataset_dir` returns).

    Returns
    -------
    Structure
    """
    folder = Path(folder)
    try:
        card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
        named = card.get("structure") if isinstance(card, dict) else None
    except (OSError, ValueError):
        named = None
    for candidate in (named, folder.name):
        if isinstance(candidate, str) and candidate in STRUCTURES:
            return STRUCTURES[candidate]
    return MICROTUBULES


def _looks_like_dataset(folder: Path) -> bool:
    if folder.name in STRUCTURES:
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


def split_dirs(
    split: str, level: int | None = None, *, structure: str | Structure | None = None
) -> tuple[Path, Path]:
    """Relative folders ``(wf, gt)`` of a split (and level, for the test split).

    A structure with one SIM GT per level (ER) has one test target folder per
    level too, as the authors' DL-SR scripts write it (``test_gt/level_03``);
    the others share ``test_gt`` across levels.

    Examples
    --------
    >>> [p.as_posix() for p in split_dirs("test", 3)]
    ['test_wf/level_03', 'test_gt']
    >>> [p.as_posix() for p in split_dirs("test", 3, structure="ER")]
    ['test_wf/level_03', 'test_gt/level_03']
    """
    wf_root, gt_root = split_roots(split)
    wf, gt = Path(wf_root), Path(gt_root)
    if split == "test":
        if level is None:
            raise ValueError("the test split needs a level")
        wf = wf / level_dir(level, structure=structure)
        if get_structure(structure).gt_per_level:
            gt = gt / level_dir(level, structure=structure)
    elif level is not None:
        raise ValueError(f"the {split} split has no levels; pass level=None")
    return wf, gt


def level_dir(level: int, *, structure: str | Structure | None = None) -> str:
    """Folder name of a test level, e.g. ``level_01``."""
    return f"level_{check_level(level, structure=structure):02d}"


def parse_level_dir(name: str, *, structure: str | Structure | None = None) -> int | None:
    """Level number of a folder name like ``level_07``, or None if it is not one."""
    match = _LEVEL_RE.match(name)
    if match is None:
        return None
    level = int(match.group(1))
    return level if level in get_structure(structure).levels else None


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
    structure: str | Structure | None = None,
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
        return get_structure(structure).levels
    if isinstance(level, Iterable) and not isinstance(level, str):
        return tuple(check_level(v, structure=structure, error=error) for v in level)
    return (check_level(level, structure=structure, error=error),)


def pair(
    root: str | os.PathLike[str],
    split: str,
    index: int,
    level: int | None = None,
    *,
    structure: str | Structure | None = None,
) -> Pair:
    """The :class:`Pair` of `index` in `split` (and `level`), whether or not it exists.

    `root` is taken as given (a dataset folder from :func:`dataset_dir`).
    """
    base = Path(root)
    wf_dir, gt_dir = split_dirs(split, level, structure=structure)
    name = file_name(split, index)
    return Pair(split, level, index, base / wf_dir / name, base / gt_dir / name)


def pairs(
    root: str | os.PathLike[str],
    split: str,
    level: int | Iterable[int] | None = None,
    count: int | None = None,
    *,
    structure: str | Structure | None = None,
) -> list[Pair]:
    """Enumerate the pairs of a split, in order (level, then index).

    Parameters
    ----------
    root : path-like
        The folder containing ``BioSR/`` or the dataset folder itself.
    split : {'training', 'validate', 'test'}
        Which split.
    level : int, sequence of int or None, optional
        Test levels to include; None (default) means all of the structure's
        levels. Must be None for training and validation.
    count : int, optional
        If given, enumerate indices ``1..count`` without looking at the disk
        (for writers). Otherwise the validly named input files present on disk
        are enumerated; their targets may or may not exist
        (:func:`biosr.dataset.verify.verify` reports which).
    structure : str or Structure, optional
        The structure; None means the one :func:`structure_of` finds for an
        existing folder (the default for writers).

    Returns
    -------
    list of Pair
    """
    base = dataset_dir(root, structure=structure, must_exist=count is None)
    if structure is None and count is None:
        structure = structure_of(base)
    out: list[Pair] = []
    for lev in split_levels(split, level, structure=structure):
        if count is not None:
            indices: Iterable[int] = range(1, count + 1)
        else:
            indices = indices_on_disk(base / split_dirs(split, lev, structure=structure)[0], split)
        out.extend(pair(base, split, i, lev, structure=structure) for i in indices)
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


def release_files(
    release: str | os.PathLike[str],
    cell: int,
    *,
    structure: str | Structure | None = None,
) -> dict[str, Path]:
    """Files of one cell of the original release.

    Keys: ``level_01`` ... (one per level), and ``raw_gt`` and ``sim_gt`` when
    the structure has one of each per cell, or ``raw_gt_01`` ... and
    ``sim_gt_01`` ... when it has one per level (ER).

    Examples
    --------
    >>> sorted(release_files("R", 1, structure="ER"))[:2], len(release_files("R", 1))
    (['level_01', 'level_02'], 11)
    """
    chosen = get_structure(structure)
    folder = release_cell_dir(release, cell)
    files = {f"level_{lv:02d}": folder / chosen.level_file_name(lv) for lv in chosen.levels}
    for key, pattern in (("raw_gt", chosen.raw_gt_file), ("sim_gt", chosen.sim_gt_file)):
        if per_level(pattern):
            files.update(
                {f"{key}_{lv:02d}": folder / pattern.format(level=lv) for lv in chosen.levels}
            )
        else:
            files[key] = folder / pattern
    return files
