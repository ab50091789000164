"""What the dataset producers (:mod:`biosr.build.builder`, :mod:`biosr.simulate`) own and share.

Both write the published layout into a ``BioSR/<Structure>`` folder. What a
producer owns there (and so may remove on overwrite) is one list,
:func:`owned_entries`: the split folders, the manifest, the card and the
builder's work folder. Keeping it in one place means neither producer can
leave the other's state behind (an unfinished build's plan beside simulated
files would otherwise be "resumed"). Inside those folders only the files a
producer writes (layout-named images, release stacks, temporaries) are
removed, so a user's own file there survives an overwrite. Also shared: the
split folders and the per-cell seeds (the process pool is :mod:`biosr._parallel`).
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from biosr import layout
from biosr.errors import BiosrError
from biosr.io import owner
from biosr.io.atomic import is_part


def owned_entries() -> tuple[str, ...]:
    """Names, relative to the dataset folder, of everything a producer writes there."""
    roots = tuple(d for split in layout.SPLITS for d in layout.split_roots(split))
    return (*roots, layout.MANIFEST_FILE, layout.CARD_FILE, layout.BUILD_DIR)


def producer_file(name: str) -> bool:
    """True if a producer writes files named `name` (an image, a release stack, a temporary).

    Release stacks of every structure count (``RawSIMData_level_12.mrc``,
    ``GTSIM_level_01.mrc``, ``SIM_gt_a.mrc`` ...).
    """
    if is_part(name) or name == owner.MARKER or name in _release_file_names():
        return True
    return any(layout.parse_file_name(split, name) is not None for split in layout.SPLITS)


@functools.cache
def _release_file_names() -> frozenset[str]:
    """Base names of every structure's release files (:func:`biosr.layout.release_files`)."""
    names = {
        Path(file).name
        for s in layout.STRUCTURES.values()
        for file in layout.release_files("", 1, structure=s).values()
    }
    names.update(extra for s in layout.STRUCTURES.values() for extra in s.extra_files)
    return frozenset(names)


def _remove_tree(folder: Path) -> None:
    """Remove the producer's files under `folder`, then the folders left empty."""
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_symlink() or (path.is_file() and producer_file(path.name)):
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()


def remove_entries(folder: Path, names: Iterable[str]) -> None:
    """Remove the named files or folders of `folder` (a link is removed, not followed).

    A named folder loses only the files a producer writes (:func:`producer_file`)
    and the subfolders left empty; the builder's work folder goes whole.
    """
    for name in names:
        target = folder / name
        if target.is_dir() and not target.is_symlink():
            if name == layout.BUILD_DIR:
                shutil.rmtree(target)
            else:
                _remove_tree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def prepare_folder(
    folder: Path, owned: Iterable[str], *, overwrite: bool, producer: str, force: bool = False
) -> None:
    """Create `folder` and claim it for `producer`, refusing a non-empty one unless `overwrite`.

    With `overwrite`, a folder `producer` made (:mod:`biosr.io.owner`) is
    cleared of the entries named in `owned` (the writer's own folders and
    files), so no stale file of an earlier, larger run survives; a folder made
    by another producer, or without a marker (a download, a user's files), is
    refused unless `force`. A user's files are never removed.

    Raises
    ------
    BiosrError
        If `folder` is a file, or is not empty and neither `overwrite` nor
        `force` is set, or was made by someone else and `force` is False.
    """
    if folder.exists() and not folder.is_dir():
        raise BiosrError(f"{folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not (overwrite or force):
            raise BiosrError(
                f"{folder}: not empty; choose another output folder or pass --overwrite "
                "(overwrite=True) to replace the data biosr wrote in it"
            )
        if owner.owner(folder) is None and _card_says(folder, producer):
            owner.claim(folder, producer)  # made before biosr left markers; its card says who
        owner.check_replaceable(folder, producer, force=force)
        remove_entries(folder, owned)
    owner.claim(folder, producer)


def _card_says(folder: Path, producer: str) -> bool:
    """True if `folder`'s card names ``biosr PRODUCER`` as its source (cards before markers)."""
    try:
        card = json.loads((folder / layout.CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    source = card.get("source") if isinstance(card, dict) else None
    return isinstance(source, str) and source.startswith(f"biosr {producer}")


def prepare_dataset(dataset: Path, *, overwrite: bool, producer: str, force: bool = False) -> None:
    """:func:`prepare_folder` for a dataset folder and :func:`owned_entries`."""
    prepare_folder(dataset, owned_entries(), overwrite=overwrite, producer=producer, force=force)


def make_split_dirs(dataset: Path, *, structure: str | layout.Structure | None = None) -> None:
    """Create every split (and test level) folder of `structure`'s layout under `dataset`."""
    for split in layout.SPLITS:
        for level in layout.split_levels(split, structure=structure):
            for folder in layout.split_dirs(split, level, structure=structure):
                (dataset / folder).mkdir(parents=True, exist_ok=True)


def cell_seed(seed: int, *key: int) -> np.random.SeedSequence:
    """The SeedSequence of the cell (or other unit of work) at `key` of a run seeded `seed`.

    A unit's random draws depend only on the seed and its key, never on which
    worker runs it or in what order, so outputs are the same for any number
    of workers.
    """
    return np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))
