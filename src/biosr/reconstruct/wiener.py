"""2-D linear SIM reconstruction: band separation, band shifting and a generalised Wiener filter.

Per orientation, the 3 frames are separated into the bands ``C0`` and ``C+-``
with the measured phases; ``C+`` is moved to its place on the 2x grid by a
phase ramp ``exp(-2 pi i k.x)`` in real space (exact for a sub-pixel ``k``),
``C-`` is its mirror. The bands are combined by the generalised Wiener filter

``S = A(f) sum_i n_i^2 mu_i H_i* D_i / (sum_i n_i^2 mu_i^2 |H_i|^2 + w)``

with ``H_i`` the detection OTF shifted with its band, ``mu_i`` 1 for ``C0`` and
``m / 2`` for the side bands, ``n_i`` a notch that attenuates each band's
centre (the unmodulated out-of-focus light, and the separation's leaks, live
there), ``w`` the Wiener constant and ``A`` an apodisation to the extended
cutoff. The defaults are the settings of BioSR's authors
(``../shared/DATASET_NOTES.md`` section 6): Wiener 0.01, cosine apodisation,
notch attenuation 0.7 over about 6 frequency pixels of a 502 px stack, and the
side bands weighted with a fixed modulation of 0.5 (the estimate is kept in the
parameters). The
output pixel ``(2 i, 2 i + 1)`` subdivides raw pixel ``i`` (as 2 x 2 binning
would), and holds light per output pixel (the image sums to about the
widefield's sum).
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from biosr import layout, optics
from biosr.reconstruct import bands as _bands
from biosr.reconstruct.parameters import SimParameters, estimate_from_spectra

#: Wiener constant of the authors' reconstructions.
WIENER = 0.01
#: Apodisations to the extended cutoff: the authors' cosine, a triangle, or none.
APODIZATIONS = ("cosine", "triangle", "none")
APODIZATION = "cosine"
#: Notch depth at each band's centre (the authors' 0.7 for MTs and F-actin; 0.4 for CCPs).
NOTCH_ATTENUATION = 0.7
#: Notch width (Gaussian sigma) in cycles per nm: 6 frequency pixels of a 502 px, 62.6 nm stack.
NOTCH_RADIUS = 6.0 / (layout.RELEASE_RAW_SIZE * layout.PIXEL_SIZE_WF_NM)
#: The modulation the authors fixed for weighting the side bands (the default).
BIOSR_MODULATION = 0.5


def _mirror(array: np.ndarray) -> np.ndarray:
    """``array(-f)`` in FFT layout."""
    return np.roll(array[::-1, ::-1], 1, axis=(0, 1))


def apodization_filter(rho: np.ndarray, cutoff: float, kind: str = APODIZATION) -> np.ndarray:
    """Apodisation of `kind` at radial frequencies `rho`, 1 at 0 and 0 from `cutoff` on."""
    t = np.clip(rho / cutoff, 0.0, 1.0)
    if kind == "cosine":
        return np.cos(0.5 * np.pi * t)
    if kind == "triangle":
        return 1.0 - t
    if kind == "none":
        return np.ones_like(t)
    raise ValueError(f"unknown apodization {kind!r}; choose one of {', '.join(APODIZATIONS)}")


def reconstruct_sim(
    stack: np.ndarray,
    params: SimParameters | None = None,
    *,
    pixel_size_nm: float = layout.PIXEL_SIZE_WF_NM,
    otf_kind: str = "measured",
    wiener: float = WIENER,
    apodization: str = APODIZATION,
    notch_attenuation: float = NOTCH_ATTENUATION,
    notch_radius: float = NOTCH_RADIUS,
    modulation: float | None = BIOSR_MODULATION,
) -> tuple[np.ndarray, SimParameters]:
    """Reconstruct a raw 2-D SIM stack on the 2x grid.

    Parameters
    ----------
    stack : ndarray
        ``(9, N, N)`` raw frames in BioSR's order (``frame = 3 * orientation + phase``).
    params : SimParameters, optional
        Illumination; estimated from the stack (:func:`.estimate_parameters`) if None.
    pixel_size_nm : float, optional
        Raw pixel size; the output's is half of it.
    otf_kind : {'measured', 'airy'}, optional
        Detection OTF (:func:`biosr.optics.otf`); the measured one by default.
    wiener : float, optional
        Wiener constant ``w`` (the OTF is 1 at zero frequency).
    apodization : {'cosine', 'triangle', 'none'}, optional
        Apodisation to the extended cutoff (OTF cutoff + the longest ``|k|``).
    notch_attenuation : float, optional
        Depth of each band's notch, 0 (none) to 1.
    notch_radius : float, optional
        Notch width (Gaussian sigma), cycles per nm.
    modulation : float or None, optional
        Modulation used to weight the side bands: the authors' fixed
        :data:`BIOSR_MODULATION` by default; None uses each orientation's
        estimate in `params` (noisy on dim stacks: on the real BioSR stack it
        over-weights a dim orientation and leaves a stripe).

    Returns
    -------
    image : ndarray
        float32 ``(2N, 2N)`` reconstruction, pixel size ``pixel_size_nm / 2``.
    params : SimParameters
        The parameters used.

    Raises
    ------
    DataError
        If the stack is malformed, or `params` is None and the bands cannot be estimated.
    """
    if not 0.0 <= notch_attenuation <= 1.0 or notch_radius <= 0 or wiener <= 0:
        raise ValueError("need 0 <= notch_attenuation <= 1, notch_radius > 0 and wiener > 0")
    stack = _bands.check_stack(stack)
    padded = _bands.pad_frames(stack)
    if params is None:
        windowed = _bands.pad_frames(stack, taper=_bands.ESTIMATION_TAPER)
        params = estimate_from_spectra(
            padded, windowed, pixel_size_nm=pixel_size_nm, otf_kind=otf_kind
        )
    size, n = padded.size, padded.shape[0]
    fine = 2 * size
    step = 1.0 / (size * pixel_size_nm)
    h = _bands.band_otf((fine, fine), pixel_size_nm / 2.0, otf_kind)
    fy, fx = optics.frequency_grid((fine, fine), pixel_size_nm / 2.0)
    rho = np.hypot(fy, fx)
    notch = (1.0 - notch_attenuation * np.exp(-0.5 * (rho / notch_radius) ** 2)) ** 2
    weight0 = (notch * h).astype(np.float32)
    pos = _bands.coordinates_nm(padded, pixel_size_nm, fine=True)

    num0 = np.zeros((fine, fine), dtype=np.complex64)
    side = np.zeros((fine, fine), dtype=np.complex64)
    den = np.zeros((fine, fine), dtype=np.float32)
    side_den = np.zeros((fine, fine), dtype=np.float32)
    for a in range(_bands.ORIENTATIONS):
        frames = padded.spectra[_bands.PHASES * a : _bands.PHASES * (a + 1)]
        sep = _bands.separation_matrix(np.deg2rad(params.phases_deg[a])).astype(np.complex64)
        m = params.modulation[a] if modulation is None else modulation
        mu = np.float32(0.5 * m)
        c0 = _bands.fine_spectrum(_bands.combine(sep[0], frames))
        num0 += weight0 * c0
        den += weight0 * h
        k = params.wavevectors_per_nm[a]
        cp = scipy.fft.ifft2(_bands.fine_spectrum(_bands.combine(sep[1], frames)), workers=1)
        cp *= _bands.wave((-k[0], -k[1]), pos, pos)
        moved = scipy.fft.fft2(cp, workers=1)
        back = (-k[0] / step, -k[1] / step)  # H(f + k), the shifted band's own OTF
        wk = _bands.shifted(weight0, back) * mu
        side += wk * moved
        side_den += wk * _bands.shifted(h, back) * mu
    num = num0 + side + _mirror(side).conj()
    den = den + side_den + _mirror(side_den) + np.float32(wiener)
    k_max = max(np.hypot(*k) for k in params.wavevectors_per_nm)
    cutoff = _bands.otf_cutoff_per_nm(otf_kind) + k_max
    delta = pixel_size_nm / 4.0  # output pixel 2i sits a quarter raw pixel before raw pixel i
    ramp = np.exp(-2j * np.pi * delta * (fy + fx))
    spectrum = num / den * (apodization_filter(rho, cutoff, apodization) * ramp)
    half = fine // 2 + 1
    image = scipy.fft.irfft2(spectrum[:, :half], s=(fine, fine), workers=1)
    start = 2 * padded.offset
    image = image[start : start + 2 * n, start : start + 2 * n]
    return np.ascontiguousarray(image, dtype=np.float32), params
