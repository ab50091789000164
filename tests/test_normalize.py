"""biosr.normalize: one vocabulary of normalisations, per image, flat images, clipping, dtype."""

from __future__ import annotations

import numpy as np
import pytest

from biosr import normalize as norm
from biosr.build import protocol
from biosr.errors import DataError
from biosr.evaluate import scoring
from biosr.normalize import normalize


def test_minmax_and_stored_per_image_of_a_batch() -> None:
    x = np.array([[[2.0, 4.0], [6.0, 10.0]], [[5.0, 5.0], [5.0, 5.0]]], dtype=np.float32)
    out = normalize(x, "minmax")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0].ravel(), [0, 0.25, 0.5, 1.0], atol=1e-6)
    assert (out[1] == 0).all()  # a flat image maps to 0, not NaN
    assert normalize(x, "stored") is x
    assert normalize(x, "stored", dtype=np.float64).dtype == np.float64


def test_percentile_maps_percentiles_and_clips_only_when_asked() -> None:
    ramp = np.arange(1001, dtype=np.float32).reshape(1, 7, 143)
    p = normalize(ramp, "percentile", percentiles=(10, 90))
    assert p.ravel()[100] == pytest.approx(0.0, abs=1e-6)
    assert p.ravel()[900] == pytest.approx(1.0, abs=1e-6)
    assert p.min() < 0 and p.max() > 1  # no clipping by default
    c = normalize(ramp, "percentile", percentiles=(10, 90), clip=True)
    assert c.min() == 0.0 and c.max() == 1.0
    np.testing.assert_array_equal(c, np.clip(p, 0, 1))
    default = normalize(ramp[0], "percentile")
    lo, hi = np.percentile(ramp, norm.PERCENTILES)
    np.testing.assert_allclose(default, (ramp[0] - lo) / (hi - lo), rtol=1e-5, atol=1e-6)


def test_each_image_of_a_batch_equals_it_alone() -> None:
    rng = np.random.default_rng(3)
    batch = rng.gamma(2.0, size=(4, 9, 11)).astype(np.float32) * np.arange(1, 5)[:, None, None]
    for method in norm.NORMALIZATIONS:
        together = normalize(batch, method)
        for i in range(len(batch)):
            np.testing.assert_array_equal(together[i], normalize(batch[i], method))


def test_float64_is_the_plain_formula_bit_for_bit() -> None:
    """Scoring and the build rely on these exact values (outputs stay bit-identical)."""
    rng = np.random.default_rng(0)
    image = (rng.gamma(1.5, size=(33, 47)) * 300 + 100).astype(np.float32)
    x = image.astype(np.float64)
    got = normalize(image, "minmax", dtype=np.float64)
    assert got.tobytes() == ((x - x.min()) / (x.max() - x.min())).tobytes()
    lo, hi = np.percentile(x, (0.1, 99.9))
    got = normalize(image, "percentile", dtype=np.float64)
    assert got.tobytes() == ((x - lo) / (hi - lo)).tobytes()


def test_a_flat_range_is_only_shifted() -> None:
    image = np.zeros((10, 10))
    image[0, 0] = 7.0  # the 0.1 and 99.9 percentiles of this image coincide (0)
    out = normalize(image, "percentile", percentiles=(0.0, 50.0))
    np.testing.assert_array_equal(out, image)
    assert not np.isnan(normalize(np.full((3, 3), 2.0), "minmax")).any()


def test_unknown_method_names_the_valid_ones() -> None:
    with pytest.raises(DataError, match="unknown normalisation 'zscore'; valid: stored, minmax"):
        normalize(np.zeros((2, 2)), "zscore")
    assert norm.check_normalization("auto", choices=norm.INPUT_NORMALIZATIONS) == "auto"
    with pytest.raises(DataError, match="auto, stored"):
        norm.check_normalization("none", choices=norm.INPUT_NORMALIZATIONS)


def test_auto_keeps_unit_range_and_scales_counts() -> None:
    assert norm.resolve_auto(np.array([[0.0, 1.0]])) == "stored"
    assert norm.resolve_auto(np.array([[-0.1, 0.5]])) == "minmax"
    assert norm.resolve_auto(np.array([[100.0, 300.0]])) == "minmax"


def test_callers_share_it() -> None:
    """The build's patches and the dlsr/care protocols are this module's, with their options."""
    rng = np.random.default_rng(1)
    gt = (rng.gamma(1.5, size=(16, 16)) * 50).astype(np.float32)
    pred = gt * 3 + 2
    built = protocol.normalize(gt, "percentile", percentiles=(1.0, 90.0))
    want = normalize(gt, "percentile", percentiles=(1.0, 90.0), clip=True, dtype=np.float64)
    assert built.dtype == np.float32 and built.tobytes() == want.astype(np.float32).tobytes()
    gt_n, pred_n = scoring.normalize_pair(gt, pred, "dlsr")
    assert gt_n.tobytes() == normalize(gt, dtype=np.float64).tobytes()
    np.testing.assert_allclose(pred_n, gt_n, atol=1e-12)  # min-max removes the affine change
    gt_c, _ = scoring.normalize_pair(gt, pred, "care")
    want = normalize(gt, "percentile", percentiles=scoring.CARE_PERCENTILES, dtype=np.float64)
    assert gt_c.tobytes() == want.tobytes()
