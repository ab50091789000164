"""Evaluation protocols: how a prediction and its GT are normalised before they are scored.

PSNR and friends are only comparable under one stated protocol, so every
output of :mod:`biosr.evaluate.evaluation` names the protocol and the data range. Two:

``dlsr`` (default)
    As the BioSR authors scored (DL-SR ``prctile_norm(x, 0, 100)``): GT and
    prediction each min-max normalised to [0, 1]; data range 1.
``care``
    As CSBDeep / CARE scored: GT percentile-normalised (0.1 and 99.9
    percentiles to 0 and 1), then the prediction affinely fitted to it,
    ``a * pred + b`` with ``a, b`` minimising the squared error (a closed-form
    least-squares fit); data range 1. Scores are invariant to any affine
    change of the prediction.

(Named ``scoring`` rather than ``protocols`` so as not to be mistaken for
:mod:`biosr.build.protocol`, the builder's DL-SR patch protocol.) The
resolution estimate is computed on the normalised prediction; decorrelation
analysis is invariant to scale and offset, so every protocol gives the same.
"""

from __future__ import annotations

import numpy as np

from biosr.evaluate import metrics
from biosr.learn.transforms import PERCENTILES

#: Known protocol names, default first.
PROTOCOLS: tuple[str, ...] = ("dlsr", "care")

#: Data range of the normalised images under every protocol.
DATA_RANGE = 1.0

#: Percentiles of the ``care`` GT normalisation.
CARE_PERCENTILES = PERCENTILES  # one value for loading and scoring


def check_protocol(protocol: str) -> str:
    """Return `protocol` if known, else raise ValueError listing the protocols."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    return protocol


def describe(protocol: str) -> dict[str, object]:
    """The protocol as recorded in every output: name, both normalisations, data range."""
    check_protocol(protocol)
    if protocol == "dlsr":
        gt_norm, pred_norm = "min-max to [0, 1]", "min-max to [0, 1]"
    else:
        lo, hi = CARE_PERCENTILES
        gt_norm = f"percentiles {lo} and {hi} to 0 and 1"
        pred_norm = "affine least-squares fit to the normalised GT"
    return {
        "name": protocol,
        "gt_normalization": gt_norm,
        "prediction_normalization": pred_norm,
        "data_range": DATA_RANGE,
        "ms_ssim_scales": metrics.MS_SSIM_SCALES,
        "resolution": "decorrelation analysis (Descloux 2019) of the prediction, 2 px / k_c",
    }


def minmax(image: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by minimum and maximum (a constant image becomes zeros).

    Examples
    --------
    >>> minmax(np.array([[2.0, 4.0], [3.0, 6.0]])).tolist()
    [[0.0, 0.5], [0.25, 1.0]]
    """
    image = np.asarray(image, dtype=np.float64)
    lo, hi = float(image.min()), float(image.max())
    return (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)


def percentile_norm(image: np.ndarray, pmin: float, pmax: float) -> np.ndarray:
    """Map the `pmin` and `pmax` percentiles to 0 and 1 (values outside are kept, not clipped)."""
    image = np.asarray(image, dtype=np.float64)
    lo, hi = np.percentile(image, [pmin, pmax])
    return (image - lo) / (hi - lo) if hi > lo else image - lo


def affine_fit(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``a * pred + b`` with ``a, b`` minimising ``||target - a * pred - b||^2``.

    Examples
    --------
    >>> t = np.array([0.0, 1.0, 2.0])
    >>> affine_fit(10 * t + 3, t).round(12).tolist()
    [0.0, 1.0, 2.0]
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    p = pred - pred.mean()
    var = float(np.sum(p * p))
    a = float(np.sum(p * (target - target.mean()))) / var if var > 0 else 0.0
    return a * p + target.mean()


def normalize_pair(
    gt: np.ndarray, pred: np.ndarray, protocol: str = "dlsr"
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise a (GT, prediction) pair as `protocol` says; returns float64 arrays."""
    if check_protocol(protocol) == "dlsr":
        return minmax(gt), minmax(pred)
    gt_n = percentile_norm(gt, *CARE_PERCENTILES)
    return gt_n, affine_fit(pred, gt_n)


def score_pair(
    gt: np.ndarray, pred: np.ndarray, *, protocol: str = "dlsr", pixel_size_nm: float
) -> dict[str, float]:
    """Every metric of :data:`biosr.evaluate.metrics.METRICS` for one pair under `protocol`.

    Parameters
    ----------
    gt, pred : ndarray
        2-D images of one shape, as stored (not normalised).
    protocol : {'dlsr', 'care'}
        Normalisation before scoring.
    pixel_size_nm : float
        Pixel size of the GT grid, for the resolution in nm.
    """
    gt_n, pred_n = normalize_pair(gt, pred, protocol)
    return metrics.all_metrics(gt_n, pred_n, data_range=DATA_RANGE, pixel_size_nm=pixel_size_nm)
