"""Load the dataset for deep learning: a PyTorch map-style dataset and plain NumPy arrays.

:class:`BioSR` is a map-style dataset in torchvision's manner. It reads the
packed cache (:mod:`biosr.dataset.pack`) when one is fresh, else the TIFF files, and
loads a whole batch at once through ``__getitems__`` (which
:class:`torch.utils.data.DataLoader` calls with the batch's indices): the
reader engine (:mod:`biosr.learn.reader`) reads the images straight into one
batch tensor, each under its random symmetry, and :func:`collate` hands that
tensor on without a second copy. :func:`load_arrays` gives the same data as NumPy arrays, for any
framework, memory-mapped when packed. torch is imported only by :class:`BioSR`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from biosr import layout
from biosr import normalize as norm
from biosr.dataset import pack as _pack
from biosr.errors import BiosrError, DataError
from biosr.learn.reader import CACHE_MODES, PackedIndex, Reader, build_index
from biosr.learn.transforms import DIHEDRAL_VIEWS, Compose, Dihedral, Transform


class Sample(NamedTuple):
    """A training or validation item: ``wf, gt = dataset[i]``.

    Attributes
    ----------
    wf : torch.Tensor
        Widefield input, float32, ``(1, H, W)`` (a batch: ``(B, 1, H, W)``).
    gt : torch.Tensor
        SIM target, float32, ``(1, s*H, s*W)`` with ``s`` 1 (published), 2, or 3
        (nonlinear SIM at its native scale).
    """

    wf: Any
    gt: Any


class TestSample(NamedTuple):
    """A test item: ``wf, gt, level, index = dataset[i]`` (or by attribute).

    Attributes
    ----------
    wf, gt : torch.Tensor
        As in :class:`Sample`.
    level : int
        Signal level of the input, 1..9 (ER 1..6, F-actin 1..12; a tensor of
        levels in a batch).
    index : int
        Image number, as in the file name ``NNN.tif`` (a tensor in a batch).
    """

    wf: Any
    gt: Any
    level: Any
    index: Any


def _structure_of(
    root: str | os.PathLike[str], structure: str | layout.Structure | None
) -> layout.Structure:
    """`structure` if given (checked), else that of the dataset at `root` (default if none)."""
    if structure is not None:
        return layout.get_structure(structure, error=DataError)
    try:
        return layout.structure_of(layout.dataset_dir(root))
    except FileNotFoundError:  # not there (yet): the default, as a download would bring
        return layout.MICROTUBULES


def _check_args(
    split: str, level: Any, cache: str, structure: layout.Structure = layout.MICROTUBULES
) -> list[int] | None:
    """The levels to load as :func:`biosr.layout.pairs` takes them (None outside test)."""
    try:
        levels = layout.split_levels(split, level, structure=structure, error=ValueError)
    except ValueError as exc:
        detail = str(exc)
        if detail.startswith("unknown level"):
            detail = detail.replace("; valid", f" for {structure.name}; valid", 1)
        raise DataError(detail) from None
    if cache not in CACHE_MODES:
        raise DataError(f"unknown cache {cache!r}; valid: {', '.join(CACHE_MODES)}")
    return None if split != "test" else [lv for lv in levels if lv is not None]


def _place(out: np.ndarray, raw: np.ndarray, ks: np.ndarray | None) -> np.ndarray:
    """Copy batch `raw` into `out`, sample ``j`` under symmetry ``ks[j]`` (one copy each)."""
    if ks is None:
        out[...] = raw
        return out
    if raw.shape[-1] != raw.shape[-2] and np.any(ks % 2 == 1):
        raise DataError(f"random symmetries need square images, got {raw.shape[-2:]}")
    for j, k in enumerate(ks.tolist()):
        out[j] = DIHEDRAL_VIEWS[k](raw[j])
    return out


def _split_transforms(
    transforms: Transform | None,
) -> tuple[Dihedral | None, list[Transform]]:
    """A leading :class:`Dihedral` (fused into the copy from disk) and the rest."""
    if transforms is None:
        return None, []
    ts = list(transforms.transforms) if isinstance(transforms, Compose) else [transforms]
    if ts and isinstance(ts[0], Dihedral):
        return ts[0], ts[1:]
    return None, ts


class BioSR:
    """A BioSR dataset (any structure) as a map-style dataset for ``torch.utils.data``.

    It has what :class:`~torch.utils.data.DataLoader` (and Lightning) use of a
    map-style ``Dataset``, ``__len__``, ``__getitem__`` and ``__getitems__``,
    without subclassing it, so that importing this module does not import torch.

    Parameters
    ----------
    root : path-like
        Folder containing ``BioSR/``, or a dataset folder itself (``Microtubules``...).
    split : {'training', 'validate', 'test'}, optional
        Which split (default ``"training"``).
    level : int, list of int or None, optional
        Test levels to include (those of the dataset's structure: 1..9, ER
        1..6, F-actin 1..12); None (default) means all. Must be None for
        training and validation.
    transforms : callable, optional
        A paired transform ``t(wf, gt, rng) -> (wf, gt)`` on NumPy batches
        ``(N, H, W)`` (see :mod:`biosr.learn.transforms`), applied after
        normalisation. A leading :class:`~biosr.learn.transforms.Dihedral` is fused
        into the copy from disk (it commutes with per-image normalisation).
    normalize : {'stored', 'minmax', 'percentile'}, optional
        Values as stored (default), per-image min-max to [0, 1], or per-image
        percentiles (:data:`biosr.normalize.PERCENTILES`) to 0 and 1;
        applied to WF and GT separately.
    download : bool, optional
        If the split is not on disk, fetch it with :func:`biosr.acquire.download.download`.
    cache : {'auto', 'packed', 'files'}, optional
        ``"auto"`` (default) reads the packed cache if it is fresh, else the
        TIFFs; ``"packed"`` builds the cache first if it is missing or stale;
        ``"files"`` always reads the TIFFs.
    seed : int, optional
        Seed of the random transforms. The random state of a load depends on
        `seed`, :attr:`epoch` and the indices loaded together, never on the
        number of workers or their order.
    progress : bool, optional
        Show progress while building a cache or downloading.
    threads : int, optional
        Threads that read a batch from the packed cache. None (default) takes
        :func:`torch.get_num_threads`: all cores in the main process, one in
        a ``DataLoader`` worker (where PyTorch sets one thread). Items do not
        depend on it.
    pin_memory : bool, optional
        Read packed batches straight into page-locked (pinned) memory, so that
        their copy to a GPU can be asynchronous, without the extra copy a
        ``DataLoader(pin_memory=True)`` makes (default False). Only in the main
        process and where CUDA is available; otherwise ignored.
    structure : str or Structure, optional
        Which structure under ``ROOT/BioSR/`` (:data:`biosr.layout.STRUCTURES`);
        None (default) takes Microtubules, or the only structure there. The
        dataset's structure (:attr:`structure`) gives its test levels.

    Items
    -----
    ``dataset[i]`` is a :class:`Sample` ``(wf, gt)`` of float32 tensors
    ``(1, H, W)`` and ``(1, s*H, s*W)`` for training and validation; for the
    test split a :class:`TestSample` ``(wf, gt, level, index)``. Items are in
    :func:`biosr.layout.pairs` order: by level, then image number. Use
    :func:`collate` as the ``DataLoader``'s ``collate_fn`` to get batches
    without a second copy (the default collate gives the same values).

    Raises
    ------
    DataError
        Unknown split, level, normalize or cache (the message lists the valid
        values), or no data (the message says ``biosr download`` or
        ``biosr simulate`` can make it).

    Examples
    --------
    >>> from torch.utils.data import DataLoader
    >>> from biosr.learn.transforms import Dihedral
    >>> ds = BioSR("/data", transforms=Dihedral())  # doctest: +SKIP
    >>> loader = DataLoader(ds, batch_size=64, shuffle=True, collate_fn=collate)  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "training",
        level: int | Sequence[int] | None = None,
        transforms: Transform | None = None,
        normalize: str = "stored",
        download: bool = False,
        cache: str = "auto",
        *,
        seed: int = 0,
        progress: bool = False,
        threads: int | None = None,
        pin_memory: bool = False,
        structure: str | layout.Structure | None = None,
    ) -> None:
        try:
            import torch
        except ImportError:  # pragma: no cover
            raise BiosrError(
                "biosr.learn.data.BioSR needs PyTorch: pip install 'biosr[ml]'"
            ) from None
        chosen = _structure_of(root, structure)
        levels = _check_args(split, level, cache, chosen)
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise DataError(f"threads must be a positive integer or None, got {threads!r}")
        norm.check_normalization(normalize)
        if download and not _has_pairs(root, split, levels, chosen):
            from biosr.acquire.download import download as fetch

            fetch(root, splits=[split], structure=chosen, progress=progress)
        #: The dataset's BioSR structure (:class:`biosr.layout.Structure`).
        self.structure = chosen
        self.root = Path(root)
        self.split = split
        self.levels = levels
        self.transforms = transforms
        self.normalize = normalize
        self.seed = int(seed)
        self.threads = threads
        self.pin_memory = bool(pin_memory) and torch.cuda.is_available()
        self.epoch = 0
        self._index = build_index(
            root, split, levels, cache, structure=structure, progress=progress
        )
        self._reader = Reader(self._index)
        self._dihedral, self._rest = _split_transforms(transforms)

    @property
    def dataset_dir(self) -> Path:
        """The dataset folder read (``BioSR/<structure>``)."""
        return self._index.dataset

    @property
    def packed(self) -> bool:
        """True if items come from the packed cache, False if from TIFF files."""
        return isinstance(self._index, PackedIndex)

    @property
    def wf_shape(self) -> tuple[int, ...]:
        """``(H, W)`` of the WF images as stored (of the first item when read from files)."""
        shape = self._reader.shape("wf")
        if shape is None:
            shape = self._reader.read_files(np.zeros(1, dtype=np.intp), "wf").shape[1:]
        return tuple(shape)

    @property
    def pairs(self) -> list[layout.Pair]:
        """The :class:`biosr.layout.Pair` of every item, in item order."""
        ix = self._index
        return [
            layout.pair(ix.dataset, self.split, int(i), int(lv) or None, structure=self.structure)
            for lv, i in zip(ix.levels, ix.indices, strict=True)
        ]

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that, with the seed, draws the random transforms."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._index.indices)

    def __getitem__(self, i: int) -> Sample | TestSample:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: Iterable[int]) -> Sequence[Sample | TestSample]:
        """Load several items at once (the DataLoader calls this with a batch's indices).

        Returns a sequence of items that are views into one batch tensor per
        field (made when accessed); :func:`collate` returns those tensors as
        the batch without touching the items.
        """
        import torch

        items = np.asarray(list(indices), dtype=np.intp).reshape(-1)
        n = len(self)
        if items.size and (items.min() < -n or items.max() >= n):
            raise IndexError(f"index out of range for a dataset of {n} items")
        items = items % n
        rng = None
        if self.transforms is not None:
            # the batch's indices enter as one 64-bit digest: seeding from
            # all of them costs as much as reading a fifth of the batch
            digest = hashlib.blake2b(items.astype("<i8").tobytes(), digest_size=8).digest()
            rng = np.random.default_rng([self.seed, self.epoch, int.from_bytes(digest, "little")])
        ks = self._dihedral.draw(len(items), rng) if self._dihedral is not None else None
        threads = torch.get_num_threads() if self.threads is None else self.threads
        batch: dict[str, tuple[Any, np.ndarray]] = {}
        fused: dict[str, np.ndarray] = {}
        for role in ("wf", "gt"):
            shape = self._reader.shape(role)
            if shape is None:
                raw = self._reader.read_files(items, role)
            elif ks is None or shape[-1] == shape[-2]:
                # packed: read straight into the batch, symmetries applied on the way
                batch[role] = _empty_batch(torch, (len(items), *shape), self._rest, self.pin_memory)
                fused[role] = batch[role][1]
                continue
            else:
                raw = np.empty((len(items), *shape), dtype=np.float32)
                self._reader.read_packed(items, {role: raw}, threads=threads)
            batch[role] = _empty_batch(torch, raw.shape, self._rest, self.pin_memory)
            _place(batch[role][1], raw, ks)
        if fused:
            self._reader.read_packed(items, fused, ks, threads)
        (wf_t, wf), (gt_t, gt) = batch["wf"], batch["gt"]
        if self.normalize != "stored" or self._rest:
            wf = norm.normalize(wf, self.normalize)
            gt = norm.normalize(gt, self.normalize)
            for t in self._rest:
                wf, gt = t(wf, gt, rng)
            wf_t = torch.from_numpy(np.ascontiguousarray(wf, dtype=np.float32)[:, np.newaxis])
            gt_t = torch.from_numpy(np.ascontiguousarray(gt, dtype=np.float32)[:, np.newaxis])
        if self.split != "test":
            return _Batch(Sample(wf_t, gt_t))
        levels = torch.from_numpy(self._index.levels[items].astype(np.int64))
        index = torch.from_numpy(self._index.indices[items].astype(np.int64))
        return _Batch(TestSample(wf_t, gt_t, levels, index))

    def __repr__(self) -> str:
        lv = "" if self.split != "test" else f", level={self.levels}"
        return (
            f"BioSR({str(self.dataset_dir)!r}, structure={self.structure.name!r}, "
            f"split={self.split!r}{lv}, items={len(self)}, "
            f"packed={self.packed}, normalize={self.normalize!r}, transforms={self.transforms!r})"
        )


def _empty_batch(
    torch: Any, shape: tuple[int, ...], rest: list, pin: bool = False
) -> tuple[Any, np.ndarray]:
    """A ``(B, 1, H, W)`` float32 tensor (in shared memory inside a worker, pinned in the main
    process if `pin`) and its ``(B, H, W)`` NumPy view; plain NumPy when later transforms will
    replace it anyway."""
    b, h, w = shape
    if rest:
        return None, np.empty(shape, dtype=np.float32)
    full = (b, 1, h, w)
    if torch.utils.data.get_worker_info() is not None:
        storage = torch.UntypedStorage._new_shared(b * h * w * 4)
        t = torch.empty(0, dtype=torch.float32).set_(storage, 0, full, (h * w, h * w, w, 1))
    else:
        t = torch.empty(full, dtype=torch.float32, pin_memory=pin)
    return t, t.numpy()[:, 0]


class _Batch(Sequence):
    """The items loaded by one :meth:`BioSR.__getitems__` call, as a sequence.

    It holds the batch (a :class:`Sample` or :class:`TestSample` of batch
    tensors) and makes item ``j`` (views into those tensors) only when it is
    accessed, so :func:`collate` costs nothing per item.
    """

    def __init__(self, batch: Sample | TestSample) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return len(self.batch.wf)

    def __getitem__(self, j: Any) -> Any:
        if isinstance(j, slice):
            return [self[i] for i in range(len(self))[j]]
        b = self.batch
        if isinstance(b, TestSample):
            return TestSample(b.wf[j], b.gt[j], int(b.level[j]), int(b.index[j]))
        return Sample(b.wf[j], b.gt[j])


def collate(items: Sequence[Any]) -> Any:
    """``collate_fn`` for a DataLoader over :class:`BioSR`: the batch without a second copy.

    Items loaded together by :meth:`BioSR.__getitems__` are views into one
    tensor per field; this returns those tensors. Anything else goes to
    PyTorch's ``default_collate``, which gives the same values.
    """
    from torch.utils.data import default_collate

    if isinstance(items, _Batch):
        return items.batch
    return default_collate(items)


def _has_pairs(
    root: str | os.PathLike[str],
    split: str,
    levels: list[int] | None,
    structure: layout.Structure,
) -> bool:
    try:
        base = layout.dataset_dir(root, structure=structure)
    except FileNotFoundError:
        return False
    return bool(layout.pairs(base, split, levels, structure=structure))


class EpochSampler:
    """Shuffled indices whose order depends only on ``(seed, epoch)``: resumable exactly.

    A ``RandomSampler`` with a seeded generator draws epoch after epoch from
    one stream, so a run resumed from a checkpoint sees other batches than
    the run it continues. Here epoch ``e`` is always the same permutation;
    :meth:`set_epoch` (which Lightning calls at every epoch start, as for a
    ``DistributedSampler``) also passes the epoch to the dataset, whose random
    transforms depend on it; `start` skips the first indices of the first
    epoch iterated (batches a resumed run had already trained on). Its length
    stays the whole epoch, so loop counters stay consistent.

    Parameters
    ----------
    dataset : sized
        The dataset (its ``set_epoch`` is called when it has one).
    seed : int, optional
        Seed of every epoch's permutation.
    epoch : int, optional
        Epoch to start at.
    start : int, optional
        Indices of that epoch to skip.

    Examples
    --------
    >>> s = EpochSampler(range(5), seed=0, epoch=3)
    >>> list(s) == list(EpochSampler(range(5), seed=0, epoch=3))
    True
    >>> list(EpochSampler(range(5), seed=0, epoch=3, start=2)) == list(s)[2:]
    True
    """

    def __init__(self, dataset: Any, seed: int = 0, epoch: int = 0, start: int = 0) -> None:
        self.dataset, self.seed, self.start = dataset, seed, start
        self.epoch = -1
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Use epoch `epoch`'s permutation next (a new epoch drops the skip)."""
        if epoch != self.epoch and self.epoch >= 0:
            self.start = 0
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.dataset))
        start, self.start = self.start, 0  # the skip applies once
        return iter(order[start:].tolist())

    def __len__(self) -> int:
        return len(self.dataset)


def load_arrays(
    root: str | os.PathLike[str],
    split: str,
    level: int | Sequence[int] | None = None,
    *,
    cache: str = "auto",
    progress: bool = False,
    structure: str | layout.Structure | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load a split (or test levels) as NumPy arrays ``(wf, gt)``; no torch needed.

    Parameters
    ----------
    root : path-like
        Folder containing ``BioSR/``, or a dataset folder (``Microtubules``...).
    split : {'training', 'validate', 'test'}
        Which split.
    level : int, list of int or None, optional
        Test levels; None means all of the structure's, concatenated level by level.
    cache : {'auto', 'packed', 'files'}, optional
        As in :class:`BioSR`.
    progress : bool, optional
        Show a progress bar while reading files or packing.
    structure : str or Structure, optional
        Which structure under ``ROOT/BioSR/``, as in :class:`BioSR`.

    Returns
    -------
    wf, gt : ndarray
        ``(N, H, W)`` and ``(N, s*H, s*W)`` float32, row ``i`` one pair, in
        :func:`biosr.layout.pairs` order. Read-only memory maps when packed
        and a single group is asked for (training, validation, or one test
        level whose GT rows line up); otherwise arrays in memory (so are the
        GTs of several ER test levels, which has one GT per level).

    Examples
    --------
    >>> wf, gt = load_arrays("/data", "test", level=9)  # doctest: +SKIP
    """
    levels = _check_args(split, level, cache, _structure_of(root, structure))
    index = build_index(root, split, levels, cache, structure=structure, progress=progress)
    if isinstance(index, PackedIndex):
        wf_maps, gt_maps = Reader(index).maps()
        wf = wf_maps[0] if len(wf_maps) == 1 else np.concatenate(wf_maps)
        rows = index.gt_rows
        if len(gt_maps) == 1:
            gt_map = gt_maps[0]
            contiguous = len(rows) == len(gt_map) and np.array_equal(rows, np.arange(len(gt_map)))
            return wf, gt_map if contiguous else gt_map[rows]
        gt = np.empty((len(rows), *gt_maps[0].shape[1:]), dtype=gt_maps[0].dtype)
        for k, gt_map in enumerate(gt_maps):  # one GT array per level (ER's test split)
            chosen = index.gt_group == k
            gt[chosen] = gt_map[rows[chosen]]
        return wf, gt
    wf = _pack.read_images(index.wf_paths, progress=progress, desc=f"reading {split} WF")
    gt = _pack.read_images(index.gt_paths, progress=progress, desc=f"reading {split} GT")
    return wf, gt
