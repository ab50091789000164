"""The whole pipeline in one call, on simulated data: simulate, build, train, predict, score.

:func:`run_demo` needs no data and no network: it simulates a small raw
release of one BioSR structure (:func:`biosr.simulate.simulate_release`;
Microtubules by default, any of :data:`biosr.layout.STRUCTURES` with
``structure``), cuts it into patches with
the authors' protocol (:func:`biosr.build.builder.build`), trains a U-Net for a few
minutes on CPU (:func:`biosr.learn.train.train`), predicts the test split
(:func:`biosr.learn.predict.predict`), runs the widefield and Richardson-Lucy
baselines (:func:`biosr.evaluate.baselines.run_baseline`), scores everything
(:func:`biosr.evaluate.evaluation.evaluate`) and writes an HTML report. Every stage is
seeded from one seed, so a run is reproducible; stages announce themselves
through a callback (the CLI prints them).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from biosr import layout
from biosr._checks import check_positive_int, check_seed, check_workers
from biosr.errors import BiosrError

#: Demo configurations. ``default`` is the README's ``biosr demo`` (a few
#: minutes on 2 CPU cores); ``tiny`` runs in seconds (tests, smoke checks).
#: Both suit every structure: the build's "small" preset takes cells 1..6, a
#: patch of 96 px leaves MS-SSIM room on any GT grid (1x, 2x or 3x), and the
#: levels, frames and GT scale are the structure's (:func:`demo_config`).
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {
        "cells": 6,
        "size": 256,
        "build": {"training_crops": 8, "validate_crops": 2, "test_crops": 4},
        "model_options": {"base": 32, "depth": 2},
        "steps": 2400,  # about 6 minutes on 2 cores; beats WF and RL at every level
        "val_every": 200,
        "batch_size": 8,
        "crop": 64,
        "lr": 1e-3,
        "rl_iterations": 10,
    },
    "tiny": {
        "cells": 6,
        "size": 160,
        "build": {
            "training_crops": 1,
            "validate_crops": 1,
            "test_crops": 1,
            "patch_size": 96,  # MS-SSIM in the evaluation needs >= 88 px
            "mask_min_pixels": 50,
        },
        "model_options": {"base": 8, "depth": 2},
        "steps": 12,
        "val_every": 6,
        "batch_size": 8,
        "crop": 48,
        "lr": 1e-3,
        "rl_iterations": 3,
    },
}

#: Method names in the report, in order.
METHODS: tuple[str, ...] = ("wf", "rl", "unet")
#: The baselines the U-Net's verdict is given against, with their names in the verdict.
VERDICT_BASELINES: dict[str, str] = {"wf": "WF", "rl": "RL"}


class DemoResult(NamedTuple):
    """What :func:`run_demo` produced.

    Attributes
    ----------
    out : Path
        The demo folder.
    dataset : Path
        The built dataset folder (``BioSR/<structure>``).
    checkpoint : Path
        The U-Net's best checkpoint.
    report : Path
        ``report/report.html``.
    results : biosr.evaluate.results.Results
        All scores.
    table : str
        Per-level PSNR and SSIM of every method, as plain text.
    unet_beats_wf : bool
        True if the U-Net beats WF in mean PSNR and SSIM at every level.
    unet_beats_rl : bool
        True if the U-Net beats Richardson-Lucy in mean PSNR and SSIM at every level.
    seconds : dict
        Wall time of each stage.
    structure : str
        The BioSR structure simulated.
    """

    out: Path
    dataset: Path
    checkpoint: Path
    report: Path
    results: Any
    table: str
    unet_beats_wf: bool
    unet_beats_rl: bool
    seconds: dict[str, float]
    structure: str = layout.DEFAULT_STRUCTURE

    def verdict(self) -> list[str]:
        """The verdict lines, one per baseline (:func:`verdict_lines`)."""
        return verdict_lines({"wf": self.unet_beats_wf, "rl": self.unet_beats_rl})


def verdict_lines(wins: dict[str, bool]) -> list[str]:
    """``U-Net beats WF in PSNR and SSIM at every level: yes`` (or ``no``), per baseline.

    Examples
    --------
    >>> verdict_lines({"wf": True, "rl": False})[1]
    'U-Net beats RL in PSNR and SSIM at every level: no'
    """
    return [
        f"U-Net beats {VERDICT_BASELINES[name]} in PSNR and SSIM at every level: "
        f"{'yes' if won else 'no'}"
        for name, won in wins.items()
    ]


def level_table(results, metric_names: tuple[str, ...] = ("psnr", "ssim")) -> str:
    """Plain-text table: one row per level, mean of each metric for each method."""
    methods = results.methods
    head = f"{'level':>5} {'photons':>7}"
    for name in metric_names:
        head += " | " + " ".join(f"{f'{name} {m}':>11}" for m in methods)
    lines = [head, "-" * len(head)]
    photons = results.photons
    for lev in results.levels:
        row = f"{lev:>5} {photons[lev]:>7.0f}"
        for name in metric_names:
            cells = []
            for m in methods:
                value = results.summary[m][lev][name]["mean"]
                cells.append(f"{'n/a' if value is None else f'{value:.4f}':>11}")
            row += " | " + " ".join(cells)
        lines.append(row)
    return "\n".join(lines)


def beats(results, method: str, reference: str, metric_names=("psnr", "ssim")) -> bool:
    """True if `method`'s mean beats `reference`'s at every level for every metric named."""
    for lev in results.levels:
        for name in metric_names:
            a = results.summary[method][lev][name]["mean"]
            b = results.summary[reference][lev][name]["mean"]
            if a is None or b is None or not a > b:
                return False
    return True


def demo_config(
    config: str = "default", structure: str | layout.Structure | None = None
) -> dict[str, Any]:
    """The sizes of demo `config` (:data:`CONFIGS`) for `structure` (default Microtubules).

    One configuration serves every structure: the levels, frames and GT scale
    come from the structure itself, so only what depends on them is derived
    here (the description's level count).

    Raises
    ------
    BiosrError
        An unknown configuration or structure.
    """
    if config not in CONFIGS:
        raise BiosrError(f"unknown demo config {config!r}; valid: {', '.join(CONFIGS)}")
    chosen = layout.get_structure(structure, error=BiosrError)
    return {**CONFIGS[config], "levels": len(chosen.levels)}


def _structure_option(chosen: layout.Structure) -> dict[str, str]:
    """``{"structure": NAME}`` for the simulator and builder; nothing for the default."""
    return {} if chosen.name == layout.DEFAULT_STRUCTURE else {"structure": chosen.name}


def run_demo(
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    config: str = "default",
    steps: int | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    on_stage: Callable[[str], None] | None = None,
    progress: bool = False,
    structure: str | layout.Structure | None = None,
) -> DemoResult:
    """Run the whole pipeline on simulated data and write a report.

    Parameters
    ----------
    out : path-like
        Demo folder: ``release/`` (simulated raw cells), ``data/`` (the built
        dataset), ``run/`` (checkpoints, logs), ``predictions/{wf,rl,unet}/``
        and ``report/`` (``report.html``, ``summary.md``, CSV, JSON, PNGs).
    seed : int
        Seed of every stage (simulation, build, training, evaluation).
    config : {'default', 'tiny'}
        Sizes (:data:`CONFIGS`).
    steps : int, optional
        Training steps (overrides the configuration's).
    workers : int, optional
        Processes for simulation, build and scoring (default: the CPU cores).
    overwrite : bool
        Replace a previous demo in `out`. Without it, a non-empty `out` is refused.
    on_stage : callable, optional
        Called with a one-line message as each stage starts.
    progress : bool
        Show progress bars.
    structure : str or Structure, optional
        The BioSR structure to simulate (default Microtubules): its levels,
        frames per stack and GT scale run through every stage, and the report
        names it.

    Returns
    -------
    DemoResult
    """
    from biosr._parallel import available_cores
    from biosr.build.builder import build
    from biosr.evaluate.baselines import run_baseline
    from biosr.evaluate.evaluation import evaluate, write_outputs
    from biosr.learn.predict import predict
    from biosr.learn.train import train
    from biosr.simulate import simulate_release

    cfg = demo_config(config, structure)
    chosen = layout.get_structure(structure)
    steps = check_positive_int(cfg["steps"] if steps is None else steps, "steps")
    seed, workers = check_seed(seed), check_workers(workers)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise BiosrError(f"{out}: not empty; pass --overwrite to replace a previous demo")
    if overwrite:
        # Stages that do not replace their own output: start them afresh.
        for owned in ("run", "predictions", "report"):
            shutil.rmtree(out / owned, ignore_errors=True)
    workers = workers or available_cores()
    say = on_stage or (lambda message: None)
    seconds: dict[str, float] = {}
    n_stages = 6

    def stage(i: int, key: str, message: str) -> None:
        seconds[key] = time.perf_counter()
        say(f"[{i}/{n_stages}] {message}")

    def done(key: str) -> None:
        seconds[key] = time.perf_counter() - seconds[key]

    stage(
        1,
        "simulate",
        f"simulating a raw {chosen.name} release: {cfg['cells']} cells, {cfg['size']} px, "
        f"{cfg['levels']} levels of {chosen.frames} frames",
    )
    release = simulate_release(
        out / "release",
        cells=cfg["cells"],
        size=cfg["size"],
        seed=seed,
        overwrite=overwrite,
        progress=progress,
        workers=workers,
        **_structure_option(chosen),
    )
    done("simulate")

    stage(2, "build", "building patches with the authors' protocol (preset 'small')")
    dataset = build(
        release,
        out / "data",
        preset="small",
        seed=seed,
        workers=workers,
        overwrite=overwrite,
        progress=progress,
        **_structure_option(chosen),
        **cfg["build"],
    )
    card_counts = {
        s: len(layout.pairs(dataset, s, 1 if s == "test" else None, structure=chosen))
        for s in layout.SPLITS
    }
    done("build")

    stage(
        3,
        "train",
        f"training a U-Net for {steps} steps on {card_counts['training']} pairs "
        f"(validation: {card_counts['validate']})",
    )
    result = train(
        dataset,
        out / "run",
        model="unet",
        model_options=cfg["model_options"],
        batch_size=cfg["batch_size"],
        max_steps=steps,
        val_every=min(cfg["val_every"], steps),
        lr=cfg["lr"],
        seed=seed,
        accelerator="cpu",
        data_options={"crop": cfg["crop"]},
        progress=progress,
    )
    done("train")

    stage(
        4,
        "predict",
        f"predicting the test split ({card_counts['test']} images x {cfg['levels']} levels)",
    )
    preds = out / "predictions"
    predict(result.best, dataset, preds / "unet", device="cpu", overwrite=True, progress=progress)
    done("predict")

    stage(5, "baselines", "running the widefield and Richardson-Lucy baselines")
    for name in ("wf", "rl"):
        run_baseline(
            name,
            dataset,
            preds / name,
            iterations=cfg["rl_iterations"],
            workers=workers,
            overwrite=True,
            progress=progress,
        )
    done("baselines")

    stage(6, "evaluate", "scoring (protocol dlsr) and writing the report")
    results = evaluate(
        dataset,
        {m: preds / m for m in METHODS},
        None,  # written below, once, with the demo's title and intro
        protocol="dlsr",
        workers=workers,
        progress=progress,
    )
    wins = {name: beats(results, "unet", name) for name in VERDICT_BASELINES}
    intro = (
        f"biosr demo (config {config!r}, seed {seed}): a simulated BioSR {chosen.name} "
        f"release of {cfg['cells']} cells was cut into {card_counts['training']} training, "
        f"{card_counts['validate']} validation and {card_counts['test']} x {cfg['levels']} "
        "test pairs; a "
        f"U-Net was trained for {steps} steps and compared with the widefield input (wf) "
        f"and Richardson-Lucy deconvolution (rl, with a theoretical Airy PSF). "
        + ". ".join(verdict_lines(wins))
        + "."
    )
    write_outputs(results, out / "report", data=dataset, title="biosr demo", intro=intro)
    report = results.files["html"]
    done("evaluate")
    table = level_table(results)
    return DemoResult(
        out,
        dataset,
        result.best,
        report,
        results,
        table,
        wins["wf"],
        wins["rl"],
        seconds,
        chosen.name,
    )
