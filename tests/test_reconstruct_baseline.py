"""The ``sim`` baseline: a small simulated release, built, reconstructed, scored beside ``wf``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biosr import layout
from biosr.build.builder import build
from biosr.errors import BiosrError, DataError
from biosr.evaluate.baselines import run_baseline
from biosr.evaluate.evaluation import evaluate
from biosr.io.tiff import read_pixel_size_nm, read_tiff


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(release, dataset root): 3 simulated 192 px cells, cell 3 the test cell."""
    from biosr.simulate.release import simulate_release

    root = tmp_path_factory.mktemp("simbase")
    release = simulate_release(root / "rel", cells=3, size=192, seed=0, workers=1)
    build(
        release,
        root / "data",
        preset="small",
        training_cells="1",
        validate_cells="2",
        test_cells="3",
    )
    return release, root / "data"


def test_sim_baseline_is_scored_at_every_level_and_beats_wf_in_resolution(built, tmp_path):
    release, data = built
    sim = run_baseline("sim", data, tmp_path / "sim", release=release)
    wf = run_baseline("wf", data, tmp_path / "wf")
    base = layout.dataset_dir(data)
    for pair in layout.pairs(base, "test"):
        pred = sim / layout.level_dir(pair.level) / pair.wf.name
        gt = read_tiff(pair.gt, dtype=None)
        assert read_tiff(pred).shape == gt.shape
        assert read_pixel_size_nm(pred) == pytest.approx(read_pixel_size_nm(pair.gt))
    results = evaluate(data, {"sim": sim, "wf": wf}, None, plots=False)
    assert results.methods == ["sim", "wf"]
    assert sorted(results.summary["sim"]) == list(layout.LEVELS)
    for level in layout.LEVELS:
        assert results.summary["sim"][level]["complete"]
    for level in layout.LEVELS[-3:]:
        res = {m: results.summary[m][level]["resolution_nm"]["mean"] for m in ("sim", "wf")}
        assert res["sim"] < 0.75 * res["wf"], (level, res)
        psnr = {m: results.summary[m][level]["psnr"]["mean"] for m in ("sim", "wf")}
        assert psnr["sim"] > psnr["wf"], (level, psnr)


def test_sim_baseline_is_deterministic_for_any_workers(built, tmp_path):
    release, data = built
    one = run_baseline("sim", data, tmp_path / "a", release=release, levels=[9], workers=1)
    two = run_baseline("sim", data, tmp_path / "b", release=release, levels=[9], workers=2)
    for path in sorted((one / "level_09").glob("*.tif")):
        assert np.array_equal(read_tiff(path), read_tiff(two / "level_09" / path.name))


def test_sim_baseline_needs_the_release(built, tmp_path):
    _, data = built
    with pytest.raises(BiosrError, match="--release"):
        run_baseline("sim", data, tmp_path / "x")
    with pytest.raises(DataError):
        run_baseline("sim", data, tmp_path / "y", release=tmp_path / "nowhere")


def test_build_with_sim_baseline_matches_the_baseline_afterwards(built, tmp_path):
    from biosr.evaluate.sim_baseline import build_with_sim_baseline

    release, data = built
    cells = {"training_cells": "1", "validate_cells": "2", "test_cells": "3"}
    dataset, sim = build_with_sim_baseline(
        release, tmp_path / "d", tmp_path / "sim", preset="small", **cells
    )
    assert dataset == layout.dataset_dir(tmp_path / "d")
    assert len(list(sim.glob("level_*"))) == len(layout.LEVELS)
    ref = run_baseline("sim", data, tmp_path / "ref", release=release, levels=[9])
    for path in sorted((ref / "level_09").glob("*.tif")):
        assert np.array_equal(read_tiff(path), read_tiff(sim / "level_09" / path.name))
