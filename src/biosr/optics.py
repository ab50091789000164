"""Optics of the BioSR microscope: the widefield PSF and OTF, and the SIM-resolution target.

The widefield point-spread function is the Airy pattern of an aberration-free
circular pupil, ``I(r) = (2 J1(v) / v) ** 2`` with ``v = 2 pi NA r / lambda``,
integrated over each camera pixel. Its optical transfer function is the
"Chinese hat" autocorrelation of the pupil, zero beyond the cutoff frequency
``2 NA / lambda``. The SIM ground truth uses the same shape at half the
wavelength: a PSF of half the width, an OTF reaching twice as far (the ideal
two-fold resolution gain of linear SIM).

Written by hand because neither scipy nor scikit-image ships a diffraction
PSF: the formulas are a few lines with :func:`scipy.special.j1`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import j1

from biosr import layout

#: FWHM of the Airy intensity pattern in units of lambda / NA (1.0290 lambda / (2 NA)).
AIRY_FWHM = 0.51445

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


def otf(
    shape: tuple[int, int],
    pixel_size_nm: float,
    *,
    wavelength_nm: float = layout.EMISSION_NM,
    na: float = layout.NA,
    real: bool = False,
) -> np.ndarray:
    """Continuous Airy OTF sampled on an FFT grid (no pixel integration).

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(ny, nx)``.
    pixel_size_nm : float
        Pixel size of the image.
    wavelength_nm, na : float, optional
        As in :func:`widefield_psf`.
    real : bool, optional
        If True, the ``rfft2`` half-plane layout.

    Returns
    -------
    ndarray
        Real OTF, 1 at zero frequency, 0 beyond ``2 NA / lambda``.
    """
    fy, fx = frequency_grid(shape, pixel_size_nm, real=real)
    return chinese_hat(np.hypot(fy, fx) / cutoff_per_nm(wavelength_nm, na))
