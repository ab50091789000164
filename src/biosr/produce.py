"""Shared by the dataset producers (:mod:`biosr.build`, :mod:`biosr.simulate`): what they own.

Both write the published layout into a ``Microtubules`` folder. What a
producer owns there (and so may remove on overwrite) is one list,
:func:`owned_entries`: the split folders, the manifest, the card and the
builder's work folder. Keeping it in one place means neither producer can
leave the other's state behind (an unfinished build's plan beside simulated
files would otherwise be "resumed").
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from biosr import layout
from biosr.errors import BiosrError


def owned_entries() -> tuple[str, ...]:
    """Names, relative to the dataset folder, of everything a producer writes there."""
    roots = tuple(d for split in layout.SPLITS for d in layout.split_roots(split))
    return (*roots, layout.MANIFEST_FILE, layout.CARD_FILE, layout.BUILD_DIR)


def remove_entries(folder: Path, names: Iterable[str]) -> None:
    """Remove the named files or folders of `folder` (a link is removed, not followed)."""
    for name in names:
        target = folder / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def clear_dataset(dataset: Path) -> None:
    """Remove what a producer owns in `dataset` (:func:`owned_entries`) and nothing else."""
    remove_entries(dataset, owned_entries())


def prepare_folder(folder: Path, owned: Iterable[str], *, overwrite: bool) -> None:
    """Create `folder`, refusing a non-empty one unless `overwrite`.

    With `overwrite`, the entries named in `owned` (the writer's own folders
    and files) are removed first, so no stale file of an earlier, larger run
    survives; anything else in the folder is left alone.

    Raises
    ------
    BiosrError
        If `folder` is a file, or is not empty and `overwrite` is False.
    """
    if folder.exists() and not folder.is_dir():
        raise BiosrError(f"{folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise BiosrError(
                f"{folder}: not empty; choose another output folder or pass --overwrite "
                "(overwrite=True) to replace the data biosr wrote in it"
            )
        remove_entries(folder, owned)
    folder.mkdir(parents=True, exist_ok=True)


def prepare_dataset(dataset: Path, *, overwrite: bool) -> None:
    """:func:`prepare_folder` for a ``Microtubules`` folder and :func:`owned_entries`."""
    prepare_folder(dataset, owned_entries(), overwrite=overwrite)
