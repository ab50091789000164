"""Train DFCAN or the U-Net on a BioSR copy with PyTorch Lightning, by a named recipe.

How to train is a :class:`biosr.learn.recipe.Recipe` (data, not code): ``dlsr``,
the default, is the BioSR authors' recipe: Adam at 1e-4, batch 4, loss
``MSE + 0.1 * (1 - SSIM)``, the learning rate halved when the validation NRMSE
has not improved for 10 validations (floor 1e-5), the best weights kept by
validation NRMSE. ``fast`` keeps a GPU busy (batch 64, square-root learning-rate
scaling and a warm-up, bf16 autocast, channels-last, ``torch.compile``,
fused Adam). Every field can be overridden. Lightning supplies mixed precision,
multi-GPU and multi-node DDP (under ``torchrun`` or SLURM too), checkpoints and
exact resume; this module adds the model, the loss, the scores, the warm-up,
the compile-or-fall-back and an atomic checkpoint writer.

Run folder layout::

    RUN_DIR/recipe.json             the recipe (overrides applied) and what the run resolved
    RUN_DIR/checkpoints/best.ckpt   best validation score so far
    RUN_DIR/checkpoints/last.ckpt   after every validation and at the last step (for --resume)
    RUN_DIR/logs/version_N/metrics.csv  (+ TensorBoard events if tensorboard is installed)
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
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

from biosr import layout
from biosr._parallel import available_cores
from biosr.errors import BiosrError, DataError
from biosr.io import owner
from biosr.io.atomic import atomic_path, write_text
from biosr.learn.datamodule import BioSRDataModule
from biosr.learn.device import accelerator_type, resolve_precision
from biosr.learn.losses import image_scores, sr_loss, ssim
from biosr.learn.models import MODELS, build_model
from biosr.learn.recipe import DEFAULT_RECIPE, Recipe, get_recipe

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
#: The producer name of run folders (:mod:`biosr.io.owner`).
PRODUCER = "train"
BEST_NAME = "best"
LAST_NAME = "last"
#: The run folder's record of the recipe and of what the run resolved.
RECIPE_FILE = "recipe.json"


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
    """A super-resolution network trained by a :class:`~biosr.learn.recipe.Recipe`.

    Parameters
    ----------
    model : {'dfcan', 'unet'}
        Network name; its hyper-parameters are saved in checkpoints so that
        :func:`biosr.learn.predict.load_model` can rebuild it without this module.
    scale : int
        Output size / input size (1 for the same-size release).
    model_options : dict, optional
        Extra keyword arguments of the network.
    recipe : str, Recipe or dict, optional
        How to train (default the authors', ``dlsr``); saved, as a dict, in the
        checkpoint's hyper-parameters.
    structure : str, optional
        The BioSR structure trained on (:data:`biosr.layout.STRUCTURES`), recorded
        in the checkpoint's hyper-parameters; None when unknown (a custom data module).
    **overrides
        Recipe fields to replace (``lr=1e-3``...; None keeps the recipe's).
    """

    def __init__(
        self,
        model: str = "dfcan",
        scale: int = 1,
        model_options: dict[str, Any] | None = None,
        recipe: str | Recipe | dict[str, Any] | None = None,
        *,
        structure: str | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        self.recipe = get_recipe(DEFAULT_RECIPE if recipe is None else recipe, **overrides)
        self.save_hyperparameters(
            {
                "model": model,
                "scale": scale,
                "model_options": model_options,
                "recipe": self.recipe.to_dict(),
                "structure": structure,
            }
        )
        self.net = build_model(model, scale=scale, **(model_options or {}))
        if self.recipe.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._plateau_state: dict[str, Any] | None = None
        #: Learning rate after warm-up (set by configure_optimizers).
        self.peak_lr = self.recipe.lr
        #: None: eager by recipe; "pending": compile at the first step; True/False: outcome.
        self.compiled: bool | str | None = "pending" if self.recipe.compile else None
        self._compiled_net: Any = None
        self._eager_redo: Any = None
        self._redo_gt: Any = None
        #: What checkpoints record of the training data (set by train; see load_model).
        self.training_data: dict[str, Any] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self._layout(x))

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        if self.recipe.channels_last:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def setup(self, stage: str) -> None:
        # Share the CPU cores among the processes of this node.
        if self.trainer.accelerator.__class__.__name__ == "CPUAccelerator":
            local = int(os.environ.get("LOCAL_WORLD_SIZE", self.trainer.num_devices))
            torch.set_num_threads(max(1, available_cores() // max(1, local)))

    def _train_forward(self, wf: torch.Tensor) -> torch.Tensor:
        """The network's training forward: compiled where that works, else eager."""
        wf = self._layout(wf)
        if self.compiled == "pending":
            # Not an attribute nn.Module registers: the state dict keeps the plain keys.
            object.__setattr__(self, "_compiled_net", torch.compile(self.net, dynamic=False))
            try:
                pred = self._compiled_net(wf)
            except Exception as exc:  # any compiler failure: C compiler, triton, a bug
                self._compile_failed(exc)
                return self.net(wf)
            self.compiled = "first-step"
            self._eager_redo = wf
            return pred
        if self.compiled in (True, "first-step"):
            return self._compiled_net(wf)
        return self.net(wf)

    def _compile_failed(self, exc: BaseException) -> None:
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        log.warning(
            "torch.compile does not work on %s (%s: %s); training without it",
            self.device.type,
            type(exc).__name__,
            first,
        )
        self.compiled, self._compiled_net = False, None

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        if self.compiled != "first-step":
            return super().backward(loss, *args, **kwargs)
        # The backward kernels compile now: on failure, redo this step eagerly.
        wf, self._eager_redo = self._eager_redo, None
        try:
            super().backward(loss, *args, **kwargs)
            self.compiled = True
        except Exception as exc:
            self._compile_failed(exc)
            for p in self.parameters():
                p.grad = None
            batch_gt = self._redo_gt
            eager = sr_loss(self.net(wf), batch_gt, ssim_weight=self.recipe.ssim_weight)
            super().backward(eager, *args, **kwargs)
        finally:
            self._redo_gt = None

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        wf, gt = batch[0], batch[1]
        self._redo_gt = gt if self.compiled == "pending" else None
        loss = sr_loss(self._train_forward(wf), gt, ssim_weight=self.recipe.ssim_weight)
        self.log("train_loss", loss, prog_bar=True, batch_size=wf.shape[0])
        return loss

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Linear warm-up, a function of the step count only (so a resume is exact).
        steps = self.recipe.warmup_steps
        step = self.trainer.global_step
        if steps and step < steps:
            for group in self.optimizers().param_groups:
                group["lr"] = self.peak_lr * (step + 1) / steps

    def validation_step(self, batch, batch_idx: int) -> None:
        wf, gt = batch[0], batch[1]
        pred = self(wf).float()
        scores = image_scores(pred, gt)
        scores["ssim"] = ssim(pred, gt)
        n = wf.shape[0]
        # sr_loss from the scores already computed (SSIM once per validation batch).
        loss = scores["mse"].mean()
        if self.recipe.ssim_weight:
            loss = loss + self.recipe.ssim_weight * (1.0 - scores["ssim"].mean())
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
        value = self.trainer.callback_metrics.get(self.recipe.val_metric)
        if value is not None and self.trainer.global_step >= self.recipe.warmup_steps:
            self.plateau.step(float(value))
        self.log("lr", self.optimizers().param_groups[0]["lr"], sync_dist=False)

    def global_batch(self) -> int:
        """Pairs per optimizer step over all devices (the recipe's batch size per device)."""
        trainer = self._trainer
        if trainer is None:
            return self.recipe.batch_size
        return self.recipe.batch_size * trainer.world_size * trainer.accumulate_grad_batches

    def configure_optimizers(self):
        r = self.recipe
        self.peak_lr = r.scaled_lr(self.global_batch())
        impl = r.optimizer_impl
        if impl == "auto":
            impl = "fused" if self.device.type == "cuda" else "foreach"
        kwargs = (
            {"fused": True} if impl == "fused" else {"foreach": True} if impl == "foreach" else {}
        )
        optimizer = torch.optim.Adam(self.parameters(), lr=self.peak_lr, **kwargs)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode=r.val_mode,
            factor=r.plateau_factor,
            patience=r.plateau_patience,
            min_lr=r.min_lr,
        )
        if self._plateau_state is not None:
            self.plateau.load_state_dict(self._plateau_state)
        return optimizer

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.plateau is not None:
            checkpoint["biosr_plateau"] = self.plateau.state_dict()
        if self.training_data is not None:
            from biosr.learn.predict import TRAINING_DATA_KEY

            checkpoint[TRAINING_DATA_KEY] = self.training_data

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


def _claim_run(out: Path, resume: str | os.PathLike[str] | None, force: bool) -> None:
    """Check that `out` may take a run (:mod:`biosr.io.owner`), then claim it (rank 0 only).

    A run folder is continued only with `resume`; a new run there (`force`)
    first removes the old run's checkpoints, so ``last.ckpt`` and
    ``best.ckpt`` never come from two runs. DDP ranks other than 0 (which
    re-run this function in their own processes) skip it: rank 0 has
    already checked and claimed.
    """
    if any(os.environ.get(k, "0") != "0" for k in ("RANK", "LOCAL_RANK", "NODE_RANK")):
        return
    owner.check_replaceable(out, PRODUCER, force=force)
    ckpts = [out / CHECKPOINT_DIR / f"{name}.ckpt" for name in (LAST_NAME, BEST_NAME)]
    if resume is None and any(p.exists() for p in ckpts):
        if not force:
            raise BiosrError(
                f"{out}: holds a training run; pass --resume {ckpts[0]} to continue it, "
                "--force to start a new run there (its checkpoints are removed), or "
                "choose another --out"
            )
        for path in ckpts:
            path.unlink(missing_ok=True)
    owner.claim(out, PRODUCER)


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
            # inductor leaves DFCAN's FFTs to eager kernels, as intended
            ".*does not support code generation for complex operators.*",
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


def data_structure(data: Any, structure: str | None = None) -> str | None:
    """Name of the BioSR structure `data` holds: `structure` when given, else the dataset's.

    `data` is a dataset root or folder (:func:`biosr.layout.structure_of` of the
    folder ``structure`` selects under it), or a data module (its ``structure``
    attribute, None if it has none; a :class:`~biosr.learn.datamodule.BioSRDataModule`'s dataset's).

    Raises
    ------
    DataError
        An unknown structure, or no dataset at `data`.
    """
    if isinstance(data, BioSRDataModule):
        return data_structure(data.root, data.structure)
    if isinstance(data, L.LightningDataModule):
        named = getattr(data, "structure", None)
        return None if named is None else layout.get_structure(named).name
    from biosr.dataset.pack import dataset_folder

    folder = dataset_folder(data, structure=structure)
    if structure is not None:
        return layout.get_structure(structure, error=DataError).name
    return layout.structure_of(folder).name


def infer_scale(data: str | os.PathLike[str], *, structure: str | None = None) -> int:
    """GT size / WF size of a dataset copy, from its first training pair (1, 2 or 3).

    `structure` selects the dataset under a root holding several (``ROOT/BioSR/<structure>``).
    """
    from biosr.io.tiff import read_tiff

    found = layout.pairs(layout.dataset_dir(data, structure=structure), "training")
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


class _RecipeRecord(L.Callback):
    """Writes ``RUN/recipe.json`` (rank 0): the recipe, the overrides, what the run resolved.

    Written when training starts and again when it ends (then with the outcome of
    ``torch.compile``), atomically.
    """

    def __init__(self, path: Path, overrides: dict[str, Any], run: dict[str, Any]) -> None:
        self.path, self.overrides, self.run = path, overrides, run

    def _write(self, trainer: L.Trainer, module: SRModule) -> None:
        if not trainer.is_global_zero:
            return
        compiled = module.compiled if module.compiled in (None, True, False) else "pending"
        run = {
            **self.run,
            "devices": trainer.world_size,
            "global_batch": module.global_batch(),
            "lr_after_warmup": module.peak_lr,
            "compiled": compiled,
        }
        record = {"recipe": module.recipe.to_dict(), "overrides": self.overrides, "run": run}
        write_text(self.path, json.dumps(record, indent=2) + "\n")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer, pl_module)


def train(
    data,
    out: str | os.PathLike[str],
    *,
    model: str = "dfcan",
    recipe: str | Recipe = DEFAULT_RECIPE,
    scale: int | None = None,
    model_options: dict[str, Any] | None = None,
    max_steps: int | None = None,
    max_epochs: int | None = None,
    val_every: int | None = None,
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
    batch_size: int | None = None,
    lr: float | None = None,
    lr_batch: int | None = None,
    lr_scaling: str | None = None,
    warmup_steps: int | None = None,
    optimizer: str | None = None,
    optimizer_impl: str | None = None,
    ssim_weight: float | None = None,
    plateau_factor: float | None = None,
    plateau_patience: int | None = None,
    min_lr: float | None = None,
    val_metric: str | None = None,
    precision: str | None = None,
    channels_last: bool | None = None,
    compile: bool | None = None,
    cudnn_benchmark: bool | None = None,
    force: bool = False,
    structure: str | None = None,
) -> TrainResult:
    """Train a super-resolution network on a BioSR copy.

    Parameters
    ----------
    data : path-like or LightningDataModule
        A dataset root (folder containing ``BioSR/`` or a dataset folder such as
        ``Microtubules``; loaded with :class:`biosr.learn.datamodule.BioSRDataModule`),
        or a ready data module whose batches are ``(wf, gt, ...)``.
    out : path-like
        Run folder (checkpoints, logs, ``recipe.json``); created if missing.
    model : {'dfcan', 'unet'}
        Network (default DFCAN, the authors').
    recipe : str or Recipe
        How to train: a name in :data:`biosr.learn.recipe.RECIPES` (default ``dlsr``,
        the authors') or a :class:`~biosr.learn.recipe.Recipe`.
    scale : int, optional
        GT size / WF size; inferred from the data when it is a path (1, 2, or 3
        for nonlinear SIM at its native scale), else 1.
    model_options : dict, optional
        Extra network options (e.g. ``{"base": 16}`` for the U-Net).
    max_steps, max_epochs : int, optional
        Stop after this many optimizer steps or epochs; with neither, 1 epoch.
    val_every : int, optional
        Validate every this many steps (default: at the end of every epoch).
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
        learning-rate plateau state, best score). Pass the same recipe.
    log_every : int
        Log training metrics every this many steps.
    data_options : dict, optional
        Extra keyword arguments of the data module.
    callbacks : list, optional
        Extra Lightning callbacks (early stopping, probes...).
    progress : bool
        Show Lightning's progress bar.
    force : bool
        Start a new run in `out` although it holds another run (its
        checkpoints are removed first, so last and best come from one run) or
        files ``biosr train`` did not make. Without it such a folder is refused
        unless `resume` continues the run there.
    structure : str, optional
        Which structure under a root holding several (``ROOT/BioSR/<structure>``);
        None takes Microtubules, or the only one there. The checkpoint's
        hyper-parameters and ``recipe.json`` record the structure trained on.
    batch_size, lr, lr_batch, lr_scaling, warmup_steps, optimizer, optimizer_impl, \
ssim_weight, plateau_factor, plateau_patience, min_lr, val_metric, precision, \
channels_last, compile, cudnn_benchmark : optional
        Override the recipe's field of that name (see :class:`~biosr.learn.recipe.Recipe`);
        None (default) keeps the recipe's.

    Returns
    -------
    TrainResult

    Raises
    ------
    BiosrError
        Unknown model, recipe or field value; a missing checkpoint; a device or
        precision this machine cannot run; a dataset without training pairs.
    """
    overrides = {
        "batch_size": batch_size,
        "lr": lr,
        "lr_batch": lr_batch,
        "lr_scaling": lr_scaling,
        "warmup_steps": warmup_steps,
        "optimizer": optimizer,
        "optimizer_impl": optimizer_impl,
        "ssim_weight": ssim_weight,
        "plateau_factor": plateau_factor,
        "plateau_patience": plateau_patience,
        "min_lr": min_lr,
        "val_metric": val_metric,
        "precision": precision,
        "channels_last": channels_last,
        "compile": compile,
        "cudnn_benchmark": cudnn_benchmark,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if model not in MODELS:
        raise BiosrError(f"unknown model {model!r}; valid models: {', '.join(MODELS)}")
    rec = get_recipe(recipe, **overrides)
    if resume is not None and not Path(resume).is_file():
        raise BiosrError(f"{resume}: checkpoint not found")
    if resume is not None:  # a garbage file: predict's one-line refusal, not an UnpicklingError
        from biosr.learn.predict import _read_checkpoint

        _read_checkpoint(Path(resume))
    device_type = accelerator_type(accelerator)
    run_precision = resolve_precision(rec.precision, device_type)
    from lightning.pytorch.callbacks import ModelCheckpoint

    if data_options and "structure" in data_options:
        raise BiosrError("pass the structure as train(structure=...), not in data_options")
    structure = data_structure(data, structure)  # before anything is written
    if scale is None:
        scale = (
            1 if isinstance(data, L.LightningDataModule) else infer_scale(data, structure=structure)
        )
    out = Path(out)
    _claim_run(out, resume, force)
    if max_steps is None and max_epochs is None:
        max_epochs = 1
    with quiet_lightning():
        L.seed_everything(seed, workers=True, verbose=False)
        module = SRModule(model, scale, model_options, rec, structure=structure)
        options = {"structure": structure, **(data_options or {})}
        dm = _datamodule(data, rec.batch_size, num_workers, seed, options)
        if isinstance(dm, BioSRDataModule):  # checkpoints record it: biosr export reads it
            from biosr.learn.predict import training_record

            structure = getattr(dm, "structure", None)
            module.training_data = training_record(dm.root, dm.normalize, structure=structure)
        ckpt_dir = out / CHECKPOINT_DIR
        last = ckpt_dir / f"{LAST_NAME}.ckpt"
        checkpoint = ModelCheckpoint(
            dirpath=ckpt_dir,
            filename=BEST_NAME,
            monitor=rec.val_metric,
            mode=rec.val_mode,
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
        record = _RecipeRecord(
            out / RECIPE_FILE,
            overrides,
            {
                "recipe": rec.name,
                "structure": structure,
                "accelerator": device_type,
                "precision": run_precision,
            },
        )
        try:
            trainer = L.Trainer(
                accelerator=accelerator,
                devices=devices,
                num_nodes=num_nodes,
                strategy=strategy,
                precision=run_precision,
                benchmark=rec.cudnn_benchmark if device_type == "cuda" else None,
                max_steps=-1 if max_steps is None else int(max_steps),
                max_epochs=max_epochs,
                logger=loggers,
                callbacks=[
                    checkpoint,
                    _LastCheckpoint(last, val_every),
                    record,
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
