"""A Lightning data module over :class:`biosr.learn.data.BioSR`: one place for data options.

Training uses the training split with random symmetries of the square (and an
optional random crop), validation the validate split as stored, testing and
prediction the test split. Batches are :class:`biosr.learn.data.Sample`
``(wf, gt)`` or, for the test split, :class:`biosr.learn.data.TestSample`
``(wf, gt, level, index)``; both unpack as ``wf, gt = batch[0], batch[1]``.
Under DDP the training loader gets an :class:`EpochDistributedSampler` (which
Lightning keeps: it is a ``DistributedSampler``), so the dataset's epoch, and
with it the random augmentation, advances every epoch; the dataset's batched
loading and :func:`biosr.learn.data.collate` work with it unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from biosr.errors import DataError
from biosr.learn.data import BioSR, EpochSampler, collate
from biosr.learn.transforms import Compose, Dihedral, RandomCrop, Transform


class EpochDistributedSampler(DistributedSampler):
    """A ``DistributedSampler`` whose :meth:`set_epoch` also sets the dataset's epoch.

    Lightning calls ``set_epoch`` at every epoch start; a plain
    ``DistributedSampler`` reshuffles then, but the dataset's random transforms
    (seeded by seed, epoch and indices) would repeat epoch 0's draws forever.
    """

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


class BioSRDataModule(L.LightningDataModule):
    """Training, validation and test loaders of a BioSR dataset copy.

    Parameters
    ----------
    root : path-like
        Folder containing ``BioSR/``, or a dataset folder (``Microtubules``...).
    batch_size : int, optional
        Pairs per training batch (default 4, as the authors).
    num_workers : int, optional
        DataLoader worker processes (default 0: load in the main process,
        which is fastest from the packed cache on a small machine).
    cache : {'auto', 'packed', 'files'}, optional
        See :class:`biosr.learn.data.BioSR`. Use ``"packed"`` to build the cache
        once before training.
    augment : bool, optional
        Random symmetry of the square per training pair (default True).
    crop : int, optional
        Random WF crop side for training (the GT crop keeps the scale);
        None (default) trains on whole patches.
    normalize : {'stored', 'minmax', 'percentile'}, optional
        Normalisation of every split (default as stored).
    test_level : int, list of int or None, optional
        Test levels for ``test``/``predict`` (default all of the structure's).
    eval_batch_size : int, optional
        Batch size of validation and test (default: `batch_size`).
    seed : int, optional
        Seed of shuffling and augmentation (default 0).
    download : bool, optional
        Fetch missing splits with :func:`biosr.acquire.download.download`.
    pin_memory : bool, optional
        Pin batches for asynchronous host-to-GPU copies (default: when CUDA is
        available). Loading in the main process, packed batches are read straight
        into pinned memory (:class:`~biosr.learn.data.BioSR` ``pin_memory``);
        Lightning copies them to the GPU with ``non_blocking=True``.
    structure : str, optional
        Which structure under ``ROOT/BioSR/`` (default: Microtubules, or the
        only one there), as in :class:`~biosr.learn.data.BioSR`.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        batch_size: int = 4,
        num_workers: int = 0,
        cache: str = "auto",
        augment: bool = True,
        crop: int | None = None,
        normalize: str = "stored",
        test_level: int | Sequence[int] | None = None,
        eval_batch_size: int | None = None,
        seed: int = 0,
        download: bool = False,
        pin_memory: bool | None = None,
        structure: str | None = None,
    ) -> None:
        super().__init__()
        if crop is not None and int(crop) < 1:
            raise DataError(f"crop must be at least 1 pixel, got {crop!r}")
        self.root = Path(root)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.cache = cache
        self.augment = bool(augment)
        self.crop = crop
        self.normalize = normalize
        self.test_level = test_level
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.seed = int(seed)
        self.download = bool(download)
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else bool(pin_memory)
        self.structure = structure
        self.train_set: BioSR | None = None
        self.val_set: BioSR | None = None
        self.test_set: BioSR | None = None

    def train_transforms(self) -> Transform | None:
        """The training augmentation: random symmetry, then the optional crop."""
        ts: list[Transform] = []
        if self.augment:
            ts.append(Dihedral())
        if self.crop is not None:
            ts.append(RandomCrop(self.crop))
        return Compose(ts) if ts else None

    def _dataset(self, split: str, **kwargs: Any) -> BioSR:
        return BioSR(
            self.root,
            split,
            normalize=self.normalize,
            download=self.download,
            cache=self.cache,
            seed=self.seed,
            pin_memory=self.pin_memory and self.num_workers == 0,
            structure=self.structure,
            **kwargs,
        )

    def prepare_data(self) -> None:
        """Download missing splits (once per node) when ``download=True``."""
        if self.download:
            for split in ("training", "validate"):
                self._dataset(split)

    def setup(self, stage: str | None = None) -> None:
        """Create the datasets a stage needs (``fit``, ``validate``, ``test``, ``predict``)."""
        if stage in (None, "fit") and self.train_set is None:
            train_set = self._dataset("training", transforms=self.train_transforms())
            if self.crop is not None:
                h, w = train_set.wf_shape
                if self.crop > min(h, w):
                    raise DataError(
                        f"{train_set.dataset_dir}: crop {self.crop} larger than the training "
                        f"patches ({h} x {w})"
                    )
            self.train_set = train_set
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._dataset("validate")
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self._dataset("test", level=self.test_level)

    def _loader(self, dataset: BioSR | None, batch_size: int, sampler: Any = None) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() with the matching stage first")
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate,
            pin_memory=self.pin_memory,
            persistent_workers=False,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (seeded), with augmentation; resumable exactly.

        On one device the order comes from an :class:`~biosr.learn.data.EpochSampler`:
        epoch ``e`` is one permutation of ``(seed, e)``, and a run resumed from
        a checkpoint skips the batches its restored step count says were
        trained on in that epoch, so it sees exactly the batches an
        uninterrupted run would. Under DDP an :class:`EpochDistributedSampler`
        (a permutation of seed and epoch, split across ranks) is passed here,
        so the augmentation follows the epoch too; there a resume is exact from
        end-of-epoch checkpoints.
        """
        trainer, dataset = self.trainer, self.train_set
        if dataset is None:
            raise RuntimeError("call setup() with the matching stage first")
        if trainer is not None and trainer.world_size > 1:
            ddp = EpochDistributedSampler(
                dataset,
                num_replicas=trainer.world_size,
                rank=trainer.global_rank,
                shuffle=True,
                seed=self.seed,
            )
            ddp.set_epoch(trainer.current_epoch)
            return self._loader(dataset, self.batch_size, sampler=ddp)
        epoch, done = 0, 0
        if trainer is not None:
            per_epoch = -(-len(dataset) // self.batch_size)
            epoch = trainer.current_epoch
            done = (trainer.global_step * trainer.accumulate_grad_batches) % per_epoch
        sampler = EpochSampler(dataset, self.seed, epoch=epoch, start=done * self.batch_size)
        return self._loader(dataset, self.batch_size, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in dataset order."""
        return self._loader(self.val_set, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        """Test batches (``TestSample``) in dataset order: by level, then index."""
        return self._loader(self.test_set, self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        """As :meth:`test_dataloader`."""
        return self.test_dataloader()
