"""Export a ``biosr train`` checkpoint as a bioimage.io model package (format 0.5); read it back.

The package runs where biosr is not installed (Fiji/deepImageJ, ilastik, napari,
BiaPy, ``bioimageio.core``). Its architecture file is the network's own module
from :mod:`biosr.learn.models`, shipped verbatim: each model file imports only
torch (:func:`architecture_source` checks it at every export), so biosr and the
package share one source of the network. The weights come as a
``pytorch_state_dict`` (that file plus the class name and its keyword
arguments) and as ``torchscript``, scripted (:func:`torchscript`): a scripted
module, unlike a traced one, runs any input size the package describes.

The structure the model was trained on (what the checkpoint records,
:func:`biosr.learn.package.recorded_structure`; else that of the ``--data``
dataset; else Microtubules) names the package, its description, tags and README
and sets its pixel sizes: the structure's widefield pixel in, that over the
model's scale out.

The input preprocessing reproduces the normalisation of the training patches
with bioimage.io's own operations: ``scale_range`` over each image's y and x
(its minimum and maximum to 0 and 1, as the build's default min-max, and as
``biosr predict`` normalises a raw field), or, for a dataset built with
``percentile`` normalisation, the build's percentiles followed by ``clip`` to
[0, 1], as the build clips. The test tensors are computed by biosr: the network
on the whole preprocessed test input, as ``bioimageio.core.test_model`` runs it.
Tools that tile add the halo around each tile and extend the image's own
borders by it (bioimage.io's default, symmetric padding); ``biosr predict``
mirrors a field by the same halo the same way (:data:`biosr.learn.predict.HALO`,
the package's own when it opens one), so the two agree up to the field's edges:
for DFCAN predicted whole (its attention is global), for the U-Net whole or
tiled on its pooling grid.

Written with :mod:`bioimageio.spec` (the ``[bioimageio]`` extra); biosr writes only
the description and the files it lists. biosr reopens its packages from the
state dict and ``biosr.json`` with :func:`biosr.learn.package.read_package`, without
that library.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from biosr import __version__, layout
from biosr.errors import BiosrError, DataError
from biosr.learn.package import CONFIG_FILE, CONFIG_FORMAT, STATE_DICT_FILE, recorded_structure
from biosr.learn.predict import HALO, TRAINING_DATA_KEY

#: Side in input pixels of the test tensors and of the cover's panels (rounded up to a valid
#: input size).
TEST_SIZE = 128
#: Licence of the weights (SPDX): the BioSR data they are trained on are CC BY 4.0.
LICENSE = "CC-BY-4.0"
#: Author named when none is given.
DEFAULT_AUTHOR = "biosr user"
#: File names inside a package (the others, that biosr reads back, are in biosr.learn.package).
TORCHSCRIPT_FILE = "weights_torchscript.pt"
README_FILE = "README.md"
COVER_FILE = "cover.png"
TEST_INPUT_FILE, TEST_OUTPUT_FILE = "test_input.npy", "test_output.npy"
#: Top-level modules a shipped architecture file may import: it must run without biosr.
ALLOWED_IMPORTS = frozenset({"__future__", "torch", "math", "typing"})
#: Tags of every package (the structure's, :func:`structure_tags`, and the network's are added).
TAGS = (
    "super-resolution",
    "widefield",
    "structured-illumination-microscopy",
    "fluorescence-light-microscopy",
    "2d",
    "pytorch",
    "biosr",
)
#: bioimage.io's ``scale_range`` epsilon (its smallest allowed is > 0; biosr adds none).
SCALE_RANGE_EPS = 1e-6
#: Stages of an export, for the progress bar.
STAGES = ("weights", "torchscript", "test tensors", "cover", "package")


class Preprocessing(NamedTuple):
    """How the training patches were normalised: ``"minmax"`` or ``"percentile"``, maybe clipped."""

    method: str = "minmax"
    percentiles: tuple[float, float] = (0.0, 100.0)
    clip: bool = False


#: The build's default: each patch's minimum and maximum to 0 and 1.
MINMAX = Preprocessing()


def _require_bioimageio() -> None:
    try:
        import bioimageio.spec  # noqa: F401
    except ImportError:
        raise BiosrError(
            "bioimageio.spec is not installed; install the extra: pip install 'biosr[bioimageio]'"
        ) from None


def architecture_source(net) -> tuple[str, str, str]:
    """File name, source text and class name of a network's module, checked to import only torch.

    Parameters
    ----------
    net : torch.nn.Module
        A network from :mod:`biosr.learn.models`.

    Returns
    -------
    tuple of str
        ``(file_name, source, class_name)``.

    Raises
    ------
    BiosrError
        If the module imports anything but :data:`ALLOWED_IMPORTS`.
    """
    cls = type(net)
    path = Path(inspect.getsourcefile(cls) or "")
    source = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ["." * node.level + (node.module or "")]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in ALLOWED_IMPORTS:
                raise BiosrError(
                    f"{path}: imports {name}; a model file must import only torch to be "
                    "shipped in a self-contained bioimage.io package"
                )
    return path.name, source, cls.__name__


def structure_tags(structure: layout.Structure) -> list[str]:
    """Tags naming a structure and its modality: lower-case, from the structure's own names.

    Examples
    --------
    >>> structure_tags(layout.get_structure("ER"))
    ['er', 'gi-sim']
    >>> structure_tags(layout.get_structure("F-actin_Nonlinear"))
    ['f-actin', 'nonlinear-sim']
    """
    specimen = structure.name.split("_")[0].lower()  # F-actin_Nonlinear images F-actin
    return [specimen, structure.modality.lower().replace(" ", "-")]


def _bibtex_field(entry: str, name: str) -> str:
    match = re.search(rf"^\s*{name}\s*=\s*[{{\"]+(.*?)[}}\"]+\s*,?\s*$", entry, re.M)
    return match.group(1) if match else ""


def cite_entries(model: str) -> list[dict[str, str]]:
    """``cite`` entries (title and DOI) taken from :mod:`biosr.dataset.citation`.

    The BioSR paper (Qiao et al., Nature Methods 2021) is also the paper that
    introduced DFCAN; for DFCAN its entry says so.

    Examples
    --------
    >>> [e["doi"] for e in cite_entries("unet")]
    ['10.6084/m9.figshare.13264793.v9', '10.1038/s41592-020-01048-5']
    """
    from biosr.dataset.citation import DATASET_BIBTEX, PAPER_BIBTEX

    paper = "BioSR paper, which introduced DFCAN" if model == "dfcan" else "BioSR paper"
    return [
        {"text": f"{_bibtex_field(bib, 'title')} ({role})", "doi": _bibtex_field(bib, "doi")}
        for bib, role in ((DATASET_BIBTEX, "BioSR dataset"), (PAPER_BIBTEX, paper))
    ]


def training_preprocessing(card: dict[str, Any] | None, loader: str = "stored") -> Preprocessing:
    """The normalisation of the training patches: the card's, or the loader's (default min-max).

    A card of ``biosr build`` records ``protocol.normalize`` and ``protocol.percentiles``
    (clipped, as the build clips); other cards (simulated patches, downloads of the
    release) are min-max. `loader` is the data module's ``normalize``: ``"percentile"``
    (:data:`biosr.normalize.PERCENTILES`, unclipped) re-maps every patch and so replaces
    the card's; ``"minmax"`` re-maps patches already min-max (or percentile-clipped to
    [0, 1], so nearly min-max) and keeps the card's, as ``"stored"`` does.

    Examples
    --------
    >>> training_preprocessing({"protocol": {"normalize": "percentile", "percentiles": [1, 99]}})
    Preprocessing(method='percentile', percentiles=(1.0, 99.0), clip=True)
    >>> training_preprocessing(None, "percentile")
    Preprocessing(method='percentile', percentiles=(0.1, 99.9), clip=False)
    """
    from biosr.normalize import PERCENTILES

    if loader == "percentile":
        return Preprocessing("percentile", PERCENTILES)
    protocol = (card or {}).get("protocol")
    protocol = protocol if isinstance(protocol, dict) else {}
    if protocol.get("normalize") == "percentile":
        lo, hi = (float(p) for p in protocol["percentiles"])
        return Preprocessing("percentile", (lo, hi), clip=True)
    return MINMAX


def preprocess(image: np.ndarray, pre: Preprocessing = MINMAX) -> np.ndarray:
    """The package's input preprocessing in numpy (:func:`biosr.normalize.normalize`).

    Examples
    --------
    >>> preprocess(np.array([[100.0, 300.0], [200.0, 500.0]])).tolist()
    [[0.0, 0.5], [0.25, 1.0]]
    """
    from biosr.normalize import normalize

    if pre.method == "minmax":
        return normalize(image, "minmax", clip=pre.clip)
    return normalize(image, "percentile", percentiles=pre.percentiles, clip=pre.clip)


def whole_prediction(net, image: np.ndarray) -> np.ndarray:
    """The network on a whole image, unpadded: how ``test_model`` checks the test tensors."""
    import torch

    x = torch.from_numpy(np.asarray(image, np.float32))[None, None]
    with torch.inference_mode():
        return net(x).float().numpy()[0, 0]


def torchscript(net, *, size: int, step: int) -> bytes:
    """The network as a saved, scripted TorchScript module, checked against the network.

    The script is saved, loaded back and run on a square and a non-square input
    (sides `size` and ``size + step``); it is shipped only if it matches the
    network within 1e-5 on both (TorchScript rejects some Python, sometimes only
    in the saved module). Scripted, not traced: a trace can bake in the shape it
    was traced with.

    Raises
    ------
    BiosrError
        If the network cannot be scripted faithfully.
    """
    import torch

    gen = torch.Generator().manual_seed(0)
    shapes = ((size, size), (size, size + step))
    inputs = [torch.rand(1, 1, h, w, generator=gen) for h, w in shapes]
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            buffer = io.BytesIO()
            torch.jit.save(torch.jit.script(net), buffer)
            reloaded = torch.jit.load(io.BytesIO(buffer.getvalue()), map_location="cpu")
            worst = max(float((reloaded(x) - net(x)).abs().max()) for x in inputs)
        except Exception as exc:  # TorchScript raises many types
            raise BiosrError(
                f"{type(net).__name__}: cannot be scripted with TorchScript "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
    if not worst <= 1e-5:
        raise BiosrError(
            f"{type(net).__name__}: the scripted module differs from the network by {worst:.3g}"
        )
    return buffer.getvalue()


def _sample(
    data: Path | None, size: int, structure: layout.Structure
) -> tuple[np.ndarray, np.ndarray, str]:
    """A WF image of side `size` and its GT: a test pair of `data`, else a simulated cell.

    The pair is the middle one of the test split, over the structure's levels; a
    simulated cell is of `structure`, imaged by its microscope.
    """
    from biosr.io.tiff import read_tiff

    found = layout.pairs(data, "test", structure=structure) if data is not None else []
    if found:
        pair = found[len(found) // 2]
        wf, gt = read_tiff(pair.wf), read_tiff(pair.gt)
        s = max(1, gt.shape[0] // wf.shape[0])
        wf = np.pad(wf, [(0, max(0, size - n)) for n in wf.shape], mode="symmetric")
        gt = np.pad(gt, [(0, max(0, s * size - n)) for n in gt.shape], mode="symmetric")
        level = f"level {pair.level} of {structure.levels[-1]}"
        return wf[:size, :size], gt[: s * size, : s * size], f"`{pair.wf.name}` ({level}) of {data}"
    from biosr.simulate.field import cell_seeds, simulate_field
    from biosr.simulate.microscope import for_structure

    microscope = for_structure(structure)
    clean = simulate_field(size, cell_seeds(0, 0), microscope=microscope, structure=structure).clean
    sample_from = f"a simulated {structure.name} cell (seed 0)"
    return clean.wf.astype(np.float32), clean.gt.astype(np.float32), sample_from


def _montage(path: Path, panels: Sequence[tuple[str, np.ndarray]]) -> None:
    """The cover: WF / prediction / GT side by side (matplotlib, imported here)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise BiosrError(
            "matplotlib is not installed; install the extra: pip install 'biosr[bioimageio]'"
        ) from None
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.3), dpi=100)
    for ax, (title, image) in zip(axes, panels, strict=True):
        lo, hi = np.percentile(image, (0.5, 99.8))
        ax.imshow(image, cmap="magma", vmin=lo, vmax=hi if hi > lo else lo + 1)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


class _Plan(NamedTuple):
    """Everything an export writes, decided before anything is written."""

    loaded: Any
    checkpoint: Path
    data: Path | None
    card: dict[str, Any] | None
    card_from: str
    structure: layout.Structure
    structure_from: str
    training_data: dict[str, Any] | None
    scores: str | None
    name: str
    authors: tuple[str, ...]
    license: str
    halo: int
    step: int
    minimum: int
    size: int
    pre: Preprocessing


def _readme(plan: _Plan, sample_from: str) -> str:
    """The package's README, from the run: training data, recipe, steps, scores, usage."""
    from biosr.dataset.citation import BIBTEX, LICENCE

    loaded, scale, st = plan.loaded, plan.loaded.scale, plan.structure
    hp = dict(loaded.hyper_parameters)
    wf_nm = st.pixel_size_wf_nm
    lo, hi = plan.pre.percentiles
    lines = [
        f"# {plan.name}",
        "",
        f"{type(loaded.net).__name__} trained with biosr {__version__} on BioSR {st.name} "
        f"data ({st.description}; {st.modality}): a widefield (WF) image at {wf_nm:g} nm per "
        f"pixel in, a {st.modality}-like super-resolved image at {wf_nm / scale:g} nm per "
        f"pixel out (scale {scale}).",
        "",
        "## Training data",
        "",
        f"Structure: {st.name}, {st.modality}, {len(st.levels)} signal levels "
        f"({st.levels[0]}..{st.levels[-1]}), {st.frames} raw frames per widefield image "
        f"({plan.structure_from}).",
        "",
    ]
    if plan.card:
        lines += [f"From {plan.card_from}:", ""]
        lines += [
            f"- {key}: {json.dumps(value, default=str)}"
            for key, value in plan.card.items()
            if key != "citation"
        ]
    else:
        lines.append("Not recorded (`biosr export --data DATASET` describes the training data).")
    lines += [
        "",
        "## Recipe",
        "",
        f"- checkpoint: `{plan.checkpoint.name}`, {loaded.global_step} training steps",
        *(f"- {key}: {json.dumps(value, default=str)}" for key, value in hp.items()),
        "",
        "## Input, output and tiling",
        "",
        "- input: one 2-D widefield image (axes batch, channel, y, x) in any intensity units, "
        f"mapped by `scale_range` from its {lo:g}th..{hi:g}th percentile to 0..1"
        + (" and clipped to [0, 1]" if plan.pre.clip else "")
        + ", as the training patches were",
        f"- sizes: y and x at least {plan.minimum} pixels, in steps of {plan.step}",
        f"- halo: {plan.halo} input pixels ({plan.halo * scale} output pixels): tiles "
        "overlap by it, so tiled prediction has no seams",
        f"- test tensors: computed by biosr from {sample_from}",
        "",
        "## Scores",
        "",
        plan.scores.strip() if plan.scores else "No evaluation given (`--scores summary.md`).",
        "",
        "## Use",
        "",
        "- biosr: `biosr predict --checkpoint MODEL.zip --input FIELD.tif --out OUT`",
        "- Fiji: install deepImageJ (Help > Update > Manage update sites: DeepImageJ), then "
        "Plugins > DeepImageJ > DeepImageJ Install Model > From ZIP file (MODEL.zip), open "
        "a widefield image and run Plugins > DeepImageJ > DeepImageJ Run",
        "- napari: `pip install napari-bioimageio`, open the image, load MODEL.zip in the "
        "bioimage.io plugin and run it",
        "- Python: `bioimageio.core.predict(model='MODEL.zip', inputs=image)`",
        "",
        "## Licence and citation",
        "",
        f"Weights: {plan.license}. Data: {LICENCE}. Cite the dataset and the paper:",
        "",
        "```bibtex",
        BIBTEX,
        "```",
        "",
    ]
    return "\n".join(lines)


def _write_files(plan: _Plan, folder: Path, stages: Iterator[str]) -> dict[str, Any]:
    """Write the package's files into `folder`; return what the description needs of them."""
    import torch

    net = plan.loaded.net.eval()
    next(stages)
    arch_file, arch_source, arch_class = architecture_source(net)
    (folder / arch_file).write_text(arch_source, encoding="utf-8")
    torch.save(net.state_dict(), folder / STATE_DICT_FILE)
    hp = dict(plan.loaded.hyper_parameters)
    config = {
        "format": CONFIG_FORMAT,
        "biosr_version": __version__,
        "checkpoint": plan.checkpoint.name,
        "global_step": plan.loaded.global_step,
        "hyper_parameters": hp,
        "state_dict": STATE_DICT_FILE,
        "halo": plan.halo,
        TRAINING_DATA_KEY: plan.training_data,
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str) + "\n")
    next(stages)
    (folder / TORCHSCRIPT_FILE).write_bytes(torchscript(net, size=plan.size, step=plan.step))
    next(stages)
    wf, gt, sample_from = _sample(plan.data, plan.size, plan.structure)
    pred = whole_prediction(net, preprocess(wf, plan.pre))
    np.save(folder / TEST_INPUT_FILE, wf[None, None].astype(np.float32))
    np.save(folder / TEST_OUTPUT_FILE, pred[None, None].astype(np.float32))
    next(stages)
    if gt.shape != pred.shape:
        from skimage.transform import resize

        gt = resize(gt, pred.shape, order=1, anti_aliasing=True)
    gt_title = f"GT ({plan.structure.modality})"
    _montage(folder / COVER_FILE, [("widefield", wf), ("prediction", pred), (gt_title, gt)])
    (folder / README_FILE).write_text(_readme(plan, sample_from), encoding="utf-8")
    kwargs = {"scale": plan.loaded.scale, **dict(hp.get("model_options") or {})}
    return {"arch_file": arch_file, "arch_class": arch_class, "kwargs": kwargs}


def _micrometres(nm: float) -> float:
    """`nm` in micrometres, rounded to 12 digits (``0.0604``, not ``0.060399999999999995``)."""
    return float(f"{nm / 1000:.12g}")


def _description(plan: _Plan, folder: Path, files: dict[str, Any]):
    """The bioimage.io ModelDescr (format 0.5) of the files in `folder`."""
    import torch
    from bioimageio.spec.generic.v0_3 import Author, CiteEntry
    from bioimageio.spec.model import v0_5 as bio

    scale, st = plan.loaded.scale, plan.structure
    um_in = _micrometres(st.pixel_size_wf_nm)
    um_out = um_in / scale  # so that bioimage.io infers the input's halo as an integer
    size_in = bio.ParameterizedSize(min=plan.minimum, step=plan.step)
    y, x = bio.AxisId("y"), bio.AxisId("x")
    steps: list = [
        bio.EnsureDtypeDescr(kwargs=bio.EnsureDtypeKwargs(dtype="float32")),
        bio.ScaleRangeDescr(
            kwargs=bio.ScaleRangeKwargs(
                axes=[y, x],
                min_percentile=plan.pre.percentiles[0],
                max_percentile=plan.pre.percentiles[1],
                eps=SCALE_RANGE_EPS,
            )
        ),
    ]
    if plan.pre.clip:
        steps.append(bio.ClipDescr(kwargs=bio.ClipKwargs(min=0.0, max=1.0)))
    inputs = bio.InputTensorDescr(
        id=bio.TensorId("input"),
        description=(
            f"widefield image (mean of the {st.frames} raw SIM frames), any intensity units"
        ),
        axes=[
            bio.BatchAxis(),
            bio.ChannelAxis(channel_names=[bio.Identifier("widefield")]),
            *(
                bio.SpaceInputAxis(id=a, size=size_in, unit="micrometer", scale=um_in)
                for a in (y, x)
            ),
        ],
        test_tensor=bio.FileDescr(source=folder / TEST_INPUT_FILE),
        preprocessing=steps,
    )
    outputs = bio.OutputTensorDescr(
        id=bio.TensorId("output"),
        description=f"super-resolved image, {st.pixel_size_wf_nm / scale:g} nm per pixel",
        axes=[
            bio.BatchAxis(),
            bio.ChannelAxis(channel_names=[bio.Identifier("super_resolved")]),
            *(
                bio.SpaceOutputAxisWithHalo(
                    id=a,
                    size=bio.SizeReference(tensor_id=bio.TensorId("input"), axis_id=a),
                    unit="micrometer",
                    scale=um_out,
                    halo=plan.halo * scale,
                )
                for a in (y, x)
            ),
        ],
        test_tensor=bio.FileDescr(source=folder / TEST_OUTPUT_FILE),
    )
    torch_version = bio.Version(torch.__version__.split("+")[0])
    weights = bio.WeightsDescr(
        pytorch_state_dict=bio.PytorchStateDictWeightsDescr(
            source=folder / STATE_DICT_FILE,
            architecture=bio.ArchitectureFromFileDescr(
                source=folder / files["arch_file"],
                callable=bio.Identifier(files["arch_class"]),
                kwargs=files["kwargs"],
            ),
            pytorch_version=torch_version,
        ),
        torchscript=bio.TorchscriptWeightsDescr(
            source=folder / TORCHSCRIPT_FILE,
            pytorch_version=torch_version,
            parent="pytorch_state_dict",
        ),
    )
    model = plan.loaded.name
    return bio.ModelDescr(
        name=plan.name,
        description=(
            f"{type(plan.loaded.net).__name__} (scale {scale}): widefield to {st.modality}-like "
            f"super-resolution of BioSR {st.name} ({st.description}), trained with biosr"
        ),
        authors=[Author(name=a) for a in plan.authors],
        cite=[CiteEntry(**c) for c in cite_entries(model)],
        license=plan.license,
        tags=[*TAGS, *structure_tags(st), model],
        documentation=bio.FileDescr(source=folder / README_FILE),
        covers=[bio.FileDescr(source=folder / COVER_FILE)],
        attachments=[bio.FileDescr(source=folder / CONFIG_FILE)],
        inputs=[inputs],
        outputs=[outputs],
        weights=weights,
        version=__version__,
    )


def default_name(network: str, scale: int, structure: layout.Structure) -> str:
    """A package's name unless one is given: the network, its scale, the structure, its modality.

    Examples
    --------
    >>> default_name("DFCAN", 3, layout.get_structure("F-actin_Nonlinear"))
    'BioSR DFCAN x3 F-actin_Nonlinear (nonlinear SIM)'
    """
    return f"BioSR {network} x{scale} {structure.name} ({structure.modality})"


def _dataset(
    data: Path, checkpoint: Path, structure: layout.Structure | None
) -> tuple[Path, dict[str, Any] | None]:
    """The dataset folder `data` names (of `structure` under a root) and its card.

    Raises
    ------
    DataError
        No dataset at `data`, or one of another structure than the checkpoint records.
    """
    from biosr.dataset.manifest import read_card

    try:
        folder = layout.dataset_dir(data, structure=structure)
    except FileNotFoundError as exc:
        try:  # a dataset of another structure is named as such, below
            folder = layout.dataset_dir(data)
        except FileNotFoundError:
            raise DataError(str(exc)) from None
    found = layout.structure_of(folder)
    if structure is not None and found.name != structure.name:
        raise DataError(
            f"{data}: a {found.name} dataset, but {checkpoint} was trained on {structure.name}; "
            f"pass its {structure.name} dataset or leave out --data"
        )
    return folder, read_card(folder)


#: The structure line of a ``summary.md`` of ``biosr evaluate``.
_SCORES_STRUCTURE = re.compile(r"^Structure \*\*([^*]+)\*\*", re.M)


def _check_scores(scores, text: str | None, structure: layout.Structure) -> None:
    """DataError if the scores name another structure than the model's (other levels)."""
    match = _SCORES_STRUCTURE.search(text or "")
    if match and match.group(1) != structure.name:
        raise DataError(
            f"{scores}: scores of {match.group(1)}, but the model is of {structure.name}; "
            f"pass the summary.md of this checkpoint's evaluation on {structure.name}"
        )


def _plan(checkpoint, out, data, scores, name, authors, license, halo, test_size) -> _Plan:
    """Check every input and load the checkpoint: all the user's mistakes are found here."""
    from biosr.learn.predict import load_model, training_record

    if not out.parent.is_dir():
        raise BiosrError(f"{out}: folder {out.parent} does not exist; create it first")
    if out.is_dir():
        raise BiosrError(f"{out}: is a folder; give the path of the .zip to write")
    if halo < 1 or test_size < 1:
        raise BiosrError(f"halo and test size must be at least 1, got {halo} and {test_size}")
    if not authors:
        raise BiosrError("a package needs at least one author")
    _require_bioimageio()
    scores_text = None
    if scores is not None:
        try:
            scores_text = Path(scores).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BiosrError(f"{scores}: cannot read the scores ({type(exc).__name__})") from None
    loaded = load_model(checkpoint)
    record = dict(loaded.training_data or {})
    loader = str(record.get("normalize", "stored"))
    structure = recorded_structure(loaded.hyper_parameters, record, source=checkpoint)
    structure_from = "as the checkpoint records"
    card, card_from = None, ""
    if data is not None:  # --data: the given dataset, with the recorded loader normalisation
        folder, card = _dataset(Path(data), checkpoint, structure)
        card_from = f"the dataset card of `{data}`"
        record, data = training_record(folder, loader), folder
    elif record:
        card = record.get("card") if isinstance(record.get("card"), dict) else None
        card_from = f"the checkpoint's record of its training data (`{record.get('path')}`)"
        recorded = Path(str(record.get("path", "")))
        data = recorded if record.get("path") and recorded.is_dir() else None
    if structure is None and data is not None:  # --data, or the recorded folder still there
        structure, structure_from = layout.structure_of(data), f"from the dataset `{data}`"
    if structure is None:
        structure = layout.get_structure()
        structure_from = "the default: the checkpoint records none (`--data DATASET` names it)"
    _check_scores(scores, scores_text, structure)
    step = int(getattr(loaded.net, "size_multiple", 1))
    halo = math.ceil(halo / step) * step
    minimum = 2 * halo + step
    size = minimum + max(0, math.ceil((test_size - minimum) / step)) * step
    return _Plan(
        loaded=loaded,
        checkpoint=checkpoint,
        data=data,
        card=card,
        card_from=card_from,
        structure=structure,
        structure_from=structure_from,
        training_data=record or None,
        scores=scores_text,
        name=name or default_name(type(loaded.net).__name__, loaded.scale, structure),
        authors=tuple(authors),
        license=license,
        halo=halo,
        step=step,
        minimum=minimum,
        size=size,
        pre=training_preprocessing(card, loader),
    )


def export(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str] | None = None,
    scores: str | os.PathLike[str] | None = None,
    name: str | None = None,
    authors: Sequence[str] = (DEFAULT_AUTHOR,),
    license: str = LICENSE,
    halo: int = HALO,
    test_size: int = TEST_SIZE,
    progress: bool = False,
) -> Path:
    """Write a checkpoint as a bioimage.io model package (zip, format 0.5), atomically.

    Parameters
    ----------
    checkpoint : path-like
        A ``.ckpt`` from :func:`biosr.learn.train.train` (unpickled: only trusted
        files), or a package of this function (exported again).
    out : path-like
        The package to write (``.zip``); its folder must exist. It is written under a
        temporary name and renamed, so no half-written package is ever left.
    data : path-like, optional
        The dataset the model was trained on: its card goes into the README, its
        normalisation into the preprocessing, a test pair into the test tensors and
        the cover. Default: what the checkpoint records of its training data (a
        test pair of that folder where it still exists, else a simulated cell);
        for a checkpoint that records none, a simulated cell and min-max
        normalisation. Under a root holding several structures, the one the
        checkpoint records; a dataset of another structure is refused.
    scores : path-like, optional
        The ``summary.md`` of ``biosr evaluate`` of this checkpoint (per-level
        scores), copied into the README; one that names another structure is refused.
    name : str, optional
        Model name (default :func:`default_name`:
        ``"BioSR <Network> x<scale> <Structure> (<modality>)"``).
    authors : sequence of str
        The model's authors (default :data:`DEFAULT_AUTHOR`).
    license : str
        SPDX licence of the weights (default :data:`LICENSE`, as the data).
    halo : int
        Context in input pixels each tile needs (default :data:`HALO`; rounded up
        to the network's size step).
    test_size : int
        Side of the test input in pixels (default :data:`TEST_SIZE`; rounded up to
        a valid size).
    progress : bool
        Show a progress bar over the stages.

    Returns
    -------
    Path
        The package.

    Raises
    ------
    BiosrError
        A missing, truncated or foreign checkpoint, a missing output folder, a
        missing extra, metadata bioimage.io rejects (name, licence); DataError for
        data or scores of another structure than the checkpoint's.
    """
    from pydantic import ValidationError

    from biosr._progress import bar
    from biosr.io.atomic import atomic_path

    out = Path(out)
    plan = _plan(Path(checkpoint), out, data, scores, name, authors, license, halo, test_size)
    stages = bar(STAGES, enabled=progress, total=len(STAGES), desc="export", unit="stage")
    with tempfile.TemporaryDirectory(prefix=".biosr-export-") as tmp:
        folder = Path(tmp)
        files = _write_files(plan, folder, stages)
        try:
            descr = _description(plan, folder, files)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise BiosrError(f"{out}: bioimage.io rejects the {where}: {first['msg']}") from None
        next(stages)
        _save(descr, out, atomic_path)
    for _ in stages:  # close the bar
        pass
    return out


def _save(descr, out: Path, atomic_path) -> None:
    """Zip the package under a temporary name next to `out`, then rename it to `out`."""
    from bioimageio.spec import save_bioimageio_package

    with atomic_path(out) as tmp:
        # bioimage.io names the zip after its output path's suffix: keep ".zip" last.
        target = Path(tmp).with_name(Path(tmp).name + ".zip")
        try:
            save_bioimageio_package(descr, output_path=target)
            os.replace(target, tmp)
        finally:
            target.unlink(missing_ok=True)
