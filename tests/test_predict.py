"""Prediction: seamless tiling equal to whole-image prediction, checkpoints, output layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch: pip install biosr[ml]")
pytest.importorskip("lightning", reason="needs lightning: pip install biosr[ml]")

from scipy import ndimage  # noqa: E402

from biosr import layout  # noqa: E402
from biosr.errors import BiosrError, DataError  # noqa: E402
from biosr.io.tiff import read_pixel_size_nm, read_tiff, write_tiff  # noqa: E402
from biosr.learn.models import build_model  # noqa: E402
from biosr.learn.predict import (  # noqa: E402
    HALO,
    _ramp,
    load_model,
    normalize_image,
    plan_inputs,
    predict,
    predict_image,
)
from biosr.learn.train import SRModule  # noqa: E402
from conftest import make_dataset  # noqa: E402

BORDER = 32  # compare away from the image's own borders


def _image(shape, seed=0):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random(shape), 1.5).astype(np.float32)


def _whole(net, image):
    with torch.no_grad():
        return net(torch.from_numpy(image)[None, None])[0, 0].numpy()


@pytest.mark.parametrize("scale", [1, 2])
def test_tiled_equals_untiled_away_from_borders(scale):
    torch.manual_seed(0)
    net = build_model("unet", scale=scale, base=8).eval()
    image = _image((200, 232))  # multiples of 4: the untiled pass needs no padding
    whole = _whole(net, image)
    tiled = predict_image(net, image, tile=96, overlap=64, margin=28, batch_size=3)
    assert tiled.shape == whole.shape == (200 * scale, 232 * scale)
    b = BORDER * scale
    err = np.abs(tiled - whole)[b:-b, b:-b]
    assert err.max() < 1e-4, err.max()
    # The same net cut into tiles naively (no margin, hard seams) is visibly different
    # at the seams: the check above has teeth.
    naive = predict_image(net, image, tile=96, overlap=2, margin=0)
    assert np.abs(naive - whole)[b:-b, b:-b].max() > 1e-3


def test_blend_weights_are_a_partition_of_unity():
    tile, overlap, margin = 64, 24, 6
    left = _ramp(tile, overlap, margin, left=False, right=True)
    right = _ramp(tile, overlap, margin, left=True, right=False)
    stride = tile - overlap
    total = np.zeros(tile + stride)
    total[:tile] += left
    total[stride:] += right
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    assert (left[-margin:] == 0).all() and (right[:margin] == 0).all()


def test_dfcan_tiles_blend_smoothly():
    # DFCAN's global attention makes tiles differ slightly; the blend must not show seams.
    torch.manual_seed(0)
    net = build_model("dfcan", channels=8, groups=1, blocks=1, reduction=4).eval()
    image = np.full((160, 160), 0.5, np.float32)
    tiled = predict_image(net, image, tile=64, overlap=32, margin=8)
    steps = np.abs(np.diff(tiled[40:-40, 40:-40], axis=1))
    assert steps.max() < 1e-3


def _checkpoint(tmp_path: Path, scale: int = 1) -> Path:
    torch.manual_seed(1)
    module = SRModule("unet", scale, {"base": 8})
    path = tmp_path / "model.ckpt"
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "global_step": 7,
        },
        path,
    )
    return path


def test_load_model_rebuilds_the_network(tmp_path):
    ckpt = _checkpoint(tmp_path, scale=2)
    loaded = load_model(ckpt)
    assert (loaded.name, loaded.scale, loaded.global_step) == ("unet", 2, 7)
    torch.manual_seed(1)
    ref = SRModule("unet", 2, {"base": 8}).net.eval()
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.net(x), ref(x))


def test_predict_mirrors_test_wf_for_evaluate(tmp_path):
    make_dataset(tmp_path / "data", {"training": 1, "test": 2}, size=32)
    out = predict(_checkpoint(tmp_path, scale=1), tmp_path / "data", tmp_path / "pred")
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.tif"))
    expected = [f"{layout.level_dir(v)}/{i:03d}.tif" for v in layout.LEVELS for i in (1, 2)]
    assert written == expected
    wf = read_tiff(tmp_path / "data" / "BioSR/Microtubules/test_wf/level_03/002.tif")
    loaded = load_model(_checkpoint(tmp_path))
    np.testing.assert_allclose(
        read_tiff(out / "level_03/002.tif"), _mirrored_whole(loaded.net, wf, HALO), atol=1e-6
    )


def _mirrored_whole(net, image, halo):
    """Whole-image prediction of `image` mirrored by `halo` (bioimage.io's padding), cropped."""
    h, w = image.shape
    s = int(net.scale)
    pred = _whole(net, np.pad(image, halo, mode="symmetric"))
    return pred[halo * s : (halo + h) * s, halo * s : (halo + w) * s]


@pytest.mark.parametrize(("scale", "tile"), [(1, 512), (2, 96)])
def test_the_halo_mirrors_the_image_as_bioimageio_pads_it(scale, tile):
    # One tile or many: the prediction is the network's on the image mirrored by the halo
    # (numpy's and bioimage.io's "symmetric"), cropped back, up to the image's very edge.
    torch.manual_seed(0)
    net = build_model("unet", scale=scale, base=8).eval()
    with torch.no_grad():
        net.out.weight.mul_(50)  # an untrained U-Net barely corrects its input
    image = _image((120, 148), seed=4)  # multiples of 4: so is the mirrored whole
    got = predict_image(net, image, tile=tile, overlap=64, margin=28, halo=HALO)
    np.testing.assert_allclose(got, _mirrored_whole(net, image, HALO), atol=1e-5)
    # The halo is what makes the edges agree: the network's zero padding differs there.
    zero = predict_image(net, image, tile=tile, overlap=64, margin=28, halo=0)
    assert np.abs(zero - got).max() > 1e-2
    # A halo off the network's grid is rounded up onto it (U-Net: 4), not shifted.
    np.testing.assert_array_equal(
        predict_image(net, image, tile=tile, overlap=64, margin=28, halo=HALO - 3), got
    )


def test_predict_full_field_file_with_pixel_size(tmp_path):
    field = (_image((120, 100), seed=3) * 4000 + 100).astype(np.uint16)
    write_tiff(tmp_path / "field.tif", field, pixel_size_nm=62.6)
    out = predict(
        _checkpoint(tmp_path, scale=2),
        tmp_path / "field.tif",
        tmp_path / "o",
        tile=64,
        overlap=32,
        margin=8,
    )
    pred = read_tiff(out / "field.tif")
    assert pred.shape == (240, 200) and pred.dtype == np.float32
    assert read_pixel_size_nm(out / "field.tif") == pytest.approx(31.3)


def test_normalize_auto_keeps_unit_range_and_scales_counts():
    unit = np.array([[0.1, 0.9]], np.float32)
    np.testing.assert_array_equal(normalize_image(unit, "auto"), unit)
    np.testing.assert_allclose(normalize_image(np.array([[100.0, 300.0]]), "auto"), [[0, 1]])
    with pytest.raises(BiosrError, match="unknown normalisation 'zscore'"):
        normalize_image(unit, "zscore")


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(BiosrError, match=r"missing\.ckpt: checkpoint not found"):
        load_model(tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(BiosrError, match=r"junk\.ckpt: not a readable checkpoint"):
        load_model(tmp_path / "junk.ckpt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no input images found"):
        predict(_checkpoint(tmp_path), tmp_path / "empty", tmp_path / "o")
    # Bad tiling options are BiosrErrors (this asserted a bare ValueError, which the
    # command line showed as a traceback).
    with pytest.raises(BiosrError, match="must exceed twice the margin"):
        predict_image(build_model("unet"), np.zeros((8, 8), np.float32), overlap=8, margin=4)
    # ... checked before the checkpoint is loaded (this one does not exist).
    nope = tmp_path / "nope.ckpt"
    with pytest.raises(BiosrError, match=r"overlap \(8\) must exceed twice the margin \(4\)"):
        predict(nope, tmp_path / "empty", tmp_path / "o", overlap=8, margin=4)
    with pytest.raises(BiosrError, match="batch size must be at least 1, got 0"):
        predict(nope, tmp_path / "empty", tmp_path / "o", batch_size=0)
    with pytest.raises(BiosrError, match=r"tile \(64\) must be larger than the overlap \(96\)"):
        predict(nope, tmp_path / "empty", tmp_path / "o", tile=64)
    with pytest.raises(BiosrError, match="margin must be at least 0"):
        predict(nope, tmp_path / "empty", tmp_path / "o", margin=-1)
    with pytest.raises(BiosrError, match="halo must be at least 0, got -2"):
        predict(nope, tmp_path / "empty", tmp_path / "o", halo=-2)


def test_dataset_without_the_split_folder_is_an_error(tmp_path):
    """A dataset root lacking SPLIT_wf is not mirrored as a plain folder (GT included)."""
    make_dataset(tmp_path / "data", {"training": 1}, size=32)
    with pytest.raises(DataError, match="dataset has no test_wf folder for split 'test'"):
        plan_inputs(tmp_path / "data", split="test")
    assert [rel.as_posix() for _, rel in plan_inputs(tmp_path / "data", split="training")] == [
        layout.file_name("training", 1)
    ]
