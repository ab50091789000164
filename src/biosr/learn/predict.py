"""Run a trained network on patches or full fields, tiled without seams, and write TIFFs.

A field is first extended by a halo (:data:`HALO`) on every side, mirrored with
its edge pixels repeated (numpy's and xarray's ``symmetric`` mode). That is what
bioimage.io tools do with a package's halo (``bioimageio.core`` pads an input
with its ``pad``, by default symmetric), so ``biosr predict`` and those tools
agree up to the field's edges, and the network sees image-like context there
instead of its convolutions' zeros.

A field larger than the tile is then cut into overlapping tiles. Each tile's
prediction is weighted by a window that is zero over its outer ``margin``
pixels (where the network saw the tile's edge, not the image) and then rises
as a raised cosine (``sin^2``) across the rest of the overlap, so that the
weights of neighbouring tiles sum to one: the blend has no seam, and for a
translation-equivariant network (the U-Net, with tile origins on its pooling
grid) whose receptive-field radius is at most ``margin``, the tiled result
equals the network's prediction of the whole mirrored field. DFCAN's Fourier
attention pools over the whole input, so for DFCAN tiling is a close, smooth
approximation. Hand-written because no maintained library does this blend for
arbitrary torch models without heavy dependencies.

Checkpoints are read with plain torch (no Lightning needed): the network's
name and options come from the checkpoint's hyper-parameters.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from biosr import layout
from biosr import normalize as norm
from biosr._progress import bar
from biosr.errors import BiosrError, DataError
from biosr.io import owner
from biosr.io.tiff import read_pixel_size_nm, read_tiff, write_tiff

#: Image files predict reads from a folder.
IMAGE_SUFFIXES = (".tif", ".tiff")
#: Inference precisions: ``auto`` = ``bf16-mixed`` on a CUDA GPU with native bfloat16,
#: else ``32-true``. Under bf16 autocast (DFCAN's Fourier attention stays float32) the
#: output equals float32's within 1e-2 absolute on [0, 1] images (measured: at most 4e-3,
#: mean 1e-3, for DFCAN; tests/test_recipe.py holds it to that).
INFERENCE_PRECISIONS: tuple[str, ...] = ("auto", "32-true", "bf16-mixed")
#: The producer name of prediction folders (:mod:`biosr.io.owner`).
PRODUCER = "predict"
#: Context in input pixels mirrored around a field (rounded up to the network's size
#: multiple) and the halo of exported packages: at least the receptive-field radius of the
#: default U-Net (depth 2: 23 px) and of DFCAN's convolutions (stem, 4 x 4 blocks of two
#: 3x3 convolutions, upsampling and head: 35 px; its attention is global).
HALO = 40
#: numpy's padding mode for the halo: bioimage.io's default (``SymmetricPadding``).
HALO_MODE = "symmetric"
#: The key of a ``biosr train`` checkpoint (and of a package's ``biosr.json``) that records
#: the training data: :func:`biosr.learn.train.train` writes it, :func:`load_model` reads it.
TRAINING_DATA_KEY = "biosr_training_data"


class LoadedModel(NamedTuple):
    """A network rebuilt from a checkpoint.

    Attributes
    ----------
    net : torch.nn.Module
        The network, in eval mode, on the requested device.
    name : str
        ``"dfcan"`` or ``"unet"``.
    scale : int
        Output size / input size.
    global_step : int
        Training steps behind the weights.
    hyper_parameters : dict
        The checkpoint's hyper-parameters (model, scale, model_options, recipe).
    training_data : dict or None
        What the checkpoint records of its training data (:data:`TRAINING_DATA_KEY`):
        ``path``, ``normalize`` (the loader's) and ``card`` (the dataset card, without
        its citation); None for a checkpoint that records none.
    halo : int
        The halo to mirror around a field: a package's own, else :data:`HALO`.
    """

    net: object
    name: str
    scale: int
    global_step: int
    hyper_parameters: dict = {}  # noqa: RUF012 (a NamedTuple default; never mutated)
    training_data: dict | None = None
    halo: int = HALO


def load_model(checkpoint: str | os.PathLike[str], *, device: str = "cpu") -> LoadedModel:
    """Rebuild the network saved in a ``biosr train`` checkpoint.

    Parameters
    ----------
    checkpoint : path-like
        A ``.ckpt`` file written by :func:`biosr.learn.train.train` (unpickled: load
        only checkpoints you trust), or a bioimage.io package (``.zip``) written by
        :func:`biosr.learn.export.export`.
    device : str
        Torch device for the network.

    Returns
    -------
    LoadedModel

    Raises
    ------
    BiosrError
        If the file is missing or not a biosr checkpoint.
    """
    from biosr.learn.models import build_model
    from biosr.learn.package import is_package, read_package

    path = Path(checkpoint)
    if not path.is_file():
        raise BiosrError(f"{path}: checkpoint not found")
    if is_package(path):
        hp, state, step, record = read_package(path)
    else:
        hp, state, step, record = _read_checkpoint(path)
    net = build_model(hp["model"], scale=int(hp["scale"]), **dict(hp.get("model_options") or {}))
    net.load_state_dict(state)
    net.eval().to(device)
    data = record.get(TRAINING_DATA_KEY)
    return LoadedModel(
        net,
        hp["model"],
        int(hp["scale"]),
        step,
        dict(hp),
        training_data=dict(data) if isinstance(data, dict) else None,
        halo=int(record.get("halo", HALO)),
    )


def training_record(
    root: str | os.PathLike[str], normalize: str = "stored", *, structure: str | None = None
) -> dict:
    """What a checkpoint records of its training data (:data:`TRAINING_DATA_KEY`).

    Parameters
    ----------
    root : path-like
        The dataset trained on (folder containing ``BioSR/``, or the dataset folder).
    normalize : str
        The data module's normalisation of the patches (:data:`biosr.normalize.NORMALIZATIONS`).
    structure : str, optional
        The structure under `root` (default: :func:`biosr.layout.dataset_dir`'s choice).

    Returns
    -------
    dict
        ``path``: the dataset folder, absolute (`root` where none is found);
        ``normalize``; ``card``: the dataset card without its citation, None where the
        dataset has none.
    """
    from biosr.dataset.manifest import read_card

    try:
        folder = layout.dataset_dir(root, structure=structure)
        card = read_card(folder)
    except (FileNotFoundError, BiosrError):  # no dataset or no valid card: nothing to record
        folder, card = Path(root), None
    summary = None if card is None else {k: v for k, v in card.items() if k != "citation"}
    return {"path": str(folder.resolve()), "normalize": normalize, "card": summary}


def _read_checkpoint(path: Path) -> tuple[dict, dict, int, dict]:
    """Hyper-parameters, network state dict, step count and the whole checkpoint dict."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file
        raise BiosrError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    hp = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not hp or "model" not in hp or "state_dict" not in ckpt:
        raise BiosrError(f"{path}: not a biosr training checkpoint (no model hyper-parameters)")
    state = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items()}
    return dict(hp), state, int(ckpt.get("global_step", 0)), ckpt


def _ramp(length: int, overlap: int, margin: int, left: bool, right: bool) -> np.ndarray:
    """1-D blend weights of one tile: zero margin, then sin^2 up over the overlap."""
    d = np.arange(length, dtype=np.float64)
    w = np.ones(length)
    width = overlap - 2 * margin
    for on, dist in ((left, d), (right, length - 1 - d)):
        if on:
            t = np.clip((dist - margin + 0.5) / width, 0.0, 1.0)
            w *= np.sin(0.5 * np.pi * t) ** 2
    return w


def _axis_plan(n: int, tile: int, stride: int, align: int) -> tuple[int, list[int], int]:
    """Padded length, tile starts and tile length along one axis."""
    if n <= tile:
        length = math.ceil(n / align) * align
        return length, [0], length
    padded = tile + math.ceil((n - tile) / align) * align
    starts = list(range(0, padded - tile + 1, stride))
    if starts[-1] != padded - tile:
        starts.append(padded - tile)
    return padded, starts, tile


def check_tiling(tile: int, overlap: int, margin: int, batch_size: int, halo: int = 0) -> None:
    """BiosrError unless ``tile > overlap > 2 * margin >= 0``, ``batch_size >= 1``, ``halo >= 0``.

    (The halo is checked when given: :func:`predict` passes 0 for a package's own.)
    """
    if margin < 0:
        raise BiosrError(f"margin must be at least 0, got {margin}")
    if halo < 0:
        raise BiosrError(f"halo must be at least 0, got {halo}")
    if 2 * margin >= overlap:
        raise BiosrError(f"overlap ({overlap}) must exceed twice the margin ({margin})")
    if tile <= overlap:
        raise BiosrError(f"tile ({tile}) must be larger than the overlap ({overlap})")
    if batch_size < 1:
        raise BiosrError(f"batch size must be at least 1, got {batch_size}")


def predict_image(
    model,
    image: np.ndarray,
    *,
    tile: int = 256,
    overlap: int = 96,
    margin: int = 32,
    halo: int = HALO,
    batch_size: int = 4,
    device: str | None = None,
    precision: str = "auto",
) -> np.ndarray:
    """Predict one 2-D image, mirrored by a halo, in overlapping tiles when larger than `tile`.

    Parameters
    ----------
    model : torch.nn.Module or LoadedModel
        Network taking ``(N, 1, H, W)``; its ``scale`` and ``size_multiple``
        attributes are used when present (default 1).
    image : ndarray
        2-D input (already normalised as the network was trained).
    tile : int
        Tile side in input pixels (rounded up to the network's size multiple).
    overlap : int
        Overlap of neighbouring tiles in input pixels.
    margin : int
        Outer pixels of each tile given zero weight (at least the network's
        receptive-field radius for an exact result); ``2 * margin < overlap``.
    halo : int
        Pixels mirrored around the image (:data:`HALO_MODE`, rounded up to the network's
        size multiple) before tiling, as bioimage.io tools pad with a package's halo; 0
        leaves the image's borders to the network's zero padding.
    batch_size : int
        Tiles per forward pass.
    device : str, optional
        Torch device; default the network's.
    precision : {'auto', '32-true', 'bf16-mixed'}
        Inference precision (`INFERENCE_PRECISIONS`; bf16 where safe by default).

    Returns
    -------
    ndarray
        float32, ``scale`` times the input's shape.

    Raises
    ------
    BiosrError
        Tiling options that do not fit (:func:`check_tiling`).
    """
    import torch

    net = model.net if isinstance(model, LoadedModel) else model
    scale = int(getattr(net, "scale", 1))
    align = int(getattr(net, "size_multiple", 1))
    if image.ndim != 2:
        raise ValueError(f"predict_image takes a 2-D image, got shape {image.shape}")
    tile = math.ceil(tile / align) * align
    check_tiling(tile, overlap, margin, batch_size, halo)
    halo = math.ceil(halo / align) * align  # keeps the tiles on the network's grid
    stride = max(align, (tile - overlap) // align * align)
    if device is None:
        device = next(net.parameters()).device
    device = torch.device(device)
    bf16 = _inference_bf16(precision, device)
    # Tiles go through pinned memory with asynchronous copies on CUDA.
    pin = device.type == "cuda"
    h, w = image.shape
    ph, ys, th = _axis_plan(h + 2 * halo, tile, stride, align)
    pw, xs, tw = _axis_plan(w + 2 * halo, tile, stride, align)
    # The halo on every side; the tiles' alignment, further on, beyond the bottom and right.
    widths = ((halo, ph - h - halo), (halo, pw - w - halo))
    padded = np.pad(np.asarray(image, np.float32), widths, mode=HALO_MODE)
    out = np.zeros((ph * scale, pw * scale), np.float64)
    weight = np.zeros_like(out)
    boxes = [(y, x) for y in ys for x in xs]
    s_ov, s_m = overlap * scale, margin * scale
    with torch.inference_mode():
        for i in range(0, len(boxes), batch_size):
            chunk = boxes[i : i + batch_size]
            batch = np.stack([padded[y : y + th, x : x + tw] for y, x in chunk])[:, None]
            x = torch.from_numpy(batch)
            x = (x.pin_memory() if pin else x).to(device, non_blocking=pin)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                pred = net(x).float().cpu().numpy()[:, 0]
            for (y, x), p in zip(chunk, pred, strict=True):
                wy = _ramp(th * scale, s_ov, s_m, y > 0, y + th < ph)
                wx = _ramp(tw * scale, s_ov, s_m, x > 0, x + tw < pw)
                win = np.outer(wy, wx)
                sy, sx = slice(y * scale, (y + th) * scale), slice(x * scale, (x + tw) * scale)
                out[sy, sx] += win * p
                weight[sy, sx] += win
    result = out / weight
    y0 = x0 = halo * scale
    return result[y0 : y0 + h * scale, x0 : x0 + w * scale].astype(np.float32)


def _inference_bf16(precision: str, device) -> bool:
    """Whether to predict under bf16 autocast on `device` for `precision`."""
    if precision not in INFERENCE_PRECISIONS:
        valid = ", ".join(INFERENCE_PRECISIONS)
        raise BiosrError(f"unknown precision {precision!r}; valid: {valid}")
    if precision == "auto":
        from biosr.learn.device import cuda_bf16

        return device.type == "cuda" and cuda_bf16()
    return precision == "bf16-mixed"


def normalize_image(image: np.ndarray, mode: str) -> np.ndarray:
    """Input normalisation, float32: one of :data:`biosr.normalize.INPUT_NORMALIZATIONS`.

    ``"auto"`` (:func:`biosr.normalize.resolve_auto`) leaves images already
    within [0, 1] (the dataset's patches) alone and min-max normalises
    anything else (e.g. a raw widefield field in camera counts), as the
    training data were; the others are :func:`biosr.normalize.normalize`'s.
    """
    norm.check_normalization(mode, choices=norm.INPUT_NORMALIZATIONS)
    image = np.asarray(image, np.float32)
    return norm.normalize(image, norm.resolve_auto(image) if mode == norm.AUTO else mode)


def plan_inputs(
    source: str | os.PathLike[str],
    *,
    split: str = "test",
    structure: str | layout.Structure | None = None,
) -> list[tuple[Path, Path]]:
    """Input files and their output paths relative to the output folder.

    A dataset (folder containing ``BioSR/``, or a dataset folder; `structure`
    selects one under ``ROOT/BioSR/``) maps its ``test_wf/level_XX/NNN.tif``
    to ``level_XX/NNN.tif``, the layout ``biosr evaluate`` scores (other
    splits: ``SPLIT_wf/NAME.tif`` to ``NAME.tif``). Any other folder maps
    every TIFF below it to the same relative path; a file maps to its name.
    """
    source = Path(source)
    if source.is_file():
        return [(source, Path(source.name))]
    if not source.is_dir():
        raise DataError(f"{source}: no such file or folder")
    try:
        base = layout.dataset_dir(source, structure=structure)
    except FileNotFoundError:
        base = None
    if base is not None:
        structure = layout.structure_of(base)  # the folder's own levels, whichever chose it
        wf_root = base / layout.split_roots(split)[0]
        if not wf_root.is_dir():
            # Not a folder of TIFFs to mirror: that would predict every image, GT included.
            raise DataError(f"{base}: dataset has no {wf_root.name} folder for split {split!r}")
        found = layout.pairs(base, split, structure=structure)
        items = [(p.wf, p.wf.relative_to(wf_root)) for p in found]
    else:
        items = [
            (p, p.relative_to(source))
            for p in sorted(source.rglob("*"))
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
        ]
    if not items:
        raise DataError(f"{source}: no input images found (.tif/.tiff)")
    return items


def predict(
    checkpoint: str | os.PathLike[str],
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    split: str = "test",
    tile: int = 256,
    overlap: int = 96,
    margin: int = 32,
    halo: int | None = None,
    batch_size: int = 4,
    normalize: str = "auto",
    device: str = "auto",
    precision: str = "auto",
    overwrite: bool = True,
    force: bool = False,
    progress: bool = False,
    structure: str | None = None,
) -> Path:
    """Run a checkpoint on a file, a folder of TIFFs or a dataset split; write float32 TIFFs.

    Parameters
    ----------
    checkpoint : path-like
        Checkpoint from :func:`biosr.learn.train.train`.
    source : path-like
        A TIFF, a folder of TIFFs (mirrored), or a dataset root (its
        ``split``'s inputs; for ``test`` the output mirrors ``test_wf``, so
        ``biosr evaluate --pred OUT`` scores it).
    out : path-like
        Output folder (created).
    split : str
        Dataset split to predict when `source` is a dataset.
    tile, overlap, margin, batch_size
        Tiling, see :func:`predict_image`.
    halo : int, optional
        Pixels mirrored around each image, see :func:`predict_image` (default: a
        package's halo, else :data:`HALO`).
    normalize : {'auto', 'stored', 'minmax', 'percentile'}
        Input normalisation (:func:`normalize_image`).
    device : str
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    precision : {'auto', '32-true', 'bf16-mixed'}
        Inference precision, see :func:`predict_image`.
    overwrite : bool
        If False, keep outputs that already exist (resume an interrupted run).
    force : bool
        Write into `out` even if ``biosr predict`` did not make it (a
        baseline's folder: its ``baseline.json`` is removed, see
        :func:`biosr.io.owner.claim`). Without it such a folder is refused.
    progress : bool
        Show a progress bar.
    structure : str, optional
        Which structure's dataset to predict under a root holding several
        (``ROOT/BioSR/<structure>``); default the one the checkpoint was
        trained on, else :func:`biosr.layout.dataset_dir`'s choice.

    Returns
    -------
    Path
        The output folder.

    Raises
    ------
    BiosrError
        Bad tiling options (checked before the checkpoint is loaded), a
        missing checkpoint or input; DataError for a dataset without the
        split's ``SPLIT_wf`` folder.
    """
    from biosr.learn.device import resolve_device
    from biosr.learn.package import recorded_structure

    layout.check_split(split)
    check_tiling(tile, overlap, margin, batch_size, 0 if halo is None else halo)
    owner.check_replaceable(out, PRODUCER, force=force)
    dev = resolve_device(device)
    _inference_bf16(precision, dev)  # an unknown precision fails before any work
    loaded = load_model(checkpoint, device=str(dev))
    hp, record = loaded.hyper_parameters, loaded.training_data
    trained_on = recorded_structure(hp, record, source=checkpoint)  # None: records none
    if structure is not None:
        structure = layout.get_structure(structure, error=DataError).name
    items = plan_inputs(source, split=split, structure=structure or trained_on)
    out = Path(out)
    owner.claim(out, PRODUCER)
    for src, rel in bar(items, enabled=progress, total=len(items), desc="predict", unit="img"):
        target = out / rel.with_suffix(layout.SUFFIX)
        if not overwrite and target.is_file():
            continue
        image = normalize_image(read_tiff(src, dtype=None), normalize)
        pred = predict_image(
            loaded,
            image,
            tile=tile,
            overlap=overlap,
            margin=margin,
            halo=loaded.halo if halo is None else halo,
            batch_size=batch_size,
            precision=precision,
        )
        pixel = read_pixel_size_nm(src)
        if pixel is None and trained_on is not None:  # the sampling the model was trained at
            pixel = trained_on.pixel_size_wf_nm
        target.parent.mkdir(parents=True, exist_ok=True)
        write_tiff(target, pred, pixel_size_nm=None if pixel is None else pixel / loaded.scale)
    return out
