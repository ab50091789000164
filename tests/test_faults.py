"""Faults: a full disk, kill -9, a corrupt zip member; each leaves no debris a re-run keeps.

A full disk is a file size limit (``RLIMIT_FSIZE``) set in the child process:
no root needed, and CPython ignores SIGXFSZ, so writes fail with EFBIG as they
would with ENOSPC. A kill is SIGKILL sent once the child has started writing
(a hook slows the child's reads so the kill lands mid-write).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from biosr import layout
from biosr.dataset.pack import pack, pack_dir
from biosr.dataset.verify import verify
from biosr.errors import BiosrError
from biosr.evaluate.evaluation import evaluate
from biosr.io import owner
from biosr.io.atomic import PART_SUFFIX, write_text, writer_tag
from biosr.io.tiff import write_tiff
from conftest import make_dataset

ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}


def _limit(size: int):
    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return set_limit


def _biosr(*args: str, fsize: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "biosr.cli", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
        preexec_fn=None if fsize is None else _limit(fsize),
    )


def _error_line(proc: subprocess.CompletedProcess) -> str:
    """The one error line (after any progress bar), checked to be the only one."""
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.replace("\r", "\n").splitlines() if "biosr: error" in ln]
    assert len(errors) == 1, proc.stderr
    return errors[0][errors[0].index("biosr: error") :]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.rglob(f"*{PART_SUFFIX}"))


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def _start_and_kill(script: str, ready) -> None:
    """Run `script` in a child; SIGKILL it once ``ready()`` is true (within 60 s)."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=ENV)
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert child.poll() is None, "the child ended before it was killed"
            assert time.monotonic() < deadline, "the child never started writing"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


# --------------------------------------------------------------------------- #
# Disk full
# --------------------------------------------------------------------------- #


def test_disk_full_in_simulate_names_the_file_and_leaves_no_image(tmp_path):
    proc = _biosr("simulate", "--out", str(tmp_path), "--preset", "tiny", "--workers", "1",
                  fsize=20_000)  # fmt: skip
    assert proc.returncode == 1
    line = _error_line(proc)
    dataset = layout.dataset_dir(tmp_path, must_exist=False)
    assert f"{dataset}/" in line and ".tif: disk full (wrote 20000 of 65536 bytes)" in line
    assert not [p for p in _files(dataset) if p.suffix == layout.SUFFIX]
    assert not _parts(tmp_path)


def test_disk_full_writing_an_mrc_names_it(tmp_path):
    target = tmp_path / "RawSIMData_gt.mrc"
    script = (
        "import numpy as np; from biosr.io.mrc import write_mrc\n"
        f"write_mrc({str(target)!r}, np.zeros((9, 32, 32), np.uint16), voxel_size_nm=62.6)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=ENV, preexec_fn=_limit(4096))  # fmt: skip
    assert proc.returncode == 1
    assert f"DiskFullError: {target}: disk full (wrote 4096 of 19456 bytes)" in proc.stderr
    assert not _files(tmp_path)


def test_disk_full_in_build_names_the_file_and_a_rerun_resumes(tmp_path):
    from build_release import make_release

    release = make_release(tmp_path / "src", cells=3, size=192, seed=0)
    args = ["build", "--source", str(release), "--out", str(tmp_path / "out"), "--preset",
            "small", "--training-cells", "1", "--validate-cells", "2", "--test-cells", "3",
            "--training-crops", "1", "--validate-crops", "1", "--test-crops", "1"]  # fmt: skip
    proc = _biosr(*args, fsize=30_000)
    assert proc.returncode == 1
    line = _error_line(proc)
    assert ".tif: disk full (wrote 30000 of 65536 bytes)" in line and str(tmp_path / "out") in line
    dataset = layout.dataset_dir(tmp_path / "out", must_exist=False)
    assert not [p for p in _files(dataset) if p.suffix == layout.SUFFIX] and not _parts(dataset)
    assert _biosr(*args).returncode == 0
    assert verify(tmp_path / "out", deep=True).ok


def test_disk_full_in_predict_names_the_file(tiny_dataset, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("lightning")
    from test_predict import _checkpoint

    out = tmp_path / "preds"
    ckpt = _checkpoint(tmp_path)
    args = ["--checkpoint", str(ckpt), "--input", str(tiny_dataset), "--out", str(out)]
    proc = _biosr("predict", *args, "--device", "cpu", fsize=30_000)
    assert proc.returncode == 1
    line = _error_line(proc)
    assert f"{out}/level_01/001.tif: disk full (wrote 30000 of 65536 bytes)" in line
    assert not [p for p in _files(out) if p.suffix == layout.SUFFIX] and not _parts(out)


def _predictions(dataset: Path, out: Path, *, noise: float = 0.0, seed: int = 0) -> Path:
    """GT copies (plus noise) in the ``test_wf`` mirror layout."""
    rng = np.random.default_rng(seed)
    for p in layout.pairs(dataset, "test"):
        target = out / layout.level_dir(p.level) / p.wf.name
        target.parent.mkdir(parents=True, exist_ok=True)
        gt = np.asarray(__import__("tifffile").imread(p.gt), np.float32)
        write_tiff(target, gt + noise * rng.random(gt.shape, dtype=np.float32))
    return out


def test_disk_full_in_evaluate_names_the_file_and_leaves_no_report(tmp_path):
    dataset = make_dataset(tmp_path / "data", {"test": 2})
    preds = _predictions(dataset, tmp_path / "perfect")
    out = tmp_path / "report"
    proc = _biosr("evaluate", "--data", str(tmp_path / "data"), "--predictions", str(preds),
                  "--out", str(out), "--no-plots", fsize=300)  # fmt: skip
    assert proc.returncode == 1
    line = _error_line(proc)
    assert "per_image.csv: disk full (wrote 300 of " in line
    assert not out.exists()
    assert not list(tmp_path.glob(".report*"))


def test_disk_full_in_pack_is_one_line_and_leaves_no_array(tmp_path):
    dataset = make_dataset(tmp_path / "d", {"training": 3})
    proc = _biosr("pack", str(tmp_path / "d"), fsize=100_000)
    assert proc.returncode == 1
    line = _error_line(proc)
    assert f"{pack_dir(dataset)}/training_wf." in line
    assert ".npy: disk full (wrote 100000 of" in line
    assert not list(pack_dir(dataset).glob("*.npy")) and not _parts(dataset)


# --------------------------------------------------------------------------- #
# kill -9
# --------------------------------------------------------------------------- #

_SLOW_READS = """
import time
import biosr.dataset.pack as pack_module
real = pack_module.read_tiff
calls = [0]
def slow(*args, **kwargs):
    calls[0] += 1
    if calls[0] > 2:
        time.sleep(30)
    return real(*args, **kwargs)
pack_module.read_tiff = slow
"""


def test_pack_killed_mid_write_is_reported_by_verify_and_cleaned_by_the_next_pack(tmp_path):
    dataset = make_dataset(tmp_path / "d")
    cache = pack_dir(dataset)
    assert verify(tmp_path / "d").ok
    script = _SLOW_READS + f"pack_module.pack({str(tmp_path / 'd')!r}, splits=['training'])\n"

    def writing() -> bool:
        return any(p.stat().st_size > 0 for p in cache.glob(f".*{PART_SUFFIX}"))

    _start_and_kill(script, writing)
    left = list(cache.glob(f".*{PART_SUFFIX}"))
    assert len(left) == 1 and not list(cache.glob("*.npy")) and not list(cache.glob("*.json"))
    report = verify(tmp_path / "d")
    assert [f.path for f in report.findings] == [str(left[0])]
    assert "interrupted pack" in report.findings[0].reason
    done = pack(tmp_path / "d", splits=["training"])
    assert all(p.rebuilt for p in done)
    assert not left[0].exists() and not list(cache.glob(f".*{PART_SUFFIX}"))
    assert verify(tmp_path / "d").ok


def test_pack_leaves_a_live_or_another_hosts_part_alone(tmp_path):
    dataset = make_dataset(tmp_path / "d", {"training": 2})
    cache = pack_dir(dataset)
    cache.mkdir()
    live = cache / f".training_wf.0.npy.{writer_tag(os.getppid())}{PART_SUFFIX}"  # alive
    pid = _dead_pid()
    dead = cache / f".training_wf.0.npy.{writer_tag(pid)}{PART_SUFFIX}"
    other_host = cache / f".training_wf.0.npy.{'0' * 8}-{pid}{PART_SUFFIX}"  # unknown: kept
    for path in (live, dead, other_host):
        path.write_bytes(b"x")
    pack(tmp_path / "d", splits=["training"])
    assert live.exists() and other_host.exists() and not dead.exists()


def test_a_rerun_claim_removes_what_killed_writers_left_in_its_folder(tmp_path):
    """predict, baseline, train, simulate and build all claim their folder first."""
    out = tmp_path / "preds"
    (out / "level_09").mkdir(parents=True)
    dead = out / "level_09" / f".001.tif.{writer_tag(_dead_pid())}{PART_SUFFIX}"
    live = out / "level_09" / f".002.tif.{writer_tag()}{PART_SUFFIX}"  # this process: alive
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    owner.claim(out, "predict")
    assert not dead.exists() and live.exists()


_SLOW_REPORT = """
import time
import biosr.evaluate.evaluation as ev
real = ev.write_text
def slow(path, text):
    real(path, text)
    time.sleep(30)
ev.write_text = slow
from biosr.cli import main
main(["evaluate", "--data", {data!r}, "--predictions", {preds!r}, "--out", {out!r},
      "--no-plots"])
"""


def test_evaluate_killed_mid_report_keeps_the_old_report_whole(tmp_path):
    dataset = make_dataset(tmp_path / "data", {"test": 2})
    preds = _predictions(dataset, tmp_path / "m")
    out = tmp_path / "report"
    evaluate(tmp_path / "data", {"m": preds}, out, plots=False)
    (out / "notes.txt").write_text("my notes")
    before = {p.relative_to(out): p.read_bytes() for p in _files(out)}
    noisy = _predictions(dataset, tmp_path / "noisy" / "m", noise=0.5, seed=1)
    script = _SLOW_REPORT.format(data=str(tmp_path / "data"), preds=str(noisy), out=str(out))

    def writing() -> bool:
        return any(p.is_dir() and any(p.iterdir()) for p in tmp_path.glob(f".report*{PART_SUFFIX}"))

    _start_and_kill(script, writing)
    assert {p.relative_to(out): p.read_bytes() for p in _files(out)} == before
    assert len(list(tmp_path.glob(f".report*{PART_SUFFIX}"))) == 1
    # The next run cleans the dead run's folder, replaces the report whole, keeps the notes.
    res = evaluate(tmp_path / "data", {"m": noisy}, out, plots=False)
    assert not list(tmp_path.glob(".report*"))
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "summary.md").read_text() != before[Path("summary.md")].decode()
    assert res.files["csv"] == out / "per_image.csv" and res.files["csv"].is_file()


def test_a_kill_between_the_two_renames_restores_the_old_report(tmp_path):
    out = tmp_path / "report"
    with owner.replaced_folder(out, "evaluate") as tmp:
        write_text(tmp / "summary.md", "old")
    old = tmp_path / f".report.old.{writer_tag(_dead_pid())}{PART_SUFFIX}"
    os.replace(out, old)  # the state a kill after the first rename leaves
    owner.recover(out)
    assert (out / "summary.md").read_text() == "old" and not old.exists()


# --------------------------------------------------------------------------- #
# Ownership: nobody replaces what it did not make
# --------------------------------------------------------------------------- #


def test_simulate_overwrite_refuses_a_build_or_a_download_and_force_keeps_user_files(tmp_path):
    from biosr.simulate import simulate_patches

    built = make_dataset(tmp_path / "built", {"training": 1}, size=16)
    owner.claim(built, "build")
    downloaded = make_dataset(tmp_path / "downloaded", {"training": 1}, size=16)
    for dataset, made in ((built, "made by `biosr build`"), (downloaded, "did not make")):
        with pytest.raises(BiosrError, match=made):
            simulate_patches(dataset.parents[1], overwrite=True, workers=1)
        assert (dataset / "training_wf" / "00000001.tif").is_file()
    notes = downloaded / "training_wf" / "notes.txt"
    notes.write_text("mine")
    simulate_patches(tmp_path / "downloaded", force=True, workers=1)
    assert notes.read_text() == "mine"
    assert owner.owner(downloaded) == "simulate"
    assert [f.path for f in verify(tmp_path / "downloaded").findings] == [str(notes)]


def test_build_overwrite_refuses_a_simulation_or_a_download_and_force_keeps_user_files(tmp_path):
    from biosr.build.builder import build
    from build_release import make_release

    release = make_release(tmp_path / "release")
    simulated = make_dataset(tmp_path / "simulated", {"training": 1}, size=16)
    owner.claim(simulated, "simulate")
    downloaded = make_dataset(tmp_path / "downloaded", {"training": 1}, size=16)
    for dataset, made in ((simulated, "made by `biosr simulate`"), (downloaded, "did not make")):
        with pytest.raises(BiosrError, match=made):
            build(release, dataset.parents[1], preset="small", overwrite=True)
        assert (dataset / "training_wf" / "00000001.tif").is_file()
        assert not (dataset / layout.BUILD_DIR).exists()
    notes = downloaded / "training_wf" / "notes.txt"
    notes.write_text("mine")
    build(release, tmp_path / "downloaded", preset="small", overwrite=True, force=True)
    assert notes.read_text() == "mine"
    assert owner.owner(downloaded) == "build"
    assert [f.path for f in verify(tmp_path / "downloaded").findings] == [str(notes)]


def test_simulate_overwrite_replaces_its_own_dataset(tmp_path):
    from biosr.simulate import simulate_patches

    dataset = simulate_patches(tmp_path, workers=1)
    (dataset / "training_wf" / "99999999.tif").write_bytes(b"stale")  # an earlier, larger run
    (dataset / "notes.txt").write_text("mine")
    simulate_patches(tmp_path, overwrite=True, workers=1)
    assert not (dataset / "training_wf" / "99999999.tif").exists()
    assert (dataset / "notes.txt").read_text() == "mine"


def test_predict_refuses_a_baseline_folder_before_loading_anything(tiny_dataset, tmp_path):
    from biosr.evaluate.baselines import run_baseline
    from biosr.evaluate.prediction_folder import INFO_FILE
    from biosr.learn.predict import predict

    out = run_baseline("wf", tiny_dataset, tmp_path / "wf", levels=[9])
    with pytest.raises(BiosrError, match="made by `biosr baseline`"):
        predict(tmp_path / "absent.ckpt", tiny_dataset, out)
    # Taken over with --force, the baseline's card goes: it would mislabel the new images.
    owner.claim(out, "predict")
    assert not (out / INFO_FILE).exists() and owner.owner(out) == "predict"
    with pytest.raises(BiosrError, match="made by `biosr predict`"):
        run_baseline("wf", tiny_dataset, out, levels=[9], overwrite=True)


def test_train_refuses_an_existing_run_without_resume(tiny_dataset, tmp_path):
    from biosr.learn import train as train_module

    run = tmp_path / "run"
    ckpts = run / train_module.CHECKPOINT_DIR
    ckpts.mkdir(parents=True)
    owner.claim(run, train_module.PRODUCER)
    for name in (train_module.LAST_NAME, train_module.BEST_NAME):
        (ckpts / f"{name}.ckpt").write_bytes(b"old run")
    with pytest.raises(BiosrError, match="holds a training run; pass --resume"):
        train_module.train(tiny_dataset, run, model="unet", max_steps=1)
    assert (ckpts / "last.ckpt").read_bytes() == b"old run"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(BiosrError, match="did not make"):
        train_module.train(tiny_dataset, tmp_path / "mine", model="unet", max_steps=1)
    # --force starts afresh: neither old checkpoint survives to be mixed with the new run's.
    train_module._claim_run(run, None, True)
    assert not list(ckpts.iterdir())


def test_evaluate_refuses_a_folder_it_did_not_make(tmp_path):
    dataset = make_dataset(tmp_path / "data", {"test": 1})
    preds = _predictions(dataset, tmp_path / "m")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.md").write_text("my own summary")
    with pytest.raises(BiosrError, match="did not make"):
        evaluate(tmp_path / "data", {"m": preds}, mine, plots=False)
    assert (mine / "summary.md").read_text() == "my own summary"
    shutil.rmtree(mine)


# --------------------------------------------------------------------------- #
# Downloads: one writer per .part; refused archives biosr fetched are removed
# --------------------------------------------------------------------------- #


def test_a_second_download_of_one_file_is_refused_while_the_first_runs(tmp_path):
    from biosr.acquire.http import exclusive, fetch, part_file

    dest = tmp_path / "root" / "biosr.zip"
    dest.parent.mkdir()
    with exclusive(dest):  # another download holds the lock (a separate open file)
        with pytest.raises(BiosrError, match="another download of this file is running"):
            fetch("http://127.0.0.1:9/biosr.zip", dest, retries=0)  # refused before connecting
        assert not part_file(dest).exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == []  # the lock file goes too


def test_a_downloaded_archive_refused_as_unsafe_is_removed_a_users_is_kept(tmp_path):
    import io
    import zipfile

    from biosr.acquire.download import fetch
    from biosr.errors import DataError
    from test_download_http import serve, url_of

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("BioSR/Microtubules/test_gt/001.tif", b"II*\x00")
        zf.writestr("../escaped.txt", b"gotcha")
    root = tmp_path / "root"
    with serve(buf.getvalue()) as srv:
        with pytest.raises(DataError, match="refused; the downloaded archive was removed"):
            fetch(root, source=url_of(srv, "evil.zip"), retries=0, timeout=5.0)
    assert not list(root.iterdir()) and not (tmp_path / "escaped.txt").exists()
    mine = tmp_path / "mine.zip"
    mine.write_bytes(buf.getvalue())
    with pytest.raises(DataError, match=r"refused$"):
        fetch(root, source=str(mine))
    assert mine.read_bytes() == buf.getvalue()
