"""SIM reconstruction: estimation and Wiener reconstruction on stacks of known illumination.

The raw stacks come from this module's own small forward model (not
biosr.simulate): random filaments and points on the 31.3 nm grid, illuminated
by ``1 + m cos(2 pi k.x + phi)``, blurred by biosr.optics' OTF, binned 2 x 2 to
the 62.6 nm camera grid, with Poisson noise.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from biosr import layout, optics
from biosr.errors import DataError
from biosr.evaluate.metrics import resolution_nm
from biosr.io.mrc import write_mrc
from biosr.io.tiff import read_pixel_size_nm
from biosr.reconstruct import files
from biosr.reconstruct.parameters import (
    SimParameters,
    estimate_parameters,
    read_params,
    write_params,
)
from biosr.reconstruct.wiener import reconstruct_sim

P = layout.PIXEL_SIZE_WF_NM
#: The pattern of the synthetic stacks: period, orientations, phase offsets, modulation.
PERIOD_NM = 200.0
ANGLES_DEG = (17.0, 77.0, 137.0)
OFFSETS_DEG = (10.0, 200.0, 300.0)
MODULATION = 0.8
#: Photons at the 99.5th percentile of a frame at the three highest signal levels tested.
SIGNALS = (4000.0, 1500.0, 500.0)


def specimen(n_fine: int, seed: int) -> np.ndarray:
    """Random filaments (anti-aliased lines) and points on an (n_fine, n_fine) grid."""
    rng = np.random.default_rng(seed)
    img = np.zeros((n_fine, n_fine))
    for _ in range(n_fine // 6):
        y0, x0 = rng.uniform(0, n_fine, 2)
        angle = rng.uniform(0, np.pi)
        curve = rng.normal(0, 0.004)
        t = np.arange(-n_fine / 2, n_fine / 2, 0.25)
        theta = angle + curve * t
        ys = y0 + np.cumsum(np.sin(theta)) * 0.25
        xs = x0 + np.cumsum(np.cos(theta)) * 0.25
        keep = (ys >= 0) & (ys < n_fine - 1) & (xs >= 0) & (xs < n_fine - 1)
        np.add.at(img, (ys[keep].astype(int), xs[keep].astype(int)), 0.25)
    pts = rng.integers(0, n_fine, (n_fine // 2, 2))
    img[pts[:, 0], pts[:, 1]] += 1.0
    return img


def pattern_phases(offsets_deg=OFFSETS_DEG, steps_deg=(0.0, 120.0, 240.0)):
    """Phases (degrees) of the 9 frames, per orientation, for positions from raw pixel (0, 0)."""
    return tuple(tuple(o + s for s in steps_deg) for o in offsets_deg)


def centred_phases(phases_deg, n, period_nm=PERIOD_NM, angles_deg=ANGLES_DEG):
    """`phases_deg` moved to the frame centre's origin (biosr's convention), in [0, 360)."""
    c = (n - 1) / 2.0 * P
    out = []
    for row, angle in zip(phases_deg, angles_deg, strict=True):
        k_dot_c = c * (math.sin(math.radians(angle)) + math.cos(math.radians(angle))) / period_nm
        out.append(tuple((p + 360.0 * k_dot_c) % 360.0 for p in row))
    return tuple(out)


def raw_stack(
    n: int = 128,
    *,
    signal: float | None = 2000.0,
    seed: int = 0,
    kind: str = "measured",
    period_nm: float = PERIOD_NM,
    angles_deg=ANGLES_DEG,
    phases_deg=None,
    modulation: float = MODULATION,
    background: float = 100.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(9, n, n) raw stack (photons + background), its widefield and the ideal SIM image (2n)."""
    phases_deg = phases_deg or pattern_phases()
    pad = 16
    nf = 2 * (n + 2 * pad)
    s = specimen(nf, seed)
    pf = P / 2.0
    # fine pixel j lies at (j / 2 - 0.25) raw pixels from raw pixel 0 (2 x 2 binning)
    xf = ((np.arange(nf) - 2 * pad) / 2.0 - 0.25) * P
    h = optics.otf((nf, nf), pf, kind=kind)
    spec_s = np.fft.fft2(s)
    frames = []
    for a, angle in enumerate(angles_deg):
        ky = math.sin(math.radians(angle)) / period_nm
        kx = math.cos(math.radians(angle)) / period_nm
        for ph in phases_deg[a]:
            illum = 1.0 + modulation * np.cos(
                2 * np.pi * (ky * xf[:, None] + kx * xf[None, :]) + math.radians(ph)
            )
            blurred = np.fft.ifft2(np.fft.fft2(s * illum) * h).real
            frames.append(blurred)
    frames = np.stack(frames)[:, 2 * pad : 2 * pad + 2 * n, 2 * pad : 2 * pad + 2 * n]
    frames = frames.reshape(9, n, 2, n, 2).sum(axis=(2, 4))
    frames = np.maximum(frames, 0)
    ideal_otf = optics.otf((nf, nf), pf, kind="airy", wavelength_nm=layout.EMISSION_NM / 2)
    gt = np.fft.ifft2(spec_s * ideal_otf).real[2 * pad : 2 * pad + 2 * n, 2 * pad : 2 * pad + 2 * n]
    scale = 1.0
    if signal is not None:
        scale = signal / np.percentile(frames, 99.5)
        rng = np.random.default_rng(seed + 1000)
        frames = rng.poisson(frames * scale).astype(np.float64)
    else:
        frames = frames * 1000.0
    frames = frames + background
    return frames.astype(np.float32), frames.mean(axis=0), gt


def wrapped(a, b):
    """Absolute difference of angles in degrees, modulo 360."""
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


#: Largest ratio of the mean power at a pattern frequency (3 x 3 pixels) to the mean power
#: around it (4 to 10 frequency pixels away) accepted in a reconstruction: a residual stripe
#: is a peak there; the noise of a mean of 9 powers stays well below 3.
STRIPE_BOUND = 3.0


def stripe_peak(image: np.ndarray, params: SimParameters, pixel_size_nm: float) -> float:
    """Largest ratio over the +-k of `params` of the power at k to the power around it."""
    n = image.shape[0]
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    step = 1.0 / (n * pixel_size_nm)
    yy, xx = np.meshgrid(np.arange(-10, 11), np.arange(-10, 11), indexing="ij")
    ring = (np.hypot(yy, xx) >= 4) & (np.hypot(yy, xx) <= 10)
    worst = 0.0
    for ky, kx in params.wavevectors_per_nm:
        for sign in (1, -1):
            cy, cx = round(sign * ky / step), round(sign * kx / step)
            patch = power[(cy + yy) % n, (cx + xx) % n]
            worst = max(worst, float(patch[9:12, 9:12].mean() / patch[ring].mean()))
    return worst


@pytest.mark.parametrize("signal", SIGNALS)
def test_parameters_of_a_known_pattern(signal):
    n = 256
    stack, _, _ = raw_stack(n, signal=signal, seed=3)
    params = estimate_parameters(stack)
    assert np.allclose(params.period_nm, PERIOD_NM, rtol=0.005)
    assert wrapped(params.angle_deg, ANGLES_DEG).max() < 0.2
    assert wrapped(params.phases_deg, centred_phases(pattern_phases(), n)).max() < 5.0
    assert np.allclose(params.modulation, MODULATION, rtol=0.1)


def test_unequal_phase_steps_are_measured():
    n = 256
    steps = ((0.0, 100.0, 250.0), (0.0, 130.0, 235.0), (0.0, 115.0, 245.0))
    phases = tuple(tuple(o + s for s in row) for o, row in zip(OFFSETS_DEG, steps, strict=True))
    stack, _, _ = raw_stack(n, signal=2000.0, seed=4, phases_deg=phases)
    params = estimate_parameters(stack, otf_kind="measured")
    assert wrapped(params.phases_deg, centred_phases(phases, n)).max() < 5.0


def test_reconstruction_beats_widefield_and_matches_the_ideal_image():
    stack, wf, gt = raw_stack(128, signal=SIGNALS[0], seed=5)
    image, params = reconstruct_sim(stack)
    assert image.shape == (256, 256) and image.dtype == np.float32
    res_sim = resolution_nm(image, layout.PIXEL_SIZE_GT_NM)
    res_wf = resolution_nm(wf, P)
    assert res_sim <= 0.6 * res_wf, (res_sim, res_wf)
    assert correlation(image, gt) > 0.9
    assert correlation(image, gt) > correlation(np.kron(wf, np.ones((2, 2))), gt) + 0.05
    assert stripe_peak(image, params, layout.PIXEL_SIZE_GT_NM) < STRIPE_BOUND
    # light is kept: the image sums to about the widefield's sum
    assert image.sum() == pytest.approx(wf.sum(), rel=0.1)


def test_reconstruction_is_deterministic_and_takes_fixed_parameters(tmp_path):
    stack, _, _ = raw_stack(96, signal=500.0, seed=6, kind="airy")
    first, params = reconstruct_sim(stack, otf_kind="airy")
    again, _ = reconstruct_sim(stack, otf_kind="airy")
    assert np.array_equal(first, again)
    path = write_params(tmp_path / "p.json", params)
    assert read_params(path) == params
    fixed, used = reconstruct_sim(stack, read_params(path), otf_kind="airy")
    assert used == params and np.array_equal(fixed, first)
    other, _ = reconstruct_sim(stack, params, otf_kind="airy", modulation=0.5, wiener=0.1)
    assert not np.array_equal(other, first)


def test_parameters_record_round_trip_and_pattern_constructor():
    p = SimParameters.from_pattern(180.0, (85.0, 145.0, 25.0), ((0, 120, 240),) * 3, 0.5)
    assert p.period_nm == pytest.approx((180.0,) * 3)
    assert p.angle_deg == pytest.approx((85.0, 145.0, 25.0))
    data = json.loads(json.dumps(p.to_dict()))
    assert SimParameters.from_dict(data) == p
    with pytest.raises(ValueError):
        SimParameters(((0.0, 0.0),) * 3, ((0, 120, 240),) * 3, (0.5,) * 3)


@pytest.mark.parametrize(
    "stack, reason",
    [
        (np.ones((8, 64, 64)), "9 frames"),
        (np.ones((9, 64, 48)), "square"),
        (np.full((9, 64, 64), np.nan), "NaN"),
        (np.random.default_rng(0).poisson(100.0, (9, 128, 128)), "--params"),
    ],
)
def test_bad_stacks_are_one_line_data_errors(stack, reason):
    with pytest.raises(DataError, match=reason.replace("-", "\\-")) as info:
        reconstruct_sim(stack)
    assert "\n" not in str(info.value)


def test_real_stack(real_mrc, capsys):
    from biosr.io.mrc import read_mrc

    stack = read_mrc(real_mrc).data
    image, params = reconstruct_sim(stack)
    with capsys.disabled():
        print(
            f"\nreal stack: periods {np.round(params.period_nm, 1)} nm, angles "
            f"{np.round(params.angle_deg, 2)} deg, modulations {np.round(params.modulation, 2)}"
        )
    assert np.allclose(params.period_nm, 180.0, rtol=0.03)  # DATASET_NOTES: 0.18 um
    steps = np.sort(np.array(params.angle_deg) % 180.0)
    assert np.allclose(np.diff(steps), 60.0, atol=1.0)
    wf = stack.astype(np.float64).mean(axis=0)
    gain = resolution_nm(wf, P) / resolution_nm(image, layout.PIXEL_SIZE_GT_NM)
    assert gain >= 1.6, gain
    assert stripe_peak(image, params, layout.PIXEL_SIZE_GT_NM) < STRIPE_BOUND


def _release(root: Path, stacks: dict[tuple[int, int], np.ndarray]) -> Path:
    for (cell, level), stack in stacks.items():
        folder = layout.release_cell_dir(root, cell)
        folder.mkdir(parents=True, exist_ok=True)
        name = layout.RAW_LEVEL_FILE.format(level=level)
        write_mrc(folder / name, stack.astype(np.uint16), voxel_size_nm=P)
    return root


def test_release_folder_is_mirrored_with_tiffs_and_parameters(tmp_path):
    a = raw_stack(64, signal=2000.0, seed=7)[0]
    b = raw_stack(64, signal=2000.0, seed=8)[0]
    release = _release(tmp_path / "rel", {(1, 1): a, (1, 2): b, (2, 1): b})
    (tmp_path / "rel" / "notes.txt").write_text("not a stack")
    out = files.reconstruct_files(release, tmp_path / "out", workers=1)
    names = sorted(p.relative_to(tmp_path / "out").as_posix() for p in out)
    assert names == [
        "Cell_001/RawSIMData_level_01.tif",
        "Cell_001/RawSIMData_level_02.tif",
        "Cell_002/RawSIMData_level_01.tif",
    ]
    for path in out:
        img = tifffile.imread(path)
        assert img.shape == (128, 128) and img.dtype == np.float32
        assert read_pixel_size_nm(path) == pytest.approx(layout.PIXEL_SIZE_GT_NM)
        assert read_params(path.with_suffix(".json")).pixel_size_nm == pytest.approx(P)
    again = files.reconstruct_files(release, tmp_path / "out2", workers=2)
    for x, y in zip(out, again, strict=True):
        assert np.array_equal(tifffile.imread(x), tifffile.imread(y))


def _cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from biosr.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )


def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path):
    noise = np.random.default_rng(1).poisson(100.0, (9, 128, 128))
    dim = _release(tmp_path / "rel", {(1, 1): noise})
    stack_file = dim / "Cell_001" / "RawSIMData_level_01.mrc"
    res = _cli("reconstruct", str(stack_file), "--out", str(tmp_path / "out"))
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and str(stack_file) in lines[0] and "--params" in lines[0]
    assert "Traceback" not in res.stderr
    assert not list((tmp_path / "out").glob("*.tif")) and not list(
        (tmp_path / "out").glob("*.json")
    )
    # a fixed parameter set reconstructs it
    params = SimParameters.from_pattern(PERIOD_NM, ANGLES_DEG, pattern_phases(), MODULATION)
    write_params(tmp_path / "p.json", params)
    res = _cli(
        "reconstruct",
        str(stack_file),
        "--out",
        str(tmp_path / "out"),
        "--params",
        str(tmp_path / "p.json"),
    )
    assert res.returncode == 0, res.stderr
    assert read_params(tmp_path / "out" / "RawSIMData_level_01.json") == params
    # a stack of 8 frames, as TIFF
    tifffile.imwrite(tmp_path / "eight.tif", np.ones((8, 64, 64), dtype=np.float32))
    res = _cli("reconstruct", str(tmp_path / "eight.tif"), "--out", str(tmp_path / "o8"))
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    assert "eight.tif" in res.stderr and "9 frames" in res.stderr
