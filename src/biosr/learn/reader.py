"""The reader engine: where each item of a split lives, and reading batches of it fast.

An index says where every item of a split is: :class:`PackedIndex` (rows of
the packed cache, :mod:`biosr.dataset.pack`) or :class:`FileIndex` (TIFF
paths). :class:`Reader` reads a batch of items: packed arrays with
``os.preadv`` straight into the batch buffer, each image under its random
symmetry, by several threads (the system call and NumPy's copies release the
GIL); files with :func:`biosr.dataset.pack.read_images`. Written by hand:
NumPy's memory maps fault every page on first touch, which costs about as
much as the copy itself, and no library reads rows of ``.npy`` files into a
caller's buffer. Kept apart from :class:`biosr.learn.data.BioSR` (what a
dataset item is) and free of torch.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from biosr import layout
from biosr.dataset import pack as _pack
from biosr.errors import DataError
from biosr.learn.transforms import DIHEDRAL_VIEWS

#: Values of the ``cache`` argument, the default first: ``auto`` reads the packed cache when
#: it is fresh, else the TIFFs; ``packed`` packs first if needed; ``files`` reads the TIFFs.
CACHE_MODES: tuple[str, ...] = ("auto", "packed", "files")


class PackedIndex(NamedTuple):
    """Where each item of a split lives in the packed cache (plain arrays: cheap to pickle)."""

    dataset: Path
    split: str
    levels: np.ndarray  # level per item (0 outside test)
    indices: np.ndarray  # image number per item
    wf_group: np.ndarray  # which WF array per item
    wf_rows: np.ndarray  # row in that array
    gt_rows: np.ndarray  # row in its GT array
    wf_arrays: tuple[str, ...]  # array file per WF group
    gt_arrays: tuple[str, ...]  # array file per GT group (one, or one per level: ER's test)
    gt_group: np.ndarray  # which GT array per item


class FileIndex(NamedTuple):
    """Where each item of a split lives as TIFF files."""

    dataset: Path
    split: str
    levels: np.ndarray  # level per item (0 outside test)
    indices: np.ndarray  # image number per item
    wf_paths: tuple[str, ...]  # per item
    gt_paths: tuple[str, ...]  # per item


#: Either index.
Index = PackedIndex | FileIndex


def _missing(where: Path | str, split: str) -> DataError:
    return DataError(
        f"{where}: no {split} pairs here; `biosr download` or `biosr simulate` can make them"
    )


def build_index(
    root: str | os.PathLike[str],
    split: str,
    levels: list[int] | None,
    cache: str,
    *,
    structure: str | layout.Structure | None = None,
    progress: bool = False,
) -> Index:
    """The index of `split` (test: `levels`) under `root`: packed when `cache` allows and the
    cache is fresh (``"packed"`` packs it first), else the TIFF files.

    `structure` selects the dataset under ``ROOT/BioSR/`` (default: Microtubules,
    or the only one there); the dataset's structure gives the test levels.

    Raises
    ------
    DataError
        When the split has no pairs, or a packed WF image has no GT.
    """
    dataset = _pack.dataset_folder(root, structure=structure)
    chosen = layout.structure_of(dataset) if structure is None else layout.get_structure(structure)
    lev_arg = levels
    if split == "test" and levels == list(chosen.levels):  # all levels: those on disk
        lev_arg = [
            lv for lv in chosen.levels if layout.pairs(dataset, split, lv, structure=chosen)
        ] or None
    all_groups = _pack.groups(split, lev_arg, structure=chosen)
    wf_groups = [g for g in all_groups if g.role == "wf"]
    gt_groups = [g for g in all_groups if g.role == "gt"]
    if cache != "files":
        states = [_pack.fresh_index(dataset, g) for g in [*wf_groups, *gt_groups]]
        indexes = [index if state == "fresh" else None for state, index in states]
        if cache == "packed" and any(i is None for i in indexes):
            if not layout.pairs(dataset, split, lev_arg, structure=chosen):
                raise _missing(dataset, split)
            indexes = [
                _pack.pack_group(dataset, group, force=True, progress=progress).index
                if idx is None
                else idx
                for group, idx in zip([*wf_groups, *gt_groups], indexes, strict=True)
            ]
        if all(i is not None for i in indexes):
            return _packed_index(dataset, split, wf_groups, gt_groups, indexes)
    pairs = layout.pairs(dataset, split, lev_arg, structure=chosen)
    if not pairs:
        raise _missing(dataset, split)
    return FileIndex(
        dataset=dataset,
        split=split,
        levels=np.array([p.level or 0 for p in pairs], dtype=np.intp),
        indices=np.array([p.index for p in pairs], dtype=np.intp),
        wf_paths=tuple(str(p.wf) for p in pairs),
        gt_paths=tuple(str(p.gt) for p in pairs),
    )


def _packed_index(
    dataset: Path,
    split: str,
    wf_groups: list[_pack.Group],
    gt_groups: list[_pack.Group],
    indexes: list[dict[str, Any]],
) -> PackedIndex:
    wf_idx, gt_idx = indexes[: len(wf_groups)], indexes[len(wf_groups) :]
    gt_row_of = [{i: r for r, i in enumerate(idx["indices"])} for idx in gt_idx]
    gt_of_level = {g.level: k for k, g in enumerate(gt_groups)}  # {None: 0} when shared
    levels, indices, group_of, rows, gt_of, gt_rows = [], [], [], [], [], []
    for g, (group, idx) in enumerate(zip(wf_groups, wf_idx, strict=True)):
        k = gt_of_level.get(group.level, 0)
        for row, i in enumerate(idx["indices"]):
            if i not in gt_row_of[k]:
                name = layout.file_name(split, i)
                raise DataError(f"{dataset / gt_groups[k].folder / name}: file not found")
            levels.append(group.level or 0)
            indices.append(i)
            group_of.append(g)
            rows.append(row)
            gt_of.append(k)
            gt_rows.append(gt_row_of[k][i])
    if not indices:
        raise _missing(dataset, split)
    return PackedIndex(
        dataset=dataset,
        split=split,
        levels=np.array(levels, dtype=np.intp),
        indices=np.array(indices, dtype=np.intp),
        wf_group=np.array(group_of, dtype=np.intp),
        wf_rows=np.array(rows, dtype=np.intp),
        gt_rows=np.array(gt_rows, dtype=np.intp),
        wf_arrays=tuple(i["array"] for i in wf_idx),
        gt_arrays=tuple(i["array"] for i in gt_idx),
        gt_group=np.array(gt_of, dtype=np.intp),
    )


class Reader:
    """Reads batches of images of an index: TIFF files, or packed arrays with ``os.preadv``.

    Packed arrays are read with ``os.preadv`` straight into the batch buffer:
    one system call per image, no page-table faults on first touch (which
    cost a memory map about as much as the copy itself). Several threads
    share a batch's images (``os.preadv`` and NumPy copies release the GIL).
    File descriptors and the thread pool are made lazily, once per process,
    and never pickled into workers.
    """

    def __init__(self, index: Index) -> None:
        self.index = index
        self._files: dict[str, tuple[int, int, tuple[int, ...]]] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._helpers = 0  # threads of _pool
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        return {"index": self.index, "_files": None, "_pool": None, "_helpers": 0, "_pid": -1}

    def __del__(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._pid == os.getpid():
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            for fd, _, _ in (self._files or {}).values():
                os.close(fd)
        self._files, self._pool, self._helpers = None, None, 0

    def maps(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Read-only memory maps of the WF and the GT arrays (one per group; packed)."""
        folder = _pack.pack_dir(self.index.dataset)
        try:
            wf = [np.load(folder / a, mmap_mode="r") for a in self.index.wf_arrays]
            gt = [np.load(folder / a, mmap_mode="r") for a in self.index.gt_arrays]
        except FileNotFoundError as exc:
            raise _vanished(exc.filename) from None
        return wf, gt

    def _open(self) -> dict[str, tuple[int, int, tuple[int, ...]]]:
        if self._files is None or self._pid != os.getpid():
            self._files, self._pool, self._helpers = {}, None, 0
            self._pid = os.getpid()
            folder = _pack.pack_dir(self.index.dataset)
            for name in {*self.index.wf_arrays, *self.index.gt_arrays}:
                try:
                    mm = np.load(folder / name, mmap_mode="r")
                    fd = os.open(folder / name, os.O_RDONLY)
                except FileNotFoundError as exc:
                    raise _vanished(exc.filename) from None
                self._files[name] = (fd, int(mm.offset), tuple(mm.shape[1:]))
                del mm
        return self._files

    def shape(self, role: str) -> tuple[int, ...] | None:
        """Image shape of `role` when packed (known without reading), else None."""
        if not isinstance(self.index, PackedIndex):
            return None
        arrays = self.index.gt_arrays if role == "gt" else self.index.wf_arrays
        return self._open()[arrays[0]][2]

    def read_files(self, items: np.ndarray, role: str) -> np.ndarray:
        """The ``(B, H, W)`` images of `role` (``"wf"``/``"gt"``) of `items`, from TIFFs (files)."""
        paths = self.index.wf_paths if role == "wf" else self.index.gt_paths
        return _pack.read_images([paths[i] for i in items])

    def read_packed(
        self,
        items: np.ndarray,
        outs: dict[str, np.ndarray],
        ks: np.ndarray | None = None,
        threads: int = 1,
    ) -> None:
        """Read the images of `items` of each role into ``outs[role]`` (``(B, H, W)``), packed.

        With `ks`, image ``j`` is stored under symmetry ``ks[j]``: it is read
        into a small scratch buffer that stays in cache and copied from there
        through the symmetry's view, one pass over the batch. With `threads`
        above 1, the calling thread and ``threads - 1`` helpers take images
        from one shared counter until none is left, so they finish together
        whenever each started.
        """
        ix, files = self.index, self._open()
        n = len(items)
        plans = []
        for role, out in outs.items():
            if role == "wf":
                names = [ix.wf_arrays[g] for g in ix.wf_group[items]]
                rows = ix.wf_rows[items].tolist()
            else:
                names = [ix.gt_arrays[g] for g in ix.gt_group[items]]
                rows = ix.gt_rows[items].tolist()
            plans.append((out, names, rows))
        symmetries = [0] * n if ks is None else ks.tolist()
        total = n * len(plans)
        take = itertools.count()  # next() is atomic: each image is read once
        helpers = max(0, min(threads, total) - 1)
        if helpers and self._helpers != helpers:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(helpers, thread_name_prefix="biosr-read")
            self._helpers = helpers
        job = (files, plans, symmetries, take, total)
        helping = [self._pool.submit(_read_images, *job) for _ in range(helpers)]
        try:
            _read_images(*job)
        finally:
            for done in helping:
                done.result()


def _read_images(
    files: dict[str, tuple[int, int, tuple[int, ...]]],
    plans: list[tuple[np.ndarray, list[str], list[int]]],
    symmetries: list[int],
    take: Iterator[int],
    total: int,
) -> None:
    """Read images numbered by `take` until `total`: image ``t`` is item ``t // len(plans)``
    of plan ``t % len(plans)`` (a role's output, array names and rows)."""
    scratch: dict[tuple[int, ...], list[np.ndarray]] = {}  # symmetry views, by shape
    for t in take:
        if t >= total:
            return
        j, p = divmod(t, len(plans))
        out, names, rows = plans[p]
        fd, offset, shape = files[names[j]]
        if shape != out.shape[1:]:
            raise DataError(f"{names[j]}: packed array shaped otherwise than its index")
        k = symmetries[j]
        if k:
            if shape not in scratch:
                buffer = np.empty(shape, dtype=np.float32)
                scratch[shape] = [view(buffer) for view in DIHEDRAL_VIEWS]
            target = scratch[shape][0]
        else:
            target = out[j]
        nbytes = target.nbytes
        if os.preadv(fd, [target], offset + rows[j] * nbytes) != nbytes:
            raise DataError(f"{names[j]}: packed array shorter than its index")
        if k:
            np.copyto(out[j], scratch[shape][k])


def _vanished(filename: str) -> DataError:
    return DataError(
        f"{filename}: packed array vanished (repacked meanwhile?); create the dataset again"
    )
