"""HTTP downloads and archive sources against servers on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import biosr.acquire.download as download_module
from biosr import layout
from biosr.acquire.archive import extract
from biosr.acquire.download import download, fetch
from biosr.acquire.http import fetch as fetch_url
from biosr.acquire.http import part_file
from biosr.cli import main
from biosr.errors import BiosrError, DataError, UnreachableError
from conftest import make_dataset

# --------------------------------------------------------------------------- #
# A loopback server whose behaviour each test sets
# --------------------------------------------------------------------------- #


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves `server.payload`; `server.mode` decides how (see :func:`serve`)."""

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        srv = self.server
        srv.requests.append(dict(self.headers))  # type: ignore[attr-defined]
        data: bytes = srv.payload  # type: ignore[attr-defined]
        mode: str = srv.mode  # type: ignore[attr-defined]
        if mode == "html":
            body = b"<!DOCTYPE html><html><body>Please log in</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if mode == "corrupt":
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        rng = self.headers.get("Range")
        if rng and mode != "no-range":
            start = int(rng.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", '"v1"')
        self.end_headers()
        body = data[start:]
        if mode == "drop-first" and len(srv.requests) == 1:  # type: ignore[attr-defined]
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return  # the connection closes halfway through the body
        self.wfile.write(body)


@contextmanager
def serve(payload: bytes, mode: str = "ok") -> Iterator[http.server.ThreadingHTTPServer]:
    """A server on an ephemeral loopback port, stopped (and joined) on exit."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.payload, srv.mode, srv.requests = payload, mode, []  # type: ignore[attr-defined]
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def url_of(srv: http.server.ThreadingHTTPServer, name: str) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/{name}"


def zip_dataset(tmp: Path, *, wrap: str = "biosr_dataset-main") -> bytes:
    """A zip of a tiny simulated dataset, inside a wrapping folder as GitHub's zips are."""
    root = tmp / "src"
    make_dataset(root, {"training": 2, "validate": 1, "test": 1})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, f"{wrap}/{path.relative_to(root).as_posix()}")
    return buf.getvalue()


FAST = {"retries": 0, "backoff": 0.0, "timeout": 5.0}

# --------------------------------------------------------------------------- #
# fetch: resume, checksum, HTML
# --------------------------------------------------------------------------- #


def test_dropped_connection_resumes_with_range_byte_identical(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4000  # 1,024,000 bytes
    dest = tmp_path / "file.bin"
    with serve(payload, "drop-first") as srv:
        with pytest.raises(BiosrError, match="run the same command again to resume"):
            fetch_url(url_of(srv, "file.bin"), dest, **FAST)
        assert not dest.exists()
        kept = part_file(dest).stat().st_size
        assert 0 < kept < len(payload)
        fetch_url(url_of(srv, "file.bin"), dest, known_hash=_sha(payload), **FAST)
        second = srv.requests[1]
    assert second["Range"] == f"bytes={kept}-"
    assert second["If-Range"] == '"v1"'
    assert dest.read_bytes() == payload
    assert not part_file(dest).exists()


def test_retry_within_one_call_completes(tmp_path: Path) -> None:
    payload = b"x" * 300_000
    with serve(payload, "drop-first") as srv:
        got = fetch_url(url_of(srv, "f"), tmp_path / "f", retries=2, backoff=0.0, timeout=5.0)
        assert len(srv.requests) == 2
    assert got.read_bytes() == payload


def test_server_without_range_restarts_cleanly(tmp_path: Path) -> None:
    payload = b"abc" * 50_000
    dest = tmp_path / "f"
    part_file(dest).write_bytes(b"zzz" * 1000)  # stale partial data the server will not extend
    with serve(payload, "no-range") as srv:
        fetch_url(url_of(srv, "f"), dest, known_hash=_sha(payload), **FAST)
    assert dest.read_bytes() == payload


def test_corrupted_bytes_fail_checksum_and_leave_nothing(tmp_path: Path) -> None:
    payload = b"good data " * 10_000
    dest = tmp_path / "f.zip"
    with serve(payload, "corrupt") as srv:
        with pytest.raises(DataError, match="checksum mismatch"):
            fetch_url(url_of(srv, "f.zip"), dest, known_hash=_sha(payload), **FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_partial_of_another_url_is_not_spliced(tmp_path: Path) -> None:
    payload = b"new file " * 20_000
    dest = tmp_path / "f.zip"
    part_file(dest).write_bytes(b"other file's bytes" * 100)  # from another address
    meta = part_file(dest).with_name(part_file(dest).name + ".json")
    meta.write_text('{"url": "http://127.0.0.1:1/old.zip", "validator": "\\"v1\\"", "total": 1}')
    with serve(payload) as srv:  # honours Range: splicing would corrupt the file
        fetch_url(url_of(srv, "f.zip"), dest, **FAST)
        assert "Range" not in srv.requests[0]
    assert dest.read_bytes() == payload
    assert not part_file(dest).exists() and not meta.exists()


def test_local_checksum_mismatch_does_not_claim_a_deletion(tmp_path: Path) -> None:
    archive = tmp_path / "mirror.zip"
    archive.write_bytes(zip_dataset(tmp_path))
    with pytest.raises(DataError, match="checksum mismatch") as info:
        download(tmp_path / "root", source=str(archive), known_hash="sha256:" + "0" * 64)
    assert "deleted" not in str(info.value) and archive.exists()
    with serve(b"payload") as srv:  # a download is deleted, and the message says so
        with pytest.raises(DataError, match="deleted for safety"):
            fetch_url(url_of(srv, "x.zip"), tmp_path / "x.zip", known_hash="0" * 64, **FAST)


def test_md5_known_hash_in_pooch_form(tmp_path: Path) -> None:
    payload = b"release" * 1000
    md5 = "md5:" + hashlib.md5(payload).hexdigest()
    with serve(payload) as srv:
        got = fetch_url(url_of(srv, "r.zip"), tmp_path / "r.zip", known_hash=md5, **FAST)
    assert got.read_bytes() == payload


def test_html_page_is_detected(tmp_path: Path) -> None:
    with serve(b"", "html") as srv:
        with pytest.raises(DataError, match="HTML page instead of the file"):
            fetch_url(url_of(srv, "data.zip"), tmp_path / "data.zip", **FAST)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_host_is_one_clear_line(tmp_path: Path) -> None:
    with serve(b"") as srv:
        url = url_of(srv, "x.zip")  # the port is closed once the server stops
    with pytest.raises(UnreachableError) as info:
        fetch_url(url, tmp_path / "x.zip", **FAST)
    message = str(info.value)
    assert "\n" not in message and "--source" in message and "biosr verify" in message


# --------------------------------------------------------------------------- #
# Archives: extraction safety, the whole route
# --------------------------------------------------------------------------- #


def test_zip_with_parent_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("BioSR/Microtubules/test_gt/001.tif", b"II*\x00")
        zf.writestr("../escaped.txt", b"gotcha")
    target = tmp_path / "out"
    with pytest.raises(DataError, match="outside the target folder; refused"):
        extract(archive, target)
    assert not (tmp_path / "escaped.txt").exists()
    assert not any(target.rglob("*.tif"))  # refused before anything was written


@pytest.mark.parametrize("name", ["/etc/passwd_biosr", "a/../../b"])
def test_tar_with_unsafe_member_is_refused(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo(name)
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(DataError, match="refused"):
        extract(archive, tmp_path / "out")


def test_tar_with_symlink_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("BioSR/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc"
        tf.addfile(info)
    with pytest.raises(DataError, match="link or device; refused"):
        extract(archive, tmp_path / "out")


def _mirror_tar_gz(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    make_dataset(src, {"training": 2, "validate": 1, "test": 1})
    archive = tmp_path / "mirror.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src / "BioSR", arcname="BioSR")
    return archive


def test_archive_is_listed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import biosr.acquire.archive

    archive = _mirror_tar_gz(tmp_path)
    calls = {"members": 0, "archive_kind": 0}
    for name in calls:
        real = getattr(biosr.acquire.archive, name)

        def spy(*args: object, _real=real, _name=name, **kw: object) -> object:
            calls[_name] += 1
            return _real(*args, **kw)

        monkeypatch.setattr(biosr.acquire.archive, name, spy)
    download(tmp_path / "root", source=str(archive), splits=["test"])
    assert calls == {"members": 1, "archive_kind": 1}  # not relisted by extract nor its opener


def _tar_of(archive: Path, files: dict[str, tuple[bytes, int]]) -> None:
    with tarfile.open(archive, "w:gz") as tf:
        for name, (data, mtime) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            tf.addfile(info, io.BytesIO(data))


def test_resume_replaces_a_same_size_file_of_a_newer_archive(tmp_path: Path) -> None:
    target = tmp_path / "out"
    name = "BioSR/Microtubules/test_gt/001.tif"
    _tar_of(tmp_path / "old.tar.gz", {name: (b"old image", 1_600_000_000)})
    extract(tmp_path / "old.tar.gz", target)
    assert (target / name).stat().st_mtime == 1_600_000_000
    before = (target / name).stat().st_mtime_ns
    extract(tmp_path / "old.tar.gz", target)  # same archive again: left alone
    assert (target / name).stat().st_mtime_ns == before
    _tar_of(tmp_path / "new.tar.gz", {name: (b"new image", 1_700_000_000)})  # same size
    extract(tmp_path / "new.tar.gz", target)
    assert (target / name).read_bytes() == b"new image"


def test_zip_member_time_is_kept_for_resume(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    name = "BioSR/Microtubules/test_gt/001.tif"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name, date_time=(2021, 3, 4, 5, 6, 8)), b"old image")
    extract(archive, tmp_path / "out")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name, date_time=(2022, 3, 4, 5, 6, 8)), b"new image")
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / name).read_bytes() == b"new image"


def test_truncated_tar_gz_is_one_line_data_error(tmp_path: Path) -> None:
    archive = _mirror_tar_gz(tmp_path)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])  # cut off halfway
    with pytest.raises(DataError, match="corrupt or truncated archive") as info:
        download(tmp_path / "root", source=str(archive))
    assert str(info.value).startswith(f"{archive}: ") and "\n" not in str(info.value)


def test_corrupt_zip_is_one_line_data_error(tmp_path: Path) -> None:
    data = bytearray(zip_dataset(tmp_path))
    central = data.rindex(b"PK\x01\x02")  # the last central-directory entry
    data[central : central + 4] = b"XXXX"
    archive = tmp_path / "broken.zip"
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt or truncated archive") as info:
        download(tmp_path / "root", source=str(archive))
    assert str(info.value).startswith(f"{archive}: ") and "\n" not in str(info.value)


def test_download_url_of_zip_extracts_verifies_and_cleans_up(tmp_path: Path) -> None:
    payload = zip_dataset(tmp_path)
    root = tmp_path / "root"
    with serve(payload) as srv:
        got = fetch(root, source=url_of(srv, "biosr.zip"), known_hash=_sha(payload), **FAST)
    assert got.report.ok, got.report.findings
    assert got.path == root / layout.DATASET_DIR
    assert len(list((got.path / "test_wf").rglob("*.tif"))) == 9
    assert not (root / "biosr.zip").exists()  # deleted once extracted and verified
    assert [p.name for p in root.iterdir()] == ["BioSR"]


def test_download_local_tar_with_one_split(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_dataset(src, {"training": 2, "validate": 1, "test": 1})
    archive = tmp_path / "mirror.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src / "BioSR", arcname="BioSR")
    path = download(tmp_path / "root", source=str(archive), splits=["test"])
    assert sorted(p.name for p in path.iterdir()) == ["test_gt", "test_wf"]
    # a re-run finds every file complete and writes nothing new
    before = {p: p.stat().st_mtime_ns for p in path.rglob("*.tif")}
    download(tmp_path / "root", source=str(archive), splits=["test"])
    assert {p: p.stat().st_mtime_ns for p in path.rglob("*.tif")} == before
    assert archive.exists()  # a local archive is never deleted


def test_archive_without_dataset_points_to_build(tmp_path: Path) -> None:
    archive = tmp_path / "Microtubules.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Microtubules/Cell_001/SIM_gt.mrc", b"\0" * 16)
    with pytest.raises(DataError, match="biosr build"):
        download(tmp_path / "root", source=str(archive))


def test_unknown_source_and_split_are_clear(tmp_path: Path) -> None:
    with pytest.raises(BiosrError, match="unknown source"):
        download(tmp_path / "r", source=str(tmp_path / "nope.zip"))
    with pytest.raises(BiosrError, match="unknown split"):
        download(tmp_path / "r", source="git", splits=["train"])


@pytest.mark.parametrize("figshare_md5", [False, True])
def test_figshare_uses_doi_resolution_and_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figshare_md5: bool
) -> None:
    payload = b"PK\x03\x04 pretend release"
    seen: list[str] = []
    md5 = hashlib.md5(payload).hexdigest()

    class Repo:  # figshare's own MD5 wins; without it the registry's (made wrong here) is used
        api_response = (
            [{"name": layout.RELEASE_ARCHIVE, "computed_md5": md5}] if figshare_md5 else []
        )

        def download_url(self, name: str) -> str:
            return url_of(srv, name)

    def resolve(doi: str) -> Repo:
        seen.append(doi)
        return Repo()

    monkeypatch.setattr("pooch.downloaders.doi_to_repository", resolve)
    registry = "md5:" + ("0" * 32 if figshare_md5 else md5)
    monkeypatch.setitem(download_module.REGISTRY, layout.RELEASE_ARCHIVE, registry)
    with serve(payload) as srv:
        got = fetch(tmp_path, source="figshare", **FAST)
    assert got.revision == f"md5:{md5}"
    assert seen == [layout.RELEASE_DOI]
    assert got.path == tmp_path / layout.RELEASE_ARCHIVE
    assert got.path.read_bytes() == payload and got.report is None


def test_cli_figshare_prints_the_real_build_syntax(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    payload = b"PK\x03\x04 pretend release"

    class Repo:
        api_response = (
            {"name": layout.RELEASE_ARCHIVE, "computed_md5": hashlib.md5(payload).hexdigest()},
        )

        def download_url(self, name: str) -> str:
            return url_of(srv, name)

    monkeypatch.setattr("pooch.downloaders.doi_to_repository", lambda doi: Repo())
    with serve(payload) as srv:
        code = main(["download", str(tmp_path), "--source", "figshare", "--retries", "0"])
    out = capsys.readouterr().out
    assert code == 0
    archive = tmp_path / layout.RELEASE_ARCHIVE
    assert f"next: biosr build --source {archive} --out OUT" in out


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_damaged_archive_fails_verification_cli_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = tmp_path / "src"
    base = make_dataset(src, {"test": 1})
    bad = base / "test_gt" / "001.tif"
    bad.write_bytes(bad.read_bytes()[:1000])  # truncated on the mirror
    archive = tmp_path / "mirror.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(src.rglob("*.tif")):
            zf.write(path, path.relative_to(src).as_posix())
    with pytest.raises(DataError, match="verification found 1 problem"):
        download(tmp_path / "api", source=str(archive), splits=["test"])
    code = main(["download", str(tmp_path / "cli"), "--source", str(archive), "--split", "test"])
    out = capsys.readouterr().out
    assert code == 1
    assert "test_gt/001.tif: truncated" in out and out.rstrip().endswith("FAILED: 1 problem(s)")
