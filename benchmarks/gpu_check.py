"""The GPU check of issue 18: throughput by recipe, loader rate, and time to the authors' NRMSE.

Run by ``benchmarks/gpu_check.sh`` (which finds a Python with torch first), or directly:
``python benchmarks/gpu_check.py --out DIR [--budget SECONDS] [--smoke]``. Phases, each
bounded by what is left of ``--budget`` (default 420 s, so that the whole check with
start-up stays under 8 minutes), each reported even if a later one fails:

1. data: ``biosr simulate --preset small`` (1,152 / 144 / 30x9 pairs of 128 px), packed;
2. throughput: DFCAN training images/s at batch 4 / 16 / 64 in fp32 eager (the authors'
   recipe ``dlsr``) and in the ``fast`` recipe, peak GPU memory, and the data module's
   loader pairs/s at the same batches (``bench_dfcan_throughput.py``);
3. the authors' recipe trained for 10,000 steps, validating every 500, or as many steps
   as its time share allows (then the report says how many): its best validation NRMSE
   is the target;
4. the fast recipe trained, validating every 50 steps, until its validation NRMSE reaches
   that target or its time share ends: the wall time to the target (compile included).

``--smoke`` runs every phase in seconds on a CPU (the tiny preset, an 8-channel DFCAN,
16 px throughput inputs, a few steps, no compile) so that the script cannot rot;
tests/test_gpu_check.py runs it. The report is printed and written to
``OUT/gpu_check.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dfcan_throughput import bench, loader_rate
from biosr.learn.device import resolve_device
from biosr.learn.train import train

#: The authors' step count the target NRMSE is taken at, and the validation intervals.
DLSR_STEPS, DLSR_VAL_EVERY, FAST_VAL_EVERY = 10_000, 500, 50
#: Shares of the time left that phases 2 and 3 may take (phase 4 takes the rest).
THROUGHPUT_SHARE, DLSR_SHARE = 0.4, 0.5
TINY_DFCAN = {"channels": 8, "groups": 1, "blocks": 1, "reduction": 4}


class _Watch(L.Callback):
    """Records (step, seconds since fit start, val NRMSE) at each validation; stops the run
    at `deadline` (a ``time.perf_counter`` value) or once the NRMSE reaches `target`."""

    def __init__(self, deadline: float, target: float | None = None) -> None:
        self.deadline, self.target = deadline, target
        self.start = time.perf_counter()
        self.history: list[tuple[int, float, float]] = []
        self.reached: tuple[int, float, float] | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, *args) -> None:
        if time.perf_counter() > self.deadline:
            trainer.should_stop = True

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get("val_nrmse")
        if value is None or trainer.sanity_checking:
            return
        entry = (trainer.global_step, time.perf_counter() - self.start, float(value))
        self.history.append(entry)
        if self.target is not None and entry[2] <= self.target and self.reached is None:
            self.reached = entry
            trainer.should_stop = True


def _phase(report: dict, name: str, run) -> None:
    t0 = time.perf_counter()
    try:
        report[name] = run()
    except Exception as exc:  # report it and go on to the next phase
        report[name] = {"error": f"{type(exc).__name__}: {str(exc).strip()[:300]}"}
        traceback.print_exc()
    report.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 1)
    print(f"[{name}] {json.dumps(report[name])}", flush=True)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="work folder (data, runs, report)")
    p.add_argument("--budget", type=float, default=420.0, help="seconds for all phases (420)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--smoke", action="store_true", help="seconds on a CPU: tiny everything")
    args = p.parse_args(argv)
    end = time.perf_counter() + args.budget
    device = resolve_device(args.device)
    smoke = args.smoke
    accelerator = "gpu" if device.type == "cuda" else device.type
    report: dict = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "smoke": smoke,
        "budget_s": args.budget,
    }
    if device.type == "cuda":
        report["bf16"] = torch.cuda.is_bf16_supported()
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "data"
    options = TINY_DFCAN if smoke else None
    batches = (4, 16, 64)

    def make_data() -> dict:
        from biosr.dataset.pack import pack
        from biosr.simulate import simulate_patches

        preset = "tiny" if smoke else "small"
        simulate_patches(data, preset=preset, seed=0, overwrite=True, force=True)
        for _ in pack(data):
            pass
        return {"preset": preset}

    def throughput() -> dict:
        deadline = time.perf_counter() + THROUGHPUT_SHARE * (end - time.perf_counter())
        rows = []
        loader = {b: loader_rate(data, b, device=device) for b in batches}
        for mode in ("fp32", "fast"):
            for batch in batches:
                if time.perf_counter() > deadline:
                    rows.append({"mode": mode, "batch": batch, "skipped": "time share used"})
                    continue
                try:
                    row = bench(
                        mode,
                        batch,
                        size=16 if smoke else 128,
                        steps=1 if smoke else 20,
                        warmup=1 if smoke else 5,
                        device=device,
                        model_options=options,
                        compile=False if smoke else None,
                    )
                except Exception as exc:  # an OOM at batch 64 must not hide the rest
                    row = {"error": f"{type(exc).__name__}: {str(exc).strip()[:200]}"}
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                rows.append(
                    {"mode": mode, "batch": batch, **row, "loader_pairs_per_s": loader[batch]}
                )
        return {"rows": rows}

    common = {
        "model": "dfcan",
        "model_options": options,
        "accelerator": accelerator,
        "seed": 0,
        "force": True,
    }
    if smoke:
        common["data_options"] = {"crop": 32}

    def dlsr() -> dict:
        deadline = time.perf_counter() + DLSR_SHARE * (end - time.perf_counter())
        watch = _Watch(deadline)
        steps = 6 if smoke else DLSR_STEPS
        t0 = time.perf_counter()
        result = train(
            data,
            args.out / "run_dlsr",
            recipe="dlsr",
            max_steps=steps,
            val_every=3 if smoke else DLSR_VAL_EVERY,
            callbacks=[watch],
            **common,
        )
        if not watch.history:
            raise RuntimeError(f"no validation within {deadline - t0:.0f} s")
        best = min(watch.history, key=lambda e: e[2])
        return {
            "steps_asked": steps,
            "steps_done": result.global_step,
            "scaled": result.global_step < steps,
            "target_nrmse": best[2],
            "target_step": best[0],
            "target_s": round(best[1], 1),
            "seconds": round(time.perf_counter() - t0, 1),
            "history": watch.history,
        }

    def fast() -> dict:
        target = report.get("dlsr", {}).get("target_nrmse")
        if target is None:
            raise RuntimeError("no target: the dlsr phase did not finish")
        deadline = end - 5.0
        watch = _Watch(deadline, target)
        t0 = time.perf_counter()
        result = train(
            data,
            args.out / "run_fast",
            recipe="fast",
            max_steps=40 if smoke else 1_000_000,
            val_every=3 if smoke else FAST_VAL_EVERY,
            callbacks=[watch],
            **({"batch_size": 8, "compile": False, "warmup_steps": 2} if smoke else {}),
            **common,
        )
        record = json.loads((args.out / "run_fast" / "recipe.json").read_text())
        out = {
            "target_nrmse": target,
            "reached": watch.reached is not None,
            "steps_done": result.global_step,
            "seconds": round(time.perf_counter() - t0, 1),
            "run": record["run"],
            "history": watch.history,
        }
        if watch.reached is not None:
            out.update(reached_step=watch.reached[0], reached_s=round(watch.reached[1], 1))
            out["speedup_vs_dlsr"] = round(report["dlsr"]["target_s"] / watch.reached[1], 2)
        return out

    _phase(report, "data", make_data)
    _phase(report, "throughput", throughput)
    _phase(report, "dlsr", dlsr)
    _phase(report, "fast", fast)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    _print_summary(report)
    return report


def _print_summary(report: dict) -> None:
    print(f"\n== GPU check: {report['device']}, torch {report['torch']} ==")
    rows = report.get("throughput", {}).get("rows", [])
    print(f"{'mode':>5} {'batch':>5} {'images/s':>9} {'peak GiB':>8} {'loader pairs/s':>14}")
    for r in rows:
        if "images_per_s" in r:
            peak = "" if r.get("peak_gib") is None else f"{r['peak_gib']:.2f}"
            print(
                f"{r['mode']:>5} {r['batch']:>5} {r['images_per_s']:>9.1f} {peak:>8} "
                f"{r['loader_pairs_per_s']:>14.0f}"
            )
        else:
            print(f"{r['mode']:>5} {r['batch']:>5} {r.get('error') or r.get('skipped')}")
    base = {
        r["batch"]: r["images_per_s"] for r in rows if r["mode"] == "fp32" and "images_per_s" in r
    }
    best_fast = max(
        (r["images_per_s"] for r in rows if r["mode"] == "fast" and "images_per_s" in r),
        default=None,
    )
    if 4 in base and best_fast:
        print(f"fast (best batch) / authors' recipe (batch 4): {best_fast / base[4]:.2f}x")
    d, f = report.get("dlsr", {}), report.get("fast", {})
    if "target_nrmse" in d:
        how = f"{d['steps_done']} steps (of {d['steps_asked']} asked"
        how += ", scaled to the time share)" if d["scaled"] else ")"
        print(
            f"authors' recipe: best val NRMSE {d['target_nrmse']:.4f} at step {d['target_step']} "
            f"after {d['target_s']} s; ran {how}"
        )
    if f.get("reached"):
        print(
            f"fast recipe: reached it at step {f['reached_step']} after {f['reached_s']} s "
            f"(compile included): {f['speedup_vs_dlsr']}x sooner"
        )
    elif "steps_done" in f:
        print(f"fast recipe: not reached in {f['seconds']} s ({f['steps_done']} steps)")
    for name in ("data", "throughput", "dlsr", "fast"):
        if "error" in report.get(name, {}):
            print(f"{name}: FAILED {report[name]['error']}")


if __name__ == "__main__":
    main()
