"""`biosr demo` end to end in its tiny configuration: outputs, report, table, reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pytest

from biosr import layout
from biosr.cli import main
from biosr.demo import METHODS, run_demo
from biosr.errors import BiosrError
from biosr.io.tiff import read_tiff


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    stages: list[str] = []
    result = run_demo(out, config="tiny", seed=1, workers=1, on_stage=stages.append)
    return out, result, stages


def test_demo_runs_every_stage_and_writes_the_report(tiny_demo):
    out, result, stages = tiny_demo
    assert [s.split("]")[0] for s in stages] == [f"[{i}/6" for i in range(1, 7)]
    assert list(result.seconds) == [
        "simulate",
        "build",
        "train",
        "predict",
        "baselines",
        "evaluate",
    ]
    # Every method predicted every test image at every level.
    n_test = len(layout.pairs(result.dataset, "test", 1))
    assert n_test == 2  # tiny: 2 test cells x 1 crop
    for method in METHODS:
        files = sorted((out / "predictions" / method).rglob("*.tif"))
        assert len(files) == 9 * n_test, method
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["methods"] == list(METHODS) and summary["complete"]
    html = result.report.read_text()
    assert "U-Net beats WF in PSNR and SSIM at every level" in html
    assert "U-Net beats RL in PSNR and SSIM at every level" in html
    assert "montage" in html and "<table" in html
    # The printed table has one row per level with 3 PSNR and 3 SSIM values.
    rows = result.table.splitlines()[2:]
    assert len(rows) == 9
    assert all(len(r.split("|")[1].split()) == 3 == len(r.split("|")[2].split()) for r in rows)
    psnr_wf = result.results.summary["wf"][1]["psnr"]["mean"]
    assert f"{psnr_wf:.4f}" in rows[0]
    # The verdicts shown match the written summary (checked here, not by re-running beats()).
    means = summary["summary"]
    for base, name, flag in (
        ("wf", "WF", result.unet_beats_wf),
        ("rl", "RL", result.unet_beats_rl),
    ):
        wins = all(
            means["unet"][str(lev)][m]["mean"] > means[base][str(lev)][m]["mean"]
            for lev in layout.LEVELS
            for m in ("psnr", "ssim")
        )
        line = f"U-Net beats {name} in PSNR and SSIM at every level: {'yes' if wins else 'no'}"
        assert line in html and line in result.verdict()
        assert flag is wins


def test_demo_is_reproducible_from_its_seed(tiny_demo, tmp_path, capsys):
    out, result, _ = tiny_demo
    rc = main(["demo", "--config", "tiny", "--seed", "1", "--workers", "1", "--out", str(tmp_path)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "[6/6]" in printed and result.table in printed and "report:" in printed
    for line in result.verdict():
        assert line in printed
    for rel in ("level_01/001.tif", "level_09/002.tif"):
        a = read_tiff(out / "predictions" / "unet" / rel)
        b = read_tiff(tmp_path / "predictions" / "unet" / rel)
        np.testing.assert_array_equal(a, b)


def test_demo_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "x").write_text("mine")
    with pytest.raises(BiosrError, match="not empty; pass --overwrite"):
        run_demo(tmp_path, config="tiny")
    assert main(["demo", "--config", "tiny", "--out", str(tmp_path)]) == 1
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(BiosrError, match="unknown demo config 'huge'"):
        run_demo(tmp_path / "new", config="huge")
