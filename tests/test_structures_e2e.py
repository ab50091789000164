"""Every structure end to end on the command line: simulate a raw release, build it, verify it.

The done-when of issue 17: ``biosr simulate --structure S --format raw``, then
``biosr build --structure S``, then ``biosr verify`` works for all five
structures, with the counts the layout's table predicts, and a release of
one structure built as another is one line naming the file and the reason.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from biosr import layout
from biosr.build.options import resolve_options
from biosr.cli import main

#: A small release: the ``small`` preset's 6 cells, 96 px raw frames, 32 px patches.
CELLS, SIZE, PATCH = 6, 96, 32
CROPS = {"training": 1, "validate": 1, "test": 1}


def _build_argv(release, out, name):
    crops = [f"--{split}-crops={n}" for split, n in CROPS.items()]
    return ["build", "--source", str(release), "--out", str(out), "--structure", name,
            "--preset", "small", "--patch-size", str(PATCH), *crops]  # fmt: skip


@pytest.mark.parametrize("name", list(layout.STRUCTURES))
def test_simulate_build_verify_every_structure(tmp_path, capsys, name):
    s = layout.get_structure(name)
    raw = tmp_path / "raw"
    argv = ["simulate", "--structure", name, "--format", "raw", "--out", str(raw),
            "--cells", str(CELLS), "--size", str(SIZE), "--workers", "1"]  # fmt: skip
    assert main(argv) == 0
    release = raw / name
    cell = sorted(release.glob("Cell_*"))[0]
    assert sorted(p.relative_to(cell).as_posix() for p in cell.rglob("*.mrc")) == sorted(
        [
            f.relative_to(cell).as_posix()
            for f in layout.release_files(release, 1, structure=s).values()
        ]
        + list(s.extra_files)
    )
    out = tmp_path / "data"
    assert main(_build_argv(release, out, name)) == 0
    dataset = out / s.dataset_dir
    card = json.loads((dataset / layout.CARD_FILE).read_text())
    assert card["structure"] == name
    # The counts the table predicts: cells x levels x flips x crops (test: cells x crops).
    cells = {split: len(c) for split, c in resolve_options("small").cells.items()}
    expected = {
        "training": cells["training"] * s.n_levels * layout.FLIPS * CROPS["training"],
        "validate": cells["validate"] * s.n_levels * layout.FLIPS * CROPS["validate"],
        "test": cells["test"] * CROPS["test"],
    }
    assert card["counts"] == expected
    levels = sorted(p.name for p in (dataset / "test_wf").iterdir())
    assert levels == [layout.level_dir(lv, structure=s) for lv in s.levels]
    wf = tifffile.imread(next((dataset / "training_wf").iterdir()))
    gt = tifffile.imread(next((dataset / "training_gt").iterdir()))
    assert wf.shape == gt.shape == (PATCH, PATCH) and wf.dtype == np.float32
    # ER pairs each level's test input with that level's own GT.
    test_gts = sorted(
        p.relative_to(dataset).as_posix() for p in (dataset / "test_gt").rglob("*.tif")
    )
    per_level = [layout.pair(dataset, "test", 1, lv, structure=s).gt for lv in s.levels]
    assert len(test_gts) == len({p.as_posix() for p in per_level}) * expected["test"]
    assert main(["verify", str(out), "--structure", name, "--deep"]) == 0
    # A damaged file is found: verify reads the structure from the card and fails.
    victim = layout.pair(dataset, "test", 1, s.levels[-1], structure=s).wf
    victim.write_bytes(victim.read_bytes()[:100])
    capsys.readouterr()
    assert main(["verify", str(dataset), "--deep"]) == 1
    assert str(victim) in capsys.readouterr().out


def test_a_release_built_as_another_structure_is_one_line(tmp_path, capsys):
    raw = tmp_path / "raw"
    argv = ["simulate", "--structure", "ER", "--format", "raw", "--out", str(raw),
            "--cells", str(CELLS), "--size", str(SIZE), "--workers", "1"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    out = tmp_path / "data"
    assert main(_build_argv(raw / "ER", out, "Microtubules")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "looks like a release of ER" in err[0] and "--structure ER" in err[0]
    assert not (out / layout.DATASET_DIR).exists() or not any((out / layout.DATASET_DIR).iterdir())
    # biosr reconstruct finds ER's stacks in their RawSIMData/ folders and mirrors them.
    rec = tmp_path / "rec"
    assert main(["reconstruct", str(raw / "ER"), "--out", str(rec), "--workers", "1"]) == 0
    made = sorted(p.relative_to(rec).as_posix() for p in rec.rglob("*.tif"))
    assert len(made) == CELLS * len(layout.get_structure("ER").levels)
    assert made[0] == "Cell_001/RawSIMData/RawSIMData_level_01.tif"


def test_calibrate_compares_the_real_stack_with_a_simulated_er_release(tmp_path, capsys, real_mrc):
    raw = tmp_path / "raw"
    argv = ["simulate", "--structure", "ER", "--format", "raw", "--out", str(raw),
            "--cells", "1", "--size", str(SIZE), "--workers", "1"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["calibrate", str(real_mrc), "--compare", str(raw)]) == 0
    out = capsys.readouterr().out
    # ER's six levels are read (not Microtubules' nine), and one is matched to the real stack.
    table = out.split("level  WF SNR")[1].split("\nreal")[0].splitlines()[2:]
    assert [int(row.split()[0]) for row in table] == list(layout.get_structure("ER").levels)
    assert sum("<- matched" in row for row in table) == 1
