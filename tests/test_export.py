"""biosr export: bioimage.io packages that pass bioimage.io's own test offline, without biosr."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch: pip install biosr[ml]")
pytest.importorskip("lightning", reason="needs lightning: pip install biosr[ml]")
pytest.importorskip(
    "bioimageio.core", reason="needs bioimageio.core: pip install biosr[bioimageio]"
)
pytest.importorskip("matplotlib", reason="needs matplotlib: pip install biosr[plot]")

from scipy import ndimage  # noqa: E402

from biosr import layout  # noqa: E402
from biosr.cli import main  # noqa: E402
from biosr.dataset.manifest import card_base, write_card  # noqa: E402
from biosr.errors import BiosrError  # noqa: E402
from biosr.io.tiff import read_pixel_size_nm, read_tiff, write_tiff  # noqa: E402
from biosr.learn import export as ex  # noqa: E402
from biosr.learn.models import MODELS, build_model  # noqa: E402
from biosr.learn.package import is_package  # noqa: E402
from biosr.learn.predict import load_model  # noqa: E402
from biosr.learn.train import SRModule  # noqa: E402
from biosr.normalize import normalize  # noqa: E402
from conftest import make_dataset  # noqa: E402

#: Tiny networks: exported, tested and run in seconds.
OPTIONS = {
    "unet": {"base": 4},
    "dfcan": {"channels": 8, "groups": 1, "blocks": 1, "reduction": 4},
}
#: (model, scale) of the packages exported once for the whole module.
CASES = [("unet", 1), ("unet", 2), ("dfcan", 1), ("dfcan", 2)]
FIELD = 502  # a full BioSR widefield field
#: Gain of the test networks' last convolution: their output's std becomes a few 0.01.
GAIN = {"unet": ("out", 100.0), "dfcan": ("head", 25.0)}
#: (model, scale, how bioimage.io predicts) of the round trip on a whole 502 x 502 field.
#: DFCAN's attention is global: tools predict it whole. The U-Net, whole or tiled, pools on
#: a 4 px grid; at scale 2 it pools after upsampling, so bioimage.io's blocks (the last one
#: flush with the field's end) stay on it. At scale 1 a 502 px field (not a multiple of 4)
#: puts bioimage.io's last block 2 px off that grid: a U-Net's own shift sensitivity, not
#: padding, and not something a package can describe away.
ROUND_TRIPS = [
    ("dfcan", 1, "whole"),
    ("dfcan", 2, "whole"),
    ("unet", 2, "whole"),
    ("unet", 2, "tiled"),
]
WEIGHTS = ("pytorch_state_dict", "torchscript")


def _checkpoint(path: Path, model: str, scale: int, step: int = 7) -> Path:
    """A checkpoint in the format biosr train writes (Lightning's keys), of a seeded network.

    The last convolution is scaled up (:data:`GAIN`): an untrained network's output barely
    varies (the U-Net's correction of its input: std 5e-4; DFCAN's sigmoid: std 2e-3),
    which would hide how borders and tiles are handled.
    """
    torch.manual_seed(1)
    module = SRModule(model, scale, OPTIONS[model])
    layer, gain = GAIN[model]
    with torch.no_grad():
        getattr(module.net, layer).weight.mul_(gain)
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "global_step": step,
        },
        path,
    )
    return path


def _field(seed: int = 0) -> np.ndarray:
    """A smooth widefield field in camera counts (uint16), as the microscope writes it."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random((FIELD, FIELD)), 1.5)
    return (smooth * 4000 + 100).astype(np.uint16)


def _no_network(*args, **kwargs):
    raise OSError("network blocked by the test")


@pytest.fixture(scope="module")
def offline():
    """No network and a private bioimage.io cache for the module's in-process calls."""
    with pytest.MonkeyPatch.context() as mp:
        cache = Path(os.environ.get("TMPDIR", "/tmp")) / f"biosr-bioimageio-{os.getpid()}"
        mp.setenv("BIOIMAGEIO_CACHE_PATH", str(cache))
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket.socket, "connect_ex", _no_network)
        yield


@pytest.fixture(scope="module")
def packages(tmp_path_factory, offline) -> dict[tuple[str, int], tuple[Path, Path]]:
    """(checkpoint, package) of every case, exported once through the CLI."""
    root = tmp_path_factory.mktemp("packages")
    made = {}
    for model, scale in CASES:
        ckpt = _checkpoint(root / f"{model}{scale}.ckpt", model, scale)
        out = root / f"{model}{scale}.zip"
        assert main(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
        made[model, scale] = ckpt, out
    return made


def _rdf(package: Path) -> str:
    with zipfile.ZipFile(package) as zf:
        return zf.read("rdf.yaml").decode()


# The bioimage.io test runs in a fresh interpreter that cannot reach the network and cannot
# import biosr (-I: no user site, no PYTHONPATH; a meta-path finder refuses biosr; cwd is a
# temporary folder), as in Fiji or ilastik.
_ISOLATED = textwrap.dedent(
    """
    import json, socket, sys
    from pathlib import Path

    def _blocked(*args, **kwargs):
        raise OSError("network blocked")

    socket.socket.connect = socket.socket.connect_ex = socket.create_connection = _blocked

    class NoBiosr:
        def find_spec(self, name, path=None, target=None):
            if name == "biosr" or name.startswith("biosr."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, NoBiosr())
    report = {}
    try:
        import biosr  # noqa: F401
        report["biosr"] = "importable"
    except ModuleNotFoundError:
        report["biosr"] = "blocked"
    try:
        socket.create_connection(("127.0.0.1", 9))
        report["network"] = "open"
    except OSError:
        report["network"] = "blocked"
    from bioimageio.core import test_model

    for source in sys.argv[1:]:
        for fmt in ("pytorch_state_dict", "torchscript"):
            summary = test_model(Path(source), weight_format=fmt)
            errors = [d.name for d in summary.details if d.status == "failed"]
            report[f"{Path(source).name}:{fmt}"] = [summary.status, errors]
    print("REPORT" + json.dumps(report))
    """
)


@pytest.mark.slow
def test_packages_pass_bioimageio_test_offline_without_biosr(packages, tmp_path):
    zips = [str(out) for _, out in packages.values()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["BIOIMAGEIO_CACHE_PATH"] = str(tmp_path / "cache")
    run = subprocess.run(
        [sys.executable, "-I", "-c", _ISOLATED, *zips],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("REPORT")]
    assert run.returncode == 0 and lines, run.stderr[-3000:]
    report = json.loads(lines[-1].removeprefix("REPORT"))
    assert report.pop("biosr") == "blocked"
    assert report.pop("network") == "blocked"
    assert len(report) == 2 * len(CASES)
    for key, (status, errors) in report.items():
        assert status == "passed", (key, errors)


def test_description_axes_pixel_sizes_halo_and_metadata(packages):
    from bioimageio.spec import load_model_description
    from bioimageio.spec.model import v0_5

    for (model, scale), (_, package) in packages.items():
        descr = load_model_description(package, perform_io_checks=False)
        assert isinstance(descr, v0_5.ModelDescr), descr
        (inp,), (out,) = descr.inputs, descr.outputs
        assert [a.type for a in inp.axes] == ["batch", "channel", "space", "space"]
        assert [a.type for a in out.axes] == ["batch", "channel", "space", "space"]
        step = build_model(model, scale=scale, **OPTIONS[model]).size_multiple
        for a_in, a_out in zip(inp.axes[2:], out.axes[2:], strict=True):
            assert a_in.unit == a_out.unit == "micrometer"
            assert a_in.scale == pytest.approx(layout.PIXEL_SIZE_WF_NM / 1000)
            assert a_out.scale == pytest.approx(layout.PIXEL_SIZE_WF_NM / 1000 / scale)
            assert a_in.size.step == step and a_in.size.min % step == 0
            assert a_out.halo == ex.HALO * scale  # 40 is a multiple of both steps (1, 4)
            assert a_in.size.min > 2 * ex.HALO
        assert {"pytorch_state_dict", "torchscript"} <= set(descr.weights.model_fields_set)
        arch = descr.weights.pytorch_state_dict.architecture
        assert arch.kwargs == {"scale": scale, **OPTIONS[model]}
        assert [str(c.doi) for c in descr.cite] == [c["doi"] for c in ex.cite_entries(model)]
        assert str(descr.license) == ex.LICENSE
        assert model in descr.tags
        rdf = _rdf(package)
        assert "github_user" not in rdf and "http" not in rdf  # nothing to check online


def test_architecture_file_imports_only_torch(packages, tmp_path):
    for model in MODELS:
        name, source, cls = ex.architecture_source(build_model(model))
        assert name == f"{model}.py" and f"class {cls}(" in source
    with zipfile.ZipFile(packages["unet", 1][1]) as zf:
        shipped = zf.read("unet.py").decode()
    assert shipped == Path(sys.modules[type(build_model("unet")).__module__].__file__).read_text()
    # A model file that reaches into biosr is refused, naming the file and the import.
    bad = tmp_path / "badnet.py"
    bad.write_text(
        "import torch\nfrom biosr import layout\n\nclass Bad(torch.nn.Module):\n    pass\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import badnet

        with pytest.raises(BiosrError, match=r"badnet\.py: imports biosr"):
            ex.architecture_source(badnet.Bad())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("badnet", None)


def test_halo_covers_the_default_unet_receptive_field():
    # The gradient of one output pixel reaches exactly the inputs that can change it.
    torch.manual_seed(0)
    net = build_model("unet").double().eval()
    x = torch.rand(1, 1, 128, 128, dtype=torch.float64, requires_grad=True)
    net(x)[0, 0, 64, 64].backward()
    ys, xs = np.nonzero(x.grad[0, 0].abs().numpy() > 0)
    radius = max(64 - ys.min(), ys.max() - 64, 64 - xs.min(), xs.max() - 64)
    assert 10 < radius <= ex.HALO


def _pipeline_prediction(
    package: Path, image: np.ndarray, *, tiled: bool, weights: str = WEIGHTS[0]
) -> np.ndarray:
    """bioimage.io's own prediction: preprocessing, the halo's padding, weights, its tiling.

    Whole: ``bioimageio.core.predict`` without blocks (the field padded by the halo,
    predicted in one pass, the halo cropped). Tiled: blocks of about 256 px, as a tool
    would choose (the library's smallest blocks, its default, are many times the work).
    """
    from bioimageio.core import Sample, Tensor, create_prediction_pipeline, predict
    from bioimageio.spec import load_model_description

    descr = load_model_description(package, perform_io_checks=False)
    tensor = Tensor(image[None, None].astype(np.float32), dims=("batch", "channel", "y", "x"))
    sample = Sample(members={"input": tensor}, stat={}, id="field")
    size = descr.inputs[0].axes[2].size
    blocks = (256 - size.min) // size.step if tiled else None
    pipeline = create_prediction_pipeline(descr, weight_format=weights)
    out = predict(model=pipeline, inputs=sample, blocksize_parameter=blocks)
    return out.members["output"].data.values[0, 0]


def _biosr_predict(checkpoint: Path, field: Path, out: Path, *extra: str) -> np.ndarray:
    args = ["predict", "--checkpoint", str(checkpoint), "--input", str(field), "--out", str(out)]
    assert main([*args, *extra]) == 0
    return read_tiff(out / field.name)


@pytest.fixture(scope="module")
def field_tif(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("field") / "field.tif"
    write_tiff(path, _field(), pixel_size_nm=layout.PIXEL_SIZE_WF_NM)
    return path


@pytest.fixture(scope="module")
def biosr_on_field(packages, field_tif, tmp_path_factory) -> dict[tuple[str, int], np.ndarray]:
    """``biosr predict`` of the 502 px field by each checkpoint (computed once, when asked).

    DFCAN in one tile, as bioimage.io predicts it whole (its attention is global).
    """
    root = tmp_path_factory.mktemp("biosr-pred")

    class Cache(dict):
        def __missing__(self, key):
            model, scale = key
            extra = ["--tile", "1024"] if model == "dfcan" else []
            out = root / f"{model}{scale}"
            self[key] = _biosr_predict(packages[key][0], field_tif, out, *extra)
            return self[key]

    return Cache()


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize(("model", "scale", "mode"), ROUND_TRIPS)
def test_round_trip_502_field_equals_biosr_predict(
    packages, field_tif, biosr_on_field, model, scale, mode, weights
):
    # biosr predict mirrors the field by the package's halo as bioimage.io pads it, so the two
    # agree up to the field's edges.
    ours = biosr_on_field[model, scale]
    field = read_tiff(field_tif, dtype=None)
    theirs = _pipeline_prediction(
        packages[model, scale][1], field, tiled=mode == "tiled", weights=weights
    )
    assert theirs.shape == ours.shape == (FIELD * scale, FIELD * scale)
    assert np.abs(theirs - ours).max() < 1e-4
    assert ours.std() > 1e-2  # a real image, not a constant both sides agree on


def test_round_trip_unet_scale_1_on_its_pooling_grid(packages, tmp_path):
    # At scale 1 the U-Net pools on the input's 4 px grid: on a field whose side is a multiple
    # of 4, bioimage.io's tiles (the last one flush with the field's end) stay on it.
    ckpt, package = packages["unet", 1]
    field = _field()
    field = np.pad(field, ((0, 2), (0, 2)), mode="symmetric")  # 504 x 504
    write_tiff(tmp_path / "field.tif", field, pixel_size_nm=layout.PIXEL_SIZE_WF_NM)
    ours = _biosr_predict(ckpt, tmp_path / "field.tif", tmp_path / "pred")
    theirs = _pipeline_prediction(package, field, tiled=True)
    assert theirs.shape == ours.shape == field.shape
    assert np.abs(theirs - ours).max() < 1e-4 and ours.std() > 1e-2


@pytest.mark.parametrize(("model", "scale"), [("dfcan", 1), ("unet", 2)])
def test_round_trip_needs_the_halo_padding(
    packages, field_tif, biosr_on_field, tmp_path, model, scale
):
    # The check above has teeth: without the mirrored halo (the network's zero padding, as
    # biosr predicted before) the field's edges differ from bioimage.io's (within 1e-4 of
    # biosr_on_field, above) by far more.
    extra = ["--tile", "1024"] if model == "dfcan" else []
    ckpt = packages[model, scale][0]
    zero = _biosr_predict(ckpt, field_tif, tmp_path / "zero", "--halo", "0", *extra)
    assert np.abs(biosr_on_field[model, scale] - zero).max() > 1e-3


def test_torchscript_equals_the_state_dict_on_a_non_square_input(packages):
    # Scripted, not traced: any valid size runs, here one the export never checked.
    for (model, scale), (_, package) in packages.items():
        net = load_model(package).net
        step = net.size_multiple
        with zipfile.ZipFile(package) as zf:
            scripted = torch.jit.load(io.BytesIO(zf.read(ex.TORCHSCRIPT_FILE)), map_location="cpu")
        x = torch.rand(1, 1, 2 * ex.HALO + 3 * step, 2 * ex.HALO + 11 * step)
        with torch.inference_mode():
            ref, got = net(x), scripted(x)
        assert got.shape == ref.shape == (1, 1, x.shape[2] * scale, x.shape[3] * scale)
        assert (got - ref).abs().max() <= 1e-5, (model, scale)


def test_preprocessing_is_the_training_normalisation(packages, offline):
    from bioimageio.core import Sample, Tensor, create_prediction_pipeline
    from bioimageio.spec import load_model_description

    descr = load_model_description(packages["unet", 1][1], perform_io_checks=False)
    field = _field()[:128, :128]
    patch = normalize(ndimage.gaussian_filter(np.random.default_rng(2).random((128, 128)), 2))
    with create_prediction_pipeline(descr) as pp:
        for image, expected in ((field, normalize(field, "minmax")), (patch, patch)):
            tensor = Tensor(image[None, None], dims=("batch", "channel", "y", "x"))
            sample = Sample(members={"input": tensor}, stat={}, id="x")
            pp.apply_preprocessing(sample)
            got = sample.members["input"].data.values[0, 0]
            np.testing.assert_allclose(got, expected, atol=1e-5)
            np.testing.assert_allclose(got, ex.preprocess(image), atol=1e-5)


def test_export_from_a_percentile_dataset(tmp_path, offline):
    from bioimageio.core import Sample, Tensor, create_prediction_pipeline
    from bioimageio.spec import load_model_description

    base = make_dataset(tmp_path / "data", {"training": 1, "test": 1}, size=32)
    protocol = {"normalize": "percentile", "percentiles": [1.0, 99.0]}
    write_card(base, card_base(producer="test", protocol=protocol, seed=3))
    summary = tmp_path / "summary.md"
    summary.write_text("| level | PSNR |\n|---|---|\n| 1 | 21.5 |\n")
    ckpt = _checkpoint(tmp_path / "m.ckpt", "dfcan", 1, step=11)
    out = ex.export(ckpt, tmp_path / "m.zip", data=tmp_path / "data", scores=summary)
    with zipfile.ZipFile(out) as zf:
        readme = zf.read(ex.README_FILE).decode()
        test_in = np.load(zf.open(ex.TEST_INPUT_FILE))
    assert "11 training steps" in readme and "| 1 | 21.5 |" in readme
    assert '"percentile"' in readme and "10.1038/s41592-020-01048-5" in readme
    assert "introduced DFCAN" in _rdf(out)
    # The test input is a test pair of the dataset (its 32 px patch, mirrored to the size).
    wf = read_tiff(layout.pairs(base, "test")[len(layout.pairs(base, "test")) // 2].wf)
    np.testing.assert_array_equal(test_in[0, 0, :32, :32], wf)
    descr = load_model_description(out, perform_io_checks=False)
    image = _field()[:96, :96].astype(np.float32)
    with create_prediction_pipeline(descr) as pp:
        sample = Sample(
            members={"input": Tensor(image[None, None], dims=("batch", "channel", "y", "x"))},
            stat={},
            id="x",
        )
        pp.apply_preprocessing(sample)
    got = sample.members["input"].data.values[0, 0]
    expected = normalize(image, "percentile", percentiles=(1.0, 99.0), clip=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got.min() == 0.0 and got.max() == 1.0  # clipped, as the build clips


def _preprocessing(package: Path) -> list[tuple[str, dict]]:
    from bioimageio.spec import load_model_description

    descr = load_model_description(package, perform_io_checks=False)
    steps = [p for p in descr.inputs[0].preprocessing if p.id != "ensure_dtype"]  # casts
    return [(str(p.id), p.kwargs.model_dump(exclude={"axes", "eps"})) for p in steps]


def test_checkpoint_records_its_training_data_for_export(tmp_path, offline):
    from biosr.learn.train import train

    base = make_dataset(tmp_path / "data", {"training": 2, "validate": 1, "test": 1}, size=32)
    protocol = {"normalize": "percentile", "percentiles": [2.0, 98.0]}
    write_card(base, card_base(producer="test", protocol=protocol, seed=5))
    result = train(
        tmp_path / "data",
        tmp_path / "run",
        model="unet",
        model_options={"base": 4},
        max_steps=1,
        batch_size=2,
    )
    record = load_model(result.last).training_data
    assert record["path"] == str(base.resolve())  # the dataset folder itself
    assert record["normalize"] == "stored"
    assert record["card"]["protocol"] == protocol and record["card"]["seed"] == 5
    assert "citation" not in record["card"]
    # Without --data: the card, the normalisation and a test pair come from the record.
    out = ex.export(result.last, tmp_path / "m.zip")
    with zipfile.ZipFile(out) as zf:
        readme = zf.read(ex.README_FILE).decode()
        test_in = np.load(zf.open(ex.TEST_INPUT_FILE))
    assert "From the checkpoint's record of its training data" in readme
    assert "- seed: 5" in readme and "- protocol: " in readme
    assert [name for name, _ in _preprocessing(out)] == ["scale_range", "clip"]
    scale_range = _preprocessing(out)[0][1]
    assert (scale_range["min_percentile"], scale_range["max_percentile"]) == (2.0, 98.0)
    wf = read_tiff(layout.pairs(base, "test")[len(layout.pairs(base, "test")) // 2].wf)
    np.testing.assert_array_equal(test_in[0, 0, :32, :32], wf)
    assert load_model(out).training_data == record  # the package keeps the record
    # --data overrides the record: a min-max dataset, so min-max preprocessing, unclipped.
    other = make_dataset(tmp_path / "other", {"training": 1, "test": 1}, size=32, seed=1)
    write_card(other, card_base(producer="other", seed=6))
    out = ex.export(result.last, tmp_path / "o.zip", data=tmp_path / "other")
    assert _preprocessing(out) == [
        ("scale_range", {"min_percentile": 0.0, "max_percentile": 100.0, "reference_tensor": None})
    ]
    assert load_model(out).training_data["card"]["seed"] == 6


def test_package_opens_in_biosr_with_unchanged_scores(packages, tmp_path):
    from biosr.evaluate.scoring import score_pair

    ckpt, package = packages["unet", 2]
    loaded = load_model(package)
    assert (loaded.name, loaded.scale, loaded.global_step) == ("unet", 2, 7)
    base = make_dataset(tmp_path / "data", {"training": 1, "test": 1}, gt_scale=2, size=64)
    for name, source in (("ckpt", ckpt), ("pkg", package)):
        args = ["--input", str(tmp_path / "data"), "--out", str(tmp_path / name)]
        assert main(["predict", "--checkpoint", str(source), *args]) == 0
    pairs = layout.pairs(base, "test")
    assert len(pairs) == len(layout.LEVELS)
    for pair in pairs:
        rel = pair.wf.relative_to(base / layout.split_roots("test")[0])
        gt = read_tiff(pair.gt)
        scores = [
            score_pair(gt, read_tiff(tmp_path / name / rel), pixel_size_nm=layout.PIXEL_SIZE_GT_NM)
            for name in ("ckpt", "pkg")
        ]
        assert scores[0].keys() == scores[1].keys()
        for metric, value in scores[0].items():
            assert abs(value - scores[1][metric]) <= 1e-5 or value == scores[1][metric], metric


def _junk(tmp_path: Path) -> dict[str, Path]:
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "epoch": 3}, foreign)
    whole = _checkpoint(tmp_path / "whole.ckpt", "unet", 1).read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(whole[: len(whole) // 2])
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    return {"foreign": foreign, "truncated": truncated, "text": text}


@pytest.mark.parametrize(
    "kind", ["foreign", "truncated", "text", "truncated-package", "missing-folder"]
)
def test_bad_input_is_one_line_and_leaves_no_zip(packages, tmp_path, capsys, kind):
    files = _junk(tmp_path)
    whole = packages["unet", 1][1].read_bytes()
    files["truncated-package"] = tmp_path / "half.zip"
    files["truncated-package"].write_bytes(whole[: len(whole) // 2])
    ckpt = files.get(kind, _checkpoint(tmp_path / "ok.ckpt", "unet", 1))
    out_dir = tmp_path / ("no-such-folder" if kind == "missing-folder" else "out")
    if kind != "missing-folder":
        out_dir.mkdir()
    code = main(["export", "--checkpoint", str(ckpt), "--out", str(out_dir / "m.zip")])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    named = out_dir if kind == "missing-folder" else ckpt
    assert err.startswith("biosr: error: ") and str(named) in err
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_failed_export_leaves_no_zip_and_keeps_the_old_one(tmp_path, monkeypatch, offline):
    ckpt = _checkpoint(tmp_path / "m.ckpt", "unet", 1)
    out = tmp_path / "m.zip"
    out.write_bytes(b"an earlier package")

    def fail(*args, **kwargs):
        Path(kwargs["output_path"]).write_bytes(b"half")  # a half-written zip
        raise KeyboardInterrupt

    monkeypatch.setattr("bioimageio.spec.save_bioimageio_package", fail)
    with pytest.raises(KeyboardInterrupt):
        ex.export(ckpt, out)
    assert out.read_bytes() == b"an earlier package"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ckpt", "m.zip"]


def test_a_foreign_package_is_refused_by_biosr(tmp_path):
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("rdf.yaml", "type: model\n")
    assert is_package(other)
    with pytest.raises(
        BiosrError, match=r"other\.zip: a bioimage\.io package not written by biosr"
    ):
        load_model(other)
    assert not is_package(_checkpoint(tmp_path / "m.ckpt", "unet", 1))  # a zip, not a package


# --------------------------------------------------------------------------- #
# The structure trained on: names, tags, README, levels and pixel sizes of the package
# --------------------------------------------------------------------------- #


def _structure_dataset(
    root: Path, structure: str, counts: dict[str, int], *, gt_scale: int = 1, size: int = 32
) -> Path:
    """Random float32 pairs in `structure`'s layout (``root/BioSR/<structure>``), with its card.

    The TIFFs carry no pixel size, so what ``biosr predict`` writes comes from the model.
    """
    s = layout.get_structure(structure)
    base = root / s.dataset_dir
    rng = np.random.default_rng(4)
    for split, n in counts.items():
        for lev in layout.split_levels(split, structure=s):
            for i in range(1, n + 1):
                p = layout.pair(base, split, i, lev, structure=s)
                for path, side in ((p.wf, size), (p.gt, size * gt_scale)):
                    if not path.exists():
                        path.parent.mkdir(parents=True, exist_ok=True)
                        write_tiff(path, rng.random((side, side), dtype=np.float32))
    write_card(base, card_base(structure=s, producer="test", seed=8, gt_scale=gt_scale))
    return base


def _train_on(data: Path, run: Path) -> Path:
    """The last checkpoint of a tiny U-Net trained one step on `data` (its scale inferred)."""
    from biosr.learn.train import train

    kwargs = {"model": "unet", "model_options": OPTIONS["unet"], "max_steps": 1, "batch_size": 2}
    return train(data, run, **kwargs).last


def _summary(structure: layout.Structure) -> str:
    """A ``summary.md`` of ``biosr evaluate`` in its form: the structure, then level columns."""
    levels = " | ".join(f"level {lv}" for lv in structure.levels)
    rule = "---|" * len(structure.levels)
    return (
        f"Structure **{structure.name}**. Protocol **x**.\n\n| method | {levels} |\n|---|{rule}\n"
    )


def test_tags_and_names_come_from_each_structure():
    got = {n: ex.structure_tags(s) for n, s in layout.STRUCTURES.items()}
    assert got == {
        "CCPs": ["ccps", "tirf-sim"],
        "ER": ["er", "gi-sim"],
        "Microtubules": ["microtubules", "gi-sim"],
        "F-actin": ["f-actin", "tirf-sim"],
        "F-actin_Nonlinear": ["f-actin", "nonlinear-sim"],
    }
    er = layout.get_structure("ER")
    assert ex.default_name("UNet", 2, er) == "BioSR UNet x2 ER (GI-SIM)"


def test_a_model_trained_on_er_is_packaged_as_er(tmp_path, offline, capsys):
    from bioimageio.spec import load_model_description

    er = layout.get_structure("ER")
    counts = {"training": 2, "validate": 1, "test": 1}
    base = _structure_dataset(tmp_path / "data", "ER", counts)
    ckpt = _train_on(tmp_path / "data", tmp_path / "run")
    record = load_model(ckpt)
    assert record.hyper_parameters["structure"] == "ER"
    assert record.training_data["card"]["structure"] == "ER"
    scores = tmp_path / "summary.md"
    scores.write_text(_summary(er))
    out = ex.export(ckpt, tmp_path / "er.zip", scores=scores)
    descr = load_model_description(out, perform_io_checks=False)
    assert descr.name == "BioSR UNet x1 ER (GI-SIM)"
    assert descr.description.startswith("UNet (scale 1): widefield to GI-SIM-like")
    assert "BioSR ER (endoplasmic reticulum" in descr.description
    assert {"er", "gi-sim", "unet"} <= set(descr.tags) and "microtubules" not in descr.tags
    assert [str(c.doi) for c in descr.cite] == [c["doi"] for c in ex.cite_entries("unet")]
    for a_in, a_out in zip(descr.inputs[0].axes[2:], descr.outputs[0].axes[2:], strict=True):
        assert a_in.scale == a_out.scale == pytest.approx(er.pixel_size_wf_nm / 1000)  # 62.6 nm
    with zipfile.ZipFile(out) as zf:
        readme = zf.read(ex.README_FILE).decode()
        test_in = np.load(zf.open(ex.TEST_INPUT_FILE))
    assert "icrotubules" not in readme and "icrotubules" not in _rdf(out)
    assert "on BioSR ER data (endoplasmic reticulum" in readme
    assert "Structure: ER, GI-SIM, 6 signal levels (1..6), 9 raw frames" in readme
    assert "| level 6 |" in readme and "level 7" not in readme  # the scores' six levels
    # The cover and test input: the middle test pair over ER's six levels (level 4 of 6).
    pairs = layout.pairs(base, "test")
    assert [p.level for p in pairs] == list(er.levels)
    assert "`001.tif` (level 4 of 6) of " in readme
    np.testing.assert_array_equal(test_in[0, 0, :32, :32], read_tiff(pairs[3].wf))
    # biosr predict of the package on ER patches without a pixel size writes ER's.
    pred = tmp_path / "pred"
    args = ["predict", "--checkpoint", str(out), "--input", str(tmp_path / "data")]
    assert main([*args, "--out", str(pred)]) == 0
    written = sorted(pred.rglob("*.tif"))
    assert [p.parent.name for p in written] == [layout.level_dir(lv) for lv in er.levels]
    assert read_pixel_size_nm(written[0]) == pytest.approx(er.pixel_size_wf_nm)
    # A Microtubules dataset or evaluation for this ER model is refused in one line.
    make_dataset(tmp_path / "mt", {"training": 1, "test": 1}, size=32)
    scores.write_text(_summary(layout.get_structure()))
    for extra in (["--data", str(tmp_path / "mt")], ["--scores", str(scores)]):
        args = ["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "x.zip"), *extra]
        capsys.readouterr()
        assert main(args) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert "Microtubules" in err and ("trained on ER" in err or "model is of ER" in err)
    assert not (tmp_path / "x.zip").exists()


def test_without_a_record_data_names_the_structure_else_microtubules(packages, tmp_path):
    from bioimageio.spec import load_model_description

    _structure_dataset(tmp_path / "data", "F-actin", {"test": 1})
    ckpt = _checkpoint(tmp_path / "m.ckpt", "unet", 1)  # records no structure
    out = ex.export(ckpt, tmp_path / "fa.zip", data=tmp_path / "data")
    descr = load_model_description(out, perform_io_checks=False)
    assert descr.name == "BioSR UNet x1 F-actin (TIRF-SIM)"
    assert {"f-actin", "tirf-sim"} <= set(descr.tags)
    with zipfile.ZipFile(out) as zf:
        readme = zf.read(ex.README_FILE).decode()
    assert "12 signal levels (1..12)" in readme and "(level 7 of 12)" in readme
    assert "from the dataset `" in readme
    # Neither a record nor --data: the default, Microtubules.
    descr = load_model_description(packages["unet", 2][1], perform_io_checks=False)
    assert descr.name == "BioSR UNet x2 Microtubules (GI-SIM)"
    assert {"microtubules", "gi-sim"} <= set(descr.tags)


def test_a_nonlinear_sim_model_at_3x_passes_bioimageio_offline(tmp_path, offline):
    from bioimageio.core import test_model
    from bioimageio.spec import load_model_description

    nl = layout.get_structure("F-actin_Nonlinear")
    counts = {"training": 2, "validate": 1, "test": 1}
    _structure_dataset(tmp_path / "data", nl.name, counts, gt_scale=nl.gt_scale)
    ckpt = _train_on(tmp_path / "data", tmp_path / "run")
    assert load_model(ckpt).scale == 3
    out = ex.export(ckpt, tmp_path / "nl.zip")
    descr = load_model_description(out, perform_io_checks=False)
    assert descr.name == "BioSR UNet x3 F-actin_Nonlinear (nonlinear SIM)"
    assert {"f-actin", "nonlinear-sim"} <= set(descr.tags)
    assert "25 raw SIM frames" in descr.inputs[0].description
    for a_in, a_out in zip(descr.inputs[0].axes[2:], descr.outputs[0].axes[2:], strict=True):
        assert a_in.scale == pytest.approx(0.0604)  # 60.4 nm, in micrometres
        assert a_out.scale == pytest.approx(0.0604 / 3)
        assert a_out.halo == 3 * ex.HALO
    for weights in WEIGHTS:
        summary = test_model(out, weight_format=weights)
        failed = [d.name for d in summary.details if d.status == "failed"]
        assert summary.status == "passed", (weights, failed)
    # biosr predict writes the structure's output pixel, 60.4 / 3 nm, on an unsized input.
    write_tiff(tmp_path / "field.tif", _field()[:96, :96])
    pred = _biosr_predict(ckpt, tmp_path / "field.tif", tmp_path / "pred")
    assert pred.shape == (288, 288)
    assert read_pixel_size_nm(tmp_path / "pred" / "field.tif") == pytest.approx(60.4 / 3)
