"""The torch Dataset and NumPy access: values, order, errors, workers, DDP, data module."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from torch.utils.data import DataLoader, default_collate

from biosr import layout
from biosr.dataset.pack import pack
from biosr.errors import DataError
from biosr.io.tiff import write_tiff
from biosr.learn.data import BioSR, EpochSampler, Sample, collate, load_arrays
from biosr.learn.data import TestSample as _TestSample
from biosr.learn.transforms import Compose, Dihedral, RandomCrop, dihedral
from biosr.normalize import normalize
from conftest import make_dataset

COUNTS = {"training": 4, "validate": 2, "test": 3}


@pytest.fixture(scope="module")
def data2x(tmp_path_factory):
    """A tiny dataset with GT at 2x, not packed."""
    root = tmp_path_factory.mktemp("d2x")
    make_dataset(root, COUNTS, gt_scale=2, size=8, seed=1)
    return root


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A tiny dataset with GT at 1x, packed."""
    root = tmp_path_factory.mktemp("dp")
    make_dataset(root, COUNTS, size=8, seed=2)
    pack(root)
    return root


@pytest.mark.parametrize("cache", ["files", "auto"])
@pytest.mark.parametrize("which", ["data2x", "packed"])
def test_items_equal_tifffile_reads_for_every_split_and_level(which, cache, request):
    root = request.getfixturevalue(which)
    for split in layout.SPLITS:
        ds = BioSR(root, split, cache=cache)
        assert ds.packed == (which == "packed" and cache == "auto")
        pairs = layout.pairs(root, split)
        assert ds.pairs == pairs and len(ds) == len(pairs)
        for i, p in enumerate(pairs):
            item = ds[i]
            assert item.wf.dtype == torch.float32 and item.wf.ndim == 3
            assert np.array_equal(item.wf[0].numpy(), tifffile.imread(p.wf))
            assert np.array_equal(item.gt[0].numpy(), tifffile.imread(p.gt))
            if split == "test":
                assert isinstance(item, _TestSample)
                assert (item.level, item.index) == (p.level, p.index)
            else:
                assert isinstance(item, Sample)
                wf, gt = item  # a training item unpacks into two
        wf, gt = load_arrays(root, split, cache=cache)
        assert isinstance(wf, np.memmap) == (
            which == "packed" and cache == "auto" and split != "test"
        )
        for i, p in enumerate(pairs):
            assert np.array_equal(wf[i], tifffile.imread(p.wf))
            assert np.array_equal(gt[i], tifffile.imread(p.gt))


def test_test_levels_order_and_shapes(data2x):
    ds = BioSR(data2x, "test", level=[9, 2])
    assert [(s.level, s.index) for s in (ds[i] for i in range(len(ds)))] == [
        (9, 1), (9, 2), (9, 3), (2, 1), (2, 2), (2, 3)
    ]  # fmt: skip
    assert ds[0].wf.shape == (1, 8, 8) and ds[0].gt.shape == (1, 16, 16)
    assert torch.equal(ds[-1].wf, ds[5].wf)
    with pytest.raises(IndexError):
        ds[6]
    wf, gt = load_arrays(data2x, "test", level=4)
    assert wf.shape == (3, 8, 8) and gt.shape == (3, 16, 16)


def test_errors_list_valid_values(data2x, tmp_path):
    with pytest.raises(DataError, match="valid splits: training, validate, test"):
        BioSR(data2x, "train")
    with pytest.raises(DataError, match=r"valid levels: 1..9"):
        BioSR(data2x, "test", level=10)
    with pytest.raises(DataError, match="has no levels"):
        BioSR(data2x, "training", level=1)
    with pytest.raises(DataError, match="auto, packed, files"):
        BioSR(data2x, cache="memory")
    with pytest.raises(DataError, match="stored, minmax, percentile"):
        BioSR(data2x, normalize="z")
    with pytest.raises(DataError, match="`biosr download` or `biosr simulate`"):
        BioSR(tmp_path / "empty")
    make_dataset(tmp_path / "only", {"training": 1}, size=8)
    with pytest.raises(DataError, match=r"no validate pairs.*biosr download"):
        BioSR(tmp_path / "only", "validate")
    with pytest.raises(DataError, match="biosr simulate"):
        load_arrays(tmp_path / "only", "test")


def test_download_true_fetches_missing_split(tmp_path, monkeypatch):
    import biosr.acquire.download

    calls = []

    def fake(root, *, splits=None, progress=False, **_):
        calls.append(splits)
        return make_dataset(root, {"validate": 2}, size=8)

    monkeypatch.setattr(biosr.acquire.download, "download", fake)
    ds = BioSR(tmp_path / "new", "validate", download=True)
    assert len(ds) == 2 and calls == [["validate"]]
    BioSR(tmp_path / "new", "validate", download=True)
    assert calls == [["validate"]]  # present now: not fetched again


def write_marked(root, scale, n=8):
    """A dataset whose pair i has one bright WF pixel and the matching GT block."""
    base = layout.dataset_dir(root, must_exist=False)
    spots = [(1, 2), (5, 0), (3, 6)]
    for i, (y, x) in enumerate(spots, start=1):
        for split, lev in (("training", None), ("test", 1)):
            p = layout.pair(base, split, i, lev)
            p.wf.parent.mkdir(parents=True, exist_ok=True)
            p.gt.parent.mkdir(parents=True, exist_ok=True)
            wf = np.zeros((n, n), np.float32)
            gt = np.zeros((n * scale, n * scale), np.float32)
            wf[y, x] = 1 + i
            gt[scale * y : scale * (y + 1), scale * x : scale * (x + 1)] = 1 + i
            write_tiff(p.wf, wf)
            write_tiff(p.gt, gt)
    return base


@pytest.mark.parametrize("scale", [1, 2])
@pytest.mark.parametrize("cache", ["files", "packed"])
def test_marked_pixels_stay_aligned_through_all_8_symmetries(tmp_path, scale, cache):
    base = write_marked(tmp_path / "m", scale)
    plain = BioSR(base, "training", cache=cache)
    for k in range(8):
        ds = BioSR(base, "training", transforms=Dihedral(k), cache=cache)
        batch = collate(ds.__getitems__(range(len(ds))))
        for i in range(len(ds)):
            wf, gt = batch.wf[i, 0].numpy(), batch.gt[i, 0].numpy()
            assert np.array_equal(wf, dihedral(plain[i].wf[0].numpy(), k))
            (y,), (x,) = np.nonzero(wf)
            block = gt[scale * y : scale * (y + 1), scale * x : scale * (x + 1)]
            assert (block == wf[y, x]).all() and gt.sum() == wf.sum() * scale * scale
    # and through random symmetries plus a crop, on the test split
    t = Compose([Dihedral(), RandomCrop(6)])
    ds = BioSR(base, "test", transforms=t, cache=cache, seed=3)
    checked = 0
    for i in range(len(ds)):
        wf, gt = ds[i].wf[0].numpy(), ds[i].gt[0].numpy()
        assert gt.shape == (6 * scale, 6 * scale)
        if wf.any():  # the mark may fall outside the crop
            (y,), (x,) = np.nonzero(wf)
            assert (gt[scale * y : scale * (y + 1), scale * x : scale * (x + 1)] == wf[y, x]).all()
            checked += 1
        else:
            assert not gt.any()
    assert checked > 0


def test_normalize_minmax_per_image(data2x):
    ds = BioSR(data2x, "validate", normalize="minmax")
    for item in (ds[0], ds[1]):
        for img in (item.wf, item.gt):
            assert img.min().item() == 0.0 and img.max().item() == pytest.approx(1.0, abs=1e-6)
    pct = BioSR(data2x, "validate", normalize="percentile")[0]
    raw = BioSR(data2x, "validate")[0]
    for got, stored in ((pct.wf, raw.wf), (pct.gt, raw.gt)):
        want = normalize(stored.numpy(), "percentile")
        assert np.allclose(got.numpy(), want, atol=1e-6)
        assert not np.allclose(want, normalize(stored.numpy(), "minmax"), atol=1e-3)


def test_collate_is_zero_copy_and_equals_default(packed):
    ds = BioSR(packed, "test", transforms=Dihedral(), seed=5)
    items = ds.__getitems__([4, 0, 7])
    fast, slow = collate(items), default_collate(items)
    assert isinstance(fast, _TestSample)
    assert fast.wf.data_ptr() == items[0].wf.data_ptr()
    for a, b in zip(fast, slow, strict=True):
        assert torch.equal(a, b)
    assert collate([ds[0], ds[1]]).wf.shape == (2, 1, 8, 8)  # separate items: stacked


def test_same_seed_same_items_and_workers_do_not_change_them(packed):
    def run(workers, seed=0):
        ds = BioSR(packed, "training", transforms=Dihedral(), seed=seed)
        loader = DataLoader(
            ds,
            batch_size=3,
            shuffle=True,
            num_workers=workers,
            collate_fn=collate,
            generator=torch.Generator().manual_seed(11),
        )
        return [b for b in loader]

    one, two = run(0), run(2)
    assert len(one) == len(two) == 2
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a.wf, b.wf) and torch.equal(a.gt, b.gt)
    other = run(0, seed=1)
    assert any(not torch.equal(a.wf, b.wf) for a, b in zip(one, other, strict=True))


def test_reading_threads_do_not_change_items(tmp_path):
    root = tmp_path / "d"
    make_dataset(root, {"training": 11}, size=8, seed=4)
    pack(root)
    plain = BioSR(root, "training", threads=1)
    order = [10, 3, 3, 0, 7, 1, 9, 2, 8, 4, 6, 5]  # uneven parts, a repeat
    for k in range(8):
        for threads in (2, 3, 12):
            ds = BioSR(root, "training", transforms=Dihedral(k), threads=threads)
            batch = collate(ds.__getitems__(order))
            for j, i in enumerate(order):
                assert np.array_equal(batch.wf[j, 0].numpy(), dihedral(plain[i].wf[0].numpy(), k))
                assert np.array_equal(batch.gt[j, 0].numpy(), dihedral(plain[i].gt[0].numpy(), k))
    rand = [BioSR(root, "training", transforms=Dihedral(), seed=2, threads=t) for t in (1, 2, 3)]
    one, *others = (collate(ds.__getitems__(order)) for ds in rand)
    assert not torch.equal(one.wf, collate(plain.__getitems__(order)).wf)  # symmetries drawn
    for other in others:
        assert torch.equal(one.wf, other.wf) and torch.equal(one.gt, other.gt)
    with pytest.raises(DataError, match="threads must be a positive integer"):
        BioSR(root, "training", threads=0)


def test_batch_items_are_views_made_on_access(packed):
    ds = BioSR(packed, "test", level=[2, 5])
    items = ds.__getitems__([5, 0, 2])
    assert len(items) == 3 and len(items[1:]) == 2
    assert (items[0].level, items[0].index) == (5, 3)
    assert torch.equal(items[-1].wf, items[2].wf) and items[-1].index == items[2].index
    assert torch.equal(items[1].wf, ds[0].wf)
    assert items[1].wf.data_ptr() == collate(items).wf[1].data_ptr()


def _ddp_worker(rank: int, world: int, root: str, init: str, out: str) -> None:
    import torch.distributed as dist
    from torch.utils.data.distributed import DistributedSampler

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    ds = BioSR(root, "test", level=[1, 2])
    sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(ds, batch_size=2, sampler=sampler, collate_fn=collate)
    seen = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        mine = [
            (epoch, int(lv), int(ix))
            for b in loader
            for lv, ix in zip(b.level, b.index, strict=True)
        ]
        gathered = [None] * world
        dist.all_gather_object(gathered, mine)
        seen.append(gathered)
    if rank == 0:
        torch.save(seen, out)
    dist.destroy_process_group()


def test_distributed_sampler_two_processes_cover_every_item_once(packed, tmp_path):
    import torch.multiprocessing as mp

    out = tmp_path / "seen.pt"
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_ddp_worker, args=(2, str(packed), init, str(out)), nprocs=2, join=True)
    seen = torch.load(out)
    expected = sorted((lv, i) for lv in (1, 2) for i in (1, 2, 3))
    orders = []
    for epoch, gathered in enumerate(seen):
        r0, r1 = ([(lv, ix) for e, lv, ix in part if e == epoch] for part in gathered)
        assert len(r0) == len(r1) == 3
        assert sorted(r0 + r1) == expected  # each item exactly once per epoch
        orders.append(r0 + r1)
    assert orders[0] != orders[1]  # set_epoch reshuffles


def test_datamodule(packed):
    from biosr.learn.datamodule import BioSRDataModule

    dm = BioSRDataModule(packed, batch_size=2, crop=4, test_level=3, seed=1, pin_memory=False)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, Sample) and batch.wf.shape == (2, 1, 4, 4)
    assert batch.gt.shape == (2, 1, 4, 4)
    val = list(dm.val_dataloader())
    assert len(val) == 1 and val[0].wf.shape == (2, 1, 8, 8)
    assert torch.equal(val[0].wf[1, 0], BioSR(packed, "validate")[1].wf[0])
    dm.setup("test")
    test = next(iter(dm.test_dataloader()))
    assert isinstance(test, _TestSample) and test.level.tolist() == [3, 3]


def test_packed_and_files_give_identical_batches_under_random_symmetries(packed):
    def batch(cache):
        ds = BioSR(packed, "training", transforms=Dihedral(), cache=cache, seed=7)
        return collate(ds.__getitems__(list(range(len(ds)))[::-1]))

    files, fast = batch("files"), batch("packed")
    assert torch.equal(files.wf, fast.wf) and torch.equal(files.gt, fast.gt)
    assert not torch.equal(fast.wf, batch_plain(packed))  # the symmetries did something


def batch_plain(root):
    ds = BioSR(root, "training", cache="packed")
    return collate(ds.__getitems__(list(range(len(ds)))[::-1])).wf


def test_epoch_sampler_order_depends_only_on_seed_and_epoch_and_skips_once(packed):
    ds = BioSR(packed, "training")
    order = {e: list(EpochSampler(ds, seed=1, epoch=e)) for e in (2, 3)}
    assert sorted(order[2]) == list(range(len(ds))) and order[2] != order[3]
    resumed = EpochSampler(ds, seed=1, epoch=2, start=2)
    resumed.set_epoch(2)  # Lightning calls this at the resumed epoch's start: the skip stays
    assert list(resumed) == order[2][2:]
    assert list(resumed) == order[2]  # ... and applies once
    resumed.set_epoch(3)
    assert list(resumed) == order[3] and ds.epoch == 3  # the dataset's transforms follow


@pytest.mark.parametrize("cache", ["files", "auto"])
def test_datamodule_rejects_a_crop_below_1_or_larger_than_the_patches(packed, cache):
    from biosr.learn.datamodule import BioSRDataModule

    for bad in (0, -3):
        with pytest.raises(DataError, match="crop must be at least 1"):
            BioSRDataModule(packed, crop=bad)
    dm = BioSRDataModule(packed, crop=9, cache=cache, pin_memory=False)
    with pytest.raises(DataError, match=r"Microtubules: crop 9 larger than the training patches"):
        dm.setup("fit")
    assert dm.train_set is None
    dm = BioSRDataModule(packed, crop=8, cache=cache, pin_memory=False)
    dm.setup("fit")
    assert len(dm.train_set) == COUNTS["training"]


def test_load_arrays_does_not_import_torch(packed):
    import subprocess
    import sys

    code = (
        "import sys, biosr.learn.data as d\n"
        f"wf, gt = d.load_arrays({str(packed)!r}, 'validate')\n"
        "assert wf.shape == (2, 8, 8) and gt.shape == (2, 8, 8)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_files_of_another_shape_are_named_by_path(tmp_path):
    base = make_dataset(tmp_path / "d", {"training": 3}, size=8)
    odd = layout.pair(base, "training", 2).gt
    write_tiff(odd, np.zeros((8, 9), np.float32))
    with pytest.raises(DataError, match=r"00000002.tif: wrong shape \(8, 9\), expected \(8, 8\)"):
        load_arrays(tmp_path / "d", "training", cache="files")
    ds = BioSR(tmp_path / "d", "training", cache="files")
    with pytest.raises(DataError, match=r"training_gt.*00000002.tif: wrong shape"):
        ds.__getitems__([0, 1])


def test_datamodule_under_ddp_passes_a_sampler_that_advances_the_dataset_epoch(packed):
    from types import SimpleNamespace

    from biosr.learn.datamodule import BioSRDataModule, EpochDistributedSampler

    dm = BioSRDataModule(packed, batch_size=1, seed=4, pin_memory=False)
    dm.setup("fit")
    dm.trainer = SimpleNamespace(world_size=2, global_rank=1, current_epoch=3)
    loader = dm.train_dataloader()
    sampler = loader.sampler
    assert isinstance(sampler, EpochDistributedSampler)  # Lightning keeps a DistributedSampler
    assert (sampler.num_replicas, sampler.rank, sampler.seed) == (2, 1, 4)
    assert sampler.epoch == 3 and dm.train_set.epoch == 3
    first = [b.wf.clone() for b in loader]
    sampler.set_epoch(4)  # what Lightning calls at the next epoch's start
    assert dm.train_set.epoch == 4
    assert len(first) == COUNTS["training"] // 2
