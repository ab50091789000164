"""Bad values for every numeric or choice option of every command: exit 2 or 1, one line, no
traceback, nothing written; and the library functions refuse the same values themselves.

The command-line table is read from the parser (``biosr.cli.build_parser``), so a command or
option added later is covered as soon as it exists; a numeric option parsed with a bare
``int``/``float`` (which accepts -1 and NaN) fails :func:`test_numeric_options_use_shared_types`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from biosr import _args, cli
from biosr._checks import SEED_MAX
from biosr.errors import BiosrError
from conftest import make_dataset

#: Bad texts for each argparse type of :mod:`biosr._args` (and cli's own list types).
BAD_TEXT: dict[object, tuple[str, ...]] = {
    _args.positive_int: ("0", "-1", "1.5", "x"),
    _args.non_negative_int: ("-1", "1.5", "x"),
    _args.seed: ("-1", str(SEED_MAX + 1), "x"),
    _args.workers: ("0", "-1", "x"),
    _args.positive_float: ("0", "-1", "nan", "inf", "x"),
    _args.non_negative_float: ("-1", "nan", "inf", "x"),
    _args.fraction: ("0", "1", "1.5", "nan"),
    _args.probability: ("-0.5", "1.5", "nan"),
    cli._levels: ("9-1", "0", "13", "1-x", ""),
    cli._devices: ("0", "-1", "x"),
}

#: Options whose value is not a number or a fixed choice (paths, names, URLs, free text).
NOT_NUMERIC = (Path, str, None)


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _valued_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Options that take a value (not flags, not --help)."""
    return [a for a in parser._actions if a.option_strings and a.nargs != 0]


def _base_argv(command: str, parser: argparse.ArgumentParser, data: Path, out: Path) -> list[str]:
    """A command line that gives every required argument a plausible value."""
    argv = [command]
    for action in parser._actions:
        if not action.required:
            continue
        if action.choices is not None:
            value = str(next(iter(action.choices)))
        elif action.dest == "out" or (command == "download" and action.dest == "root"):
            value = str(out)
        else:
            value = str(data)
        argv += [action.option_strings[0], value] if action.option_strings else [value]
    return argv


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for command, parser in _subparsers().items():
        for action in _valued_options(parser):
            option = action.option_strings[0]
            if action.choices is not None:
                bad = ["banana"]
                if all(isinstance(c, int) for c in action.choices):
                    bad.append(str(max(action.choices) + 1))
            else:
                bad = list(BAD_TEXT.get(action.type, ()))
            cases += [(command, option, text) for text in bad]
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny dataset that no case may change."""
    root = tmp_path_factory.mktemp("bad_values") / "data"
    make_dataset(root, {"training": 2, "validate": 1, "test": 1})
    return root


def _snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `folders` with its size and mtime."""
    seen = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                st = os.stat(path)
                seen[path] = (st.st_size, st.st_mtime_ns)
    return seen


def _run(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code)


def _assert_refused(argv, code, err, before, after, *, expect=(1, 2)) -> None:
    assert code in expect, f"{argv}: exit {code}, stderr {err!r}"
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, f"{argv}: not one line on stderr: {err!r}"
    assert after == before, f"{argv}: wrote or changed {sorted(set(after) ^ set(before))}"


def test_the_table_covers_every_command_and_kind():
    commands = {command for command, _, _ in CASES}
    assert commands == set(_subparsers()) - {"cite"}  # cite takes no option with a value
    for must in ("--seed", "--workers", "--sample", "--steps", "--lr", "--levels", "--crop"):
        assert any(option == must for _, option, _ in CASES), must
    assert len(CASES) > 150


def test_numeric_options_use_shared_types():
    """Every option with a value is a choice, a shared number type, or not a number at all."""
    offenders = [
        f"{command} {action.option_strings[0]} ({getattr(action.type, '__name__', action.type)})"
        for command, parser in _subparsers().items()
        for action in _valued_options(parser)
        if action.choices is None and action.type not in BAD_TEXT and action.type not in NOT_NUMERIC
    ]
    assert not offenders, f"use a type from biosr._args instead: {offenders}"


@pytest.mark.parametrize(("command", "option", "text"), CASES, ids=[" ".join(c) for c in CASES])
def test_bad_value_is_one_line_and_writes_nothing(
    command, option, text, data, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # a default output (demo's biosr_demo) would land here
    out = tmp_path / "out"
    argv = [*_base_argv(command, _subparsers()[command], data, out), f"{option}={text}"]
    before = _snapshot(data, tmp_path)
    code = _run(argv)
    err = capsys.readouterr().err
    _assert_refused(argv, code, err, before, _snapshot(data, tmp_path), expect=(2,))
    assert f"argument {option}" in err, err
    assert not out.exists()


#: Values argparse cannot judge (names, checksums): the library refuses them, exit 1.
LIBRARY_CASES = [
    ["build", "--source", "{data}", "--out", "{out}", "--test-cells", "0"],
    ["build", "--source", "{data}", "--out", "{out}", "--training-cells", "3-1"],
    ["download", "{out}", "--source", "{data}/missing.zip", "--sha256", "nothex"],
    ["download", "{out}", "--source", "{data}/missing.zip", "--sha256", "foo:abcd"],
    ["download", "{out}", "--source", "{data}/missing.zip", "--sha256", "md5:" + "a" * 31],
    ["download", "{out}", "--source", "git", "--sha256", "a" * 64],
    ["evaluate", "--data", "{data}", "--predictions", "=", "--out", "{out}"],
    ["evaluate", "--data", "{data}", "--predictions", "{data}/none", "--out", "{out}"],
    ["baseline", "wf", "--data", "{out}", "--out", "{out}/wf"],
    ["info", "{out}"],
    ["verify", "{out}"],
    ["pack", "{out}"],
]


@pytest.mark.parametrize(
    "argv", LIBRARY_CASES, ids=[" ".join(a[:1] + a[3:]) for a in LIBRARY_CASES]
)
def test_library_refusals_are_one_line(argv, data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    argv = [a.format(data=data, out=out) for a in argv]
    before = _snapshot(data, tmp_path)
    code = _run(argv)
    err = capsys.readouterr().err
    _assert_refused(argv, code, err, before, _snapshot(data, tmp_path), expect=(1,))
    assert err.startswith("biosr: error: ")


def test_headline_cases_in_a_real_process(data, tmp_path):
    """`--seed -1` as the issue ran it: a real `biosr` process, exit 2, one line, no folder."""
    import subprocess
    import sys

    for argv in (
        ["simulate", "--out", str(tmp_path / "s"), "--seed", "-1"],
        ["build", "--source", str(data), "--out", str(tmp_path / "b"), "--seed", "-1"],
        ["info", str(data), "--sample", "-5"],
        [
            "evaluate",
            "--data",
            str(data),
            "--predictions",
            str(data),
            "--out",
            "x",
            "--levels",
            "9-1",
        ],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "biosr.cli", *argv], capture_output=True, text=True, cwd=tmp_path
        )
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert sorted(os.listdir(tmp_path)) == []
    assert "the range 9-1 is reversed; write 1-9" in proc.stderr


# --------------------------------------------------------------------------- #
# The library's own checks (a caller that bypasses the command line)
# --------------------------------------------------------------------------- #


def _library_calls(data: Path, out: Path):
    from biosr.acquire.download import fetch
    from biosr.build.builder import build
    from biosr.dataset.info import dataset_info
    from biosr.dataset.verify import verify
    from biosr.demo import run_demo
    from biosr.evaluate.baselines import run_baseline
    from biosr.evaluate.evaluation import evaluate
    from biosr.simulate import simulate_patches, simulate_release

    preds = {"wf": data}
    return {
        "simulate_patches seed -1": (lambda: simulate_patches(out, seed=-1), "seed"),
        "simulate_patches seed 2**32": (lambda: simulate_patches(out, seed=2**32), "seed"),
        "simulate_patches workers 0": (lambda: simulate_patches(out, workers=0), "workers"),
        "simulate_release seed -1": (lambda: simulate_release(out, cells=1, seed=-1), "seed"),
        "simulate_release workers -1": (lambda: simulate_release(out, workers=-1), "workers"),
        "build seed -1": (lambda: build(data, out, seed=-1), "seed"),
        "build seed 1.5": (lambda: build(data, out, seed=1.5), "seed"),
        "build workers 0": (lambda: build(data, out, workers=0), "workers"),
        "build training_crops 0": (lambda: build(data, out, training_crops=0), "training_crops"),
        "build test_crops -1": (lambda: build(data, out, test_crops=-1), "test_crops"),
        "verify sample -1": (lambda: verify(data, sample=-1), "sample"),
        "verify seed -1": (lambda: verify(data, seed=-1), "seed"),
        "verify workers 0": (lambda: verify(data, workers=0), "workers"),
        "info sample 0": (lambda: dataset_info(data, sample=0), "sample"),
        "info sample -5": (lambda: dataset_info(data, sample=-5), "sample"),
        "info seed -1": (lambda: dataset_info(data, seed=-1), "seed"),
        "evaluate workers 0": (lambda: evaluate(data, preds, out, workers=0), "workers"),
        "baseline iterations 0": (
            lambda: run_baseline("rl", data, out, iterations=0),
            "iterations",
        ),
        "baseline workers 0": (lambda: run_baseline("wf", data, out, workers=0), "workers"),
        "download sha256 nothex": (
            lambda: fetch(out, source=str(data / "x.zip"), known_hash="nothex"),
            "not a sha256 checksum",
        ),
        "download retries -1": (
            lambda: fetch(out, source=str(data / "x.zip"), retries=-1),
            "retries",
        ),
        "demo steps 0": (lambda: run_demo(out, steps=0), "steps"),
        "demo seed -1": (lambda: run_demo(out, seed=-1), "seed"),
        "demo workers 0": (lambda: run_demo(out, workers=0), "workers"),
    }


LIBRARY_NAMES = list(_library_calls(Path("."), Path(".")))


@pytest.mark.parametrize("name", LIBRARY_NAMES)
def test_library_functions_check_values_before_writing(name, data, tmp_path):
    out = tmp_path / "out"
    call, match = _library_calls(data, out)[name]
    before = _snapshot(data)
    with pytest.raises(BiosrError, match=match) as err:
        call()
    assert "\n" not in str(err.value)
    assert not out.exists(), f"{name}: left {sorted(os.listdir(out))}"
    assert _snapshot(data) == before
