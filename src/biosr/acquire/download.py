"""Get the BioSR data: the published copy (git), a structure's original release, or a mirror.

Three sources, one call (:func:`download`), and :func:`biosr.dataset.verify.verify`
on whatever arrived:

``"git"`` (default)
    The published copy, :data:`GIT_URL`, by partial shallow clone with a
    sparse checkout of only the requested splits' folders
    (:mod:`biosr.acquire.git`): ``splits=["test"]`` transfers only the test
    files (~100 MB of ~11.8 GB). Re-running resumes or completes.
``"figshare"``
    A structure's original release archive (``Microtubules.zip`` by default,
    ``ER.zip`` ... with ``structure``; :data:`biosr.layout.STRUCTURES`) of DOI
    :data:`biosr.layout.RELEASE_DOI`, for ``biosr build``. pooch resolves the
    DOI to figshare's download address (:func:`pooch.downloaders.doi_to_repository`),
    the file is found there by its archive name, and figshare's own MD5 of it
    is checked; :data:`REGISTRY` holds the third-party MD5 of every archive,
    used only when figshare gives none.
a URL or a local path
    Of a zip or tar archive of the layout (any mirror). Downloaded, checked
    against ``known_hash`` when given, then extracted safely (:mod:`biosr.acquire.archive`)
    under ``ROOT/BioSR/<structure>`` whatever folder wraps it inside.

The published copy (git) holds Microtubules only; the other structures come
from their release archives, which ``biosr build --structure NAME`` cuts.

What pooch does here: DOI resolution, the hash registry format
(``"md5:HEX"``) and hashing. What is hand-written (:mod:`biosr.acquire.http`):
the download itself, because pooch cannot resume an interrupted transfer;
HTTP Range resume, retries with back-off, the HTML-page check, and the
rename-after-checksum. Nothing here prints.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from biosr import layout
from biosr._checks import check_non_negative_int
from biosr.acquire import http as fetch_http
from biosr.errors import BiosrError, DataError, UnreachableError

#: The published, preprocessed copy (the seed's only access route).
GIT_URL = "https://github.com/DeepTrackAI/biosr_dataset"
#: Environment variable naming another repository (a mirror) for ``source="git"``.
GIT_URL_ENV = "BIOSR_GIT_URL"

#: Known hashes of the original release's archives (one per structure, from
#: :data:`biosr.layout.STRUCTURES`), in pooch's ``"alg:hex"`` form. They come
#: from a third-party audit, not from the authors; figshare's own MD5 (from its
#: API) takes precedence when available.
REGISTRY: dict[str, str] = {s.archive: f"md5:{s.archive_md5}" for s in layout.STRUCTURES.values()}


class Downloaded(NamedTuple):
    """What :func:`fetch` got.

    Attributes
    ----------
    path : Path
        The dataset folder, ``BioSR/<structure>`` (git, archive), or the release
        archive (figshare).
    source : str
        ``"git"``, ``"figshare"``, or the URL or path used.
    revision : str
        Git commit, or the checksum that the archive matched (``"alg:hex"``), or "".
    report : biosr.dataset.verify.Report or None
        Verification of what arrived (None for the release archive, which
        ``biosr build`` checks when it reads it).
    """

    path: Path
    source: str
    revision: str
    report: Any


def download(
    root: str | os.PathLike[str],
    *,
    splits: Sequence[str] | None = None,
    source: str = "git",
    progress: bool = False,
    **options: Any,
) -> Path:
    """Download the data into `root`, verify it, and return where it is.

    Parameters
    ----------
    root : path-like
        Destination. For ``"git"`` it becomes a clone of the published
        repository (must be new, empty, or an earlier clone), the dataset
        at ``root/BioSR/Microtubules``; for an archive the dataset lands at
        ``root/BioSR/<structure>``; for ``"figshare"`` the archive is
        ``root/<structure>.zip``.
    splits : sequence of str, optional
        Splits wanted (default all): ``"training"``, ``"validate"``, ``"test"``.
    source : str, optional
        ``"git"`` (default), ``"figshare"``, or the URL or path of a zip or tar
        archive of the layout.
    progress : bool, optional
        Show progress on stderr.
    **options
        Passed to :func:`fetch`: ``structure``, ``known_hash``, ``git_url``,
        ``deep``, ``keep_archive``, ``retries``, ``backoff``, ``timeout``.

    Returns
    -------
    Path
        The dataset folder (``BioSR/<structure>``), or the release archive
        for ``"figshare"``.

    Raises
    ------
    DataError
        The data arrived but failed verification (the first problems are
        named; run ``biosr verify`` for all), or a checksum mismatched.
    UnreachableError
        The source cannot be reached (offline or blocked).
    BiosrError
        Any other problem described in one line.

    Examples
    --------
    >>> from biosr.acquire.download import download
    >>> download("data", splits=["test"])  # doctest: +SKIP
    PosixPath('data/BioSR/Microtubules')
    """
    got = fetch(root, splits=splits, source=source, progress=progress, **options)
    if got.report is not None and not got.report.ok:
        first = "; ".join(str(f) for f in got.report.findings[:3])
        raise DataError(
            f"{got.path}: downloaded but verification found {len(got.report.findings):,} "
            f"problem(s): {first}; run `biosr verify {got.path}` for all"
        )
    return got.path


def fetch(
    root: str | os.PathLike[str],
    *,
    splits: Sequence[str] | None = None,
    source: str = "git",
    structure: str | layout.Structure | None = None,
    known_hash: str | None = None,
    git_url: str | None = None,
    deep: bool = False,
    keep_archive: bool = False,
    retries: int = fetch_http.RETRIES,
    backoff: float = fetch_http.BACKOFF_S,
    timeout: float = fetch_http.TIMEOUT_S,
    progress: bool = False,
) -> Downloaded:
    """Download as :func:`download` does, returning the verification report too.

    Parameters
    ----------
    root, splits, source, progress
        As for :func:`download`.
    structure : str or Structure, optional
        Which BioSR structure (:data:`biosr.layout.STRUCTURES`; default
        Microtubules): the release archive ``"figshare"`` fetches, and the
        folder an archive of the layout is extracted to. The published copy
        (``"git"``) holds Microtubules only.
    known_hash : str, optional
        Expected hash of an archive (``"sha256:HEX"``, ``"md5:HEX"``); not
        for ``source="git"`` (BiosrError).
    git_url : str, optional
        Repository for ``source="git"``: default the environment variable
        ``BIOSR_GIT_URL`` if set (a mirror, a ``file://`` repository), else
        :data:`GIT_URL`.
    deep : bool, optional
        Verify by decoding every file (and checking the manifest's sha256).
    keep_archive : bool, optional
        Keep a downloaded archive after extracting it (default: delete it).
    retries, backoff, timeout
        HTTP retry policy, see :func:`biosr.acquire.http.fetch`.

    Returns
    -------
    Downloaded
    """
    root = Path(root)
    chosen = layout.get_structure(structure, error=DataError)
    wanted = _check_splits(splits)
    if known_hash is not None:  # a typo is found now, not after the whole download
        known_hash = fetch_http.check_known_hash(known_hash)
    retries = check_non_negative_int(retries, "retries")
    http = {"retries": retries, "backoff": backoff, "timeout": timeout, "progress": progress}
    if source == "git":
        from biosr.acquire.git import check_not_lfs_pointer, sparse_fetch

        if not chosen.published:
            raise BiosrError(
                f"--source git: the published copy holds {layout.DEFAULT_STRUCTURE} only, not "
                f"{chosen.name}; get its release with --source figshare --structure "
                f"{chosen.name}, then cut it with `biosr build --structure {chosen.name}`"
            )
        if known_hash is not None:
            raise BiosrError(
                "--hash does not apply to --source git: it checks an archive; git checks each "
                "file it transfers against the commit, and --deep checks the manifest's sha256"
            )
        # always the split folders: cone mode brings the manifest and card beside them
        folders = [
            (layout.DATASET_DIR / d).as_posix() for s in wanted for d in layout.split_roots(s)
        ]
        git_url = git_url or os.environ.get(GIT_URL_ENV) or GIT_URL
        commit = sparse_fetch(git_url, root, folders, progress=progress)
        path = layout.dataset_dir(root, must_exist=False)
        if not path.is_dir():
            raise DataError(f"{git_url}: the repository has no {layout.DATASET_DIR.as_posix()}/")
        check_not_lfs_pointer(next(path.rglob("*" + layout.SUFFIX), None), root)
        return Downloaded(path, "git", commit, _verify(path, wanted, deep, progress))
    if source == "figshare":
        if splits is not None:
            raise BiosrError(
                "--split does not apply to --source figshare: the original release is one "
                f"archive ({chosen.archive}) that `biosr build` cuts into splits"
            )
        url, checksum = resolve_figshare(known_hash, structure=chosen)
        path = fetch_http.fetch(url, root / chosen.archive, known_hash=checksum, **http)
        return Downloaded(path, "figshare", checksum or "", None)
    return _from_archive(root, source, wanted, known_hash, deep, keep_archive, http, chosen)


def resolve_figshare(
    known_hash: str | None = None, *, structure: str | layout.Structure | None = None
) -> tuple[str, str | None]:
    """Download address and checksum of a structure's release archive, via pooch's DOI support.

    The file is found in the record by its archive name (``ER.zip``; default
    ``Microtubules.zip``). The checksum is, in order: `known_hash`,
    figshare's own MD5 of the file (from its API), the third-party entry of
    :data:`REGISTRY`.

    Raises
    ------
    UnreachableError
        doi.org or figshare cannot be reached.
    """
    from pooch.downloaders import doi_to_repository

    doi = layout.RELEASE_DOI
    archive = layout.get_structure(structure).archive
    try:
        repo = doi_to_repository(doi)
        url = repo.download_url(archive)
    except ValueError as exc:
        raise BiosrError(f"doi:{doi}: {' '.join(str(exc).split())}") from None
    except Exception as exc:  # requests' connection errors, HTTP errors
        raise UnreachableError(
            f"doi:{doi}: cannot reach doi.org/figshare ({type(exc).__name__}); if you are "
            "offline or it is blocked, fetch the archive elsewhere and pass its URL or path "
            "with --source, or copy it here and give it to `biosr build`"
        ) from None
    if known_hash:
        return url, known_hash
    item = {f.get("name"): f for f in getattr(repo, "api_response", [])}.get(archive, {})
    md5 = item.get("computed_md5") or item.get("supplied_md5")
    return url, f"md5:{md5}" if md5 else REGISTRY.get(archive)


def _check_splits(splits: Sequence[str] | None) -> tuple[str, ...]:
    if splits is None:
        return layout.SPLITS
    if isinstance(splits, str):
        splits = [splits]
    return tuple(layout.check_split(s, error=DataError) for s in dict.fromkeys(splits))


def _verify(path: Path, splits: Sequence[str], deep: bool, progress: bool) -> Any:
    from biosr.dataset.verify import verify

    return verify(path, splits=splits, deep=deep, progress=progress)


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in ("http", "https")


def _from_archive(
    root: Path,
    source: str,
    splits: Sequence[str],
    known_hash: str | None,
    deep: bool,
    keep_archive: bool,
    http: dict[str, Any],
    structure: layout.Structure,
) -> Downloaded:
    from biosr.acquire.archive import extract, members

    if _is_url(source):
        name = PurePosixPath(urllib.parse.urlparse(source).path).name or "biosr_archive"
        archive = fetch_http.fetch(source, root / name, known_hash=known_hash, **http)
        downloaded = True
    else:
        archive = Path(source).expanduser()
        if not archive.is_file():
            raise BiosrError(
                f"{source}: unknown source; use 'git', 'figshare', an http(s) URL, "
                "or the path of a zip or tar archive"
            )
        if known_hash is not None:
            fetch_http.check_hash(archive, known_hash, source=str(archive))
        downloaded = False
    try:
        entries = members(archive)  # listed once: a compressed tar is read whole to list it
        rename = _dataset_rename(entries, splits, archive, structure)
        extract(archive, root, rename=rename, progress=http["progress"], entries=entries)
    except DataError as exc:
        if not downloaded:  # a user's own archive is never deleted
            raise
        archive.unlink(missing_ok=True)  # refused: biosr downloaded it, biosr removes it
        raise DataError(f"{exc}; the downloaded archive was removed") from None
    path = layout.dataset_dir(root, structure=structure, must_exist=False)
    report = _verify(path, splits, deep, http["progress"])
    if downloaded and not keep_archive and report.ok:
        archive.unlink()
    return Downloaded(path, source, known_hash or "", report)


def _dataset_rename(
    entries: list,
    splits: Sequence[str],
    archive: Path,
    structure: layout.Structure = layout.MICROTUBULES,
) -> Any:
    """Map archive names onto ``BioSR/<structure>/...``, keeping the wanted splits only.

    The dataset part of a name starts after its last component named as the
    structure (``Microtubules``), or else at its first split folder
    (``test_wf`` ...), so any wrapping folder (``biosr_dataset-main/``) is dropped.
    """
    folders = {d for s in layout.SPLITS for d in layout.split_roots(s)}
    keep = {d for s in splits for d in layout.split_roots(s)}
    files = {layout.MANIFEST_FILE, layout.CARD_FILE}

    def inside(name: PurePosixPath) -> PurePosixPath | None:
        parts = name.parts
        if structure.name in parts[:-1]:
            start = len(parts) - parts[::-1].index(structure.name)
        else:
            start = next((i for i, p in enumerate(parts) if p in folders), len(parts))
        rel = parts[start:]
        in_split = len(rel) > 1 and rel[0] in folders
        top_file = len(rel) == 1 and rel[0] in files
        return PurePosixPath(*rel) if in_split or top_file else None

    def rename(name: PurePosixPath) -> PurePosixPath | None:
        rel = inside(name)
        if rel is None or not (rel.parts[0] in keep or rel.name in files):
            return None
        return PurePosixPath(structure.dataset_dir.as_posix()) / rel

    if not any(inside(m.name) is not None for m in entries if not m.is_dir):
        raise DataError(
            f"{archive}: no {structure.dataset_dir.as_posix()} split folders inside; if it is "
            f"the original release (Cell_XXX folders), give it to `biosr build` instead"
        )
    return rename
