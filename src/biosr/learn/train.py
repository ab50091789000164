"""Train DFCAN or the U-Net on a BioSR copy with PyTorch Lightning.

The defaults are the BioSR authors' recipe: Adam at 1e-4, loss
``MSE + 0.1 * (1 - SSIM)``, the learning rate halved when the validation NRMSE
has not improved for 10 validations (floor 1e-5), and the best weights kept by
validation NRMSE. Everything is an option. Lightning supplies mixed precision,
multi-GPU and multi-node DDP (under ``torchrun`` or SLURM too), checkpoints and
exact resume; this module adds only the model, the loss, the scores and an
atomic checkpoint writer.

Run folder layout::

    RUN_DIR/checkpoints/best.ckpt   lowest validation NRMSE so far
    RUN_DIR/checkpoints/last.ckpt   after every validation and at the last step (for --resume)
    RUN_DIR/logs/version_N/metrics.csv  (+ TensorBoard events if tensorboard is installed)
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.plugins.io import TorchCheckpointIO

from biosr.errors import BiosrError
from biosr.io.atomic import atomic_path
from biosr.learn.datamodule import BioSRDataModule
from biosr.learn.losses import image_scores, sr_loss, ssim
from biosr.learn.models import MODELS, build_model

#: Metric that selects the best checkpoint and drives the learning-rate plateau.
MONITOR = "val_nrmse"
CHECKPOINT_DIR = "checkpoints"
BEST_NAME = "best"
LAST_NAME = "last"


class TrainResult(NamedTuple):
    """What :func:`train` returns.

    Attributes
    ----------
    best : Path
        Checkpoint with the lowest validation NRMSE.
    last : Path
        Checkpoint at the end of the run (resume from it).
    log_dir : Path
        Folder of ``metrics.csv`` (and TensorBoard events).
    global_step : int
        Optimizer steps taken, in total (including resumed ones).
    metrics : dict
        Last logged value of every metric (floats).
    is_global_zero : bool
        True in the process of rank 0 (the one that should report, under DDP).
    """

    best: Path
    last: Path
    log_dir: Path
    global_step: int
    metrics: dict[str, float]
    is_global_zero: bool = True


class SRModule(L.LightningModule):
    """A super-resolution network with the authors' loss, scores and optimiser.

    Parameters
    ----------
    model : {'dfcan', 'unet'}
        Network name; its hyper-parameters are saved in checkpoints so that
        :func:`biosr.learn.predict.load_model` can rebuild it without this module.
    scale : int
        Output size / input size (1 for the same-size release).
    model_options : dict, optional
        Extra keyword arguments of the network.
    lr, ssim_weight : float
        Adam learning rate and the SSIM term's weight in the loss.
    plateau_factor, plateau_patience, min_lr : float, int, float
        ReduceLROnPlateau on the validation NRMSE (stepped once per validation).
    """

    def __init__(
        self,
        model: str = "dfcan",
        scale: int = 1,
        model_options: dict[str, Any] | None = None,
        lr: float = 1e-4,
        ssim_weight: float = 0.1,
        plateau_factor: float = 0.5,
        plateau_patience: int = 10,
        min_lr: float = 1e-5,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = build_model(model, scale=scale, **(model_options or {}))
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._plateau_state: dict[str, Any] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def setup(self, stage: str) -> None:
        # Share the CPU cores among the processes of this node.
        if self.trainer.accelerator.__class__.__name__ == "CPUAccelerator":
            local = int(os.environ.get("LOCAL_WORLD_SIZE", self.trainer.num_devices))
            torch.set_num_threads(max(1, available_cores() // max(1, local)))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        wf, gt = batch[0], batch[1]
        loss = sr_loss(self(wf), gt, ssim_weight=self.hparams.ssim_weight)
        self.log("train_loss", loss, prog_bar=True, batch_size=wf.shape[0])
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        wf, gt = batch[0], batch[1]
        pred = self(wf).float()
        scores = image_scores(pred, gt)
        scores["ssim"] = ssim(pred, gt)
        n = wf.shape[0]
        # sr_loss from the scores already computed (SSIM once per validation batch).
        loss = scores["mse"].mean()
        if self.hparams.ssim_weight:
            loss = loss + self.hparams.ssim_weight * (1.0 - scores["ssim"].mean())
        self.log("val_loss", loss, batch_size=n, sync_dist=True)
        for name in ("psnr", "nrmse", "ssim"):
            self.log(
                f"val_{name}",
                scores[name].mean(),
                batch_size=n,
                sync_dist=True,
                prog_bar=name == "nrmse",
            )

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or self.plateau is None:
            return
        value = self.trainer.callback_metrics.get(MONITOR)
        if value is not None:
            self.plateau.step(float(value))
        self.log("lr", self.optimizers().param_groups[0]["lr"], sync_dist=False)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.Adam(self.parameters(), lr=hp.lr)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min",
            factor=hp.plateau_factor,
            patience=hp.plateau_patience,
            min_lr=hp.min_lr,
        )
        if self._plateau_state is not None:
            self.plateau.load_state_dict(self._plateau_state)
        return optimizer

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.plateau is not None:
            checkpoint["biosr_plateau"] = self.plateau.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Called before configure_optimizers on resume; applied there.
        self._plateau_state = checkpoint.get("biosr_plateau")


class _AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but never a half-written file under the final name."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


class _LastCheckpoint(L.Callback):
    """Keeps ``last.ckpt``: after every validation, every `every` steps and at the final step.

    It is written from inside the epoch (``on_train_batch_end``, and
    ``on_validation_end``, which runs inside the epoch too), so its loop
    state is that of a run in progress and ``--resume`` continues exactly
    where it stopped (the data module skips the batches already trained on).
    A checkpoint written after ``fit`` returns would record the unfinished
    epoch as done, and a resumed run would skip the rest of it. With the
    default once-per-epoch validation it is written at every epoch's end, so
    a killed multi-epoch run can resume. A run that ends with its epoch
    (``--epochs``) is saved once more at train end.
    """

    def __init__(self, path: Path, every: int | None) -> None:
        self.path, self.every, self.saved_step = path, every, -1

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        step = trainer.global_step
        if step == trainer.max_steps or (self.every and step % self.every == 0):
            trainer.save_checkpoint(self.path)
            self.saved_step = step

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Not recorded in saved_step: a run that ends with its epoch is still saved at train end.
        if trainer.sanity_checking or self.saved_step == trainer.global_step:
            return
        trainer.save_checkpoint(self.path)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.saved_step != trainer.global_step:
            trainer.save_checkpoint(self.path)


def _progress_bar():
    """Lightning's tqdm bar, drawn on stderr (it writes to stdout), so stdout keeps results."""
    from lightning.pytorch.callbacks import TQDMProgressBar

    class StderrProgressBar(TQDMProgressBar):
        def _on_stderr(self, make):
            with contextlib.redirect_stdout(sys.stderr):
                return make()

        def init_sanity_tqdm(self):
            return self._on_stderr(super().init_sanity_tqdm)

        def init_train_tqdm(self):
            return self._on_stderr(super().init_train_tqdm)

        def init_validation_tqdm(self):
            return self._on_stderr(super().init_validation_tqdm)

        def init_predict_tqdm(self):
            return self._on_stderr(super().init_predict_tqdm)

        def init_test_tqdm(self):
            return self._on_stderr(super().init_test_tqdm)

    return StderrProgressBar()


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's banners, tips and expected warnings for the duration."""
    names = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for pattern in (
            ".*does not have many workers.*",
            ".*smaller than the logging interval.*",
            ".*Checkpoint directory .* exists and is not empty.*",
            ".*LeafSpec.*",
            ".*sync_dist=True.*",
            ".*isn't running on a GPU.*",
            ".*`training_step` returned.*",
        ):
            warnings.filterwarnings("ignore", message=pattern)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def _loggers(out: Path) -> list:
    from lightning.pytorch.loggers import CSVLogger

    loggers = [CSVLogger(save_dir=out, name="logs")]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=out, name="logs", version=loggers[0].version))
    return loggers


def infer_scale(data: str | os.PathLike[str]) -> int:
    """GT size / WF size of a dataset copy, from its first training pair."""
    from biosr import layout
    from biosr.io.tiff import read_tiff

    found = layout.pairs(data, "training")
    if not found:
        raise BiosrError(f"{data}: no training pairs found")
    wf = read_tiff(found[0].wf)
    gt = read_tiff(found[0].gt)
    if gt.shape[0] % wf.shape[0]:
        raise BiosrError(f"{found[0].gt}: GT shape {gt.shape} is not a multiple of {wf.shape}")
    return gt.shape[0] // wf.shape[0]


def _datamodule(data, batch_size: int, num_workers: int, seed: int, options: dict[str, Any]):
    if isinstance(data, L.LightningDataModule):
        return data
    return BioSRDataModule(
        data, batch_size=batch_size, num_workers=num_workers, seed=seed, **options
    )


def train(
    data,
    out: str | os.PathLike[str],
    *,
    model: str = "dfcan",
    scale: int | None = None,
    model_options: dict[str, Any] | None = None,
    batch_size: int = 4,
    max_steps: int | None = None,
    max_epochs: int | None = None,
    val_every: int | None = None,
    lr: float = 1e-4,
    ssim_weight: float = 0.1,
    plateau_factor: float = 0.5,
    plateau_patience: int = 10,
    min_lr: float = 1e-5,
    precision: str = "32-true",
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str = 1,
    num_nodes: int = 1,
    strategy: str = "auto",
    num_workers: int = 0,
    resume: str | os.PathLike[str] | None = None,
    log_every: int = 10,
    data_options: dict[str, Any] | None = None,
    callbacks: list | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train a super-resolution network on a BioSR copy.

    Parameters
    ----------
    data : path-like or LightningDataModule
        A dataset root (folder containing ``BioSR/`` or the ``Microtubules``
        folder; loaded with :class:`biosr.learn.datamodule.BioSRDataModule`), or a
        ready data module whose batches are ``(wf, gt, ...)``.
    out : path-like
        Run folder (checkpoints and logs); created if missing.
    model : {'dfcan', 'unet'}
        Network (default DFCAN, the authors').
    scale : int, optional
        GT size / WF size; inferred from the data when it is a path, else 1.
    model_options : dict, optional
        Extra network options (e.g. ``{"base": 16}`` for the U-Net).
    batch_size : int
        Pairs per step and device (4, as the authors).
    max_steps, max_epochs : int, optional
        Stop after this many optimizer steps or epochs; with neither, 1 epoch.
    val_every : int, optional
        Validate every this many steps (default: at the end of every epoch).
    lr, ssim_weight, plateau_factor, plateau_patience, min_lr : float
        The recipe (defaults: the authors').
    precision : str
        Lightning precision: ``"32-true"``, ``"bf16-mixed"``, ``"16-mixed"``.
    seed : int
        Seeds weights, data order and augmentation (Lightning ``seed_everything``).
    accelerator, devices, num_nodes, strategy
        Passed to ``lightning.Trainer``; more than one device or node selects
        DDP (gloo on CPU, NCCL on GPU), which also works under ``torchrun`` and
        SLURM.
    num_workers : int
        Data-loading worker processes per device.
    resume : path-like, optional
        Checkpoint to continue from exactly (step count, optimizer,
        learning-rate plateau state, best score).
    log_every : int
        Log training metrics every this many steps.
    data_options : dict, optional
        Extra keyword arguments of the data module.
    callbacks : list, optional
        Extra Lightning callbacks (early stopping, probes...).
    progress : bool
        Show Lightning's progress bar.

    Returns
    -------
    TrainResult
    """
    if model not in MODELS:
        raise BiosrError(f"unknown model {model!r}; valid models: {', '.join(MODELS)}")
    if resume is not None and not Path(resume).is_file():
        raise BiosrError(f"{resume}: checkpoint not found")
    if batch_size < 1:
        raise BiosrError(f"batch size must be at least 1, got {batch_size}")
    from lightning.pytorch.callbacks import ModelCheckpoint

    if scale is None:
        scale = 1 if isinstance(data, L.LightningDataModule) else infer_scale(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if max_steps is None and max_epochs is None:
        max_epochs = 1
    with quiet_lightning():
        L.seed_everything(seed, workers=True, verbose=False)
        module = SRModule(
            model,
            scale,
            model_options,
            lr=lr,
            ssim_weight=ssim_weight,
            plateau_factor=plateau_factor,
            plateau_patience=plateau_patience,
            min_lr=min_lr,
        )
        dm = _datamodule(data, batch_size, num_workers, seed, dict(data_options or {}))
        ckpt_dir = out / CHECKPOINT_DIR
        last = ckpt_dir / f"{LAST_NAME}.ckpt"
        checkpoint = ModelCheckpoint(
            dirpath=ckpt_dir,
            filename=BEST_NAME,
            monitor=MONITOR,
            mode="min",
            save_last=False,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        )
        if strategy == "auto" and (devices not in (1, "1") or num_nodes > 1):
            strategy = "ddp"
        loggers = _loggers(out)
        val_kwargs: dict[str, Any] = {}
        if val_every:
            val_kwargs = {"val_check_interval": int(val_every), "check_val_every_n_epoch": None}
        try:
            trainer = L.Trainer(
                accelerator=accelerator,
                devices=devices,
                num_nodes=num_nodes,
                strategy=strategy,
                precision=precision,
                max_steps=-1 if max_steps is None else int(max_steps),
                max_epochs=max_epochs,
                logger=loggers,
                callbacks=[
                    checkpoint,
                    _LastCheckpoint(last, val_every),
                    *([_progress_bar()] if progress else []),
                    *(callbacks or []),
                ],
                plugins=[_AtomicCheckpointIO()],
                enable_progress_bar=progress,
                enable_model_summary=False,
                num_sanity_val_steps=0,
                log_every_n_steps=log_every,
                default_root_dir=out,
                **val_kwargs,
            )
        except (MisconfigurationException, ValueError) as exc:
            raise BiosrError(f"{out}: invalid training options ({exc})") from None

        with warnings.catch_warnings():
            if isinstance(dm, BioSRDataModule) and trainer.world_size == 1:
                # Lightning cannot see it, but BioSRDataModule resumes mid-epoch exactly
                # (its sampler skips the batches the restored step count trained on).
                warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
            trainer.fit(module, datamodule=dm, ckpt_path=None if resume is None else str(resume))
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else last
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    return TrainResult(
        best, last, Path(loggers[0].log_dir), trainer.global_step, metrics, trainer.is_global_zero
    )
