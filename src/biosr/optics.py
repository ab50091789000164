"""Optics of the BioSR microscope: the widefield PSF and OTF, and the SIM-resolution target.

The widefield point-spread function is the Airy pattern of an aberration-free
circular pupil, ``I(r) = (2 J1(v) / v) ** 2`` with ``v = 2 pi NA r / lambda``,
integrated over each camera pixel. Its optical transfer function is the
"Chinese hat" autocorrelation of the pupil, zero beyond the cutoff frequency
``2 NA / lambda``. The SIM ground truth uses the same shape at half the
wavelength: a PSF of half the width, an OTF reaching twice as far (the ideal
two-fold resolution gain of linear SIM).

The measured detection OTF of the microscope that recorded BioSR (488 nm
excitation, shipped in ``biosr/_resources`` with its MIT notice) is the other
kind: :func:`measured_otf_profile` reads its radial profile and :func:`otf`
samples either kind on an FFT grid (``kind="measured"`` or ``"airy"``). The
measured OTF falls to zero near 5.0 cycles/um and lies below the Airy OTF in
between (aberrations, a thick specimen).

Written by hand because neither scipy nor scikit-image ships a diffraction
PSF: the formulas are a few lines with :func:`scipy.special.j1`. The OTF file
is a fixed 3 KB MRC of mode 4 (complex64), which :mod:`biosr.io.mrc` (BioSR's
uint16/float32 modes) does not read; it is parsed here in four lines.
"""

from __future__ import annotations

import functools
import math
import struct
from importlib import resources

import numpy as np
from scipy.special import j1

from biosr import layout

#: FWHM of the Airy intensity pattern in units of lambda / NA (1.0290 lambda / (2 NA)).
AIRY_FWHM = 0.51445

#: The kinds of detection OTF :func:`otf` samples: the measured one, or the Airy model.
OTF_KINDS = ("measured", "airy")

#: The measured 488 nm detection OTF shipped in ``biosr/_resources`` (see its NOTICE.md).
MEASURED_OTF_FILE = "TIRF488_cam1_0_z30_OTF2d.mrc"

#: Sub-samples per pixel side used to integrate the PSF over the pixel area.
_OVERSAMPLE = 7


def psf_fwhm_nm(wavelength_nm: float = layout.EMISSION_NM, na: float = layout.NA) -> float:
    """Full width at half maximum of the widefield (Airy) PSF, in nm.

    Parameters
    ----------
    wavelength_nm : float, optional
        Emission wavelength (default :data:`biosr.layout.EMISSION_NM`).
    na : float, optional
        Numerical aperture (default :data:`biosr.layout.NA`).

    Returns
    -------
    float
        ``0.51445 * wavelength / NA``.

    Examples
    --------
    >>> round(psf_fwhm_nm(525.0, 1.3), 1)
    207.8
    """
    return AIRY_FWHM * float(wavelength_nm) / float(na)


def cutoff_per_nm(wavelength_nm: float = layout.EMISSION_NM, na: float = layout.NA) -> float:
    """Incoherent cutoff frequency ``2 NA / lambda`` in cycles per nm."""
    return 2.0 * float(na) / float(wavelength_nm)


def airy(r_nm: np.ndarray, wavelength_nm: float, na: float) -> np.ndarray:
    """Airy intensity ``(2 J1(v) / v) ** 2`` at radii `r_nm` (peak 1 at r = 0)."""
    v = 2.0 * np.pi * float(na) * np.asarray(r_nm, dtype=np.float64) / float(wavelength_nm)
    out = np.ones_like(v)
    nz = v != 0
    out[nz] = (2.0 * j1(v[nz]) / v[nz]) ** 2
    return out


def widefield_psf(
    pixel_size_nm: float,
    *,
    wavelength_nm: float = layout.EMISSION_NM,
    na: float = layout.NA,
    size: int | None = None,
) -> np.ndarray:
    """The widefield PSF sampled on a camera grid: Airy pattern integrated over each pixel.

    Parameters
    ----------
    pixel_size_nm : float
        Pixel size of the grid (e.g. :data:`biosr.layout.PIXEL_SIZE_WF_NM`).
    wavelength_nm : float, optional
        Emission wavelength; pass half of it for the SIM-resolution PSF.
    na : float, optional
        Numerical aperture.
    size : int, optional
        Side of the (square) kernel; odd sizes centre the peak on a pixel.
        Default: the smallest odd size reaching 2 lambda / NA from the centre
        (past the third Airy ring).

    Returns
    -------
    ndarray
        2-D float64 kernel, peak at the centre, summing to 1.

    Examples
    --------
    >>> k = widefield_psf(62.6)
    >>> k.shape, round(float(k.sum()), 12), bool(k.argmax() == k.size // 2)
    ((27, 27), 1.0, True)
    """
    if pixel_size_nm <= 0 or wavelength_nm <= 0 or na <= 0:
        raise ValueError("pixel size, wavelength and NA must be positive")
    if size is None:
        radius = math.ceil(2.0 * wavelength_nm / na / pixel_size_nm)
        size = 2 * radius + 1
    if size < 1:
        raise ValueError(f"PSF size must be at least 1, got {size}")
    # Sub-pixel sample positions (pixel centres at integer coordinates).
    sub = (np.arange(_OVERSAMPLE) + 0.5) / _OVERSAMPLE - 0.5
    axis = (np.arange(size) - (size - 1) / 2.0)[:, None] + sub[None, :]
    axis = axis.ravel() * pixel_size_nm
    r = np.hypot(axis[:, None], axis[None, :])
    fine = airy(r, wavelength_nm, na)
    kernel = fine.reshape(size, _OVERSAMPLE, size, _OVERSAMPLE).mean(axis=(1, 3))
    return kernel / kernel.sum()


def chinese_hat(rho: np.ndarray) -> np.ndarray:
    """OTF of a circular pupil at normalised frequency ``rho = f / cutoff`` (1 at 0, 0 at >= 1)."""
    rho = np.clip(np.abs(np.asarray(rho, dtype=np.float64)), 0.0, 1.0)
    return (2.0 / np.pi) * (np.arccos(rho) - rho * np.sqrt(1.0 - rho * rho))


def frequency_grid(shape: tuple[int, int], pixel_size_nm: float, *, real: bool = False):
    """Frequencies ``(fy, fx)`` in cycles per nm of an FFT grid (``rfft2`` layout if `real`)."""
    ny, nx = shape
    fy = np.fft.fftfreq(ny, d=pixel_size_nm)[:, None]
    fx = (np.fft.rfftfreq if real else np.fft.fftfreq)(nx, d=pixel_size_nm)[None, :]
    return fy, fx


@functools.cache
def measured_otf_profile() -> tuple[np.ndarray, np.ndarray]:
    """The measured detection OTF's radial profile, as shipped with biosr.

    Returns
    -------
    k_per_nm : ndarray
        Radial frequencies in cycles per nm (257 samples, step 0.0312 cycles/um).
    values : ndarray
        The OTF at those frequencies (real, 1 at k = 0, clipped at 0), float64.
        Read-only: the result is cached.

    Examples
    --------
    >>> k, h = measured_otf_profile()
    >>> k.shape, float(h[0]), bool(h[k > 5.2e-3].max() < 0.01)
    ((257,), 1.0, True)
    """
    raw = resources.files("biosr").joinpath("_resources", MEASURED_OTF_FILE).read_bytes()
    nx, ny, nz, mode = struct.unpack("<4i", raw[:16])
    (step_per_um,) = struct.unpack("<f", raw[40:44])  # the x cell length, word 11
    if mode != 4 or ny * nz != 1 or len(raw) != 1024 + 8 * nx:  # pragma: no cover - shipped file
        raise RuntimeError(f"biosr/_resources/{MEASURED_OTF_FILE} is damaged; reinstall biosr")
    values = np.frombuffer(raw, dtype="<c8", count=nx, offset=1024).real.astype(np.float64)
    values = np.clip(values / values[0], 0.0, None)
    k = np.arange(nx) * (step_per_um / 1000.0)
    k.flags.writeable = values.flags.writeable = False
    return k, values


def otf(
    shape: tuple[int, int],
    pixel_size_nm: float,
    *,
    kind: str = "airy",
    wavelength_nm: float = layout.EMISSION_NM,
    na: float = layout.NA,
    real: bool = False,
) -> np.ndarray:
    """A detection OTF sampled on an FFT grid (no pixel integration).

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(ny, nx)``.
    pixel_size_nm : float
        Pixel size of the image.
    kind : {'airy', 'measured'}, optional
        ``'airy'``: the continuous Airy OTF of `wavelength_nm` and `na`;
        ``'measured'``: the microscope's measured 488 nm OTF
        (:func:`measured_otf_profile`, linearly interpolated, 0 beyond its last
        sample), for which `wavelength_nm` and `na` are ignored.
    wavelength_nm, na : float, optional
        As in :func:`widefield_psf`.
    real : bool, optional
        If True, the ``rfft2`` half-plane layout.

    Returns
    -------
    ndarray
        Real OTF, 1 at zero frequency, 0 beyond the cutoff.

    Examples
    --------
    >>> h = otf((64, 64), 62.6, kind="measured")
    >>> float(h[0, 0]), bool(0.0 <= h.min() and h.max() <= 1.0)
    (1.0, True)
    """
    fy, fx = frequency_grid(shape, pixel_size_nm, real=real)
    rho = np.hypot(fy, fx)
    if kind == "airy":
        return chinese_hat(rho / cutoff_per_nm(wavelength_nm, na))
    if kind == "measured":
        k, values = measured_otf_profile()
        return np.interp(rho, k, values, right=0.0)
    raise ValueError(f"unknown OTF kind {kind!r}; choose one of {', '.join(OTF_KINDS)}")
