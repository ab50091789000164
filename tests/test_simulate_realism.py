"""The simulator against a real BioSR stack: six statistics within 20%, the level ladder around it.

The real stack (``../shared/fixtures/real``, a 256 px crop of BioSR
Microtubules cell 10, its cell's edge in one corner) is calibrated with
:func:`biosr.simulate.calibrate.calibrate`; one simulated cell of the same
size, imaged by the microscope that calibration describes
(:func:`biosr.simulate.microscope.from_calibration`) at the same photon count,
is calibrated the same way, and the two are compared statistic by statistic.
The simulated cell is drawn as dense as the real one and large enough that,
as in the crop, its edge leaves about a tenth of the field dark.
"""

from __future__ import annotations

import numpy as np
import pytest

from biosr import layout
from biosr.io.mrc import read_mrc
from biosr.simulate import calibrate, camera, field, microscope

#: The statistics compared and the largest relative difference allowed.
COMPARED = (
    "snr",
    "frame_snr",
    "ptc_slope",
    "ptc_intercept",
    "high_frequency_fraction",
    "haze_ratio",
    "foreground_fraction",
)
TOLERANCE = 0.20
#: The simulated cell: its seed key, radius (fraction of the field) and filament density (1/nm).
CELL_KEY = (0, 9, 6)
CELL_RADIUS = (0.65, 0.65)
DENSITY_PER_NM = 16e-3
SIZE = 256


@pytest.fixture
def real(real_mrc):
    return calibrate.calibrate(read_mrc(real_mrc).data, illumination=False, source="real")


@pytest.fixture
def cell(real):
    mic = microscope.from_calibration(real)
    return mic, field.simulate_field(
        SIZE,
        field.cell_seeds(*CELL_KEY),
        frames=True,
        microscope=mic,
        cell_radius=CELL_RADIUS,
        density_per_nm=DENSITY_PER_NM,
    )


def test_simulated_stack_matches_the_real_one_within_20_percent(real, cell):
    mic, f = cell
    scale = camera.photon_scale(f.clean.wf, mic.true_photons(real.photons))
    stack = camera.expose(f.clean.frames * scale, np.random.default_rng(0), **mic.camera())
    sim = calibrate.calibrate(stack, illumination=False, source="simulated")
    table = {k: (getattr(real, k), getattr(sim, k)) for k in COMPARED}
    print("\nstatistic                  real   simulated   ratio")
    for k, (a, b) in table.items():
        print(f"{k:24s} {a:8.4g} {b:10.4g} {b / a:7.3f}")
    far = {k: v for k, v in table.items() if abs(v[1] / v[0] - 1.0) > TOLERANCE}
    assert not far, far
    # The matched level: the photon count the simulation was asked for is the one measured.
    assert sim.photons == pytest.approx(real.photons, rel=TOLERANCE)


def test_real_snr_lies_inside_the_three_lowest_levels(real, cell):
    """BioSR's own camera (the default microscope) at levels 1 and 3 brackets the real WF SNR."""
    _, f = cell
    mic = microscope.DEFAULT
    snrs = []
    for level in layout.LEVELS[:3]:
        scale = camera.photon_scale(f.clean.wf, mic.true_photons(layout.PHOTONS[level]))
        stack = camera.expose(f.clean.frames * scale, np.random.default_rng(level), **mic.camera())
        snrs.append(calibrate.snr(stack.mean(axis=0)))
    assert snrs[0] < snrs[1] < snrs[2]
    assert snrs[0] < real.snr < snrs[2], (real.snr, snrs)


def test_calibration_carries_camera_and_haze_into_the_microscope(real):
    mic = microscope.from_calibration(real, source="real.json")
    assert mic.offset == real.offset and 0.8 * real.read_noise < mic.read_noise < real.read_noise
    assert mic.photons_per_count == real.photons_per_count
    assert mic.haze_ratio == (real.haze_ratio, real.haze_ratio)
    assert mic.source == "real.json" and mic.otf_kind == "measured"
    # The real stack's pattern estimate is inconsistent (a dim stack): the defaults stay.
    assert microscope.measured_pattern({"period_nm": [245.0, 249.0, 180.0]}) == {}
    good = {
        "period_nm": [180.0, 181.0, 180.5],
        "angle_deg": [85.0, 145.2, 24.9],
        "modulation": [0.6] * 3,
    }
    assert microscope.measured_pattern(good)["pattern_period_nm"] == pytest.approx(180.5)
    assert microscope.measured_pattern(good)["angle_start_rad"] == pytest.approx(np.deg2rad(85))
