"""The ``biosr`` command: argument parsing only; each subcommand calls one library function.

Library functions return values and raise :class:`biosr.errors.BiosrError`
(or OSError) for problems with the user's input; this module prints, turns
those into one line on stderr and exit code 1, and an interrupt into exit
code 130. Heavy modules are imported inside the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from biosr import __version__, _args, layout
from biosr._parallel import DEFAULT_WORKERS
from biosr._progress import close_bars
from biosr.errors import BiosrError
from biosr.io.owner import FORCE_HELP

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _levels(text: str) -> list[int]:
    """Parse ``1,5,9`` or ``1-9`` into a list of levels, for argparse."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected levels such as 9, 1,5,9 or 1-9; got {text!r}"
            ) from None
        if last < first:
            raise argparse.ArgumentTypeError(f"the range {part} is reversed; write {hi}-{lo}")
        out.extend(range(first, last + 1))
    # Any structure's level passes here; the command checks them against its structure's.
    try:
        return [layout.check_level(v, structure=layout.WIDEST) for v in out]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_structure(p: argparse.ArgumentParser, *, default_help: str | None = None) -> None:
    """Add ``--structure NAME`` (one of :data:`biosr.layout.STRUCTURES`; None: the default)."""
    p.add_argument(
        "--structure",
        choices=tuple(layout.STRUCTURES),
        default=None,
        metavar="NAME",
        help=(
            f"BioSR structure: {', '.join(layout.STRUCTURES)} "
            f"(default: {default_help or layout.DEFAULT_STRUCTURE})"
        ),
    )


# --------------------------------------------------------------------------- #
# cite, info, verify
# --------------------------------------------------------------------------- #


def _add_cite(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cite",
        help="print the data's licence (CC BY 4.0) and the BibTeX to cite",
        description="Print the licence of the BioSR data and both BibTeX entries to cite.",
    )
    p.set_defaults(func=_run_cite)


def _run_cite(args: argparse.Namespace) -> int:
    from biosr.dataset.citation import citation_text

    print(citation_text(), end="")
    return EXIT_OK


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="counts, shapes, value statistics and size on disk of a dataset copy",
        description="Summarise a dataset copy: pairs per split and level, image shape and "
        "dtype, value statistics (from a sample of files) and size on disk.",
    )
    p.add_argument("root", type=Path, help="folder containing BioSR/, or a dataset folder")
    p.add_argument(
        "--sample",
        type=_args.positive_int,
        default=64,
        help="files read per split for statistics (default 64)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_structure(p, default_help="Microtubules, or the only structure under ROOT/BioSR")
    p.set_defaults(func=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    import json

    from biosr.dataset.info import dataset_info, format_info

    info = dataset_info(args.root, sample=args.sample, structure=args.structure)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return EXIT_OK


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="check a dataset copy: layout, pairing, counts, shapes, dtype, values, checksums",
        description="Check a dataset copy and report every problem as `path: reason`, then a "
        "summary table. Exit status 1 if anything is wrong. Without --deep, every file's "
        "presence, name and size are checked and a sample is read; with --deep every file "
        "is read and, when a manifest is present, its sha256 checked.",
    )
    p.add_argument("root", type=Path, help="folder containing BioSR/, or a dataset folder")
    p.add_argument(
        "--expect",
        choices=("consistent", "published"),
        default="consistent",
        help="counts to demand: 'published' = the structure's full DL-SR counts "
        "(Microtubules: the published 41,040 / 2,160 / 150 per level); "
        "'consistent' (default) = any count, the same at every test level",
    )
    p.add_argument(
        "--split",
        dest="splits",
        action="append",
        choices=layout.SPLITS,
        help="split that must be present; repeat for several (default: all three). "
        "Splits present but not named are still checked",
    )
    p.add_argument("--deep", action="store_true", help="read every file and check checksums")
    p.add_argument(
        "--sample",
        type=_args.non_negative_int,
        default=32,
        help="files read per folder without --deep (default 32)",
    )
    p.add_argument("--seed", type=_args.seed, default=0, help="seed of the sample (default 0)")
    p.add_argument("--quiet", "-q", action="store_true", help="print problems only, no table")
    _add_structure(
        p,
        default_help="Microtubules, or the only structure under ROOT/BioSR; the checks follow "
        "the structure its dataset card names",
    )
    p.set_defaults(func=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from biosr.dataset.verify import format_report, verify

    report = verify(
        args.root,
        expect=args.expect,
        splits=args.splits,
        deep=args.deep,
        sample=args.sample,
        seed=args.seed,
        progress=True,
        structure=args.structure,
    )
    print(format_report(report, table=not args.quiet))
    return EXIT_OK if report.ok else EXIT_ERROR


# --------------------------------------------------------------------------- #
# build
# --------------------------------------------------------------------------- #


def _add_build(sub: argparse._SubParsersAction) -> None:
    from biosr.build.options import DEFAULT_PRESET, GT_SCALES, PRESETS
    from biosr.normalize import NORMALIZATIONS

    p = sub.add_parser(
        "build",
        help="cut the original BioSR release (MRC cells or <Structure>.zip) into the dataset",
        description="Reproduce the published dataset from the original BioSR release with the "
        "authors' (DL-SR) protocol: WF = mean of the raw frames of a level (9; 25 for "
        "nonlinear SIM), GT = the SIM GT (SIM_gt.mrc; ER: the level's GTSIM; nonlinear: "
        "SIM_gt_a.mrc), crop centres from the GT foreground mask, 4 flips, random integer "
        "rotation, per-patch min-max to [0, 1]. Writes a manifest (provenance + sha256 per "
        "file) and a dataset card, which records what the release's headers say of the "
        "table's uncertain facts (printed after the build). Deterministic for any --workers; "
        "an interrupted build resumes where it stopped. "
        "Cell lists take ranges or comma lists (6-35, 1,3,5).",
    )
    p.add_argument(
        "--source",
        type=Path,
        required=True,
        help="folder of Cell_XXX folders, its parent holding <Structure>/, or <Structure>.zip",
    )
    p.add_argument("--out", type=Path, required=True, help="root to write BioSR/<Structure> under")
    _add_structure(p)
    p.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=DEFAULT_PRESET,
        help=f"protocol preset (default {DEFAULT_PRESET}): "
        + "; ".join(
            f"{name} {c['training']:,} / {c['validate']:,} / {c['test']:,}x{len(layout.LEVELS)} "
            f"pairs from {len(opts.all_cells())} cells"
            for name, opts in PRESETS.items()
            for c in (opts.counts(),)
        )
        + f" (for {layout.DEFAULT_STRUCTURE}; other structures: their levels and crops)",
    )
    p.add_argument(
        "--seed", type=_args.seed, default=0, help="seed of every random choice (default 0)"
    )
    p.add_argument(
        "--workers",
        type=_args.workers,
        default=DEFAULT_WORKERS,
        help=f"processes, one cell each (default {DEFAULT_WORKERS})",
    )
    for split in layout.SPLITS:
        p.add_argument(f"--{split}-cells", metavar="CELLS", help=f"cells of the {split} split")
    for split in layout.SPLITS:
        what = "per cell" if split == "test" else "per cell, level and flip"
        p.add_argument(
            f"--{split}-crops",
            type=_args.positive_int,
            metavar="N",
            help=f"{split} crops {what}",
        )
    p.add_argument(
        "--gt-scale",
        type=int,
        choices=GT_SCALES,
        help="1: GT binned onto the WF grid, 128/128 (default); the structure's native scale: "
        "DL-SR's pairs, 2 (128/256) or 3 for F-actin_Nonlinear (128/384)",
    )
    p.add_argument(
        "--patch-size",
        type=_args.positive_int,
        metavar="N",
        help=f"side of a WF patch in pixels, even (default {layout.PATCH_SIZE}); "
        "the dataset card records it and verify checks it",
    )
    p.add_argument(
        "--normalize",
        choices=NORMALIZATIONS,
        help=f"per-patch normalisation (default {PRESETS[DEFAULT_PRESET].normalize}; "
        "percentile is clipped to [0, 1]; stored keeps camera counts)",
    )
    p.add_argument("--no-rotate", action="store_true", help="no random rotation of crops")
    p.add_argument(
        "--overwrite", action="store_true", help="replace a different dataset already at --out"
    )
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument(
        "--sim-baseline",
        type=Path,
        default=None,
        metavar="DIR",
        help="also reconstruct the test cells (conventional SIM) into this prediction folder, "
        "for `biosr evaluate` as method sim (an extracted --source only)",
    )
    p.set_defaults(func=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    from biosr.build.builder import build

    options = {
        name: getattr(args, name)
        for name in (
            *(f"{s}_cells" for s in layout.SPLITS),
            *(f"{s}_crops" for s in layout.SPLITS),
            "gt_scale",
            "patch_size",
            "normalize",
            "structure",
        )
    }
    if args.no_rotate:
        options["rotate"] = False
    if args.sim_baseline is not None:
        from biosr.evaluate.sim_baseline import build_with_sim_baseline

        dataset, sim = build_with_sim_baseline(
            args.source,
            args.out,
            args.sim_baseline,
            preset=args.preset,
            seed=args.seed,
            workers=args.workers,
            progress=True,
            overwrite=args.overwrite,
            force=args.force,
            **options,
        )
        print(f"built {dataset}; sim predictions in {sim}")
        _print_checks(dataset)
        return EXIT_OK
    dataset = build(
        args.source,
        args.out,
        preset=args.preset,
        seed=args.seed,
        workers=args.workers,
        progress=True,
        overwrite=args.overwrite,
        force=args.force,
        **options,
    )
    print(f"built {dataset}")
    _print_checks(dataset)
    return EXIT_OK


def _print_checks(dataset: Path) -> None:
    """Print what the build found of the table's uncertain facts (from the dataset card)."""
    from biosr.build.source import describe_checks
    from biosr.dataset.manifest import read_card

    card = read_card(dataset) or {}
    for line in describe_checks(card.get("structure"), card.get("checked")):
        print(f"checked {line}")


# --------------------------------------------------------------------------- #
# evaluate, baseline
# --------------------------------------------------------------------------- #


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    from biosr.evaluate.scoring import PROTOCOLS

    p = sub.add_parser(
        "evaluate",
        help="score prediction folders on the test split, level by level (tables, plots)",
        description="Score predictions (TIFFs mirroring test_wf/level_XX/NNN.tif) against the "
        "test GT at every level: PSNR, SSIM, MS-SSIM (3 scales), NRMSE and a decorrelation "
        "resolution in nm. Writes per_image.csv, summary.json, summary.md, plot_<metric>.png, "
        "montage.png and report.html to --out. Missing, extra, wrongly shaped or non-finite "
        "predictions are each named; a level with missing images is reported incomplete, "
        "never averaged. Exit status 1 if any prediction was missing or bad.",
    )
    p.add_argument("--data", type=Path, required=True, help="dataset root (holds BioSR/)")
    p.add_argument(
        "--predictions",
        nargs="+",
        required=True,
        metavar="[NAME=]DIR",
        help="prediction folders; a folder's name is the method's name unless NAME= is given",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="report folder (created; an earlier report there is replaced whole)",
    )
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=PROTOCOLS[0],
        help="dlsr (default): both min-max normalised, data range 1, as the BioSR authors; "
        "care: GT percentile-normalised, prediction affinely fitted to it",
    )
    p.add_argument("--levels", type=_levels, default=None, help="levels, e.g. 9 or 1,5,9 or 1-9")
    p.add_argument(
        "--workers",
        type=_args.workers,
        default=DEFAULT_WORKERS,
        help=f"scoring processes (default {DEFAULT_WORKERS})",
    )
    p.add_argument("--no-plots", action="store_true", help="skip PNGs and HTML (no matplotlib)")
    _add_structure(p, default_help="Microtubules, or the only structure under --data")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from biosr.evaluate.evaluation import evaluate, parse_prediction_specs

    results = evaluate(
        args.data,
        parse_prediction_specs(args.predictions),
        args.out,
        protocol=args.protocol,
        levels=args.levels,
        structure=args.structure,
        workers=args.workers,
        plots=not args.no_plots,
        progress=True,
        force=args.force,
    )
    print(results.markdown(), end="")
    print(f"report: {args.out} ({', '.join(p.name for p in results.files.values())})")
    return EXIT_OK if results.ok else EXIT_ERROR


def _add_baseline(sub: argparse._SubParsersAction) -> None:
    from biosr.evaluate.baselines import BASELINES, RL_ITERATIONS

    p = sub.add_parser(
        "baseline",
        help="write reference predictions of the test split: wf, bicubic, rl, sim",
        description="Write a baseline's predictions of the test split as TIFFs mirroring "
        "test_wf/level_XX/NNN.tif (on the GT grid), for `biosr evaluate`. wf: the input "
        "(pixels replicated when the GT is 2x); bicubic: order-3 resize to the GT grid; rl: "
        "Richardson-Lucy with the widefield Airy PSF (525 nm, NA 1.3); sim: conventional SIM "
        "of the raw release (--release), cut as the builder cut the GT.",
    )
    p.add_argument("name", choices=BASELINES, help="which baseline")
    p.add_argument("--data", type=Path, required=True, help="dataset root (holds BioSR/)")
    p.add_argument("--out", type=Path, required=True, help="prediction folder to create")
    p.add_argument(
        "--release",
        type=Path,
        default=None,
        help="sim only: the extracted original release the dataset was built from",
    )
    p.add_argument(
        "--iterations",
        type=_args.positive_int,
        default=RL_ITERATIONS,
        help=f"Richardson-Lucy iterations (rl only; default {RL_ITERATIONS})",
    )
    p.add_argument("--levels", type=_levels, default=None, help="levels, e.g. 9 or 1,5,9 or 1-9")
    p.add_argument(
        "--workers",
        type=_args.workers,
        default=DEFAULT_WORKERS,
        help=f"processes (default {DEFAULT_WORKERS})",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing predictions")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    _add_structure(p, default_help="Microtubules, or the only structure under --data")
    p.set_defaults(func=_run_baseline)


def _run_baseline(args: argparse.Namespace) -> int:
    from biosr.evaluate.baselines import run_baseline

    out = run_baseline(
        args.name,
        args.data,
        args.out,
        levels=args.levels,
        iterations=args.iterations,
        workers=args.workers,
        overwrite=args.overwrite,
        force=args.force,
        progress=True,
        release=args.release,
        structure=args.structure,
    )
    print(f"{args.name} predictions written to {out}")
    return EXIT_OK


# --------------------------------------------------------------------------- #
# reconstruct
# --------------------------------------------------------------------------- #


def _add_reconstruct(sub: argparse._SubParsersAction) -> None:
    from biosr.optics import OTF_KINDS
    from biosr.reconstruct import wiener

    p = sub.add_parser(
        "reconstruct",
        help="2-D linear SIM reconstruction of raw stacks (a file or a release folder)",
        description="Reconstruct raw 2-D SIM stacks (9 frames, 3 orientations x 3 phases in "
        "BioSR's order; MRC in BioSR's dialect or TIFF): illumination estimated per stack by "
        "band cross-correlation (or fixed with --params), generalised Wiener filter with the "
        "authors' settings. Writes OUT/NAME.tif (float32, 2x grid, with its pixel size) and "
        "OUT/NAME.json (the parameters); a release folder's Cell_XXX/RawSIMData_level_YY.mrc "
        "are mirrored under OUT. Deterministic for any --workers.",
    )
    p.add_argument("input", type=Path, help="raw stack (.mrc/.tif) or release folder")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--params", type=Path, default=None, help="fixed parameters (a JSON this command wrote)"
    )
    p.add_argument(
        "--otf", choices=OTF_KINDS, default=OTF_KINDS[0], help="detection OTF (default measured)"
    )
    p.add_argument(
        "--wiener",
        type=_args.positive_float,
        default=wiener.WIENER,
        help=f"Wiener constant (default {wiener.WIENER})",
    )
    p.add_argument(
        "--apodization",
        choices=wiener.APODIZATIONS,
        default=wiener.APODIZATION,
        help=f"apodisation to the extended cutoff (default {wiener.APODIZATION})",
    )
    p.add_argument(
        "--notch-attenuation",
        type=_args.probability,
        default=wiener.NOTCH_ATTENUATION,
        help=f"depth of each band's notch, 0-1 (default {wiener.NOTCH_ATTENUATION})",
    )
    p.add_argument(
        "--notch-radius",
        type=_args.positive_float,
        default=wiener.NOTCH_RADIUS,
        help=f"notch width in cycles/nm (default {wiener.NOTCH_RADIUS:.3g})",
    )
    p.add_argument(
        "--modulation",
        type=_args.positive_float,
        default=wiener.BIOSR_MODULATION,
        help=f"modulation weighting the side bands (default {wiener.BIOSR_MODULATION}, the "
        "authors'); --estimated-modulation uses each stack's estimate instead",
    )
    p.add_argument(
        "--estimated-modulation",
        dest="modulation",
        action="store_const",
        const=None,
        help="weight the side bands with the estimated modulation",
    )
    p.add_argument(
        "--pixel-size",
        type=_args.positive_float,
        default=None,
        help=f"raw pixel size in nm (default: the MRC header's, else {layout.PIXEL_SIZE_WF_NM})",
    )
    p.add_argument(
        "--workers",
        type=_args.workers,
        default=DEFAULT_WORKERS,
        help=f"processes (default {DEFAULT_WORKERS})",
    )
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.set_defaults(func=_run_reconstruct)


def _run_reconstruct(args: argparse.Namespace) -> int:
    from biosr.reconstruct.files import reconstruct_files

    written = reconstruct_files(
        args.input,
        args.out,
        params_file=args.params,
        pixel_size_nm=args.pixel_size,
        otf_kind=args.otf,
        wiener=args.wiener,
        apodization=args.apodization,
        notch_attenuation=args.notch_attenuation,
        notch_radius=args.notch_radius,
        modulation=args.modulation,
        workers=args.workers,
        force=args.force,
        progress=True,
    )
    print(f"reconstructed {len(written)} stack(s) into {args.out}")
    return EXIT_OK


# --------------------------------------------------------------------------- #
# download
# --------------------------------------------------------------------------- #


def _add_download(sub: argparse._SubParsersAction) -> None:
    from biosr.acquire.http import RETRIES

    p = sub.add_parser(
        "download",
        help="get the published data (git, only the splits asked), the original release "
        "(figshare) or a mirror archive; then verify it",
        description="Download BioSR data into ROOT and verify what arrived. "
        "--source git (default): a partial, shallow clone of the published Microtubules copy "
        "with only the requested splits checked out (--split test is ~100 MB of ~11.8 GB); "
        "re-running resumes or adds splits. --source figshare: a structure's original "
        "release archive (Microtubules.zip, or ER.zip ... with --structure; for `biosr "
        "build`), checksum verified. --source URL|PATH: a zip or tar of the layout, "
        "downloaded with resume and retries, extracted safely under ROOT/BioSR/<structure>.",
    )
    p.add_argument("root", type=Path, help="destination folder (the dataset lands in ROOT/BioSR)")
    p.add_argument(
        "--split",
        dest="splits",
        action="append",
        choices=layout.SPLITS,
        help="split to get; repeat for several (default: all)",
    )
    p.add_argument(
        "--source",
        default="git",
        help="'git' (default), 'figshare', or the URL or path of a zip/tar archive",
    )
    p.add_argument(
        "--sha256",
        "--hash",
        dest="known_hash",
        metavar="HASH",
        help="expected checksum of an archive: hex sha256, or 'md5:HEX' / 'sha256:HEX'",
    )
    p.add_argument(
        "--git-url",
        help="repository for --source git: a mirror or file://... (default: $BIOSR_GIT_URL, "
        "else the published copy)",
    )
    p.add_argument("--deep", action="store_true", help="verify by reading every file")
    p.add_argument(
        "--keep-archive", action="store_true", help="keep a downloaded archive after extracting"
    )
    p.add_argument(
        "--retries",
        type=_args.non_negative_int,
        default=RETRIES,
        help=f"HTTP retries after a dropped connection ({RETRIES})",
    )
    _add_structure(p)
    p.set_defaults(func=_run_download)


def _run_download(args: argparse.Namespace) -> int:
    from biosr.acquire.download import fetch
    from biosr.dataset.verify import format_report

    got = fetch(
        args.root,
        splits=args.splits,
        source=args.source,
        structure=args.structure,
        known_hash=args.known_hash,
        git_url=args.git_url,
        deep=args.deep,
        keep_archive=args.keep_archive,
        retries=args.retries,
        progress=True,
    )
    where = f" at {got.revision}" if got.revision else ""
    print(f"downloaded from {got.source}{where}: {got.path}")
    if got.report is None:
        named = f" --structure {args.structure}" if args.structure else ""
        print(f"checksum OK; next: biosr build --source {got.path}{named} --out OUT")
        return EXIT_OK
    print(format_report(got.report))
    return EXIT_OK if got.report.ok else EXIT_ERROR


# --------------------------------------------------------------------------- #
# pack
# --------------------------------------------------------------------------- #


def _add_pack(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pack",
        help="pack each split (and test level) into one memory-mapped array for fast loading",
        description="Write each split (and test level) of a dataset copy into one "
        f"memory-mappable .npy plus an index JSON, under {layout.PACK_DIR}/ in the "
        "dataset folder (BioSR/<structure>). Fresh groups are kept; groups whose source files "
        "changed (size or mtime) are rebuilt. biosr.learn.data.BioSR then reads them "
        "(cache='auto').",
    )
    p.add_argument("root", type=Path, help="folder containing BioSR/, or a dataset folder")
    p.add_argument(
        "--split",
        dest="splits",
        action="append",
        choices=layout.SPLITS,
        help="split to pack; repeat for several (default: every split on disk)",
    )
    _add_structure(p, default_help="Microtubules, or the only structure under ROOT")
    p.add_argument(
        "--level", type=_levels, default=None, help="test levels, e.g. 1,5,9 or 1-9 (default all)"
    )
    p.add_argument("--force", action="store_true", help="rebuild even fresh groups")
    p.add_argument(
        "--status", action="store_true", help="only report which groups are fresh, stale, missing"
    )
    p.set_defaults(func=_run_pack)


def _run_pack(args: argparse.Namespace) -> int:
    from biosr.dataset.pack import pack, status

    if args.status:
        for group, state in status(
            args.root, args.splits, args.level, structure=args.structure
        ).items():
            print(f"{group:18s} {state}")
        return EXIT_OK
    for done in pack(
        args.root,
        splits=args.splits,
        level=args.level,
        force=args.force,
        progress=True,
        structure=args.structure,
    ):
        shape = " x ".join(str(n) for n in done.shape)
        print(f"{done.group:18s} {shape:18s} {'packed' if done.rebuilt else 'fresh'}")
    return EXIT_OK


# --------------------------------------------------------------------------- #
# train, predict
# --------------------------------------------------------------------------- #


def _devices(text: str) -> int | str:
    """``--devices``: a positive count or ``auto``, for argparse."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive count or 'auto', got {text!r}")
    return value


def _add_train(sub: argparse._SubParsersAction) -> None:
    from biosr.learn.models import MODELS
    from biosr.learn.reader import CACHE_MODES

    p = sub.add_parser(
        "train",
        help="train DFCAN or the U-Net (Lightning; checkpoints, resume, DDP)",
        description="Train a super-resolution network on a dataset copy by a recipe: the "
        "BioSR authors' by default (--recipe dlsr: Adam 1e-4, MSE + 0.1 x (1 - SSIM), "
        "learning rate halved on a validation-NRMSE plateau, best checkpoint by validation "
        "NRMSE), or --recipe fast for a GPU; every recipe field is an option below. "
        "Writes OUT/recipe.json (the recipe, overrides applied, and what the run resolved), "
        "OUT/checkpoints/{best,last}.ckpt and OUT/logs/version_N/metrics.csv "
        "(+ TensorBoard events when tensorboard is installed). Multi-GPU / multi-node: "
        "--devices N --num-nodes M (DDP), also under torchrun or SLURM.",
    )
    p.add_argument("--data", type=Path, required=True, help="dataset root (contains BioSR/)")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, logs)")
    p.add_argument("--model", choices=MODELS, default=MODELS[0], help=f"(default {MODELS[0]})")
    p.add_argument(
        "--scale",
        type=_args.positive_int,
        default=None,
        help="GT/WF size ratio (default: inferred)",
    )
    p.add_argument(
        "--steps", type=_args.positive_int, default=None, help="stop after this many steps"
    )
    p.add_argument(
        "--epochs", type=_args.positive_int, default=None, help="stop after this many epochs"
    )
    p.add_argument(
        "--val-every",
        type=_args.positive_int,
        default=None,
        help="validate every N steps (default: per epoch)",
    )
    _add_recipe_options(p)
    p.add_argument(
        "--seed", type=_args.seed, default=0, help="seed of weights, order, augmentation"
    )
    p.add_argument("--accelerator", default="auto", help="auto, cpu, gpu (default auto)")
    p.add_argument(
        "--devices", type=_devices, default=1, help="devices per node, or 'auto' (default 1)"
    )
    p.add_argument("--num-nodes", type=_args.positive_int, default=1, help="nodes (default 1)")
    p.add_argument("--strategy", default="auto", help="Lightning strategy (ddp when >1 device)")
    p.add_argument(
        "--workers", type=_args.non_negative_int, default=0, help="data-loading workers per device"
    )
    p.add_argument(
        "--crop",
        type=_args.positive_int,
        default=None,
        help="random training crop side (WF px)",
    )
    p.add_argument(
        "--cache",
        choices=CACHE_MODES,
        default=CACHE_MODES[0],
        help="data source: auto = the packed cache (`biosr pack`) if fresh, else the TIFFs "
        "(default); packed = build the cache first if missing or stale; files = TIFFs only",
    )
    p.add_argument("--resume", type=Path, default=None, help="checkpoint to continue exactly")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    _add_structure(p, default_help="Microtubules, or the only structure under --data")
    p.set_defaults(func=_run_train)


def _add_recipe_options(p: argparse.ArgumentParser) -> None:
    """``--recipe`` and one option per recipe field, defaults None (= the recipe's value)."""
    from biosr.learn.recipe import (
        DEFAULT_RECIPE,
        RECIPES,
        defaults_text,
        option_flag,
        recipe_options,
        summary,
    )

    p.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default=DEFAULT_RECIPE,
        help=f"how to train (default {DEFAULT_RECIPE}); the options below override its "
        "fields. " + "; ".join(summary(name) for name in RECIPES),
    )
    for f in recipe_options():
        kind = f.metadata["kind"]
        if isinstance(kind, tuple):
            kwargs: dict = {"choices": kind}
        elif kind == "bool":
            kwargs = {"action": argparse.BooleanOptionalAction}
        else:
            kwargs = {"type": getattr(_args, kind)}
        text = f"{f.metadata['help']} (recipes: {defaults_text(f.name)})"
        p.add_argument(option_flag(f), dest=f.name, default=None, help=text, **kwargs)


def _run_train(args: argparse.Namespace) -> int:
    from biosr.learn.recipe import RECIPE_FIELDS
    from biosr.learn.train import train

    result = train(
        args.data,
        args.out,
        model=args.model,
        recipe=args.recipe,
        scale=args.scale,
        max_steps=args.steps,
        max_epochs=args.epochs,
        val_every=args.val_every,
        seed=args.seed,
        accelerator=args.accelerator,
        devices=args.devices,
        num_nodes=args.num_nodes,
        strategy=args.strategy,
        num_workers=args.workers,
        resume=args.resume,
        force=args.force,
        structure=args.structure,
        data_options={"crop": args.crop, "cache": args.cache},
        progress=True,
        **{name: getattr(args, name) for name in RECIPE_FIELDS},
    )
    if result.is_global_zero:
        scores = ", ".join(
            f"{k} {result.metrics[k]:.4g}" for k in ("val_psnr", "val_nrmse") if k in result.metrics
        )
        print(f"trained {result.global_step} steps; {scores}")
        print(f"best checkpoint: {result.best}")
        print(f"last checkpoint: {result.last}")
        print(f"logs: {result.log_dir}")
    return EXIT_OK


def _add_predict(sub: argparse._SubParsersAction) -> None:
    from biosr.learn.predict import HALO, INFERENCE_PRECISIONS
    from biosr.normalize import AUTO, INPUT_NORMALIZATIONS

    p = sub.add_parser(
        "predict",
        help="run a checkpoint on TIFF patches, full fields, or a dataset's test split",
        description="Run a trained network and write float32 TIFFs. INPUT is a TIFF, a folder "
        "of TIFFs (mirrored under OUT) or a dataset root (its test_wf is mirrored as "
        "OUT/level_XX/NNN.tif, which `biosr evaluate` scores). Images larger than --tile "
        "are predicted in overlapping tiles blended without seams.",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="checkpoint from biosr train, or a package (.zip) from biosr export",
    )
    p.add_argument("--input", type=Path, required=True, help="TIFF file, folder, or dataset root")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--split", choices=layout.SPLITS, default="test", help="for a dataset root")
    _add_structure(p, default_help="the structure the checkpoint was trained on")
    p.add_argument(
        "--tile",
        type=_args.positive_int,
        default=256,
        help="tile side in input pixels (256)",
    )
    p.add_argument(
        "--overlap",
        type=_args.non_negative_int,
        default=96,
        help="tile overlap in pixels (96)",
    )
    p.add_argument(
        "--margin",
        type=_args.non_negative_int,
        default=32,
        help="discarded tile edge in pixels (32)",
    )
    p.add_argument(
        "--halo",
        type=_args.non_negative_int,
        default=None,
        help="pixels mirrored around each image before tiling, as bioimage.io tools pad "
        f"(default: a package's halo, else {HALO}; 0: the network's zero padding)",
    )
    p.add_argument(
        "--batch-size", type=_args.positive_int, default=4, help="tiles per forward pass (4)"
    )
    p.add_argument(
        "--normalize",
        choices=INPUT_NORMALIZATIONS,
        default=AUTO,
        help=f"input normalisation: {AUTO} = min-max unless already in [0, 1] (default)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda:N")
    p.add_argument(
        "--precision",
        choices=INFERENCE_PRECISIONS,
        default=INFERENCE_PRECISIONS[0],
        help="auto (default) = bf16-mixed on a CUDA GPU with native bfloat16, else 32-true",
    )
    p.add_argument("--keep", action="store_true", help="keep existing outputs (resume)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    from biosr.learn.predict import predict

    out = predict(
        args.checkpoint,
        args.input,
        args.out,
        split=args.split,
        tile=args.tile,
        overlap=args.overlap,
        margin=args.margin,
        halo=args.halo,
        batch_size=args.batch_size,
        normalize=args.normalize,
        device=args.device,
        precision=args.precision,
        overwrite=not args.keep,
        force=args.force,
        progress=True,
        structure=args.structure,
    )
    print(f"predictions written to {out}")
    return EXIT_OK


def _add_export(sub: argparse._SubParsersAction) -> None:
    from biosr.learn import export as ex

    p = sub.add_parser(
        "export",
        help="write a checkpoint as a bioimage.io model package (Fiji, ilastik, napari, BiaPy)",
        description="Write a trained DFCAN or U-Net as a bioimage.io model package (format "
        "0.5, a .zip): both weight formats (pytorch_state_dict with the architecture's "
        "source, torchscript), the training normalisation as preprocessing, test tensors, a "
        "README from the run and a cover. It runs without biosr (deepImageJ in Fiji, "
        "ilastik, napari, bioimageio.core); `biosr predict --checkpoint MODEL.zip` opens "
        "it too. Needs the extra: pip install 'biosr[bioimageio]'.",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint from biosr train")
    p.add_argument("--out", type=Path, required=True, help="package to write (MODEL.zip)")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="the training dataset: its card, normalisation and a test pair (default: what "
        "the checkpoint records; for one that records none, a simulated cell and min-max)",
    )
    p.add_argument(
        "--scores", type=Path, default=None, help="summary.md of biosr evaluate, for the README"
    )
    p.add_argument("--name", default=None, help="model name (default from network and scale)")
    p.add_argument(
        "--author",
        action="append",
        default=None,
        help=f"an author (repeat for several; default {ex.DEFAULT_AUTHOR!r})",
    )
    p.add_argument(
        "--license", default=ex.LICENSE, help=f"SPDX licence of the weights ({ex.LICENSE})"
    )
    p.add_argument(
        "--halo",
        type=_args.non_negative_int,
        default=ex.HALO,
        help=f"tiling halo in input pixels ({ex.HALO})",
    )
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from biosr.learn.export import DEFAULT_AUTHOR, export

    out = export(
        args.checkpoint,
        args.out,
        data=args.data,
        scores=args.scores,
        name=args.name,
        authors=args.author or (DEFAULT_AUTHOR,),
        license=args.license,
        halo=args.halo,
        progress=True,
    )
    print(f"bioimage.io package written to {out}")
    return EXIT_OK


# --------------------------------------------------------------------------- #
# simulate
# --------------------------------------------------------------------------- #


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    from biosr.simulate.presets import GT_KIND, GT_KINDS, PRESETS

    p = sub.add_parser(
        "simulate",
        help="simulate BioSR-like data of any structure (physics-based; no download needed)",
        description="Simulate a BioSR structure imaged as BioSR's microscope does (default "
        "microtubules: worm-like-chain filaments in a thin volume, the measured OTF defocused "
        "with depth, cytosolic haze, 3x3 raw SIM frames, sCMOS noise at the 9 photon levels; "
        "GT: 3 high-SNR raw sets SIM-reconstructed and averaged, as BioSR's). --structure "
        "selects another: CCPs, ER (6 levels, a GT per level), F-actin (12 levels), "
        "F-actin_Nonlinear (5x5 frames of a saturated pattern, 3x GT band-limited to the "
        "nonlinear SIM support). --format patches writes the published layout (128x128 "
        "float32 pairs, manifest, card) under OUT/BioSR/<Structure>; --format raw writes a "
        "synthetic original release (OUT/<Structure>/Cell_XXX/*.mrc) for `biosr build`. "
        "Deterministic from --seed.",
    )
    _add_structure(p)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--format",
        choices=("patches", "raw"),
        default="patches",
        help="patches: the published layout (default); raw: the original MRC release",
    )
    p.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default="tiny",
        help="patches only: tiny (seconds), small (under a minute), published (the "
        "structure's full DL-SR counts: exactly 41,040 / 2,160 / 150x9 pairs for Microtubules); "
        "default tiny",
    )
    p.add_argument(
        "--gt-scale",
        type=int,
        choices=sorted({1, *(s.gt_scale for s in layout.STRUCTURES.values())}),
        default=1,
        help="patches only: 1 = GT binned to the WF grid, 128x128 (default); the structure's "
        "scale = GT at SIM sampling, 256x256 (2), or 384x384 for F-actin_Nonlinear (3)",
    )
    p.add_argument(
        "--gt",
        choices=GT_KINDS,
        default=GT_KIND,
        help=f"ground truth: sim = mean SIM reconstruction of 3 high-SNR raw sets, as BioSR "
        f"made it; ideal = the noise-free SIM-resolution image (default {GT_KIND})",
    )
    p.add_argument(
        "--calibration",
        type=Path,
        default=None,
        metavar="FILE",
        help="simulate the microscope of a real stack: the JSON `biosr calibrate REAL --out "
        "FILE` wrote (camera, haze, illumination); default BioSR's",
    )
    p.add_argument(
        "--cells",
        type=_args.positive_int,
        default=None,
        help=f"raw only: cells (default: as the structure's release, {layout.RELEASE_CELLS} "
        "for Microtubules)",
    )
    p.add_argument(
        "--size",
        type=_args.positive_int,
        default=layout.RELEASE_RAW_SIZE,
        help=f"raw only: raw frame side in pixels, GT 2 or 3 times it (default "
        f"{layout.RELEASE_RAW_SIZE})",
    )
    p.add_argument("--seed", type=_args.seed, default=0, help="random seed (default 0)")
    p.add_argument(
        "--workers", type=_args.workers, default=None, help="processes (default: all CPUs)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace simulated data already in the folder"
    )
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument(
        "--preview",
        action="store_true",
        help="also write OUT/simulate_preview.png: WF at the first, middle and last level "
        "(1, 5, 9 of Microtubules) beside the GT",
    )
    p.set_defaults(func=_run_simulate)


def _run_simulate(args: argparse.Namespace) -> int:
    from biosr.simulate import simulate_patches, simulate_release

    if args.format == "raw":
        folder = simulate_release(
            args.out,
            cells=args.cells,
            size=args.size,
            seed=args.seed,
            gt=args.gt,
            calibration=args.calibration,
            overwrite=args.overwrite,
            force=args.force,
            progress=True,
            workers=args.workers,
            structure=args.structure,
        )
    else:
        folder = simulate_patches(
            args.out,
            preset=args.preset,
            seed=args.seed,
            gt_scale=args.gt_scale,
            gt=args.gt,
            calibration=args.calibration,
            overwrite=args.overwrite,
            force=args.force,
            progress=True,
            workers=args.workers,
            structure=args.structure,
        )
    print(f"simulated: {folder}")
    if args.preview:
        from biosr.simulate.preview import write_preview

        png = write_preview(folder, args.out / "simulate_preview.png", structure=args.structure)
        print(f"preview: {png}")
    return EXIT_OK


# --------------------------------------------------------------------------- #
# calibrate
# --------------------------------------------------------------------------- #


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="measure a real raw SIM stack or widefield image, to calibrate the simulator",
        description="Measure a real raw SIM stack (9 frames, MRC in BioSR's dialect or TIFF) or "
        "a widefield image: camera offset, gain and read noise from the photon-transfer curve, "
        "SNR, share of power beyond half Nyquist, haze, foreground, photons by the authors' "
        "definition and, for a stack, the SIM illumination. --compare sets a simulated raw "
        "release beside it, level by level, and prints the statistics at the matched level.",
    )
    p.add_argument("real", type=Path, help="real raw stack or widefield image (.mrc or .tif)")
    p.add_argument("--out", type=Path, default=None, help="write the calibration as JSON here")
    p.add_argument(
        "--compare",
        type=Path,
        default=None,
        metavar="SIMULATED_RELEASE",
        help="a raw release from `biosr simulate --format raw` (its folder) to compare with",
    )
    p.add_argument(
        "--png", type=Path, default=None, help="with --compare: real and simulated crops, as PNG"
    )
    p.add_argument(
        "--read-noise",
        type=_args.non_negative_float,
        default=None,
        help="the camera's known read noise, counts rms (default: measured on the darkest pixels)",
    )
    p.set_defaults(func=_run_calibrate)


def _run_calibrate(args: argparse.Namespace) -> int:
    from biosr.simulate.calibrate import format_calibration, format_comparison, run_calibrate

    result = run_calibrate(
        args.real,
        out=args.out,
        simulated=args.compare,
        png=args.png,
        read_noise=args.read_noise,
        progress=True,
    )
    print(format_calibration(result.calibration))
    if result.comparison is not None:
        print()
        print(format_comparison(result.comparison))
    for path in result.written:
        print(f"wrote: {path}")
    return EXIT_OK


# --------------------------------------------------------------------------- #
# demo
# --------------------------------------------------------------------------- #


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole pipeline on simulated data, in minutes on a CPU",
        description="Simulate a small raw release (of --structure, default Microtubules), "
        "build patches from it, train a U-Net for a few minutes on CPU, predict the test "
        "split, score it against the widefield and Richardson-Lucy baselines, write "
        "OUT/report/report.html and print the per-level table. Needs no data and no network; "
        "reproducible from --seed.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("biosr_demo"), help="demo folder (default biosr_demo)"
    )
    p.add_argument("--seed", type=_args.seed, default=0, help="seed of every stage (default 0)")
    p.add_argument(
        "--config",
        choices=("default", "tiny"),
        default="default",
        help="sizes: default (a few minutes) or tiny (seconds, a smoke test)",
    )
    p.add_argument(
        "--steps",
        type=_args.positive_int,
        default=None,
        help="training steps (override)",
    )
    p.add_argument(
        "--workers", type=_args.workers, default=None, help="processes (default: all cores)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a previous demo in --out")
    _add_structure(p)
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from biosr.demo import run_demo

    result = run_demo(
        args.out,
        seed=args.seed,
        config=args.config,
        steps=args.steps,
        workers=args.workers,
        overwrite=args.overwrite,
        on_stage=lambda message: print(message, flush=True),
        progress=True,
        structure=args.structure,
    )
    print()
    print(
        f"Mean PSNR [dB] and SSIM per test level of {result.structure} "
        "(protocol dlsr; higher is better):"
    )
    print(result.table)
    print()
    for line in result.verdict():
        print(line)
    times = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    print(f"stage times: {times}")
    print(f"report: {result.report}")
    return EXIT_OK


# --------------------------------------------------------------------------- #
# main
# --------------------------------------------------------------------------- #

#: Subcommand registrars, in the order ``biosr --help`` lists them.
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_demo,
    _add_simulate,
    _add_calibrate,
    _add_reconstruct,
    _add_build,
    _add_download,
    _add_verify,
    _add_info,
    _add_cite,
    _add_pack,
    _add_train,
    _add_predict,
    _add_export,
    _add_baseline,
    _add_evaluate,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``biosr`` argument parser with every subcommand."""
    parser = _args.Parser(
        prog="biosr",
        description="The BioSR Microtubules super-resolution dataset: simulate, build, "
        "download, verify, load and benchmark. Run `biosr COMMAND --help` for details.",
    )
    parser.add_argument("--version", action="version", version=f"biosr {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``biosr`` command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except KeyboardInterrupt:
        close_bars()
        print("biosr: interrupted; no partial output was left under a final name", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (BiosrError, OSError) as exc:
        close_bars()
        print(f"biosr: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
