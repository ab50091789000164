"""The packed cache: contents, freshness, staleness after a change, rebuild, CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tifffile

from biosr import layout
from biosr.cli import main
from biosr.dataset.pack import groups, pack, pack_dir, status
from biosr.errors import DataError
from biosr.io.tiff import write_tiff
from biosr.learn.data import BioSR, load_arrays
from conftest import make_dataset

COUNTS = {"training": 3, "validate": 2, "test": 2}


@pytest.fixture
def small(tmp_path):
    base = make_dataset(tmp_path / "d", COUNTS, size=8, gt_scale=2)
    return tmp_path / "d", base


def test_pack_writes_every_group_equal_to_the_files(small):
    root, base = small
    done = pack(root)
    names = [d.group for d in done]
    assert names == [g.name for s in layout.SPLITS for g in groups(s)]
    assert all(d.rebuilt for d in done)
    checked = set()
    for split in layout.SPLITS:
        for lev in layout.split_levels(split):
            pairs = layout.pairs(base, split, lev)
            for g in groups(split, lev):
                index = json.loads((pack_dir(base) / f"{g.name}.json").read_text())
                arr = np.load(pack_dir(base) / index["array"], mmap_mode="r")
                side = 8 if g.role == "wf" else 16
                assert index["indices"] == [p.index for p in pairs]  # test_gt: same 1..2
                assert arr.shape == (len(pairs), side, side) and arr.dtype == np.float32
                for row, p in enumerate(pairs):
                    assert np.array_equal(arr[row], tifffile.imread(getattr(p, g.role)))
                checked.add(g.name)
    assert checked == set(names)  # every group, GT included
    gt = np.load(next(pack_dir(base).glob("test_gt.*.npy")))
    assert gt.shape == (2, 16, 16)
    assert np.array_equal(gt[1], tifffile.imread(base / "test_gt" / "002.tif"))
    # nothing but arrays and indices in the cache, no temporary files left
    assert {p.suffix for p in pack_dir(base).iterdir()} == {".npy", ".json"}
    assert set(status(root).values()) == {"fresh"}
    assert not any(d.rebuilt for d in pack(root))


def test_stale_cache_detected_and_rebuilt(small):
    root, base = small
    pack(root, splits=["training"])
    ds = BioSR(root, "training")
    assert ds.packed
    old_arrays = sorted(p.name for p in pack_dir(base).glob("training_wf.*.npy"))
    changed = layout.pair(base, "training", 2)
    new = np.full((8, 8), 42.0, dtype=np.float32)
    write_tiff(changed.wf, new)
    st = os.stat(changed.wf)
    os.utime(changed.wf, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert status(root, ["training"]) == {"training_wf": "stale", "training_gt": "fresh"}
    # auto: a stale pack is not used; the files give the new values
    auto = BioSR(root, "training")
    assert not auto.packed
    assert (auto[1].wf.numpy() == 42).all()
    # packed: rebuilt, new values, the old array removed
    rebuilt = BioSR(root, "training", cache="packed")
    assert rebuilt.packed
    assert (rebuilt[1].wf.numpy() == 42).all()
    now = sorted(p.name for p in pack_dir(base).glob("training_wf.*.npy"))
    assert len(now) == 1 and now != old_arrays
    # a removed file makes the group stale too
    layout.pair(base, "training", 3).wf.unlink()
    layout.pair(base, "training", 3).gt.unlink()
    assert status(root, ["training"])["training_wf"] == "stale"
    wf, gt = load_arrays(root, "training", cache="packed")
    assert wf.shape == (2, 8, 8) and gt.shape == (2, 16, 16)
    assert isinstance(wf, np.memmap)


def test_interrupted_write_leaves_no_final_array(small, monkeypatch):
    root, base = small
    import biosr.dataset.pack as pk

    calls = {"n": 0}
    real = pk.read_tiff

    def failing(path, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(path, **kw)

    monkeypatch.setattr(pk, "read_tiff", failing)
    with pytest.raises(KeyboardInterrupt):
        pack(root, splits=["training"])
    assert list(pack_dir(base).iterdir()) == []
    assert status(root, ["training"])["training_wf"] == "missing"


def test_pack_errors(tmp_path):
    with pytest.raises(DataError, match="biosr download"):
        pack(tmp_path / "nothing")
    base = make_dataset(tmp_path / "d", {"training": 2}, size=8)
    with pytest.raises(DataError, match="no images to pack"):
        pack(tmp_path / "d", splits=["validate"])
    write_tiff(layout.pair(base, "training", 2).wf, np.zeros((9, 8), dtype=np.float32))
    with pytest.raises(DataError, match=r"00000002.tif: wrong shape"):
        pack(tmp_path / "d")


def test_cli_pack(small, capsys):
    root, _ = small
    assert main(["pack", str(root), "--split", "test", "--level", "2-3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["test_wf_level_02", "test_wf_level_03", "test_gt"]
    assert out[0].split()[-1] == "packed" and "2 x 8 x 8" in out[0]
    assert main(["pack", str(root), "--status", "--split", "test"]) == 0
    states = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert states["test_wf_level_02"] == "fresh" and states["test_wf_level_01"] == "missing"
    assert main(["pack", str(root / "missing")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "biosr download" in err[0]


def test_packed_test_split_missing_gt_names_the_path(tmp_path):
    base = make_dataset(tmp_path / "d", {"test": 3}, size=8)
    pack(tmp_path / "d", splits=["test"], level=1)
    missing = base / "test_gt" / "003.tif"
    missing.unlink()
    pack(tmp_path / "d", splits=["test"], level=1)  # test_gt repacked without 003
    with pytest.raises(DataError, match=r"test_gt[/\\]003.tif: file not found"):
        BioSR(tmp_path / "d", "test", level=1)


def test_each_source_file_is_statted_once_per_check(small, monkeypatch):
    import biosr.dataset.pack as pk

    root, _ = small
    statted = []
    real = pk._stats

    def counting(paths):
        statted.extend(paths)
        return real(paths)

    monkeypatch.setattr(pk, "_stats", counting)
    n = COUNTS["training"]
    BioSR(root, "training", cache="packed")  # missing: each group packed, statted before + after
    assert len(statted) == 2 * 2 * n
    statted.clear()
    BioSR(root, "training")  # fresh: one check per group
    assert len(statted) == 2 * n


def test_status_honours_level_and_rejects_unknown_splits(small, capsys):
    root, _ = small
    pack(root, splits=["test"], level=2)
    assert status(root, ["test"], level=[2, 3]) == {
        "test_wf_level_02": "fresh",
        "test_wf_level_03": "missing",
        "test_gt": "fresh",
    }
    with pytest.raises(DataError, match="valid splits"):
        status(root, ["train"])
    assert main(["pack", str(root), "--status", "--split", "test", "--level", "2"]) == 0
    out = capsys.readouterr().out.split()
    assert out == ["test_wf_level_02", "fresh", "test_gt", "fresh"]
