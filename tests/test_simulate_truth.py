"""The simulator's ground truth made as BioSR's, its card, and a calibrated microscope."""

from __future__ import annotations

import json

import numpy as np
import pytest

from biosr import layout
from biosr.cli import main
from biosr.errors import BiosrError, DataError
from biosr.io.mrc import read_mrc
from biosr.simulate import calibrate, camera, field, imaging, microscope, simulate_release, truth

SIZE = 128


@pytest.fixture(scope="module")
def cell() -> field.Field:
    return field.simulate_field(SIZE, field.cell_seeds(0, 98, 1), frames=True)


def test_the_pattern_handed_to_the_reconstruction_is_the_one_it_estimates():
    """The simulator's own illumination, in the reconstruction's convention, matches what
    :func:`estimate_parameters` finds on a bright stack: period, angle and phases."""
    from biosr.reconstruct.parameters import estimate_parameters

    n = 256  # the estimate needs a field of some size
    cell = field.simulate_field(n, field.cell_seeds(0, 9, 6), frames=True)
    known = truth.sim_parameters(cell.clean.pattern, n)
    scale = camera.photon_scale(cell.clean.wf, 3000.0)
    stack = camera.expose(cell.clean.frames * scale, np.random.default_rng(0)).astype(float)
    found = estimate_parameters(stack - layout.CAMERA_OFFSET)
    assert found.period_nm == pytest.approx(known.period_nm, rel=0.005)
    assert known.period_nm[0] == pytest.approx(imaging.PATTERN_PERIOD_NM)
    for a in range(3):
        flip = abs(((found.angle_deg[a] - known.angle_deg[a]) + 90.0) % 180.0 - 90.0)
        assert flip < 0.2
        sign = 1.0 if abs((found.angle_deg[a] - known.angle_deg[a]) % 360.0) < 1.0 else -1.0
        for p, q in zip(found.phases_deg[a], known.phases_deg[a], strict=True):
            assert abs((p - sign * q + 180.0) % 360.0 - 180.0) < 5.0


def test_sim_truth_is_a_reconstruction_close_to_the_ideal_image(cell):
    sim = truth.cell_truth(cell.clean, field.cell_seeds(0, 98, 1)[field.TRUTH])
    ideal = truth.cell_truth(cell.clean, field.cell_seeds(0, 98, 1)[field.TRUTH], kind="ideal")
    assert sim.gt.shape == ideal.gt.shape == (2 * SIZE, 2 * SIZE) and ideal.raw_gt is None
    r = np.corrcoef(sim.gt.ravel(), ideal.gt.ravel())[0, 1]
    assert 0.8 < r < 0.995  # the same cell, with a reconstruction's texture
    # The raw GT is the mean of 3 raw sets at the high-SNR level (counts, offset included).
    photons = calibrate.average_photons(sim.raw_gt.mean(axis=0))
    assert photons == pytest.approx(truth.RAW_GT_PHOTONS, rel=0.05)
    # Between filaments a reconstruction is not a clean zero: noise and ringing remain.
    dark = ideal.gt < np.percentile(ideal.gt, 10)
    assert sim.gt[dark].std() > 2 * ideal.gt[dark].std() * (sim.gt.std() / ideal.gt.std())
    with pytest.raises(ValueError, match="unknown ground truth"):
        truth.cell_truth(cell.clean, field.cell_seeds(0, 98, 1)[field.TRUTH], kind="best")


def test_release_card_records_gt_kind_and_calibration(tmp_path):
    sim = simulate_release(tmp_path / "s", cells=1, size=64, seed=2, workers=1)
    ideal = simulate_release(tmp_path / "i", cells=1, size=64, seed=2, workers=1, gt="ideal")
    cards = [json.loads((f / layout.CARD_FILE).read_text()) for f in (sim, ideal)]
    assert [c["gt_kind"] for c in cards] == ["sim", "ideal"]
    assert cards[0]["physics"]["calibration"] == "defaults"
    assert cards[0]["physics"]["otf"] == "measured"
    a, b = (read_mrc(layout.release_files(f, 1)["sim_gt"], modes=(2,)).data for f in (sim, ideal))
    assert a.shape == b.shape == (1, 128, 128) and not np.allclose(a, b)
    # The raw stacks do not depend on the GT kind.
    for key in ("level_01", "level_09"):
        x, y = (read_mrc(layout.release_files(f, 1)[key]).data for f in (sim, ideal))
        np.testing.assert_array_equal(x, y)
    with pytest.raises(BiosrError, match="unknown gt 'best'"):
        simulate_release(tmp_path / "b", cells=1, size=64, gt="best")


def test_simulate_a_calibrated_microscope(tmp_path, capsys):
    # Calibrate a stack simulated with a different camera, then simulate from that file.
    f = field.simulate_field(128, field.cell_seeds(0, 98, 2), frames=True, cell_radius=(0.5, 0.5))
    other = microscope.DEFAULT._replace(offset=400.0, photons_per_count=0.3, read_noise=4.0)
    scale = camera.photon_scale(f.clean.wf, other.true_photons(200.0))
    stack = camera.expose(f.clean.frames * scale, np.random.default_rng(1), **other.camera())
    cal = calibrate.calibrate(stack, source="other")
    path = calibrate.write_calibration(tmp_path / "cal.json", cal)
    argv = ["simulate", "--format", "raw", "--cells", "1", "--size", "64", "--workers", "1"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--calibration", str(path)]) == 0
    capsys.readouterr()
    card = json.loads((tmp_path / "r" / "Microtubules" / layout.CARD_FILE).read_text())
    assert card["physics"]["camera_offset_counts"] == pytest.approx(cal.offset)
    assert card["physics"]["photons_per_count"] == pytest.approx(cal.photons_per_count)
    assert card["physics"]["calibration"] == str(path)
    raw = read_mrc(layout.release_files(tmp_path / "r" / "Microtubules", 1)["level_01"]).data
    assert abs(np.percentile(raw, 1) - 400.0) < 30.0  # the calibrated camera's offset
    # A bad calibration file is one line naming it, and nothing is written.
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main([*argv, "--out", str(tmp_path / "x"), "--calibration", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.json" in err and "not a calibration" in err
    assert not (tmp_path / "x").exists()
    with pytest.raises(DataError):
        microscope.load(tmp_path / "missing.json")
