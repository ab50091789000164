"""DFCAN training throughput (images/s) at batch 4, 16 and 64 by recipe, beside loader pairs/s.

Run by hand: ``python benchmarks/bench_dfcan_throughput.py`` (add ``--size``, ``--steps``,
``--batches``, ``--modes``, ``--scale``, ``--device``, ``--data DATASET``). One training
step is what :class:`biosr.learn.train.SRModule` does for its recipe (channels-last,
``torch.compile`` with its eager fallback, autocast, the recipe's Adam): forward, the
authors' loss (MSE + 0.1 x (1 - SSIM)), backward and an optimizer step, on random inputs
already on the device. Modes: ``fp32`` = the authors' recipe ``dlsr`` (eager fp32), ``fast``
= the ``fast`` recipe (bf16 only where the device has it: ``auto`` precision), and two
ablations of ``dlsr``: ``bf16`` (autocast only) and ``compile`` (compile only). Compile
time is reported apart, not counted in images/s. With ``--data`` it also reads training
batches from that dataset (:class:`biosr.learn.datamodule.BioSRDataModule`, packed cache
when fresh, pinned memory and non-blocking copies on CUDA) and prints loader pairs/s, so
that the bottleneck is visible. On a GPU the defaults are the published patch (128 px),
20 timed steps after 5 warm-up steps; on CPU they shrink (16 px, 5 steps after 2) so that
the script runs in minutes and cannot rot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from biosr.learn.device import resolve_device, resolve_precision
from biosr.learn.losses import sr_loss
from biosr.learn.models import count_parameters
from biosr.learn.recipe import get_recipe
from biosr.learn.train import SRModule

#: Benchmark modes: a recipe name and overrides.
MODES: dict[str, dict] = {
    "fp32": {"recipe": "dlsr"},
    "fast": {"recipe": "fast"},
    "bf16": {"recipe": "dlsr", "precision": "bf16-mixed"},
    "compile": {"recipe": "dlsr", "compile": True},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(
    mode: str,
    batch: int,
    *,
    size: int,
    scale: int = 1,
    steps: int,
    warmup: int,
    device: torch.device,
    model_options: dict | None = None,
    compile: bool | None = None,
) -> dict:
    """Time training steps of DFCAN under a mode's recipe at one batch size.

    Returns
    -------
    dict
        ``images_per_s``, ``ms_per_step``, ``first_step_s`` (includes compiling),
        ``peak_gib`` (CUDA, else None), ``precision``, ``compiled``.
    """
    spec = dict(MODES[mode])
    recipe = get_recipe(spec.pop("recipe"), batch_size=batch, compile=compile, **spec)
    precision = resolve_precision(recipe.precision, device.type)
    torch.manual_seed(0)
    module = SRModule("dfcan", scale, model_options, recipe).to(device)
    module.train()
    opt = module.configure_optimizers()
    x = torch.rand(batch, 1, size, size, device=device)
    y = torch.rand(batch, 1, size * scale, size * scale, device=device)
    amp = precision == "bf16-mixed"

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            pred = module._train_forward(x)
        loss = sr_loss(pred, y, ssim_weight=recipe.ssim_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if module.compiled == "first-step":
            module.compiled = True
        opt.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    step()
    _sync(device)
    first = time.perf_counter() - t0
    for _ in range(max(0, warmup - 1)):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    dt = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "images_per_s": batch / dt,
        "ms_per_step": dt * 1000,
        "first_step_s": first,
        "peak_gib": peak,
        "precision": precision,
        "compiled": module.compiled,
    }


def loader_rate(
    data: str | os.PathLike[str], batch: int, *, device: torch.device, batches: int = 20
) -> float:
    """Training pairs/s the data module delivers onto `device` (after one untimed batch)."""
    from biosr.learn.datamodule import BioSRDataModule

    dm = BioSRDataModule(data, batch_size=batch, pin_memory=device.type == "cuda")
    dm.setup("fit")
    it = iter(dm.train_dataloader())
    next(it)  # untimed: opens the cache, starts the threads
    n, t0 = 0, time.perf_counter()
    for _ in range(batches):
        try:
            b = next(it)
        except StopIteration:
            it = iter(dm.train_dataloader())
            b = next(it)
        wf, _gt = (t.to(device, non_blocking=True) for t in b[:2])
        n += len(wf)
    _sync(device)
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> list[dict]:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--size", type=int, default=128 if cuda else 16, help="input side (px)")
    p.add_argument("--scale", type=int, default=1, help="1 (same-size release) or 2")
    p.add_argument("--steps", type=int, default=20 if cuda else 5, help="timed steps")
    p.add_argument("--warmup", type=int, default=5 if cuda else 2, help="untimed steps")
    p.add_argument("--batches", default="4,16,64", help="comma-separated batch sizes")
    p.add_argument("--modes", default="fp32,fast", help=f"comma-separated: {', '.join(MODES)}")
    p.add_argument("--data", type=Path, default=None, help="dataset for loader pairs/s")
    p.add_argument("--tiny", action="store_true", help="an 8-channel, 1-block DFCAN (smoke)")
    p.add_argument("--no-compile", action="store_true", help="modes with compile run eager")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    options = {"channels": 8, "groups": 1, "blocks": 1, "reduction": 4} if args.tiny else None
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    params = count_parameters(SRModule("dfcan", args.scale, options).net)
    print(
        f"DFCAN scale {args.scale} ({params:,} parameters), {args.size} px inputs, torch "
        f"{torch.__version__}, {device.type}: {name}; load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'mode':>8} {'batch':>5} {'images/s':>10} {'ms/step':>9} {'1st step s':>10} "
        f"{'peak GiB':>8} {'precision':>10} {'compiled':>8} {'loader pairs/s':>14}"
    )
    rows = []
    batches = [int(b) for b in args.batches.split(",")]
    loader = {}
    if args.data is not None:
        for batch in batches:
            loader[batch] = loader_rate(args.data, batch, device=device)
    for mode in args.modes.split(","):
        for batch in batches:
            row = {"mode": mode, "batch": batch, "loader_pairs_per_s": loader.get(batch)}
            try:
                row.update(
                    bench(
                        mode,
                        batch,
                        size=args.size,
                        scale=args.scale,
                        steps=args.steps,
                        warmup=args.warmup,
                        device=device,
                        model_options=options,
                        compile=False if args.no_compile else None,
                    )
                )
            except Exception as exc:  # report and go on: one failing mode must not hide the rest
                row["error"] = f"{type(exc).__name__}: {str(exc).strip()[:120]}"
                print(f"{mode:>8} {batch:>5} failed: {row['error']}")
                rows.append(row)
                continue
            if device.type == "cuda":
                torch.cuda.empty_cache()
            rows.append(row)
            peak = "" if row["peak_gib"] is None else f"{row['peak_gib']:.2f}"
            lo = "" if row["loader_pairs_per_s"] is None else f"{row['loader_pairs_per_s']:.0f}"
            print(
                f"{mode:>8} {batch:>5} {row['images_per_s']:>10.1f} {row['ms_per_step']:>9.1f} "
                f"{row['first_step_s']:>10.1f} {peak:>8} {row['precision']:>10} "
                f"{row['compiled']!s:>8} {lo:>14}"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
