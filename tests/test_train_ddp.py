"""Two-process CPU DDP (gloo) under torchrun through the CLI: completes and logs once."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="needs torch: pip install biosr[ml]")
pytest.importorskip("lightning", reason="needs lightning: pip install biosr[ml]")

from biosr.learn.predict import load_model  # noqa: E402
from test_train import write_learnable_dataset  # noqa: E402


def test_two_process_ddp_under_torchrun(tmp_path):
    data = write_learnable_dataset(tmp_path / "data", {"training": 16, "validate": 4})
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "biosr.cli",
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--model",
        "unet",
        "--steps",
        "6",
        "--val-every",
        "3",
        "--devices",
        "2",
        "--accelerator",
        "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Rank 0 alone reports and logs: one summary line, one log version, one row per validation.
    assert proc.stdout.count("trained 6 steps") == 1, proc.stdout
    versions = sorted(p.name for p in (out / "logs").iterdir())
    assert versions == ["version_0"]
    rows = list(csv.DictReader(open(out / "logs" / "version_0" / "metrics.csv")))
    val_steps = [int(r["step"]) for r in rows if r.get("val_nrmse")]
    assert val_steps == [2, 5]  # 0-based step of the 3rd and 6th optimizer steps
    # 16 pairs / (2 processes x batch 4) = 2 steps per epoch: step 6 is the last batch of
    # epoch index 2, where last.ckpt is written (inside the loop, so resume is exact).
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 6 and ckpt["epoch"] == 2
    assert load_model(out / "checkpoints" / "best.ckpt").name == "unet"
