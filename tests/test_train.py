"""Training: the loss goes down, resume is exact, checkpoints and logs are written."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch: pip install biosr[ml]")
L = pytest.importorskip("lightning", reason="needs lightning: pip install biosr[ml]")

from scipy import ndimage  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from biosr import layout  # noqa: E402
from biosr.errors import BiosrError  # noqa: E402
from biosr.io.tiff import read_tiff, write_tiff  # noqa: E402
from biosr.learn.losses import sr_loss  # noqa: E402
from biosr.learn.train import SRModule, train  # noqa: E402

SIZE = 32
UNET = {"base": 8, "depth": 2}


def write_learnable_dataset(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    """Pairs where WF = blurred, noisy GT: a task a network can learn in a few steps."""
    rng = np.random.default_rng(seed)
    base = layout.dataset_dir(root, must_exist=False)
    for split, n in counts.items():
        for lev in layout.split_levels(split):
            for p in layout.pairs(base, split, lev, count=n):
                p.wf.parent.mkdir(parents=True, exist_ok=True)
                p.gt.parent.mkdir(parents=True, exist_ok=True)
                gt = (rng.random((SIZE, SIZE)) > 0.97).astype(np.float32)
                gt = ndimage.gaussian_filter(gt, 0.7)
                gt = gt / max(gt.max(), 1e-6)
                wf = ndimage.gaussian_filter(gt, 2.0) + rng.normal(0, 0.02, gt.shape)
                write_tiff(p.wf, wf.astype(np.float32))
                if not p.gt.exists():
                    write_tiff(p.gt, gt.astype(np.float32))
    return base


class PairDataset(Dataset):
    """A plain (wf, gt) dataset from layout.pairs + read_tiff."""

    def __init__(self, root: Path, split: str) -> None:
        self.pairs = layout.pairs(root, split, 1 if split == "test" else None)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        p = self.pairs[i]
        return (
            torch.from_numpy(read_tiff(p.wf))[None],
            torch.from_numpy(read_tiff(p.gt))[None],
        )


class TinyDataModule(L.LightningDataModule):
    def __init__(self, root: Path, batch_size: int = 4) -> None:
        super().__init__()
        self.root, self.batch_size = root, batch_size

    def train_dataloader(self):
        return DataLoader(PairDataset(self.root, "training"), self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(PairDataset(self.root, "validate"), self.batch_size)


@pytest.fixture(scope="module")
def learnable(tmp_path_factory) -> Path:
    return write_learnable_dataset(
        tmp_path_factory.mktemp("data"), {"training": 16, "validate": 4, "test": 2}
    )


def _mean_loss(module: SRModule, root: Path) -> float:
    module.eval()
    with torch.no_grad():
        losses = [
            float(sr_loss(module(wf[None]), gt[None])) for wf, gt in PairDataset(root, "training")
        ]
    return float(np.mean(losses))


def test_a_few_steps_lower_the_loss(learnable, tmp_path):
    L.seed_everything(0, verbose=False)
    before = _mean_loss(SRModule("unet", 1, UNET), learnable)
    result = train(
        TinyDataModule(learnable),
        tmp_path / "run",
        model="unet",
        model_options=UNET,
        lr=3e-3,
        max_steps=24,
        val_every=8,
        seed=0,
    )
    after = _mean_loss(SRModule.load_from_checkpoint(result.last, map_location="cpu"), learnable)
    assert result.global_step == 24
    assert after < 0.7 * before, (before, after)
    assert result.best.name == "best.ckpt" and result.best.is_file()
    assert result.last.name == "last.ckpt" and result.last.is_file()
    # Validation scores are logged, once per validation (3 validations in 24 steps).
    rows = list(csv.DictReader(open(result.log_dir / "metrics.csv")))
    nrmse = [float(r["val_nrmse"]) for r in rows if r.get("val_nrmse")]
    psnr = [float(r["val_psnr"]) for r in rows if r.get("val_psnr")]
    assert len(nrmse) == len(psnr) == 3
    assert nrmse[-1] < nrmse[0]
    best = torch.load(result.best, map_location="cpu", weights_only=False)
    assert best["callbacks"]  # the checkpoint callback's best score travels with it
    assert result.metrics["val_nrmse"] == pytest.approx(nrmse[-1], rel=1e-6)
    assert not list((tmp_path / "run").rglob("*.part"))


def test_resume_continues_step_count_and_optimizer_state(learnable, tmp_path):
    common = dict(model="unet", model_options=UNET, lr=1e-3, val_every=4, seed=3)
    first = train(TinyDataModule(learnable), tmp_path / "a", max_steps=8, **common)
    saved = torch.load(first.last, map_location="cpu", weights_only=False)
    assert saved["global_step"] == 8
    # Resuming restores the step count and the optimizer state exactly...
    probe = {}

    class Probe(L.Callback):
        def on_train_start(self, trainer, pl_module):
            probe["step"] = trainer.global_step
            probe["opt"] = copy.deepcopy(trainer.optimizers[0].state_dict())
            probe["plateau"] = copy.deepcopy(pl_module.plateau.state_dict())

    second = train(
        TinyDataModule(learnable),
        tmp_path / "a",
        max_steps=12,
        resume=first.last,
        callbacks=[Probe()],
        **common,
    )
    assert probe["step"] == 8
    opt = probe["opt"]
    ref = saved["optimizer_states"][0]
    assert opt["param_groups"][0]["lr"] == ref["param_groups"][0]["lr"]
    for key, state in ref["state"].items():
        assert int(opt["state"][key]["step"]) == int(state["step"]) == 8
        assert torch.equal(opt["state"][key]["exp_avg"], state["exp_avg"])
        assert torch.equal(opt["state"][key]["exp_avg_sq"], state["exp_avg_sq"])
    assert probe["plateau"]["best"] == saved["biosr_plateau"]["best"]
    # ... and then continues counting from there.
    assert second.global_step == 12
    final = torch.load(second.last, map_location="cpu", weights_only=False)
    assert final["global_step"] == 12


@pytest.mark.parametrize("stop", [7, 12])  # mid-epoch, and at an epoch's end
def test_resume_is_exact_same_weights_as_an_uninterrupted_run(learnable, tmp_path, stop):
    """16 pairs, batch 3: 6 batches per epoch. Stop at `stop`, resume to 14 steps."""
    common = dict(model="unet", model_options=UNET, lr=1e-3, batch_size=3, val_every=stop, seed=5)
    straight = train(learnable, tmp_path / "straight", max_steps=14, **common)
    first = train(learnable, tmp_path / "resumed", max_steps=stop, **common)
    resumed = train(learnable, tmp_path / "resumed", max_steps=14, resume=first.last, **common)
    assert resumed.global_step == straight.global_step == 14
    a = torch.load(straight.last, map_location="cpu", weights_only=False)["state_dict"]
    b = torch.load(resumed.last, map_location="cpu", weights_only=False)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_epoch_based_run_writes_last_checkpoint_after_each_epoch(learnable, tmp_path):
    """Default validation (once per epoch, no val_every): a killed run can resume from epoch 1."""
    seen = {}
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"

    class Probe(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                seen["exists"] = last.is_file()
                if last.is_file():
                    seen["step"] = torch.load(last, map_location="cpu", weights_only=False)[
                        "global_step"
                    ]
                    seen["steps"] = trainer.global_step

    result = train(
        TinyDataModule(learnable),
        tmp_path / "run",
        model="unet",
        model_options=UNET,
        max_epochs=3,
        callbacks=[Probe()],
    )
    assert seen["exists"], "last.ckpt not written after epoch 1"
    assert seen["step"] == seen["steps"] == 4  # 16 pairs, batch 4
    assert result.global_step == 12
    assert torch.load(result.last, map_location="cpu", weights_only=False)["global_step"] == 12


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(BiosrError, match="unknown model 'resnet'"):
        train(tmp_path, tmp_path / "run", model="resnet")
    with pytest.raises(BiosrError, match=r"nope\.ckpt: checkpoint not found"):
        train(tmp_path, tmp_path / "run", resume=tmp_path / "nope.ckpt")
    # A dataset without training pairs fails before the run folder is made.
    (tmp_path / "data" / "BioSR" / "Microtubules").mkdir(parents=True)
    with pytest.raises(BiosrError, match="no training pairs found"):
        train(tmp_path / "data", tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("bad", ["x", "0", "-2"])
def test_cli_bad_devices_is_a_usage_error(tmp_path, capsys, bad):
    from biosr.cli import main

    argv = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--devices", bad]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "--devices: expected a positive count or 'auto'" in capsys.readouterr().err


def test_dfcan_trains_in_bf16_mixed_precision(learnable, tmp_path):
    opts = {"channels": 8, "groups": 1, "blocks": 1, "reduction": 4}
    result = train(
        TinyDataModule(learnable),
        tmp_path / "run",
        model="dfcan",
        model_options=opts,
        precision="bf16-mixed",
        max_steps=2,
        val_every=2,
    )
    ckpt = torch.load(result.last, map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["model"] == "dfcan"
    assert ckpt["global_step"] == 2
    assert np.isfinite(result.metrics["val_nrmse"])
