"""Read back a bioimage.io package of ``biosr export``: its config and state dict, with plain torch.

Apart from :mod:`biosr.learn.export` so that :mod:`biosr.learn.predict` can open a
package without importing the exporter (which imports predict), and without the
bioimage.io library: biosr's own ``biosr.json`` names the network and its options,
and the ``pytorch_state_dict`` weights are a plain torch file.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from biosr.errors import BiosrError

#: The bioimage.io description inside every package.
RDF_FILE = "rdf.yaml"
#: biosr's config inside its packages: the checkpoint's hyper-parameters and steps.
CONFIG_FILE = "biosr.json"
#: Format of :data:`CONFIG_FILE`.
CONFIG_FORMAT = "biosr-package/1"
#: The ``pytorch_state_dict`` weights inside a package.
STATE_DICT_FILE = "weights.pt"


def is_package(path: str | os.PathLike[str]) -> bool:
    """True if `path` is a bioimage.io package (a zip with ``rdf.yaml`` or ``biosr.json``).

    A torch checkpoint is a zip too, but its files sit inside one folder.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            return bool({RDF_FILE, CONFIG_FILE} & set(zf.namelist()))
    except (OSError, zipfile.BadZipFile):
        return False


def read_package(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Hyper-parameters, state dict and training steps of a package of ``biosr export``.

    Reads only the zip's ``biosr.json`` and state-dict weights (no bioimage.io library).

    Raises
    ------
    BiosrError
        If the zip is unreadable or was not written by biosr.
    """
    import torch

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            if CONFIG_FILE not in zf.namelist():
                raise BiosrError(
                    f"{path}: a bioimage.io package not written by biosr (no {CONFIG_FILE}); "
                    "biosr opens the packages of `biosr export`"
                )
            config = json.loads(zf.read(CONFIG_FILE))
            weights = io.BytesIO(zf.read(config["state_dict"]))
        state = torch.load(weights, map_location="cpu", weights_only=True)
        hp = dict(config["hyper_parameters"])
        step = int(config["global_step"])
    except BiosrError:
        raise
    except Exception as exc:  # zipfile, json and torch raise many types for a bad file
        raise BiosrError(f"{path}: not a readable model package ({type(exc).__name__})") from None
    return hp, state, step
