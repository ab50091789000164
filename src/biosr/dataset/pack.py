"""The packed cache: each split (and test level) in one memory-mappable ``.npy``.

Reading 82,080 small TIFFs per training epoch starves a GPU; one ``.npy`` per
group of images turns a batch into one ``os.preadv`` per image from the page
cache (see :class:`biosr.learn.data.BioSR`), and the arrays also memory-map. The
cache lives in the dataset's :data:`biosr.layout.PACK_DIR` (``.biosr_pack``,
which ``biosr verify`` ignores) and holds, per *group*:

- ``<group>.<token>.npy``: an ``(N, H, W)`` float32 array, row ``i`` the
  image of the ``i``-th index of the group (in :func:`biosr.layout.pairs`
  order);
- ``<group>.json``: the index, naming the array, the image indices and the
  size and modification time (ns) of every source file.

Groups: ``training_wf``, ``training_gt``, ``validate_wf``, ``validate_gt``,
``test_wf_level_01`` .. ``test_wf_level_09`` (the structure's levels: ER's
six, F-actin's twelve) and ``test_gt`` (every file in ``test_gt``, shared by
all levels), or, for a structure with one GT per level (ER), ``test_gt_level_01``
.. one per level (``test_gt/level_XX``).

The index JSON is the commit point: an array is written under a temporary
name with ordinary writes (a ``.npy`` header, then one image at a time: a
memory map would turn a full disk into SIGBUS, a write turns it into an
error that names the file), renamed to its final name, and only then the
JSON (atomically) names it. The temporary name carries the writer's process
id; every pack first removes the temporaries of writers no longer running
(a killed pack's), and ``biosr verify`` reports them. The token is a hash of the
source listing and stats, so two processes packing the same files at once
write the same bytes under the same name. A group is *fresh* when its source
folder lists the same indices with the same sizes and mtimes; otherwise it is
stale and :func:`pack` rebuilds it. Size plus mtime is the same test ``make``
and ``rsync`` use: it catches files added, removed, resized or rewritten with a
new mtime, but not a rewrite that keeps both the size and the mtime (within the
file system's mtime resolution, or with the mtime set back); ``pack --force``
rebuilds then.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from biosr import layout
from biosr._progress import bar
from biosr.errors import DataError
from biosr.io.atomic import atomic_path, remove_stale_parts, write_text
from biosr.io.tiff import read_tiff

#: Format tag of the index JSON files.
FORMAT = "biosr-pack/1"


class Group(NamedTuple):
    """One packed array: the images of one folder of a split.

    Attributes
    ----------
    name : str
        e.g. ``training_wf``, ``test_wf_level_03``, ``test_gt``.
    split : str
        The split.
    role : str
        ``"wf"`` or ``"gt"``.
    level : int or None
        Test level of a WF group (and of a per-level GT group, ER's), else None.
    folder : Path
        Folder of the source images, relative to the dataset folder.
    """

    name: str
    split: str
    role: str
    level: int | None
    folder: Path


class Packed(NamedTuple):
    """Outcome of packing one group (see :func:`pack`).

    Attributes
    ----------
    group : str
        Group name.
    array : Path
        The ``.npy`` file.
    shape : tuple of int
        ``(N, H, W)``.
    rebuilt : bool
        True if it was (re)written now, False if it was already fresh.
    index : dict
        The group's index (as in its JSON file).
    """

    group: str
    array: Path
    shape: tuple[int, ...]
    rebuilt: bool
    index: dict[str, Any]


def groups(
    split: str,
    level: int | list[int] | None = None,
    *,
    structure: str | layout.Structure | None = None,
) -> list[Group]:
    """The groups a split (and test levels of `structure`, default all) is packed into, GT last.

    The GT group is one, shared by the levels, unless the structure has one
    test GT per level (ER): then one per level, in the WF groups' order.

    Examples
    --------
    >>> [g.name for g in groups("test", [2, 5])]
    ['test_wf_level_02', 'test_wf_level_05', 'test_gt']
    >>> [g.name for g in groups("test", [2, 5], structure="ER")][2:]
    ['test_gt_level_02', 'test_gt_level_05']
    """
    out: list[Group] = []
    gts: dict[str, Group] = {}
    shared = Path(layout.split_roots(split)[1])
    for lev in layout.split_levels(split, level, structure=structure):
        wf_dir, gt_dir = layout.split_dirs(split, lev, structure=structure)
        suffix = "" if lev is None else f"_{layout.level_dir(lev, structure=structure)}"
        out.append(Group(f"{split}_wf{suffix}", split, "wf", lev, wf_dir))
        if gt_dir == shared:
            gts.setdefault(f"{split}_gt", Group(f"{split}_gt", split, "gt", None, gt_dir))
        else:
            gts[f"{split}_gt{suffix}"] = Group(f"{split}_gt{suffix}", split, "gt", lev, gt_dir)
    return out + list(gts.values())


def pack_dir(dataset: str | os.PathLike[str]) -> Path:
    """The cache folder of a ``Microtubules`` folder."""
    return Path(dataset) / layout.PACK_DIR


def source_files(dataset: Path, group: Group) -> tuple[list[int], list[Path]]:
    """Indices and paths of the images a group packs, in order.

    WF groups (and training/validation GT) follow :func:`biosr.layout.pairs`;
    ``test_gt`` (``test_gt_level_XX``) is every validly named file in its folder.
    """
    if group.role == "gt" and group.split == "test":
        folder = dataset / group.folder
        indices = layout.indices_on_disk(folder, "test")
        return indices, [folder / layout.file_name("test", i) for i in indices]
    pairs = layout.pairs(dataset, group.split, group.level)
    return [p.index for p in pairs], [p.wf if group.role == "wf" else p.gt for p in pairs]


def _stats(paths: list[Path]) -> list[list[int]]:
    out = []
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise DataError(f"{p}: file not found (its pair exists)") from None
        out.append([st.st_size, st.st_mtime_ns])
    return out


def _token(indices: list[int], stats: list[list[int]]) -> str:
    blob = json.dumps([indices, stats], separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_index(dataset: str | os.PathLike[str], group: Group) -> dict[str, Any] | None:
    """The index JSON of a packed group, or None if there is none (or it is unreadable)."""
    path = pack_dir(dataset) / f"{group.name}.json"
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return index if isinstance(index, dict) and index.get("format") == FORMAT else None


def fresh_index(dataset: str | os.PathLike[str], group: Group) -> tuple[str, dict[str, Any] | None]:
    """State of a group's pack and its index: ``("fresh", index)`` when the sources are
    unchanged and the array intact, ``("stale", index)`` otherwise, ``("missing", None)``
    when there is no (readable) index."""
    dataset = Path(dataset)
    index = read_index(dataset, group)
    if index is None:
        return "missing", None
    indices, paths = source_files(dataset, group)
    if indices != index["indices"]:
        return "stale", index
    try:
        if _stats(paths) != index["stats"]:
            return "stale", index
    except DataError:
        return "stale", index
    array = pack_dir(dataset) / index["array"]
    try:
        mm = np.load(array, mmap_mode="r")
    except (OSError, ValueError):
        return "stale", index
    if list(mm.shape) != index["shape"] or str(mm.dtype) != index["dtype"]:
        return "stale", index
    return "fresh", index


def status(
    root: str | os.PathLike[str],
    splits: list[str] | None = None,
    level: int | list[int] | None = None,
    *,
    structure: str | layout.Structure | None = None,
) -> dict[str, str]:
    """State of every group of a dataset's cache: ``"fresh"``, ``"stale"`` or ``"missing"``.

    Splits with no images on disk are left out unless named in `splits`;
    `level` restricts the test groups and `structure` selects the dataset as
    in :func:`pack`.
    """
    dataset = dataset_folder(root, structure=structure)
    out = {}
    for split in splits or _splits_on_disk(dataset):
        for group in _groups(dataset, split, level):
            out[group.name] = fresh_index(dataset, group)[0]
    return out


def pack(
    root: str | os.PathLike[str],
    *,
    splits: list[str] | None = None,
    level: int | list[int] | None = None,
    force: bool = False,
    progress: bool = False,
    structure: str | layout.Structure | None = None,
) -> list[Packed]:
    """Pack a dataset's splits into memory-mappable arrays; rebuild only stale groups.

    Parameters
    ----------
    root : path-like
        Folder containing ``BioSR/`` or a dataset folder (``Microtubules``...).
    splits : list of str, optional
        Splits to pack; None (default) packs every split found on disk.
    level : int, list of int or None, optional
        Test levels to pack (default all of the structure's); ignored for
        other splits. Checked before anything is packed.
    force : bool, optional
        Rebuild even fresh groups.
    progress : bool, optional
        Show a progress bar per group.
    structure : str or Structure, optional
        Which structure under ``ROOT/BioSR/`` (default: Microtubules, or the
        only one there); the dataset's own structure gives its levels.

    Returns
    -------
    list of Packed
        One entry per group, in order.

    Raises
    ------
    DataError
        If the dataset is missing, a named split has no images, an image is
        unreadable, or images of a group differ in shape or dtype.
    """
    dataset = dataset_folder(root, structure=structure)
    if splits is None:
        splits = _splits_on_disk(dataset)
        if not splits:
            raise DataError(
                f"{dataset}: no images of any split; `biosr download` or `biosr simulate` "
                "can make them"
            )
    todo = [g for split in splits for g in _groups(dataset, split, level)]  # all checked first
    return [pack_group(dataset, group, force=force, progress=progress) for group in todo]


def _groups(dataset: Path, split: str, level: int | list[int] | None) -> list[Group]:
    """The groups of `split` of `dataset`, its structure's levels checked (DataError)."""
    structure = layout.structure_of(dataset)
    lev = level if split == "test" else None
    try:
        layout.split_levels(split, lev, structure=structure)
    except ValueError as exc:
        reason = str(exc).replace("; valid", f" for {structure.name}; valid", 1)
        raise DataError(f"{dataset}: {reason}") from None
    return groups(split, lev, structure=structure)


def read_images(
    paths: Sequence[str | os.PathLike[str]],
    alloc: Callable[[tuple[int, ...]], np.ndarray] | None = None,
    *,
    progress: bool = False,
    desc: str | None = None,
) -> np.ndarray:
    """Read 2-D float32 images of one shape into one ``(N, H, W)`` array, each read once.

    The first image fixes the shape; ``alloc(shape)`` returns the array filled
    (default :func:`numpy.empty`), so no list of images is held besides it.

    Raises
    ------
    DataError
        ``"PATH: reason"`` for the first image that is missing, unreadable,
        not float32 or of another shape than the first.
    """
    if not paths:
        raise ValueError("no images to read")
    first = read_tiff(paths[0], dtype=layout.DTYPE)
    shape = (len(paths), *first.shape)
    out = np.empty(shape, dtype=layout.DTYPE) if alloc is None else alloc(shape)
    out[0] = first
    rows = bar(enumerate(paths), enabled=progress, total=len(paths), desc=desc)
    for row, path in rows:
        if row:
            out[row] = read_tiff(path, shape=first.shape, dtype=layout.DTYPE)
    return out


def write_npy(
    path: str | os.PathLike[str],
    paths: Sequence[str | os.PathLike[str]],
    *,
    progress: bool = False,
    desc: str | None = None,
) -> tuple[int, ...]:
    """Write the images at `paths` as one ``(N, H, W)`` float32 ``.npy``, atomically.

    The header first, then each image as it is read (checked as in
    :func:`read_images`), so memory holds one image and a full disk is a
    :class:`biosr.io.atomic.DiskFullError` naming `path`, never a SIGBUS.

    Returns
    -------
    tuple of int
        The array's shape.
    """
    if not paths:
        raise ValueError("no images to read")
    first = read_tiff(paths[0], dtype=layout.DTYPE)
    shape = (len(paths), *first.shape)
    header = {"descr": np.lib.format.dtype_to_descr(layout.DTYPE), "fortran_order": False}
    with atomic_path(path, size=first.nbytes * len(paths)) as tmp, open(tmp, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {**header, "shape": shape})
        rows = bar(enumerate(paths), enabled=progress, total=len(paths), desc=desc)
        for row, src in rows:
            image = first if row == 0 else read_tiff(src, shape=first.shape, dtype=layout.DTYPE)
            fh.write(np.ascontiguousarray(image).tobytes())
    return shape


def pack_group(
    dataset: str | os.PathLike[str], group: Group, *, force: bool = False, progress: bool = False
) -> Packed:
    """Pack one group (see :func:`pack`); `dataset` is the ``Microtubules`` folder."""
    dataset = Path(dataset)
    folder = pack_dir(dataset)
    if not force:
        state, index = fresh_index(dataset, group)
        if state == "fresh" and index is not None:
            return Packed(group.name, folder / index["array"], tuple(index["shape"]), False, index)
    indices, paths = source_files(dataset, group)
    if not indices:
        raise DataError(
            f"{dataset / group.folder}: no images to pack; `biosr download` or "
            "`biosr simulate` can make them"
        )
    stats = _stats(paths)
    token = _token(indices, stats)
    array = folder / f"{group.name}.{token}.npy"
    folder.mkdir(exist_ok=True)
    remove_stale_parts(folder)
    shape = write_npy(array, paths, progress=progress, desc=group.name)
    if _stats(paths) != stats:
        with contextlib.suppress(FileNotFoundError):
            array.unlink()
        raise DataError(f"{dataset / group.folder}: files changed while packing; run it again")
    index = {
        "format": FORMAT,
        "group": group.name,
        "folder": group.folder.as_posix(),
        "array": array.name,
        "shape": list(shape),
        "dtype": str(layout.DTYPE),
        "indices": indices,
        "stats": stats,
    }
    write_text(folder / f"{group.name}.json", json.dumps(index, separators=(",", ":")) + "\n")
    for old in folder.glob(f"{group.name}.*.npy"):
        if old.name != array.name:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
    return Packed(group.name, array, shape, True, index)


def dataset_folder(
    root: str | os.PathLike[str], *, structure: str | layout.Structure | None = None
) -> Path:
    """The dataset folder of `root` (``BioSR/<structure>``, see :func:`biosr.layout.dataset_dir`).

    Raises
    ------
    DataError
        If there is none, or `structure` is unknown.
    """
    chosen = None if structure is None else layout.get_structure(structure, error=DataError)
    try:
        return layout.dataset_dir(root, structure=chosen)
    except FileNotFoundError as exc:
        raise DataError(str(exc)) from None


def _splits_on_disk(dataset: Path) -> list[str]:
    out = []
    for split in layout.SPLITS:
        if layout.pairs(dataset, split):
            out.append(split)
    return out
