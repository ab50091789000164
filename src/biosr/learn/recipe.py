"""Training recipes as data: one frozen :class:`Recipe` per way of training, named in `RECIPES`.

A recipe is every choice of *how* to train that does not depend on the data or
the machine: optimiser, learning rate and its scaling with the batch, warm-up,
loss weights, the plateau schedule, the validation metric, precision and the
speed switches (channels-last, ``torch.compile``). :func:`biosr.learn.train.train`
takes a recipe's name plus overrides; the command line reads its defaults,
choices and help from the fields' metadata here, and every run records the
recipe it used (checkpoint hyper-parameters and ``RUN/recipe.json``).

This module imports no torch, so ``biosr train --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from biosr import _checks
from biosr.errors import BiosrError

#: Precisions a recipe may ask for: Lightning's names, and ``auto`` = ``bf16-mixed`` on a
#: CUDA GPU with native bfloat16 (Ampere or newer), ``32-true`` anywhere else.
PRECISIONS: tuple[str, ...] = ("auto", "32-true", "bf16-mixed", "16-mixed")
#: Rules that scale the learning rate from ``lr_batch`` to the global batch ``B``:
#: ``none`` (as given), ``linear`` (x ``B / lr_batch``, Goyal et al. 2017, for SGD),
#: ``sqrt`` (x ``sqrt(B / lr_batch)``, the rule for Adam of Malladi et al., NeurIPS 2022).
LR_SCALINGS: tuple[str, ...] = ("none", "linear", "sqrt")
#: Optimisers (the authors use Adam).
OPTIMIZERS: tuple[str, ...] = ("adam",)
#: Adam implementations: torch's default, ``foreach`` (multi-tensor), ``fused`` (one
#: kernel), or ``auto`` = fused on CUDA, foreach elsewhere.
OPTIMIZER_IMPLS: tuple[str, ...] = ("default", "auto", "foreach", "fused")
#: Validation metrics that can select the best checkpoint and drive the plateau, with the
#: direction that is better.
VAL_METRICS: dict[str, str] = {
    "val_nrmse": "min",
    "val_loss": "min",
    "val_psnr": "max",
    "val_ssim": "max",
}


def _field(default: Any, help: str, kind: str | tuple[str, ...], flag: str | None = None):
    """A recipe field whose metadata tells the command line its option, type and help.

    `kind` is the name of a check in :mod:`biosr._checks` / type in :mod:`biosr._args`
    (``positive_int``...), ``"bool"``, or a tuple of choices.
    """
    return dataclasses.field(default=default, metadata={"help": help, "kind": kind, "flag": flag})


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to train: every field has the authors' (DL-SR) value as its default.

    Parameters
    ----------
    name : str
        The recipe's name (recorded with the run).
    batch_size : int
        Pairs per optimizer step and device (4).
    lr : float
        Adam learning rate at ``lr_batch`` pairs per step (1e-4).
    lr_batch : int
        Global batch at which `lr` is given (4).
    lr_scaling : {'none', 'linear', 'sqrt'}
        How the learning rate follows the global batch (``none``: see `LR_SCALINGS`).
    warmup_steps : int
        Steps of linear warm-up from ``lr / warmup_steps`` to the scaled rate (0: none).
    optimizer : {'adam'}
        The optimiser.
    optimizer_impl : {'default', 'auto', 'foreach', 'fused'}
        Adam's implementation (``default``: torch's choice).
    ssim_weight : float
        Weight of ``1 - SSIM`` in the loss ``MSE + ssim_weight * (1 - SSIM)`` (0.1).
    plateau_factor, plateau_patience, min_lr : float, int, float
        The learning rate times ``plateau_factor`` (0.5) after ``plateau_patience`` (10)
        validations without improvement of `val_metric`, not below ``min_lr`` (1e-5).
    val_metric : str
        Metric that selects ``best.ckpt`` and drives the plateau (``val_nrmse``).
    precision : str
        One of `PRECISIONS` (``32-true``).
    channels_last : bool
        Network and batches in channels-last memory format (False).
    compile : bool
        ``torch.compile`` the network for training where it works, else eager with one
        warning (False).
    cudnn_benchmark : bool
        Let cuDNN time its kernels and keep the fastest (False). On CUDA this gives up
        bit-identical repeats; results agree to floating-point rounding.
    """

    name: str = "dlsr"
    batch_size: int = _field(4, "pairs per optimizer step and device", "positive_int")
    lr: float = _field(1e-4, "Adam learning rate at --lr-batch pairs per step", "positive_float")
    lr_batch: int = _field(4, "global batch at which --lr is given", "positive_int")
    lr_scaling: str = _field(
        "none", "learning rate vs global batch: none, linear, sqrt", LR_SCALINGS
    )
    warmup_steps: int = _field(0, "steps of linear learning-rate warm-up", "non_negative_int")
    optimizer: str = _field("adam", "optimiser", OPTIMIZERS)
    optimizer_impl: str = _field(
        "default", "Adam implementation (auto: fused on CUDA, foreach elsewhere)", OPTIMIZER_IMPLS
    )
    ssim_weight: float = _field(0.1, "weight of 1 - SSIM in the loss", "non_negative_float")
    plateau_factor: float = _field(0.5, "LR plateau factor", "fraction", flag="--lr-factor")
    plateau_patience: int = _field(
        10, "LR plateau patience (validations)", "non_negative_int", flag="--patience"
    )
    min_lr: float = _field(1e-5, "LR floor", "non_negative_float")
    val_metric: str = _field(
        "val_nrmse", "metric of the best checkpoint and the plateau", tuple(VAL_METRICS)
    )
    precision: str = _field(
        "32-true", "auto = bf16-mixed on a bf16 CUDA GPU, else 32-true", PRECISIONS
    )
    channels_last: bool = _field(False, "channels-last memory format", "bool")
    compile: bool = _field(False, "torch.compile the network (falls back to eager)", "bool")
    cudnn_benchmark: bool = _field(False, "cuDNN kernel autotuning (CUDA)", "bool")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            kind = f.metadata.get("kind")
            if kind is None:
                continue
            value, label = getattr(self, f.name), f"recipe {self.name!r}: {f.name}"
            if isinstance(kind, tuple):
                if value not in kind:
                    raise BiosrError(f"{label} is {value!r}; valid: {', '.join(kind)}")
            elif kind == "bool":
                if not isinstance(value, bool):
                    raise BiosrError(f"{label} must be True or False; got {value!r}")
            else:
                object.__setattr__(self, f.name, getattr(_checks, f"check_{kind}")(value, label))

    def scaled_lr(self, global_batch: int) -> float:
        """The learning rate after warm-up for `global_batch` pairs per step (all devices).

        Examples
        --------
        >>> RECIPES["fast"].scaled_lr(64)
        0.0004
        >>> RECIPES["dlsr"].scaled_lr(64)
        0.0001
        """
        ratio = global_batch / self.lr_batch
        factor = {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[self.lr_scaling]
        return self.lr * factor

    @property
    def val_mode(self) -> str:
        """``"min"`` or ``"max"``: the better direction of `val_metric`."""
        return VAL_METRICS[self.val_metric]

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a plain dict (JSON and checkpoint friendly)."""
        return dataclasses.asdict(self)


#: Field names a caller may override (all but ``name``), in declaration order.
RECIPE_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Recipe) if f.name != "name"
)

#: The named recipes. ``dlsr`` is the BioSR authors' (the default); ``fast`` keeps a GPU busy:
#: batch 64 with the learning rate scaled by the square-root rule (4e-4 at batch 64) after a
#: 500-step linear warm-up, bf16 autocast where the GPU supports it (DFCAN's Fourier
#: attention stays in float32), channels-last, torch.compile, fused/foreach Adam, cuDNN
#: autotuning.
RECIPES: dict[str, Recipe] = {
    "dlsr": Recipe(),
    "fast": Recipe(
        name="fast",
        batch_size=64,
        lr_scaling="sqrt",
        warmup_steps=500,
        optimizer_impl="auto",
        precision="auto",
        channels_last=True,
        compile=True,
        cudnn_benchmark=True,
    ),
}
#: The recipe used when none is named.
DEFAULT_RECIPE = "dlsr"


def summary(name: str) -> str:
    """One line describing a named recipe, from its fields (for help texts).

    Examples
    --------
    >>> summary("dlsr")
    'dlsr: adam lr 0.0001 (batch 4, scaling none), batch 4, precision 32-true'
    """
    r = RECIPES[name]
    text = f"{name}: {r.optimizer} lr {r.lr:g} (batch {r.lr_batch}, scaling {r.lr_scaling})"
    text += f", batch {r.batch_size}, precision {r.precision}"
    if r.warmup_steps:
        text += f", {r.warmup_steps}-step warm-up"
    switches = [n for n in ("channels_last", "compile", "cudnn_benchmark") if getattr(r, n)]
    if r.optimizer_impl != "default":
        switches.append(f"{r.optimizer_impl} {r.optimizer}")
    return text + ("" if not switches else ", " + ", ".join(s.replace("_", "-") for s in switches))


def get_recipe(
    recipe: str | Recipe | Mapping[str, Any] = DEFAULT_RECIPE, **overrides: Any
) -> Recipe:
    """A recipe by name (or a Recipe, or its dict) with `overrides` applied; None overrides nothing.

    Parameters
    ----------
    recipe : str, Recipe or mapping
        A name in `RECIPES`, a :class:`Recipe`, or a dict from :meth:`Recipe.to_dict`.
    **overrides
        Field values that replace the recipe's; a None value keeps the recipe's.

    Returns
    -------
    Recipe

    Raises
    ------
    BiosrError
        An unknown name or field, or a value out of range.

    Examples
    --------
    >>> get_recipe("fast", lr=2e-4, batch_size=None).lr
    0.0002
    """
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise BiosrError(f"unknown recipe {recipe!r}; valid recipes: {', '.join(RECIPES)}")
        base = RECIPES[recipe]
    elif isinstance(recipe, Recipe):
        base = recipe
    else:
        unknown = set(recipe) - {"name", *RECIPE_FIELDS}
        if unknown:
            raise BiosrError(f"unknown recipe fields {sorted(unknown)}; valid: {RECIPE_FIELDS}")
        base = Recipe(**recipe)
    changes = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(changes) - set(RECIPE_FIELDS)
    if unknown:
        raise BiosrError(f"unknown recipe fields {sorted(unknown)}; valid: {RECIPE_FIELDS}")
    return dataclasses.replace(base, **changes) if changes else base


def recipe_options() -> list[dataclasses.Field]:
    """The overridable fields, for the command line: metadata ``help``, ``kind``, ``flag``."""
    return [f for f in dataclasses.fields(Recipe) if f.name in RECIPE_FIELDS]


def option_flag(f: dataclasses.Field) -> str:
    """The command-line option of a recipe field (``--batch-size``; a few keep older names)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def defaults_text(name: str) -> str:
    """``"dlsr 4, fast 64"``: a field's value in every named recipe, for help texts."""
    return ", ".join(f"{key} {getattr(r, name)}" for key, r in RECIPES.items())
