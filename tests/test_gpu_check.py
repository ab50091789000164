"""benchmarks/gpu_check.sh cannot rot: its smoke mode runs every phase on a CPU in seconds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="needs torch: pip install biosr[ml]")
pytest.importorskip("lightning", reason="needs lightning: pip install biosr[ml]")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_smoke_runs_every_phase(tmp_path):
    out = tmp_path / "check"
    done = subprocess.run(
        ["bash", str(SCRIPT), str(out), "--smoke", "--device", "cpu", "--budget", "200"],
        capture_output=True,
        text=True,
        timeout=400,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    for phase in ("data", "throughput", "dlsr", "fast"):
        assert "error" not in report[phase], (phase, report[phase])
    rows = report["throughput"]["rows"]
    assert [(r["mode"], r["batch"]) for r in rows] == [
        (m, b) for m in ("fp32", "fast") for b in (4, 16, 64)
    ]
    assert all(r["images_per_s"] > 0 and r["loader_pairs_per_s"] > 0 for r in rows)
    dlsr, fast = report["dlsr"], report["fast"]
    assert dlsr["steps_done"] == dlsr["steps_asked"] and len(dlsr["history"]) == 2
    assert dlsr["target_nrmse"] == min(h[2] for h in dlsr["history"])
    assert fast["run"]["recipe"] == "fast" and fast["history"]
    if fast["reached"]:
        assert fast["history"][-1][2] <= dlsr["target_nrmse"]
    assert "== GPU check: cpu" in done.stdout
    assert "authors' recipe: best val NRMSE" in done.stdout
