"""evaluate: perfect predictions score perfectly, bad inputs named, incomplete levels flagged."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from biosr import layout
from biosr.cli import main
from biosr.dataset.manifest import card_base, write_card
from biosr.errors import BiosrError, DataError
from biosr.evaluate.evaluation import evaluate, parse_prediction_specs
from biosr.io.tiff import read_tiff, write_tiff
from conftest import make_dataset


@pytest.fixture
def data(tmp_path: Path) -> Path:
    make_dataset(tmp_path / "data", {"test": 2})
    return tmp_path / "data"


def _perfect(data: Path, out: Path, nested: bool = False) -> Path:
    """Predictions that are the GT itself, in the test_wf mirror layout."""
    base = layout.dataset_dir(data)
    root = out / "test_wf" if nested else out
    for p in layout.pairs(base, "test"):
        target = root / layout.level_dir(p.level) / p.wf.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p.gt, target)
    return out


def test_gt_as_prediction_scores_perfectly_and_writes_every_output(data, tmp_path):
    preds = _perfect(data, tmp_path / "perfect", nested=True)
    res = evaluate(data, {"perfect": preds}, tmp_path / "report", plots=False)
    assert res.ok and res.findings == []
    assert len(res.rows) == 9 * 2
    for lev in layout.LEVELS:
        entry = res.summary["perfect"][lev]
        assert entry["complete"] and entry["scored"] == entry["expected"] == 2
        assert entry["ssim"]["mean"] == pytest.approx(1.0, abs=1e-12)
        assert entry["ms_ssim"]["mean"] == pytest.approx(1.0, abs=1e-12)
        assert entry["nrmse"]["mean"] == 0.0
    rows = list(csv.DictReader(open(tmp_path / "report" / "per_image.csv")))
    assert len(rows) == 18 and {r["protocol"] for r in rows} == {"dlsr"}
    assert {r["data_range"] for r in rows} == {"1.0"}
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["protocol"]["name"] == "dlsr" and summary["protocol"]["data_range"] == 1.0
    assert summary["complete"] is True
    assert summary["summary"]["perfect"]["9"]["nrmse"]["mean"] == 0.0
    md = (tmp_path / "report" / "summary.md").read_text()
    assert "Protocol **dlsr**" in md and "data range 1" in md and "| perfect |" in md


def test_bad_predictions_are_each_named_and_level_reported_incomplete(data, tmp_path):
    preds = _perfect(data, tmp_path / "bad")
    lv3 = preds / "level_03"
    (lv3 / "002.tif").unlink()  # missing
    write_tiff(lv3 / "009.tif", np.zeros((128, 128), np.float32))  # extra: no such pair
    write_tiff(lv3 / "extra.tif", np.zeros((128, 128), np.float32))  # extra: bad name
    (preds / "notes").mkdir()  # extra folder
    write_tiff(preds / "level_05" / "001.tif", np.zeros((64, 64), np.float32))  # wrong shape
    nan = np.zeros((128, 128), np.float32)
    nan[3, 3] = np.nan
    write_tiff(preds / "level_07" / "002.tif", nan)  # NaN
    (preds / "baseline.json").write_text("{}")  # metadata beside the levels is fine
    res = evaluate(data, {"bad": preds}, tmp_path / "report", plots=False)
    found = {Path(p).relative_to(preds).as_posix(): reason for p, reason in res.findings}
    assert found == {
        "level_03/002.tif": "missing prediction",
        "level_03/009.tif": "extra: no such test pair",
        "level_03/extra.tif": "extra: not a test image name (NNN.tif)",
        "notes": "extra: not a level_01..level_09 folder of test_wf",
        "level_05/001.tif": "wrong shape (64, 64), expected (128, 128)",
        "level_07/002.tif": "non-finite values (1 NaN, 0 inf)",
    }
    assert not res.ok
    for lev, scored in ((3, 1), (5, 1), (7, 1)):
        entry = res.summary["bad"][lev]
        assert not entry["complete"] and entry["scored"] == scored and entry["expected"] == 2
        assert entry["psnr"]["mean"] is None  # never averaged over fewer images
    assert res.summary["bad"][1]["complete"]
    md = res.markdown()
    assert "incomplete (1/2)" in md and "missing prediction" in md
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["complete"] is False and len(summary["findings"]) == 6


def test_care_protocol_recorded_and_levels_subset(data, tmp_path):
    preds = _perfect(data, tmp_path / "p")
    res = evaluate(data, {"p": preds}, None, protocol="care", levels=[9])
    assert res.levels == [9] and res.protocol["name"] == "care"
    assert "percentiles" in res.protocol["gt_normalization"]
    # Predictions of levels not evaluated are ignored, not findings (this asserted
    # 16 "extra: level not evaluated" findings, which made `--levels 9` exit 1).
    assert res.findings == [] and res.ok
    assert {r["level"] for r in res.rows} == {9}
    assert res.summary["p"][9]["nrmse"]["mean"] == pytest.approx(0.0, abs=1e-7)


def test_workers_do_not_change_results(data, tmp_path):
    preds = _perfect(data, tmp_path / "p")
    noisy = tmp_path / "noisy"
    rng = np.random.default_rng(0)
    for f in sorted(preds.rglob("*.tif")):
        target = noisy / f.relative_to(preds)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_tiff(target, rng.random((128, 128), dtype=np.float32))
    one = evaluate(data, {"p": preds, "noisy": noisy}, None, workers=1)
    two = evaluate(data, {"p": preds, "noisy": noisy}, None, workers=2)
    assert repr(one.rows) == repr(two.rows) and one.summary == two.summary  # NaN-safe
    assert [r["method"] for r in one.rows[:18]] == ["p"] * 18


def test_user_errors_are_one_line(data, tmp_path):
    with pytest.raises(DataError, match="prediction folder not found"):
        evaluate(data, {"x": tmp_path / "nope"}, None)
    with pytest.raises(BiosrError, match="unknown protocol"):
        evaluate(data, {"x": tmp_path}, None, protocol="psnr")
    with pytest.raises(BiosrError, match="given twice"):
        parse_prediction_specs(["a/rl", "b/rl"])
    assert parse_prediction_specs(["mine=a/b"]) == {"mine": Path("a/b")}


def test_cli_evaluate_exit_status_and_report(data, tmp_path, capsys):
    preds = _perfect(data, tmp_path / "gt")
    out = tmp_path / "rep"
    argv = ["evaluate", "--data", str(data), "--predictions", str(preds), "--out", str(out)]
    assert main([*argv, "--no-plots"]) == 0
    assert "| gt |" in capsys.readouterr().out
    # A subset of the levels of a complete folder is a success (the others are ignored).
    assert main([*argv, "--no-plots", "--levels", "9"]) == 0
    capsys.readouterr()
    (preds / "level_01" / "001.tif").unlink()
    assert main([*argv, "--no-plots"]) == 1
    assert "incomplete (1/2)" in capsys.readouterr().out
    assert main(["evaluate", "--data", str(tmp_path / "none"), *argv[3:]]) == 1
    err = capsys.readouterr().err
    assert err.startswith("biosr: error:") and err.count("\n") == 1


def test_plots_montage_and_html(data, tmp_path):
    pytest.importorskip("matplotlib")
    preds = _perfect(data, tmp_path / "perfect")
    res = evaluate(data, {"perfect": preds}, tmp_path / "report")
    for key in ("plot_psnr", "plot_resolution_nm", "montage", "html"):
        assert res.files[key].is_file() and res.files[key].stat().st_size > 1000
    assert res.files["montage"].read_bytes()[:4] == b"\x89PNG"
    page = res.files["html"].read_text()
    assert 'src="montage.png"' in page and "<table>" in page and "dlsr" in page


def test_progress_bar_imports_tqdm_only_when_drawn():
    """tqdm costs every command ~35 ms to import: only a drawn bar imports it."""
    code = (
        "import sys; from biosr._progress import bar; import biosr.evaluate.evaluation; "
        "assert list(bar([1, 2], enabled=False)) == [1, 2]; "
        "assert 'tqdm' not in sys.modules, 'tqdm imported'; "
        "assert list(bar([1, 2], enabled=True)) == [1, 2]; "
        "assert 'tqdm' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


class _Page(HTMLParser):
    """Checks nesting while parsing; collects the marked cells, list items and image links."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})
    PARENTS: ClassVar[dict[str, set[str]]] = {
        "li": {"ul", "ol"},
        "tr": {"thead", "tbody", "table"},
        "td": {"tr"},
        "th": {"tr"},
    }

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.best: list[tuple[str, str]] = []  # (table title, cell text)
        self.title, self.h3, self.images, self.items = "", "", [], 0
        self._cell: list[str] | None = None
        self._row_head = ""

    def handle_starttag(self, tag, attrs):
        parent = self.stack[-1] if self.stack else None
        if tag in self.PARENTS and parent not in self.PARENTS[tag]:
            self.errors.append(f"<{tag}> inside <{parent}>")
        self.items += tag == "li"
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag == "td" and ("class", "best") in attrs:
            self._cell = []
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "td" and self._cell is not None:
            self.best.append((self.h3, "".join(self._cell).strip()))
            self._cell = None

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "h3":
            self.h3 = data
        if self.stack and self.stack[-1] == "title":
            self.title += data
        if self._cell is not None:
            self._cell.append(data)


def test_html_report_is_well_formed_and_marks_the_best_method(data, tmp_path):
    pytest.importorskip("matplotlib")
    base = layout.dataset_dir(data)
    write_card(base, card_base(producer="test fixture", seed=11, source="hand-made"))
    rng = np.random.default_rng(0)
    preds = {}
    for name, noise in (("good", 0.05), ("poor", 0.3)):
        for p in layout.pairs(base, "test"):
            target = tmp_path / name / layout.level_dir(p.level) / p.wf.name
            target.parent.mkdir(parents=True, exist_ok=True)
            gt = read_tiff(p.gt)
            write_tiff(target, gt + noise * rng.standard_normal(gt.shape).astype(np.float32))
        preds[name] = tmp_path / name
    (tmp_path / "poor" / "level_09" / "001.tif").unlink()  # level 9: only "good" is complete
    res = evaluate(data, preds, tmp_path / "report", montage_index=1)
    page = _Page()
    page.feed(res.files["html"].read_text())
    page.close()
    assert not page.errors and not page.stack, (page.errors, page.stack)
    assert page.title == "biosr evaluation"
    good = res.summary["good"]
    for metric in ("psnr", "ssim", "nrmse"):
        marked = [text for title, text in page.best if title.startswith(metric + " ")]
        assert len(marked) == 8, (metric, marked)  # levels 1..8; level 9 has one complete method
        digits = 2 if metric == "psnr" else 4
        want = [f"{good[lev][metric]['mean']:.{digits}f}" for lev in range(1, 9)]
        assert [text.split(" ±")[0] for text in marked] == want
    assert page.items == len(res.findings) == 1  # the missing file, as an item of a list
    assert "montage.png" in page.images and "plot_psnr.png" in page.images
    text = res.files["html"].read_text()
    assert "test fixture" in text and "hand-made" in text and "Qiao" in text  # provenance, cite
    assert "incomplete (1/2)" in text
