"""Recipes as data, the fast recipe on CPU (compile + bf16 autocast), devices and precisions."""

from __future__ import annotations

import csv
import dataclasses
import inspect
import json
import logging
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch: pip install biosr[ml]")
L = pytest.importorskip("lightning", reason="needs lightning: pip install biosr[ml]")

from biosr.errors import BiosrError  # noqa: E402
from biosr.learn import train as train_mod  # noqa: E402
from biosr.learn.device import accelerator_type, resolve_device, resolve_precision  # noqa: E402
from biosr.learn.models import build_model  # noqa: E402
from biosr.learn.models.dfcan import FourierChannelAttention  # noqa: E402
from biosr.learn.predict import predict_image  # noqa: E402
from biosr.learn.recipe import (  # noqa: E402
    DEFAULT_RECIPE,
    RECIPE_FIELDS,
    RECIPES,
    Recipe,
    get_recipe,
)
from biosr.learn.train import RECIPE_FILE, SRModule, train  # noqa: E402
from test_train import UNET, write_learnable_dataset  # noqa: E402

TINY_DFCAN = {"channels": 8, "groups": 1, "blocks": 1, "reduction": 4}
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")


@pytest.fixture(scope="module")
def learnable(tmp_path_factory):
    return write_learnable_dataset(
        tmp_path_factory.mktemp("data"), {"training": 16, "validate": 4, "test": 1}
    )


# --------------------------------------------------------------------------- #
# the recipe object
# --------------------------------------------------------------------------- #


def test_the_default_recipe_is_the_authors():
    r = RECIPES[DEFAULT_RECIPE]
    assert DEFAULT_RECIPE == "dlsr" and r == Recipe()
    # The BioSR authors' DL-SR training: Adam 1e-4, batch 4, MSE + 0.1 (1 - SSIM),
    # LR halved after 10 validations without improvement of the NRMSE, floor 1e-5.
    assert (r.optimizer, r.lr, r.batch_size, r.ssim_weight) == ("adam", 1e-4, 4, 0.1)
    assert (r.plateau_factor, r.plateau_patience, r.min_lr) == (0.5, 10, 1e-5)
    assert (r.val_metric, r.val_mode, r.precision) == ("val_nrmse", "min", "32-true")
    assert not (r.warmup_steps or r.compile or r.channels_last or r.cudnn_benchmark)
    assert r.scaled_lr(64) == r.lr  # no scaling


def test_fast_recipe_scales_the_learning_rate_by_the_square_root_rule():
    fast = RECIPES["fast"]
    assert fast.batch_size > RECIPES["dlsr"].batch_size and fast.warmup_steps > 0
    assert fast.compile and fast.channels_last and fast.precision == "auto"
    for batch in (4, 16, 64, 256):
        assert fast.scaled_lr(batch) == pytest.approx(fast.lr * (batch / fast.lr_batch) ** 0.5)
    linear = get_recipe("fast", lr_scaling="linear")
    assert linear.scaled_lr(64) == pytest.approx(fast.lr * 64 / fast.lr_batch)


def test_overrides_apply_and_none_keeps_the_recipes_value():
    r = get_recipe("fast", lr=3e-4, batch_size=None, compile=False)
    assert (r.name, r.lr, r.batch_size, r.compile) == ("fast", 3e-4, 64, False)
    assert get_recipe(r.to_dict()) == r  # the recorded dict rebuilds the recipe
    assert get_recipe(r) is r
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"recipe": "slow"}, "unknown recipe 'slow'; valid recipes: dlsr, fast"),
        ({"momentum": 0.9}, r"unknown recipe fields \['momentum'\]"),
        ({"lr": 0.0}, "lr must be greater than 0"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"plateau_factor": 1.5}, "plateau_factor must be strictly between 0 and 1"),
        ({"precision": "fp8"}, "precision is 'fp8'; valid: auto, 32-true"),
        ({"val_metric": "val_mse"}, "val_metric is 'val_mse'; valid: val_nrmse"),
        ({"compile": "yes"}, "compile must be True or False"),
    ],
)
def test_bad_recipe_values_are_clear_errors(kwargs, message):
    with pytest.raises(BiosrError, match=message):
        get_recipe(**kwargs)


def test_train_takes_every_recipe_field_as_an_override_defaulting_to_none():
    params = inspect.signature(train).parameters
    for name in RECIPE_FIELDS:
        assert name in params, name
        assert params[name].default is None, name


def test_cli_options_come_from_the_recipe(tmp_path, capsys):
    from biosr.cli import build_parser, main

    parser = build_parser()
    args = parser.parse_args(["train", "--data", "d", "--out", "o"])
    assert args.recipe == DEFAULT_RECIPE
    assert all(getattr(args, name) is None for name in RECIPE_FIELDS)  # None = the recipe's
    args = parser.parse_args(
        ["train", "--data", "d", "--out", "o", "--recipe", "fast", "--lr", "2e-4", "--no-compile"]
    )
    assert (args.recipe, args.lr, args.compile, args.batch_size) == ("fast", 2e-4, False, None)
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--recipe", "x"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "invalid choice: 'x' (choose from 'dlsr', 'fast')" in err


# --------------------------------------------------------------------------- #
# recorded, resumed, warmed up
# --------------------------------------------------------------------------- #


def test_the_run_records_its_recipe_in_the_checkpoint_and_the_run_folder(learnable, tmp_path):
    result = train(
        learnable,
        tmp_path / "run",
        model="unet",
        model_options=UNET,
        recipe="fast",
        batch_size=4,
        warmup_steps=2,
        precision="32-true",
        compile=False,
        max_steps=3,
        val_every=3,
        accelerator="cpu",
    )
    expected = get_recipe(
        "fast", batch_size=4, warmup_steps=2, precision="32-true", compile=False
    ).to_dict()
    ckpt = torch.load(result.last, map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["recipe"] == expected
    record = json.loads((tmp_path / "run" / RECIPE_FILE).read_text())
    assert record["recipe"] == expected
    assert record["overrides"] == {
        "batch_size": 4,
        "warmup_steps": 2,
        "precision": "32-true",
        "compile": False,
    }
    assert record["run"]["precision"] == "32-true" and record["run"]["compiled"] is None
    assert record["run"]["lr_after_warmup"] == pytest.approx(RECIPES["fast"].lr)  # batch 4
    # The saved module rebuilds with the same recipe.
    assert SRModule.load_from_checkpoint(result.last, map_location="cpu").recipe == Recipe(
        **expected
    )


def test_warm_up_is_linear_then_the_scaled_rate(learnable, tmp_path):
    seen = []

    class LR(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            seen.append(optimizer.param_groups[0]["lr"])

    train(
        learnable,
        tmp_path / "run",
        model="unet",
        model_options=UNET,
        recipe="fast",
        batch_size=8,
        warmup_steps=4,
        precision="32-true",
        compile=False,
        max_steps=6,
        accelerator="cpu",
        callbacks=[LR()],
    )
    peak = RECIPES["fast"].scaled_lr(8)
    assert seen == pytest.approx([peak * k / 4 for k in (1, 2, 3, 4)] + [peak, peak])


def test_resume_inside_the_warm_up_is_exact(learnable, tmp_path):
    common = dict(
        model="unet",
        model_options=UNET,
        recipe="fast",
        batch_size=3,
        warmup_steps=6,
        lr=3e-4,
        precision="32-true",
        compile=False,
        val_every=4,
        seed=2,
        accelerator="cpu",
    )
    straight = train(learnable, tmp_path / "straight", max_steps=9, **common)
    first = train(learnable, tmp_path / "resumed", max_steps=4, **common)
    resumed = train(learnable, tmp_path / "resumed", max_steps=9, resume=first.last, **common)
    a = torch.load(straight.last, map_location="cpu", weights_only=False)["state_dict"]
    b = torch.load(resumed.last, map_location="cpu", weights_only=False)["state_dict"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --------------------------------------------------------------------------- #
# the fast recipe on CPU: torch.compile and bf16 autocast
# --------------------------------------------------------------------------- #


def _mean_train_loss(log_dir) -> float:
    rows = list(csv.DictReader(open(log_dir / "metrics.csv")))
    return float(np.mean([float(r["train_loss"]) for r in rows if r.get("train_loss")]))


@pytest.mark.slow
@pytest.mark.parametrize(("model", "options"), [("dfcan", TINY_DFCAN), ("unet", UNET)])
def test_fast_recipe_with_compile_and_bf16_reaches_the_eager_fp32_loss(
    learnable, tmp_path, model, options
):
    """12 steps, batch 8, lr 3e-3: the loss falls by a third or more in both runs, and the
    compiled bf16 run's last validation loss is the eager fp32 run's within 2 % (measured:
    0.09 % for both networks; bf16 rounds the convolutions to 8 bits of mantissa)."""
    common = dict(
        model=model,
        model_options=options,
        recipe="fast",
        batch_size=8,
        lr=3e-3,
        lr_batch=8,
        warmup_steps=2,
        max_steps=12,
        val_every=12,
        log_every=1,
        accelerator="cpu",
    )
    eager = train(learnable, tmp_path / "eager", compile=False, precision="32-true", **common)
    fast = train(learnable, tmp_path / "fast", precision="bf16-mixed", **common)
    record = json.loads((tmp_path / "fast" / RECIPE_FILE).read_text())
    assert record["run"]["compiled"] is True  # torch.compile works here (gcc is present)
    assert record["run"]["precision"] == "bf16-mixed"
    first = float(next(csv.DictReader(open(eager.log_dir / "metrics.csv")))["train_loss"])
    assert eager.metrics["val_loss"] < 0.67 * first
    assert fast.metrics["val_loss"] == pytest.approx(eager.metrics["val_loss"], rel=0.02)
    assert _mean_train_loss(fast.log_dir) == pytest.approx(
        _mean_train_loss(eager.log_dir), rel=0.02
    )
    # Channels-last and compile leave the checkpoint's keys those of the plain network.
    keys = torch.load(fast.last, map_location="cpu", weights_only=False)["state_dict"].keys()
    assert set(keys) == {f"net.{k}" for k in build_model(model, **options).state_dict()}


def test_compile_failure_falls_back_to_eager_with_one_warning(
    learnable, tmp_path, monkeypatch, caplog
):
    def broken_compile(net, **kwargs):
        def fail(*args):
            raise RuntimeError("InductorError: no working C++ compiler found\nmore detail")

        return fail

    monkeypatch.setattr(train_mod.torch, "compile", broken_compile)
    with caplog.at_level(logging.WARNING, logger="biosr"):
        result = train(
            learnable,
            tmp_path / "run",
            model="unet",
            model_options=UNET,
            recipe="fast",
            batch_size=4,
            precision="32-true",
            max_steps=3,
            val_every=3,
            accelerator="cpu",
        )
    lines = [r.getMessage() for r in caplog.records if "torch.compile" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "RuntimeError: InductorError: no working C++ compiler found" in lines[0]
    assert "training without it" in lines[0]
    assert result.global_step == 3 and np.isfinite(result.metrics["val_loss"])
    assert json.loads((tmp_path / "run" / RECIPE_FILE).read_text())["run"]["compiled"] is False


def test_compile_failure_in_the_backward_redoes_the_step_eagerly(
    learnable, tmp_path, monkeypatch, caplog
):
    """A compiled forward whose backward fails (inductor compiles the backward lazily)."""

    class FailingBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            raise RuntimeError("backward compile failed")

    def half_broken(net, **kwargs):
        return lambda x: FailingBackward.apply(net(x))

    common = dict(
        model="unet",
        model_options=UNET,
        recipe="fast",
        batch_size=4,
        precision="32-true",
        max_steps=3,
        accelerator="cpu",
        seed=4,
    )
    eager = train(learnable, tmp_path / "eager", compile=False, **common)
    monkeypatch.setattr(train_mod.torch, "compile", half_broken)
    with caplog.at_level(logging.WARNING, logger="biosr"):
        fallback = train(learnable, tmp_path / "fallback", **common)
    assert sum("torch.compile does not work" in r.getMessage() for r in caplog.records) == 1
    # The redone first step is the eager step: the weights end up the eager run's.
    a = torch.load(eager.last, map_location="cpu", weights_only=False)["state_dict"]
    b = torch.load(fallback.last, map_location="cpu", weights_only=False)["state_dict"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_fourier_attention_under_autocast_equals_fp32():
    torch.manual_seed(0)
    block = FourierChannelAttention(16, 4)
    x = torch.randn(2, 16, 24, 24)
    with torch.no_grad():
        ref = block(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = block(x)
        assert out.dtype == torch.float32
        assert float((out - ref).abs().max()) <= 1e-3
        # Fed bf16 activations (what the convolution before it hands over under autocast),
        # it still computes in float32: equal to fp32 on the same (rounded) input.
        xb = x.bfloat16()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = block(xb)
        assert float((out - block(xb.float())).abs().max()) <= 1e-3


def test_bf16_prediction_equals_fp32_within_the_stated_tolerance():
    """DFCAN at its published size: |bf16 - fp32| <= 1e-2 everywhere, <= 2e-3 on average
    (predict.INFERENCE_PRECISIONS; measured 4e-3 and 1e-3)."""
    from scipy import ndimage

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    gt = ndimage.gaussian_filter((rng.random((96, 96)) > 0.97).astype(np.float32), 1.0)
    image = ndimage.gaussian_filter(gt, 2.0)
    image = ((image - image.min()) / (image.max() - image.min())).astype(np.float32)
    for name in ("dfcan", "unet"):
        net = build_model(name).eval()
        fp32 = predict_image(net, image, tile=64, overlap=32, margin=8, precision="32-true")
        bf16 = predict_image(net, image, tile=64, overlap=32, margin=8, precision="bf16-mixed")
        auto = predict_image(net, image, tile=64, overlap=32, margin=8)  # CPU: fp32
        diff = np.abs(bf16 - fp32)
        assert 0 < diff.max() <= 1e-2 and diff.mean() <= 2e-3, (name, diff.max())
        if not torch.cuda.is_available():
            assert np.array_equal(auto, fp32)
        # Tiles batched 4 at a time give what one at a time gives.
        one = predict_image(net, image, tile=64, overlap=32, margin=8, batch_size=1)
        np.testing.assert_allclose(one, auto, atol=1e-6)


# --------------------------------------------------------------------------- #
# devices and precisions this machine cannot run
# --------------------------------------------------------------------------- #


def test_devices_are_checked():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("banana", "cuda:x", "meta"):
        with pytest.raises(BiosrError, match=f"device '{bad}' is not a device; use auto, cpu"):
            resolve_device(bad)


@NO_CUDA
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_a_clear_error(name):
    with pytest.raises(BiosrError, match=f"device '{name}': CUDA is not available"):
        resolve_device(name)
    with pytest.raises(BiosrError, match="accelerator 'gpu': CUDA is not available"):
        accelerator_type("gpu")


def test_precisions_per_device(caplog):
    assert resolve_precision("auto", "cpu") == "32-true"
    assert resolve_precision("32-true", "cuda") == "32-true"
    with pytest.raises(BiosrError, match="precision 16-mixed needs a CUDA GPU; on cpu use"):
        resolve_precision("16-mixed", "cpu")
    with pytest.raises(BiosrError, match="unknown precision 'half'"):
        resolve_precision("half", "cpu")
    with caplog.at_level(logging.WARNING, logger="biosr"):
        assert resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"
    assert len(caplog.records) == 1 and "bf16-mixed on cpu" in caplog.records[0].getMessage()


@NO_CUDA
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--accelerator", "gpu"], "accelerator 'gpu': CUDA is not available"),
        (["train", "--precision", "16-mixed"], "precision 16-mixed needs a CUDA GPU"),
        (["predict", "--device", "cuda:3", "--checkpoint", "c"], "device 'cuda:3': CUDA is not"),
        (["predict", "--device", "banana", "--checkpoint", "c"], "device 'banana' is not a dev"),
    ],
)
def test_cli_device_and_precision_errors_are_one_line(
    tiny_dataset, tmp_path, capsys, argv, message
):
    from biosr.cli import main

    where = ["--data"] if argv[0] == "train" else ["--input"]
    code = main([*argv, *where, str(tiny_dataset), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_bf16_on_cpu_trains_and_says_so_in_one_line(tiny_dataset, tmp_path):
    """In a fresh process: there the warning is the only logging output, one stderr line."""
    argv = ["train", "--data", str(tiny_dataset), "--out", str(tmp_path / "run")]
    argv += ["--model", "unet", "--steps", "1", "--precision", "bf16-mixed", "--accelerator", "cpu"]
    done = subprocess.run(
        [sys.executable, "-m", "biosr.cli", *argv], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.replace("\r", "\n").splitlines() if "bf16" in ln]
    assert lines == [
        "precision bf16-mixed on cpu: runs torch's CPU bfloat16 autocast, usually slower than "
        "32-true on CPUs without bfloat16 units"
    ]
    assert "Traceback" not in done.stderr
    record = json.loads((tmp_path / "run" / RECIPE_FILE).read_text())
    assert record["run"]["precision"] == "bf16-mixed"
