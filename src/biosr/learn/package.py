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

from biosr import layout
from biosr.errors import BiosrError

#: The bioimage.io description inside every package.
RDF_FILE = "rdf.yaml"
#: biosr's config inside its packages: the checkpoint's hyper-parameters and steps.
CONFIG_FILE = "biosr.json"
#: Format of :data:`CONFIG_FILE`.
CONFIG_FORMAT = "biosr-package/1"
#: The ``pytorch_state_dict`` weights inside a package.
STATE_DICT_FILE = "weights.pt"


def recorded_structure(
    hyper_parameters: dict[str, Any],
    training_data: dict[str, Any] | None,
    *,
    source: str | os.PathLike[str] = "",
) -> layout.Structure | None:
    """The BioSR structure a checkpoint or package records it was trained on; None if none.

    The record of the training data names it in its dataset card (``structure``,
    :func:`biosr.dataset.manifest.card_base`), else the hyper-parameters do
    (``structure``, :class:`biosr.learn.train.SRModule`); a checkpoint of an
    earlier biosr records neither.

    Parameters
    ----------
    hyper_parameters : dict
        The checkpoint's hyper-parameters.
    training_data : dict or None
        Its record of the training data (:data:`biosr.learn.predict.TRAINING_DATA_KEY`).
    source : path-like
        The checkpoint, named in the error.

    Raises
    ------
    BiosrError
        If the record names a structure biosr does not know.

    Examples
    --------
    >>> recorded_structure({"structure": "ER"}, None).name
    'ER'
    >>> recorded_structure({}, {"card": {"structure": "F-actin_Nonlinear"}}).gt_scale
    3
    >>> recorded_structure({}, {"card": None}) is None
    True
    """
    card = (training_data or {}).get("card")
    named = card.get("structure") if isinstance(card, dict) else None
    named = named if named is not None else hyper_parameters.get("structure")
    if named is None:
        return None
    try:
        return layout.get_structure(str(named))
    except ValueError as exc:
        raise BiosrError(f"{source}: the record of its training data names an {exc}") from None


def is_package(path: str | os.PathLike[str]) -> bool:
    """True if `path` is a bioimage.io package (a zip with ``rdf.yaml`` or ``biosr.json``).

    A torch checkpoint is a zip too, but its files sit inside one folder.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            return bool({RDF_FILE, CONFIG_FILE} & set(zf.namelist()))
    except (OSError, zipfile.BadZipFile):
        return False


def read_package(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, Any], int, dict[str, Any]]:
    """Hyper-parameters, state dict, training steps and config of a package of ``biosr export``.

    Reads only the zip's ``biosr.json`` and state-dict weights (no bioimage.io library).
    The config is the whole ``biosr.json`` (its ``halo``, its record of the training data).

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
    return hp, state, step, config
