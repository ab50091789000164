"""Paired transforms: the 8 symmetries, random crops and normalisations keep pairs aligned."""

from __future__ import annotations

import numpy as np
import pytest

from biosr.learn.transforms import (
    Compose,
    Dihedral,
    Normalize,
    RandomCrop,
    dihedral,
    dihedral_batch,
    dihedral_inverse,
    gt_scale,
)


def marked_pair(n: int, scale: int, y: int, x: int) -> tuple[np.ndarray, np.ndarray]:
    """WF with one bright pixel at (y, x); GT with the matching scale x scale block."""
    wf = np.zeros((1, n, n), dtype=np.float32)
    gt = np.zeros((1, n * scale, n * scale), dtype=np.float32)
    wf[0, y, x] = 1.0
    gt[0, scale * y : scale * (y + 1), scale * x : scale * (x + 1)] = 1.0
    return wf, gt


def mark(image: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(image)
    return int(ys.min()), int(xs.min())


def test_dihedral_gives_eight_distinct_images_and_matches_numpy():
    a = np.arange(16).reshape(4, 4)
    outs = {dihedral(a, k).tobytes() for k in range(8)}
    assert len(outs) == 8
    assert (dihedral(a, 1) == np.rot90(a)).all()
    assert (dihedral(a, 4) == np.fliplr(a)).all()
    assert (dihedral(a, 6) == np.flipud(a)).all()
    for k in range(8):
        assert (dihedral(dihedral(a, k), dihedral_inverse(k)) == a).all()
    with pytest.raises(ValueError, match=r"0\.\.7"):
        dihedral(a, 8)


@pytest.mark.parametrize("scale", [1, 2])
@pytest.mark.parametrize("k", range(8))
def test_marked_pixel_stays_aligned(k, scale):
    n, y, x = 8, 1, 5
    wf, gt = marked_pair(n, scale, y, x)
    w, g = Dihedral(k)(wf, gt, np.random.default_rng(0))
    wy, wx = mark(w[0])
    assert (w[0] == dihedral(wf[0], k)).all()
    assert w[0].sum() == 1 and g[0].sum() == scale * scale
    assert mark(g[0]) == (scale * wy, scale * wx)
    # the GT block is whole (a scale x scale square), not smeared
    block = g[0, scale * wy : scale * (wy + 1), scale * wx : scale * (wx + 1)]
    assert (block == 1).all()


def test_random_dihedral_is_seeded_and_varies_per_sample():
    wf = np.stack([np.arange(16, dtype=np.float32).reshape(4, 4)] * 32)
    gt = np.repeat(np.repeat(wf, 2, axis=1), 2, axis=2)
    w1, g1 = Dihedral()(wf, gt, np.random.default_rng(7))
    w2, _ = Dihedral()(wf, gt, np.random.default_rng(7))
    assert (w1 == w2).all()
    ks = {next(k for k in range(8) if (dihedral(wf[0], k) == w).all()) for w in w1}
    assert len(ks) > 4
    # GT still equals the upsampled WF after the same symmetry
    assert (np.repeat(np.repeat(w1, 2, axis=1), 2, axis=2) == g1).all()


def test_dihedral_batch_groups_by_symmetry():
    x = np.random.default_rng(0).random((5, 3, 3))
    ks = [0, 3, 3, 7, 1]
    out = dihedral_batch(x, ks)
    for i, k in enumerate(ks):
        assert (out[i] == dihedral(x[i], k)).all()


@pytest.mark.parametrize("scale", [1, 2])
def test_random_crop_keeps_scale_and_alignment(scale):
    rng = np.random.default_rng(3)
    wfs, gts = [], []
    for y, x in [(2, 3), (10, 12), (7, 7)]:
        w, g = marked_pair(16, scale, y, x)
        wfs.append(w[0])
        gts.append(g[0])
    wf, gt = np.stack(wfs), np.stack(gts)
    seen = 0
    for _ in range(20):
        w, g = RandomCrop(8)(wf, gt, rng)
        assert w.shape == (3, 8, 8) and g.shape == (3, 8 * scale, 8 * scale)
        for i in range(3):
            if w[i].any():
                seen += 1
                wy, wx = mark(w[i])
                assert mark(g[i]) == (scale * wy, scale * wx)
                assert g[i].sum() == scale * scale
            else:
                assert not g[i].any()
    assert seen > 0
    with pytest.raises(ValueError, match="larger"):
        RandomCrop(17)(wf, gt, rng)


def test_compose_and_normalize_transform():
    wf, gt = marked_pair(16, 2, 4, 4)
    wf = wf * 3 + 1
    t = Compose([Normalize("minmax"), Dihedral(2), RandomCrop(16)])
    w, g = t(wf, gt, np.random.default_rng(0))
    assert w.max() == pytest.approx(1.0) and w.min() == 0
    assert mark(w[0]) == (11, 11) and mark(g[0]) == (22, 22)


def test_gt_scale():
    assert gt_scale(np.zeros((1, 4, 4)), np.zeros((1, 8, 8))) == 2
    with pytest.raises(ValueError, match="multiple"):
        gt_scale(np.zeros((4, 4)), np.zeros((6, 6)))


def test_dihedral_table_equals_rot90_then_mirror_with_leading_axes():
    from biosr.learn.transforms import DIHEDRAL_VIEWS

    a = np.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    for k, view in enumerate(DIHEDRAL_VIEWS):
        ref = np.rot90(a, k % 4, axes=(-2, -1))
        ref = ref[..., ::-1] if k >= 4 else ref
        assert np.array_equal(view(a), ref) and np.array_equal(dihedral(a, k), ref)
