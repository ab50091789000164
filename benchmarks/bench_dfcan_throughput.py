"""DFCAN training throughput (images/s) at batch 4, 16 and 64: fp32, bf16 autocast, torch.compile.

Run by hand: ``python benchmarks/bench_dfcan_throughput.py`` (add ``--size``, ``--steps``,
``--batches``, ``--modes``, ``--scale``, ``--device``). One training step is forward, the
authors' loss (MSE + 0.1 x (1 - SSIM)), backward and an Adam step, on random inputs.
On a GPU the defaults are the published patch (128 px), 20 timed steps after 5 warm-up
steps; on CPU they shrink (16 px, 5 steps after 2 warm-up) so the script runs in
minutes and cannot rot. ``compile`` is fp32 with ``torch.compile`` (its compile time
is reported separately, not counted in images/s). Prints one row per (mode, batch).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from biosr.learn.losses import sr_loss
from biosr.learn.models import count_parameters
from biosr.learn.models.dfcan import DFCAN

MODES = ("fp32", "bf16", "compile")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(mode: str, batch: int, *, size: int, scale: int, steps: int, warmup: int, device):
    """Return (images/s, ms per step, compile seconds or None, peak GiB or None)."""
    torch.manual_seed(0)
    net = DFCAN(scale=scale).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(batch, 1, size, size, device=device)
    y = torch.rand(batch, 1, size * scale, size * scale, device=device)
    model = net
    compile_s = None
    if mode == "compile":
        model = torch.compile(net)
    amp = mode == "bf16"

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            pred = model(x)
        loss = sr_loss(pred.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    step()
    _sync(device)
    if mode == "compile":
        compile_s = time.perf_counter() - t0
    for _ in range(max(0, warmup - 1)):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    dt = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return batch / dt, dt * 1000, compile_s, peak


def main() -> None:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if cuda else "cpu")
    p.add_argument("--size", type=int, default=128 if cuda else 16, help="input side (px)")
    p.add_argument("--scale", type=int, default=1, help="1 (same-size release) or 2")
    p.add_argument("--steps", type=int, default=20 if cuda else 5, help="timed steps")
    p.add_argument("--warmup", type=int, default=5 if cuda else 2, help="untimed steps")
    p.add_argument("--batches", default="4,16,64", help="comma-separated batch sizes")
    p.add_argument("--modes", default=",".join(MODES), help="fp32,bf16,compile")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(
        f"DFCAN scale {args.scale} ({count_parameters(DFCAN(scale=args.scale)):,} parameters), "
        f"{args.size} px inputs, torch {torch.__version__}, {device.type}: {name}; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'mode':>8} {'batch':>5} {'images/s':>10} {'ms/step':>9} {'compile s':>9} {'peak GiB':>8}"
    )
    for mode in args.modes.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            try:
                ips, ms, comp, peak = bench(
                    mode,
                    batch,
                    size=args.size,
                    scale=args.scale,
                    steps=args.steps,
                    warmup=args.warmup,
                    device=device,
                )
            except Exception as exc:  # report and go on: one failing mode must not hide the rest
                print(f"{mode:>8} {batch:>5} failed: {type(exc).__name__}: {str(exc)[:80]}")
                continue
            comp_s = "" if comp is None else f"{comp:.1f}"
            peak_s = "" if peak is None else f"{peak:.2f}"
            print(f"{mode:>8} {batch:>5} {ips:>10.1f} {ms:>9.1f} {comp_s:>9} {peak_s:>8}")


if __name__ == "__main__":
    main()
