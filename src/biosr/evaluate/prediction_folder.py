"""A baseline's prediction folder: who may replace it, how it is claimed, what it records.

Shared by the image baselines (:mod:`biosr.evaluate.baselines`) and the SIM
baseline (:mod:`biosr.evaluate.sim_baseline`), so the two write and guard their
folders the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from biosr import __version__, layout
from biosr.errors import BiosrError
from biosr.io import owner
from biosr.io.atomic import write_text

#: File recording what a baseline folder holds.
INFO_FILE = "baseline.json"
#: The producer name of baseline folders (:mod:`biosr.io.owner`).
PRODUCER = "baseline"


def check_folder(out: Path, *, overwrite: bool, force: bool) -> None:
    """Refuse `out` if it holds predictions (without `overwrite`) or another producer's files.

    Raises
    ------
    BiosrError
        ``OUT: already holds predictions; pass --overwrite``, or the owner's refusal.
    """
    if (
        out.is_dir()
        and not (overwrite or force)
        and any(
            layout.parse_level_dir(p.name, structure=layout.WIDEST)
            for p in out.iterdir()
            if p.is_dir()
        )
    ):
        raise BiosrError(f"{out}: already holds predictions; pass --overwrite to replace them")
    owner.check_replaceable(out, PRODUCER, force=force)


def claim_folder(out: Path) -> None:
    """Mark `out` as a baseline's (the previous producer's card, if any, is removed)."""
    owner.claim(out, PRODUCER, cards=[INFO_FILE])


def write_info(out: Path, name: str, **fields: Any) -> None:
    """Write ``baseline.json``: the baseline's name, biosr's version and `fields` (atomic)."""
    info = {"baseline": name, "biosr_version": __version__, **fields}
    write_text(out / INFO_FILE, json.dumps(info, indent=2) + "\n")
