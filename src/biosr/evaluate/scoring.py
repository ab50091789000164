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
The normalisations are :mod:`biosr.normalize`'s; :mod:`biosr.evaluate.metrics`
(scikit-image) is imported only when it is needed, so that the command line
can list :data:`PROTOCOLS` without loading it.
"""

from __future__ import annotations

import numpy as np

from biosr import normalize as norm
from biosr.errors import DataError

#: Known protocol names, default first.
PROTOCOLS: tuple[str, ...] = ("dlsr", "care")

#: Data range of the normalised images under every protocol.
DATA_RANGE = 1.0

#: Percentiles of the ``care`` GT normalisation (the loader's too: one value).
CARE_PERCENTILES = norm.PERCENTILES


def check_protocol(protocol: str) -> str:
    """Return `protocol` if known, else raise DataError listing the protocols."""
    if protocol not in PROTOCOLS:
        raise DataError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    return protocol


def describe(protocol: str) -> dict[str, object]:
    """The protocol as recorded in every output: name, both normalisations, data range."""
    from biosr.evaluate import metrics

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
        return norm.normalize(gt, dtype=np.float64), norm.normalize(pred, dtype=np.float64)
    gt_n = norm.normalize(gt, "percentile", percentiles=CARE_PERCENTILES, dtype=np.float64)
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
    from biosr.evaluate import metrics

    gt_n, pred_n = normalize_pair(gt, pred, protocol)
    return metrics.all_metrics(gt_n, pred_n, data_range=DATA_RANGE, pixel_size_nm=pixel_size_nm)
