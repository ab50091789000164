"""The biosr command: help for every subcommand, cite, info, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from biosr.cli import build_parser, main
from biosr.dataset.info import dataset_info


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(action.choices)


def test_top_level_help_lists_the_ground_commands():
    out = subprocess.run(
        [sys.executable, "-m", "biosr.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("verify", "info", "cite"):
        assert name in out


@pytest.mark.parametrize("name", _subcommands())
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert f"usage: biosr {name}" in capsys.readouterr().out


def test_cite_prints_licence_and_both_bibtex_entries(capsys):
    assert main(["cite"]) == 0
    out = capsys.readouterr().out
    assert "CC BY 4.0" in out
    assert "@article{Qiao2020," in out and "10.6084/m9.figshare.13264793.v9" in out
    assert "@article{qiao2021biosr," in out and "10.1038/s41592-020-01048-5" in out


def test_info_reports_counts_shapes_and_size(tiny_dataset, capsys):
    info = dataset_info(tiny_dataset)
    by = {(r["split"], r["level"]): r for r in info["splits"]}
    assert by[("training", None)]["pairs"] == 3 and by[("validate", None)]["pairs"] == 2
    assert by[("test", 9)]["pairs"] == 2 and by[("test", 9)]["photons"] == pytest.approx(600)
    assert by[("training", None)]["wf"]["shape"] == [[128, 128]]
    assert by[("training", None)]["wf"]["dtype"] == ["float32"]
    assert 0.0 <= by[("training", None)]["gt"]["min"] < by[("training", None)]["gt"]["max"] <= 1.0
    on_disk = sum(p.stat().st_size for p in tiny_dataset.rglob("*.tif"))
    assert info["total_bytes"] == on_disk
    assert main(["info", str(tiny_dataset)]) == 0
    out = capsys.readouterr().out
    assert "training" in out and "128x128" in out and "600" in out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: biosr" in capsys.readouterr().out


def test_bad_input_is_one_line_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "biosr.cli", "info", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("biosr: error: ") and str(tmp_path / "absent") in lines[0]
