"""`--source git` against a local file:// repository built from a simulated dataset."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from biosr import layout
from biosr.acquire.download import download, fetch
from biosr.cli import main
from biosr.dataset.manifest import card_base, file_row, write_card, write_manifest
from biosr.errors import BiosrError
from conftest import make_dataset

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="system git not installed")

COUNTS = {"training": 3, "validate": 2, "test": 2}


def git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
    }
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=True)
    return done.stdout.decode()


def make_repo(folder: Path, counts: dict[str, int] | None = None) -> str:
    """A git repository laid out like the published one; returns its file:// URL."""
    base = make_dataset(folder, counts or COUNTS)
    rows = [
        file_row(base, p, role)
        for split in layout.SPLITS
        for p in layout.pairs(base, split)
        for role in ("wf", "gt")
    ]
    write_manifest(base, rows)
    write_card(base, card_base(source="test", gt_scale=1))
    (folder / "README.md").write_text("simulated\n")
    git("init", "-q", "-b", "main", cwd=folder)
    git("add", ".", cwd=folder)
    git("commit", "-q", "-m", "data", cwd=folder)
    git("config", "uploadpack.allowFilter", "true", cwd=folder)  # serve --filter over file://
    return folder.resolve().as_uri()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_repo(tmp_path_factory.mktemp("remote"))


def tifs(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*.tif") if ".git" not in p.parts
    )


def test_split_test_checks_out_only_test_files(tmp_path: Path, repo: str) -> None:
    root = tmp_path / "clone"
    got = fetch(root, splits=["test"], git_url=repo, deep=True)
    assert got.report.ok, got.report.findings  # the manifest's other splits are not missing
    assert got.report.hashed == 2 * 9 + 2
    files = tifs(root)
    assert len(files) == 2 * 9 + 2
    assert all(
        f.startswith(("BioSR/Microtubules/test_wf/", "BioSR/Microtubules/test_gt/")) for f in files
    )
    assert len(got.revision) == 40
    # the other splits' contents were never transferred: their blobs are missing locally
    missing = git("rev-list", "--objects", "--missing=print", "HEAD", cwd=root)
    assert sum(line.startswith("?") for line in missing.splitlines()) == 2 * (3 + 2)


def test_rerun_adds_splits_and_restores_damage(tmp_path: Path, repo: str) -> None:
    root = tmp_path / "clone"
    download(root, splits=["test"], git_url=repo)
    damaged = root / "BioSR/Microtubules/test_gt/001.tif"
    damaged.unlink()
    path = download(root, splits=["validate"], git_url=repo)
    assert damaged.is_file()  # every folder checked out so far is completed
    assert sorted(d.name for d in path.iterdir() if d.is_dir()) == [
        "test_gt", "test_wf", "validate_gt", "validate_wf",
    ]  # fmt: skip


def test_full_clone_verifies_deep(tmp_path: Path, repo: str) -> None:
    got = fetch(tmp_path / "full", git_url=repo, deep=True)
    assert got.report.ok, got.report.findings
    assert got.report.hashed == (3 + 2) * 2 + 2 * 9 + 2
    assert len(tifs(tmp_path / "full")) == got.report.hashed


def test_non_empty_folder_is_refused(tmp_path: Path, repo: str) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(BiosrError, match="not empty and not a git clone"):
        download(tmp_path, splits=["test"], git_url=repo)


@pytest.mark.parametrize("splits", [None, ["test"]])
@pytest.mark.parametrize("origin", [None, "https://example.org/mine.git"])
def test_users_own_repository_is_refused_untouched(
    tmp_path: Path, repo: str, splits: list[str] | None, origin: str | None
) -> None:
    project = tmp_path / "project"  # `biosr download .` inside one's own project
    project.mkdir()
    (project / "notes.txt").write_text("committed\n")
    git("init", "-q", "-b", "main", cwd=project)
    git("add", ".", cwd=project)
    git("commit", "-q", "-m", "mine", cwd=project)
    if origin is not None:
        git("remote", "add", "origin", origin, cwd=project)
    (project / "notes.txt").write_text("uncommitted work\n")
    (project / "draft.txt").write_text("untracked\n")
    status = git("status", "--porcelain", cwd=project)
    with pytest.raises(BiosrError, match=r"not a clone of .*; choose an empty folder"):
        download(project, splits=splits, git_url=repo)
    assert (project / "notes.txt").read_text() == "uncommitted work\n"
    assert (project / "draft.txt").read_text() == "untracked\n"
    assert git("status", "--porcelain", cwd=project) == status
    assert not (project / "BioSR").exists()


def test_clone_of_another_url_is_refused(tmp_path: Path, repo: str) -> None:
    root = tmp_path / "clone"
    download(root, splits=["test"], git_url=repo)
    other = make_repo(tmp_path / "other", {"test": 1})
    with pytest.raises(BiosrError, match="not a clone of"):
        download(root, splits=["test"], git_url=other)


def test_full_download_is_a_sparse_checkout_of_the_split_folders(tmp_path: Path, repo: str) -> None:
    root = tmp_path / "clone"
    path = download(root, git_url=repo)
    folders = git("sparse-checkout", "list", cwd=root).split()
    assert sorted(folders) == sorted(
        (layout.DATASET_DIR / d).as_posix() for s in layout.SPLITS for d in layout.split_roots(s)
    )
    assert (path / layout.MANIFEST_FILE).is_file() and (path / layout.CARD_FILE).is_file()


def test_known_hash_with_git_is_refused(tmp_path: Path, repo: str) -> None:
    with pytest.raises(BiosrError, match="--hash does not apply to --source git"):
        download(tmp_path / "r", splits=["test"], git_url=repo, known_hash="md5:" + "0" * 32)
    assert not (tmp_path / "r").exists()


def test_unreachable_repository_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = (tmp_path / "no-such-repo").as_uri()
    code = main(["download", str(tmp_path / "r"), "--split", "test", "--git-url", url])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "--source" in err and "biosr verify" in err


def test_cli_download_prints_verify_summary(tmp_path: Path, repo: str, capsys) -> None:
    code = main(["download", str(tmp_path / "c"), "--split", "test", "--git-url", repo])
    out = capsys.readouterr().out
    assert code == 0
    assert "OK" in out.splitlines()[-1]
    assert "test" in out and "training" not in out


def test_dataset_download_true_uses_the_mirror_variable(
    tmp_path: Path, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from biosr.learn.data import BioSR

    monkeypatch.setenv("BIOSR_GIT_URL", repo)
    data = BioSR(tmp_path / "d", split="test", level=3, download=True)
    wf, gt = data[0][:2]
    assert len(data) == 2 and tuple(wf.shape) == (1, 128, 128) and tuple(gt.shape) == (1, 128, 128)
    assert not (tmp_path / "d" / "BioSR" / "Microtubules" / "training_wf").exists()


def test_interrupted_before_checkout_is_completed(tmp_path: Path, repo: str) -> None:
    root = tmp_path / "clone"  # as if killed after the clone, before any file was written
    args = ["--filter=blob:none", "--depth", "1", "--no-checkout", "--sparse", "-q"]
    git("clone", *args, repo, str(root), cwd=tmp_path)
    assert tifs(root) == []
    got = fetch(root, splits=["validate"], git_url=repo)
    assert got.report.ok, got.report.findings
    assert len(tifs(root)) == 2 * 2


def test_lfs_pointer_files_are_named(tmp_path: Path) -> None:
    folder = tmp_path / "remote"
    for sub in ("test_gt", "test_wf/level_01"):
        folder_ = layout.dataset_dir(folder, must_exist=False) / sub
        folder_.mkdir(parents=True)
        (folder_ / "001.tif").write_text("version https://git-lfs.github.com/spec/v1\noid x\n")
    git("init", "-q", "-b", "main", cwd=folder)
    git("add", ".", cwd=folder)
    git("commit", "-q", "-m", "lfs", cwd=folder)
    with pytest.raises(BiosrError, match="Git LFS pointer"):
        download(tmp_path / "clone", splits=["test"], git_url=folder.as_uri())


def test_missing_folder_in_repository_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "remote"
    make_dataset(folder, {"test": 1})
    git("init", "-q", "-b", "main", cwd=folder)
    git("add", ".", cwd=folder)
    git("commit", "-q", "-m", "test only", cwd=folder)
    with pytest.raises(BiosrError, match="has no BioSR/Microtubules/training_gt"):
        download(tmp_path / "clone", splits=["training"], git_url=folder.as_uri())
