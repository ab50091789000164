"""biosr export: bioimage.io packages that pass bioimage.io's own test offline, without biosr."""

from __future__ import annotations

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
from biosr.io.tiff import read_tiff, write_tiff  # noqa: E402
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


def _checkpoint(path: Path, model: str, scale: int, step: int = 7) -> Path:
    """A checkpoint in the format biosr train writes (Lightning's keys), of a seeded network."""
    torch.manual_seed(1)
    module = SRModule(model, scale, OPTIONS[model])
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


def _pipeline_prediction(package: Path, image: np.ndarray, *, tiled: bool) -> np.ndarray:
    """bioimage.io's own prediction: preprocessing, weights, and (if `tiled`) its tiling."""
    from bioimageio.core import Sample, Tensor, create_prediction_pipeline, predict
    from bioimageio.spec import load_model_description

    descr = load_model_description(package, perform_io_checks=False)
    tensor = Tensor(image[None, None], dims=("batch", "channel", "y", "x"))
    sample = Sample(members={"input": tensor}, stat={}, id="field")
    if tiled:
        # Blocks of about 256 px, as a tool would choose (the library's default, n = 10, is
        # the smallest blocks: many times the work).
        size = descr.inputs[0].axes[2].size
        out = predict(model=descr, inputs=sample, blocksize_parameter=(256 - size.min) // size.step)
    else:
        # The whole field in one pass, as bioimageio.core.test_model runs a model.
        with create_prediction_pipeline(descr) as pp:
            out = pp.predict_sample_without_blocking(
                sample, skip_input_padding=True, skip_output_cropping=True
            )
    return out.members["output"].data.values[0, 0]


def _biosr_predict(checkpoint: Path, field: Path, out: Path, *extra: str) -> np.ndarray:
    args = ["predict", "--checkpoint", str(checkpoint), "--input", str(field), "--out", str(out)]
    assert main([*args, *extra]) == 0
    return read_tiff(out / field.name)


@pytest.mark.parametrize("scale", [1, 2])
def test_round_trip_dfcan_whole_field(packages, tmp_path, scale):
    ckpt, package = packages["dfcan", scale]
    field = _field()
    write_tiff(tmp_path / "field.tif", field, pixel_size_nm=layout.PIXEL_SIZE_WF_NM)
    ours = _biosr_predict(ckpt, tmp_path / "field.tif", tmp_path / "pred", "--tile", "512")
    theirs = _pipeline_prediction(package, field, tiled=False)
    assert theirs.shape == ours.shape == (FIELD * scale, FIELD * scale)
    assert np.abs(theirs - ours).max() < 1e-4
    assert ours.std() > 1e-3  # a real image, not a constant both sides agree on


def test_round_trip_tiled_is_seamless(packages, tmp_path):
    # bioimage.io's tiling with the package's halo equals biosr's tiled prediction away from
    # the field's borders, where the tools pad the image (symmetric) and biosr does not. The
    # U-Net is exact under tiling; DFCAN's global attention makes any tiling approximate.
    ckpt, package = packages["unet", 2]
    field = _field(seed=1)
    write_tiff(tmp_path / "field.tif", field, pixel_size_nm=layout.PIXEL_SIZE_WF_NM)
    ours = _biosr_predict(ckpt, tmp_path / "field.tif", tmp_path / "pred")
    theirs = _pipeline_prediction(package, field, tiled=True)
    assert theirs.shape == ours.shape
    band = ex.HALO * 2
    inner = np.abs(theirs - ours)[band:-band, band:-band]
    assert inner.max() < 1e-4, inner.max()


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


@pytest.mark.parametrize("kind", ["foreign", "truncated", "text", "missing-folder"])
def test_bad_input_is_one_line_and_leaves_no_zip(tmp_path, capsys, kind):
    files = _junk(tmp_path)
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
