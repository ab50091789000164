"""biosr calibrate: the notes' statistics on real data, known cameras recovered, bad inputs."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import fftconvolve

from biosr import layout, optics
from biosr.cli import main
from biosr.errors import DataError
from biosr.io.mrc import write_mrc
from biosr.simulate import calibrate as cal

#: BioSR's illumination: about 0.18 um line spacing, 3 orientations 60 degrees apart.
PERIOD_NM = 180.0
ANGLES_DEG = (85.0, 145.0, 205.0)


@functools.cache
def forward(
    *,
    seed: int = 0,
    size: int = 128,
    offset: float = layout.CAMERA_OFFSET,
    photons_per_count: float = layout.PHOTONS_PER_COUNT,
    read_noise: float = 1.5,
    photons: float = 60.0,
    angles: tuple[float, ...] = ANGLES_DEG,
    period_nm: float = PERIOD_NM,
    modulation: float = 0.8,
) -> np.ndarray:
    """A small forward model of a raw SIM stack with a known camera and a known pattern.

    Straight filaments inside a round cell (dark outside it) on a 2x grid,
    lit by ``1 + m cos(2 pi k.x + phase)`` (3 orientations x 3 phases), blurred
    by the Airy PSF, binned 2 x 2, scaled to `photons` on the structure by the
    authors' definition, then Poisson photons, gain, offset, Gaussian read
    noise and rounding to uint16 counts. Independent of biosr's simulator.
    """
    rng = np.random.default_rng(seed)
    n, px = 2 * size, layout.PIXEL_SIZE_WF_NM / 2
    fine = np.zeros((n, n))
    t = np.linspace(-n, n, 8 * n)
    for _ in range(size // 5):
        y0, x0 = rng.uniform(0, n, 2)
        theta = rng.uniform(0, np.pi)
        ys, xs = (y0 + t * np.sin(theta)).astype(int), (x0 + t * np.cos(theta)).astype(int)
        inside = (ys >= 0) & (ys < n) & (xs >= 0) & (xs < n)
        fine[ys[inside], xs[inside]] += 1.0
    yy, xx = np.mgrid[:n, :n]
    fine *= (yy - n / 2) ** 2 + (xx - n / 2) ** 2 < (0.42 * n) ** 2
    y_nm, x_nm = yy * px, xx * px
    psf = optics.widefield_psf(px)
    frames = []
    for angle in angles:
        ky, kx = np.sin(np.radians(angle)) / period_nm, np.cos(np.radians(angle)) / period_nm
        for j in range(3):
            lit = 1 + modulation * np.cos(2 * np.pi * (ky * y_nm + kx * x_nm + j / 3) + 0.3)
            image = np.clip(fftconvolve(fine * lit, psf, mode="same"), 0.0, None)
            frames.append(image.reshape(size, 2, size, 2).sum(axis=(1, 3)))
    clean = np.array(frames)
    mask, blurred = cal.photon_mask(clean.mean(axis=0), offset=0.0)
    clean *= photons / blurred[mask].mean()
    counts = rng.poisson(clean) / photons_per_count + offset
    counts = counts + rng.normal(0.0, read_noise, clean.shape)
    out = np.clip(np.rint(counts), 0, 65535).astype(np.uint16)
    out.flags.writeable = False
    return out


# --------------------------------------------------------------------------- #
# The statistics on real data (../shared)
# --------------------------------------------------------------------------- #


def test_real_stack_statistics_match_the_notes(real_mrc):
    from biosr.io.mrc import read_mrc

    stack = read_mrc(real_mrc).data
    stats = cal.stack_statistics(stack)
    print("real stack, as stored:", {k: round(v, 4) for k, v in stats.items()})
    # DATASET_NOTES section 6: WF SNR about 17, a raw frame about 12 (the 9 frames
    # measure 9.5 to 11.9), about 9 % of the WF power beyond half Nyquist.
    assert 15.0 < stats["snr"] < 19.0
    assert 8.5 < stats["frame_snr"] < 13.0
    assert 0.075 < stats["high_frequency_fraction"] < 0.105
    assert 0.1 < stats["foreground_fraction"] < 0.5
    assert 0.0 < stats["haze_ratio"] < 1.0


def test_real_stack_calibration(real_mrc, tmp_path):
    c = cal.calibrate_file(real_mrc, illumination=False)
    print(cal.format_calibration(c))
    # The publisher stretched each orientation to 0..65535 separately: three count grids.
    assert len(set(c.count_step)) == 3 and all(300 < s < 400 for s in c.count_step)
    assert c.count_step[0] == c.count_step[2] != c.count_step[3]
    # The same statistics on the restored counts (orientations on one scale).
    assert 15.0 < c.snr < 19.0 and 0.075 < c.high_frequency_fraction < 0.105
    # A camera: between 1 and 4 counts per photon, a floor of a few counts squared.
    assert 1.0 < c.ptc_slope < 4.0 and 1.0 < c.ptc_intercept < 30.0
    assert c.photons_per_count == pytest.approx(1.0 / c.ptc_slope)
    assert 0.1 < c.haze_ratio < 0.6 and 500.0 < c.haze_scale_nm < 5000.0
    # Low-signal data: photons by the authors' definition near the ladder's foot.
    assert 3.0 < c.photons < 60.0


# --------------------------------------------------------------------------- #
# Estimators on known inputs
# --------------------------------------------------------------------------- #


def test_snr_and_spectrum_estimators_on_known_images():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 2.0, (256, 256))
    step = np.zeros((256, 256))
    step[:, 128:] = 100.0
    # The darker half is the dark background: its differences are the noise's.
    assert cal.robust_noise(step + noise) == pytest.approx(2.0, rel=0.03)
    # p99 - p20 = 100 over noise 2: SNR 50 (the edge column barely moves the MAD).
    assert cal.snr(step + noise) == pytest.approx(50.0, rel=0.05)
    # White noise: the share beyond half Nyquist is the area outside the circle of radius
    # 1/4 cycle per pixel, 1 - pi / 16.
    assert cal.high_frequency_fraction(noise) == pytest.approx(1 - np.pi / 16, abs=0.02)
    smooth = np.outer(np.hanning(256), np.hanning(256))
    assert cal.high_frequency_fraction(smooth) < 1e-6
    assert cal.haze_ratio(np.linspace(100, 200, 10001), offset=100.0) == pytest.approx(
        20.0 / 99.0, rel=1e-3
    )


def test_average_photons_follows_the_authors_definition():
    wf = np.full((64, 64), 100.0)
    wf[16:48, 16:48] = 200.0  # 100 counts over the offset on a square
    photons = cal.average_photons(wf, offset=100.0, photons_per_count=0.5)
    mask, blurred = cal.photon_mask(wf, offset=100.0)
    assert photons == pytest.approx(0.5 * blurred[mask].mean())
    assert 0.5 * 50 < photons < 0.5 * 100  # the blurred square's mean over its 20 % mask


def test_count_step_finds_a_rescaled_grid():
    rng = np.random.default_rng(0)
    counts = rng.integers(100, 300, (64, 64))
    assert cal.count_step(counts.astype(np.uint16)) == 1.0
    stretched = np.rint((counts - counts.min()) * 65535.0 / (counts.max() - counts.min()))
    assert cal.count_step(stretched.astype(np.uint16)) == pytest.approx(
        65535.0 / (counts.max() - counts.min()), rel=1e-4
    )
    assert cal.count_step(rng.random((64, 64))) == 1.0


# --------------------------------------------------------------------------- #
# Known cameras recovered
# --------------------------------------------------------------------------- #

CAMERAS = [
    dict(offset=100.0, photons_per_count=0.6026, read_noise=1.5, photons=20.0),
    dict(offset=100.0, photons_per_count=0.6026, read_noise=1.5, photons=150.0, seed=1),
    dict(offset=80.0, photons_per_count=0.4, read_noise=3.0, photons=60.0, seed=2),
]


@pytest.mark.parametrize("camera", CAMERAS, ids=["bioSR-20ph", "bioSR-150ph", "other"])
def test_calibrate_recovers_a_known_camera(camera):
    c = cal.calibrate(forward(**camera), illumination=False)
    print(camera, c.photons_per_count, c.offset, c.read_noise)
    assert c.photons_per_count == pytest.approx(camera["photons_per_count"], rel=0.05)
    assert c.read_noise == pytest.approx(camera["read_noise"], rel=0.05)
    assert c.offset == pytest.approx(camera["offset"], abs=1.0)
    assert c.count_step == (1.0,) * layout.RAW_FRAMES
    # Photons by the authors' definition: counts x their camera's 0.6026 photons per count.
    expected = camera["photons"] * layout.PHOTONS_PER_COUNT / camera["photons_per_count"]
    assert c.photons == pytest.approx(expected, rel=0.1)


def test_photon_transfer_of_a_stack_rescaled_per_orientation():
    stack = forward(photons=60.0, seed=3).astype(np.float64)
    out = np.empty_like(stack)
    for a in range(3):  # as the rDL-SIM publisher: each orientation stretched to 0..65535
        part = stack[3 * a : 3 * a + 3]
        out[3 * a : 3 * a + 3] = (part - part.min()) * 65535.0 / (part.max() - part.min())
    ptc = cal.photon_transfer(np.rint(out).astype(np.uint16))
    assert len(set(ptc.count_step)) == 3
    assert ptc.gain == pytest.approx(layout.PHOTONS_PER_COUNT, rel=0.05)
    assert ptc.read_noise == pytest.approx(1.5, rel=0.05)


def test_widefield_image_gives_the_per_frame_curve():
    stack = forward(photons=60.0, seed=4)
    ptc = cal.photon_transfer(stack.mean(axis=0), frames=layout.RAW_FRAMES)
    assert ptc.gain == pytest.approx(layout.PHOTONS_PER_COUNT, rel=0.08)
    assert ptc.offset == pytest.approx(layout.CAMERA_OFFSET, abs=1.0)
    c = cal.calibrate(stack.mean(axis=0))
    assert c.kind == "widefield" and c.frame_snr is None and c.illumination is None


def test_tiff_stack_and_widefield_tiff_are_read(tmp_path):
    import tifffile

    from biosr.io.tiff import write_tiff

    stack = forward(photons=60.0, seed=6)
    tifffile.imwrite(tmp_path / "raw.tif", stack)
    c = cal.calibrate_file(tmp_path / "raw.tif", illumination=False)
    assert c.kind == "raw" and c.photons_per_count == pytest.approx(0.6026, rel=0.05)
    write_tiff(tmp_path / "wf.tif", stack.mean(axis=0).astype(np.float32), pixel_size_nm=62.6)
    c = cal.calibrate_file(tmp_path / "wf.tif")
    assert c.kind == "widefield" and c.pixel_size_nm == pytest.approx(62.6)


def test_known_read_noise_sets_the_offset():
    stack = forward(photons=60.0, seed=5, offset=90.0)
    ptc = cal.photon_transfer(stack, read_noise=1.5)
    assert ptc.read_noise == 1.5 and ptc.intercept == pytest.approx(1.5**2 + 1 / 12)
    assert ptc.offset == pytest.approx(90.0, abs=1.0)


def test_calibration_is_deterministic_and_round_trips(tmp_path):
    c = cal.calibrate(forward(photons=60.0), illumination=False)
    assert cal.calibrate(forward(photons=60.0), illumination=False) == c
    path = cal.write_calibration(tmp_path / "cal.json", c)
    assert cal.read_calibration(path) == c
    assert json.loads(path.read_text())["format"] == cal.CALIBRATION_FORMAT


@pytest.mark.parametrize(
    ("text", "reason"),
    [(None, "not found"), ("{", "not a calibration"), ('{"format": 1}', "not a calibration")],
)
def test_read_calibration_refuses_bad_files(tmp_path, text, reason):
    path = tmp_path / "cal.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(DataError, match=reason) as err:
        cal.read_calibration(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


# --------------------------------------------------------------------------- #
# Illumination (biosr.reconstruct's estimator)
# --------------------------------------------------------------------------- #


def _check_illumination(c: cal.Calibration, angles: tuple[float, ...]) -> None:
    ill = c.illumination
    assert ill is not None, c.illumination_note
    for period, angle, want in zip(ill["period_nm"], ill["angle_deg"], angles, strict=True):
        assert period == pytest.approx(PERIOD_NM, rel=0.005)
        assert abs((angle - want + 90.0) % 180.0 - 90.0) < 0.2


def test_calibrate_records_the_reconstruct_estimate():
    parameters = pytest.importorskip("biosr.reconstruct.parameters")
    stack = forward(photons=100.0)
    c = cal.calibrate(stack)
    # One source of truth: the record is biosr.reconstruct's estimate on the stack's signal.
    signal = np.asarray(stack, dtype=np.float64) - c.offset
    assert c.illumination == parameters.estimate_parameters(signal).to_dict()
    assert c.illumination_note is None


def test_calibrate_recovers_bioSR_like_illumination():
    pytest.importorskip("biosr.reconstruct.parameters")
    _check_illumination(cal.calibrate(forward(photons=100.0, size=256)), ANGLES_DEG)


@pytest.mark.xfail(
    reason="known limitation: biosr.reconstruct.parameters.estimate_parameters misreads this "
    "128 px stack (periods of about 250 nm); remove this mark once it passes",
    strict=False,
)
def test_calibrate_recovers_bioSR_like_illumination_on_a_small_stack():
    pytest.importorskip("biosr.reconstruct.parameters")
    _check_illumination(cal.calibrate(forward(photons=100.0)), ANGLES_DEG)


# --------------------------------------------------------------------------- #
# Real against simulated
# --------------------------------------------------------------------------- #


def _release(root: Path, levels: dict[int, float]) -> Path:
    """A one-cell raw release of the forward model (levels: photons), as simulate writes it."""
    files = layout.release_files(root / layout.STRUCTURE, 1)
    files["level_01"].parent.mkdir(parents=True)
    for level, photons in levels.items():
        stack = forward(photons=photons, seed=10 + level)
        write_mrc(files[f"level_{level:02d}"], stack, voxel_size_nm=layout.PIXEL_SIZE_WF_NM)
    return root


def test_compare_matches_the_level_of_the_same_signal():
    real = forward(photons=60.0, seed=7)
    sims = {
        1: forward(photons=15.0, seed=8),
        2: forward(photons=60.0, seed=9),
        3: forward(photons=240.0, seed=10),
    }
    cmp = cal.compare(np.asarray(real), sims)
    assert cmp.matched == 2 and cmp.match_by == "snr"
    rows = {label: ratio for label, _, _, ratio in cmp.rows}
    assert rows["WF SNR"] == pytest.approx(1.0, rel=0.2)
    assert rows["PTC slope [counts/photon]"] == pytest.approx(1.0, rel=0.08)
    assert cal.compare(np.asarray(real), sims, match_by="photons").matched == 2
    text = cal.format_comparison(cmp)
    assert "matched level 2 (nearest in WF SNR)" in text and "haze ratio" in text


def test_cli_calibrate_compare_writes_json_and_png(tmp_path, capsys):
    real = tmp_path / "real.mrc"
    write_mrc(real, forward(photons=60.0, seed=7), voxel_size_nm=layout.PIXEL_SIZE_WF_NM)
    release = _release(tmp_path / "sim", {1: 15.0, 2: 60.0, 3: 240.0})
    out, png = tmp_path / "cal.json", tmp_path / "cmp.png"
    argv = ["calibrate", str(real), "--out", str(out), "--compare", str(release)]
    assert main([*argv, "--png", str(png)]) == 0
    text = capsys.readouterr().out
    assert "photon transfer" in text and "matched level 2" in text
    assert cal.read_calibration(out).kind == "raw"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _bad_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    rng = np.random.default_rng(0)
    five = folder / "five.mrc"
    write_mrc(five, rng.integers(100, 200, (5, 64, 64)).astype(np.uint16), voxel_size_nm=62.6)
    flat = folder / "flat.mrc"
    write_mrc(flat, np.full((9, 64, 64), 100, np.uint16), voxel_size_nm=62.6)
    nan = folder / "nan.mrc"
    image = rng.random((1, 64, 64)).astype(np.float32)
    image[0, 3, 3] = np.nan
    write_mrc(nan, image, voxel_size_nm=62.6)
    text = folder / "notes.txt"
    text.write_text("not an image")
    return {
        "frames": (five, "9 frames"),
        "constant": (flat, "constant"),
        "nan": (nan, "NaN"),
        "not-an-image": (text, "not an image"),
    }


@pytest.mark.parametrize("case", ["frames", "constant", "nan", "not-an-image"])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, case):
    path, reason = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "biosr.cli", "calibrate", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(path) in lines[0] and reason in lines[0]
    assert not out.exists() and not list(tmp_path.glob(".*.part"))
