"""Image-quality metrics: plain functions, arrays in, numbers out.

PSNR, SSIM and NRMSE are scikit-image's, called with every convention
explicit (``data_range`` above all: scikit-image infers 2 for float images
with negative values, or warns, which silently changes SSIM). Two metrics are
written here because no well-kept library offers them on numpy arrays:

* **MS-SSIM** (Wang, Simoncelli & Bovik 2003): scikit-image has none, and
  torchmetrics' default five scales need images larger than 160 px. Here the
  scales fit a 128 px patch: **3 scales (128, 64 and 32 px)**, 2 x 2 mean
  pooling between scales, Gaussian window sigma 1.5 (11 px, as Wang et al.),
  population covariance, weights the first three of Wang et al.'s five
  (0.0448, 0.2856, 0.3001) renormalised to sum to 1. Negative contrast-
  structure terms are clipped to 0 (as pytorch-msssim does), so the power is
  defined. With ``scales=1`` it equals scikit-image's Gaussian SSIM exactly.
* **Resolution by decorrelation analysis** (Descloux, Grussmayer & Radenovic,
  Nature Methods 16:918, 2019): a single-image estimate of the highest
  frequency that still carries signal, no second image or GT needed.
  The published code is MATLAB/Fiji only; this is a compact numpy version
  (radial cumulative sums make one curve cost one FFT and one bincount).
  The estimate is ``d = 2 * pixel_size / k_c`` with ``k_c`` the cut-off as a
  fraction of Nyquist (Descloux's definition; it is the Abbe limit
  ``lambda / (2 NA)`` for a band-limited image at high SNR). It cannot be
  finer than two pixels (125.2 nm on the 62.6 nm grid).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.metrics import (
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)

#: Names of the per-image metrics :func:`all_metrics` returns, in table order.
METRICS: tuple[str, ...] = ("psnr", "ssim", "ms_ssim", "nrmse", "resolution_nm")

#: Direction of each metric: True if higher is better.
HIGHER_IS_BETTER: dict[str, bool] = {
    "psnr": True,
    "ssim": True,
    "ms_ssim": True,
    "nrmse": False,
    "resolution_nm": False,
}

#: Units of each metric, for tables and plots.
UNITS: dict[str, str] = {
    "psnr": "dB",
    "ssim": "",
    "ms_ssim": "",
    "nrmse": "",
    "resolution_nm": "nm",
}

#: MS-SSIM weights of Wang et al. (2003), finest scale first.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: Scales used for 128 px patches (128, 64, 32 px).
MS_SSIM_SCALES = 3

_K1, _K2, _SIGMA, _TRUNCATE = 0.01, 0.03, 1.5, 3.5


def _pair(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(f"expected two 2-D images of one shape, got {gt.shape} and {pred.shape}")
    return gt, pred


def psnr(gt: np.ndarray, pred: np.ndarray, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (scikit-image), with an explicit data range.

    Examples
    --------
    >>> import numpy as np
    >>> round(psnr(np.zeros((8, 8)), np.full((8, 8), 0.1)), 6)
    20.0
    """
    gt, pred = _pair(gt, pred)
    with np.errstate(divide="ignore"):  # identical images: inf, not a warning
        return float(peak_signal_noise_ratio(gt, pred, data_range=data_range))


def nrmse(gt: np.ndarray, pred: np.ndarray, *, normalization: str = "euclidean") -> float:
    """Normalised RMSE (scikit-image; default ``'euclidean'``: ``||gt - pred|| / ||gt||``)."""
    gt, pred = _pair(gt, pred)
    return float(normalized_root_mse(gt, pred, normalization=normalization))


def ssim(gt: np.ndarray, pred: np.ndarray, *, data_range: float = 1.0) -> float:
    """Structural similarity as the BioSR authors computed it, with an explicit data range.

    scikit-image's defaults otherwise: 7 x 7 uniform window, sample
    covariance, K1 = 0.01, K2 = 0.03.
    """
    gt, pred = _pair(gt, pred)
    return float(structural_similarity(gt, pred, data_range=data_range))


def _ssim_terms(x: np.ndarray, y: np.ndarray, data_range: float) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term, Gaussian window, edges cropped."""

    def filt(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(a, sigma=_SIGMA, truncate=_TRUNCATE, mode="reflect")

    ux, uy = filt(x), filt(y)
    vx = filt(x * x) - ux * ux
    vy = filt(y * y) - uy * uy
    vxy = filt(x * y) - ux * uy
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    cs = (2 * vxy + c2) / (vx + vy + c2)
    lum = (2 * ux * uy + c1) / (ux**2 + uy**2 + c1)
    pad = int(_TRUNCATE * _SIGMA + 0.5)
    inner = (slice(pad, -pad or None),) * 2
    return float((lum * cs)[inner].mean()), float(cs[inner].mean())


def ms_ssim(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    data_range: float = 1.0,
    scales: int = MS_SSIM_SCALES,
) -> float:
    """Multi-scale SSIM (Wang et al. 2003) with scales that fit small patches.

    Parameters
    ----------
    gt, pred : ndarray
        2-D images of one shape.
    data_range : float, optional
        Range of the values (1 for the normalised protocols).
    scales : int, optional
        Number of scales (default 3: 128, 64 and 32 px for a 128 px patch).
        The coarsest scale must stay at least 22 px (twice the window).
        ``scales=1`` is scikit-image's Gaussian SSIM.

    Returns
    -------
    float
        ``prod_j cs_j ** w_j`` over scales with the luminance term at the
        coarsest one; weights are Wang et al.'s first `scales` renormalised.
    """
    gt, pred = _pair(gt, pred)
    if not 1 <= scales <= len(MS_SSIM_WEIGHTS):
        raise ValueError(f"scales must be 1..{len(MS_SSIM_WEIGHTS)}, got {scales}")
    if min(gt.shape) // 2 ** (scales - 1) < 22:
        raise ValueError(f"{scales} scales need images of at least {22 * 2 ** (scales - 1)} px")
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales])
    weights = weights / weights.sum()
    values = []
    x, y = gt, pred
    for j in range(scales):
        s, cs = _ssim_terms(x, y, data_range)
        values.append(max(s if j == scales - 1 else cs, 0.0))
        if j < scales - 1:
            x, y = _pool2(x), _pool2(y)
    return float(np.prod(np.power(values, weights)))


def _pool2(a: np.ndarray) -> np.ndarray:
    h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
    a = a[:h, :w]
    return 0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2])


# --------------------------------------------------------------------------- #
# Resolution: decorrelation analysis (Descloux et al. 2019)
# --------------------------------------------------------------------------- #


def _apodize(image: np.ndarray, width: int) -> np.ndarray:
    """Subtract the mean and taper the edges with a cosine of `width` px (no FFT edge cross)."""
    image = image - image.mean()
    windows = []
    for n in image.shape:
        w = np.ones(n)
        edge = min(width, n // 2)
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(edge) + 0.5) / edge)
        w[:edge], w[n - edge :] = ramp, ramp[::-1]
        windows.append(w)
    return image * np.outer(*windows)


def decorrelation_curves(
    image: np.ndarray, *, n_radii: int = 100, n_filters: int = 10, apodize: int = 16
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decorrelation functions d(r) of an image and of its high-pass filtered versions.

    Parameters
    ----------
    image : ndarray
        2-D image.
    n_radii : int, optional
        Sampling of the normalised radius r in (0, 1] (1 = Nyquist).
    n_filters : int, optional
        High-pass Gaussian filters, widths spaced geometrically as Descloux.
    apodize : int, optional
        Width in pixels of the cosine edge taper.

    Returns
    -------
    radii : ndarray, shape (n_radii,)
    curves : ndarray, shape (n_filters + 1, n_radii)
        Row 0 unfiltered, then increasingly strong high-pass filters.
    widths : ndarray, shape (n_filters + 1,)
        Filter widths ``g`` (inf for row 0): ``I * (1 - exp(-2 g^2 k^2))``.
    """
    image = _apodize(np.asarray(image, dtype=np.float64), apodize)
    ny, nx = image.shape
    spec = np.fft.fft2(image)
    ky = np.fft.fftfreq(ny) * 2.0
    kx = np.fft.fftfreq(nx) * 2.0
    k = np.hypot(ky[:, None], kx[None, :])
    amp = np.abs(spec)
    inside = (k <= 1.0) & (amp > 0)
    radii = np.linspace(1.0 / n_radii, 1.0, n_radii)
    # bin b holds frequencies with radii[b-1] < k <= radii[b]; cumulative sums give r <= radii[b].
    bins = np.clip(np.ceil(k[inside] * n_radii - 1e-9).astype(int) - 1, 0, n_radii - 1)
    count = np.cumsum(np.bincount(bins, minlength=n_radii))
    amp_in = amp[inside]
    k_in = k[inside]
    widths = np.concatenate(
        [[np.inf], np.exp(np.linspace(np.log(max(ny, nx) / 4.0), np.log(0.15), n_filters))]
    )
    curves = np.empty((len(widths), n_radii))
    for i, g in enumerate(widths):
        filt = np.ones_like(k_in) if np.isinf(g) else 1.0 - np.exp(-2.0 * g * g * k_in * k_in)
        weighted = amp_in * filt  # Re(I_filtered * conj(I / |I|)) = |I| * filter
        norm = np.sqrt(np.sum(weighted**2))
        num = np.cumsum(np.bincount(bins, weights=weighted, minlength=n_radii))
        with np.errstate(invalid="ignore", divide="ignore"):
            curves[i] = np.where(count > 0, num / (norm * np.sqrt(count)), 0.0)
    return radii, np.nan_to_num(curves), widths


def _peak(curve: np.ndarray, min_drop: float = 1e-3) -> tuple[int, float]:
    """Index and amplitude of the last true maximum of a curve (not at its end), or (-1, 0)."""
    end = len(curve)
    while end > 1:
        idx = int(np.argmax(curve[:end]))
        if idx < len(curve) - 1 and curve[idx] - curve[idx:].min() >= min_drop:
            return idx, float(curve[idx])
        end = idx if idx < end - 1 else end - 1
    return -1, 0.0


def decorrelation_cutoff(image: np.ndarray, *, min_amplitude: float = 0.05, **kwargs) -> float:
    """Cut-off frequency ``k_c`` (fraction of Nyquist) by decorrelation analysis; 0 if none.

    The highest peak position over the unfiltered and high-pass filtered
    curves whose amplitude is at least `min_amplitude` (Descloux: 0.05).
    Extra keyword arguments go to :func:`decorrelation_curves`.
    """
    radii, curves, _ = decorrelation_curves(image, **kwargs)
    best = 0.0
    for curve in curves:
        idx, amp = _peak(curve)
        if idx >= 0 and amp >= min_amplitude:
            best = max(best, float(radii[idx]))
    return best


def resolution_nm(image: np.ndarray, pixel_size_nm: float, **kwargs) -> float:
    """Resolution estimate in nm by decorrelation analysis: ``2 * pixel_size / k_c``.

    Returns NaN for an image with no detectable signal (``k_c = 0``), for
    example a constant image. Keyword arguments go to
    :func:`decorrelation_cutoff`.
    """
    kc = decorrelation_cutoff(image, **kwargs)
    return float(2.0 * pixel_size_nm / kc) if kc > 0 else float("nan")


def all_metrics(
    gt: np.ndarray, pred: np.ndarray, *, data_range: float = 1.0, pixel_size_nm: float
) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one (already normalised) pair."""
    return {
        "psnr": psnr(gt, pred, data_range=data_range),
        "ssim": ssim(gt, pred, data_range=data_range),
        "ms_ssim": ms_ssim(gt, pred, data_range=data_range),
        "nrmse": nrmse(gt, pred),
        "resolution_nm": resolution_nm(pred, pixel_size_nm),
    }
