"""The simulated microscope's settings in one value: optics, illumination, haze and camera.

:class:`Microscope` bundles the keyword arguments that
:mod:`~biosr.simulate.imaging` and :mod:`~biosr.simulate.camera` take, with
their modules' constants as defaults (BioSR's microscope as measured on a real
stack), so that a run's workers, its card and ``biosr simulate --calibration``
all see one set. :func:`from_calibration` makes one from a real stack's
:class:`~biosr.simulate.calibrate.Calibration`.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from biosr import layout
from biosr.simulate import camera, imaging


class Microscope(NamedTuple):
    """What the simulator images with.

    Attributes
    ----------
    otf_kind : str
        Detection OTF, ``'measured'`` (default) or ``'airy'``.
    pattern_period_nm : float
        Line spacing of the illumination.
    angle_start_rad : float
        First pattern orientation (the others 60 and 120 degrees on).
    modulation : float
        Modulation depth of the illumination.
    haze_ratio : tuple of float
        Range of the noise-free WF's haze ratio inside the cell (uniform per cell).
    offset : float
        Camera offset, counts.
    photons_per_count : float
        Camera gain, photons per count.
    read_noise : float
        Read noise, counts rms.
    offset_nonuniformity, gain_nonuniformity : float
        The camera's fixed pattern (:func:`biosr.simulate.camera.fixed_pattern`):
        offset in photon equivalents rms, gain relative rms.
    source : str
        Where the settings come from (``'defaults'`` or a calibration file).
    saturation : float
        0 for linear SIM; above, the saturated excitation of nonlinear SIM
        (:func:`biosr.simulate.imaging.harmonics`, :data:`~biosr.simulate.imaging.SATURATION`).
    """

    otf_kind: str = imaging.OTF_KIND
    pattern_period_nm: float = imaging.PATTERN_PERIOD_NM
    angle_start_rad: float = imaging.ANGLE_START_RAD
    modulation: float = imaging.MODULATION
    haze_ratio: tuple[float, float] = imaging.HAZE_RATIO
    offset: float = layout.CAMERA_OFFSET
    photons_per_count: float = layout.PHOTONS_PER_COUNT
    read_noise: float = camera.READ_NOISE_COUNTS
    offset_nonuniformity: float = camera.OFFSET_NONUNIFORMITY
    gain_nonuniformity: float = camera.GAIN_NONUNIFORMITY
    source: str = "defaults"
    saturation: float = 0.0

    def camera(self) -> dict[str, float]:
        """Keyword arguments of :func:`biosr.simulate.camera.expose`."""
        return {
            "offset": self.offset,
            "photons_per_count": self.photons_per_count,
            "read_noise": self.read_noise,
            "offset_nonuniformity": self.offset_nonuniformity,
            "gain_nonuniformity": self.gain_nonuniformity,
        }

    def true_photons(self, photons: float) -> float:
        """Detected photons of a level given by the authors' definition.

        The authors count photons as counts above the offset times
        :data:`biosr.layout.PHOTONS_PER_COUNT`; with this camera's gain the
        detected (Poisson) photons are ``photons * photons_per_count / 0.6026``:
        the same for BioSR's camera, fewer for a calibrated one of lower gain.
        """
        return float(photons) * self.photons_per_count / layout.PHOTONS_PER_COUNT

    def card(self) -> dict[str, Any]:
        """The settings for a dataset card (JSON types)."""
        out = self._asdict()
        out["haze_ratio"] = list(self.haze_ratio)
        return out


#: BioSR's microscope, as the simulator's defaults describe it.
DEFAULT = Microscope()


def for_structure(
    structure: str | layout.Structure | None = None, base: Microscope = DEFAULT
) -> Microscope:
    """`base` set up for a structure: its line spacing and, for nonlinear SIM, the saturation.

    The line spacing is the authors' for the structure
    (:attr:`~biosr.layout.Structure.line_spacing_nm`: 180 nm GI-SIM, 173 nm
    TIRF-SIM); start angle, modulation, haze and camera are BioSR's for all
    (no per-structure measurement exists). For Microtubules this is `base`'s values.
    """
    s = layout.get_structure(structure)
    saturation = imaging.SATURATION if imaging.is_nonlinear(s) else 0.0
    return base._replace(pattern_period_nm=float(s.line_spacing_nm), saturation=saturation)


#: A calibration's pattern is used when its periods agree within this fraction ...
PERIOD_TOLERANCE = 0.03
#: ... and its orientations are 60 degrees apart within this many degrees.
ANGLE_TOLERANCE_DEG = 3.0


def measured_pattern(illumination: dict | None) -> dict[str, float]:
    """Period, first angle and modulation of a calibration's illumination, if consistent.

    The estimate (:func:`biosr.reconstruct.parameters.estimate_parameters`'
    record) is used only when the 3 periods agree within
    :data:`PERIOD_TOLERANCE` and the orientations follow the simulator's
    60 degree steps within :data:`ANGLE_TOLERANCE_DEG` (angles mod 180): a
    dim stack's estimates can lock onto noise, and then the defaults stay.

    Returns
    -------
    dict
        ``pattern_period_nm``, ``angle_start_rad``, ``modulation``, or empty.
    """
    if not illumination:
        return {}
    try:
        periods = np.asarray(illumination["period_nm"], dtype=np.float64)
        angles = np.asarray(illumination["angle_deg"], dtype=np.float64)
        mods = np.asarray(illumination["modulation"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return {}
    period = float(np.median(periods))
    if np.abs(periods / period - 1.0).max() > PERIOD_TOLERANCE:
        return {}
    steps = np.asarray(imaging.ANGLE_STEPS_DEG)
    error = (angles - angles[0] - steps + 90.0) % 180.0 - 90.0
    if np.abs(error).max() > ANGLE_TOLERANCE_DEG:
        return {}
    return {
        "pattern_period_nm": period,
        "angle_start_rad": float(np.deg2rad(angles[0])),
        "modulation": float(np.clip(np.median(mods), 0.0, 1.0)),
    }


def read_noise(
    measured: float,
    photons_per_count: float,
    *,
    offset_nonuniformity: float = camera.OFFSET_NONUNIFORMITY,
) -> float:
    """The temporal read noise in a measured one, counts rms.

    A photon-transfer curve measured in space (one stack) sees the camera's
    fixed offset pattern as read noise; the simulator adds that pattern
    itself, so it is taken out: ``sqrt(measured^2 - (offset_nonuniformity /
    photons_per_count)^2)``, at least a tenth of `measured`.
    """
    fixed = offset_nonuniformity / photons_per_count
    return float(np.sqrt(max(measured**2 - fixed**2, (0.1 * measured) ** 2)))


def from_calibration(
    calibration: Any,
    *,
    otf_kind: str = imaging.OTF_KIND,
    source: str = "calibration",
    base: Microscope = DEFAULT,
) -> Microscope:
    """The microscope a real stack's calibration describes.

    Parameters
    ----------
    calibration : biosr.simulate.calibrate.Calibration
        From :func:`biosr.simulate.calibrate.calibrate` or
        :func:`~biosr.simulate.calibrate.read_calibration`: camera offset,
        gain and read noise (less the fixed pattern, :func:`read_noise`),
        haze ratio (the noise-free target: at a calibration's low signal the
        noisy ratio measured on a simulated stack comes out within a few
        percent of it) and,
        for raw stacks, the illumination when it is consistent
        (:func:`measured_pattern`).
    otf_kind : {'measured', 'airy'}, optional
        Detection OTF (a calibration does not measure it).
    source : str, optional
        Recorded in the card (the calibration file's path, say).
    base : Microscope, optional
        Where the unmeasured settings come from (default :data:`DEFAULT`; a
        structure's, :func:`for_structure`).

    Returns
    -------
    Microscope
        Unmeasured settings keep `base`'s.
    """
    haze = float(calibration.haze_ratio)
    settings: dict[str, Any] = {
        "otf_kind": otf_kind,
        "haze_ratio": (haze, haze),
        "offset": float(calibration.offset),
        "photons_per_count": float(calibration.photons_per_count),
        "read_noise": read_noise(calibration.read_noise, calibration.photons_per_count),
        "source": source,
    }
    settings.update(measured_pattern(getattr(calibration, "illumination", None)))
    return base._replace(**settings)


def load(calibration: Any = None, *, structure: str | layout.Structure | None = None) -> Microscope:
    """The microscope to simulate: a structure's (:func:`for_structure`), or a calibration's.

    Parameters
    ----------
    calibration : None, path-like, Calibration or Microscope, optional
        None: :func:`for_structure` (:data:`DEFAULT` for Microtubules); a
        path: the JSON ``biosr calibrate`` wrote
        (:func:`biosr.simulate.calibrate.read_calibration`, which raises a
        one-line :class:`~biosr.errors.DataError` for a bad file); a
        Calibration: :func:`from_calibration` over the structure's settings;
        a Microscope: itself.
    structure : str or Structure, optional
        Default Microtubules.
    """
    base = for_structure(structure)
    if calibration is None:
        return base
    if isinstance(calibration, Microscope):
        return calibration
    if isinstance(calibration, (str, os.PathLike)):
        from biosr.simulate.calibrate import read_calibration

        return from_calibration(read_calibration(calibration), source=str(calibration), base=base)
    return from_calibration(calibration, base=base)
