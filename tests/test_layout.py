"""The dataset layout: names, levels, counts, both root forms, pair enumeration."""

from __future__ import annotations

import numpy as np
import pytest

from biosr import layout
from conftest import make_dataset


def test_published_counts_match_the_authors_protocol():
    # 30 cells x 9 levels x 4 flips x 38 crops, and 5 x 9 x 4 x 12 (DATASET_NOTES section 3).
    for split in ("training", "validate"):
        cells = len(layout.PUBLISHED_CELLS[split])
        expected = cells * len(layout.LEVELS) * layout.FLIPS * layout.PUBLISHED_CROPS[split]
        assert layout.PUBLISHED_COUNTS[split] == expected
    assert layout.PUBLISHED_COUNTS == {"training": 41040, "validate": 2160, "test": 150}
    test_cells = len(layout.PUBLISHED_CELLS["test"])
    assert test_cells * layout.PUBLISHED_CROPS["test"] == layout.PUBLISHED_COUNTS["test"]


def test_photon_ladder_is_geometric_from_6_to_600():
    photons = np.array([layout.PHOTONS[lv] for lv in layout.LEVELS])
    assert photons[0] == pytest.approx(6.0) and photons[-1] == pytest.approx(600.0)
    ratios = photons[1:] / photons[:-1]
    np.testing.assert_allclose(ratios, 100 ** (1 / 8))


def test_file_names_and_parsing():
    assert layout.file_name("training", 1) == "00000001.tif"
    assert layout.file_name("validate", 2160) == "00002160.tif"
    assert layout.file_name("test", 150) == "150.tif"
    assert layout.parse_file_name("training", "00041040.tif") == 41040
    for bad in ("1.tif", "00000001.tiff", "0000000a.tif", "00000000.tif", "00000001.tif.part"):
        assert layout.parse_file_name("training", bad) is None
    assert layout.parse_file_name("test", "00000001.tif") is None
    with pytest.raises(ValueError, match="out of range"):
        layout.file_name("test", 1000)


def test_split_and_level_errors_list_the_valid_values():
    with pytest.raises(ValueError, match="training, validate, test"):
        layout.check_split("train")
    with pytest.raises(ValueError, match=r"1\.\.9"):
        layout.check_level(10)
    with pytest.raises(ValueError, match="needs a level"):
        layout.split_dirs("test")
    with pytest.raises(ValueError, match="no levels"):
        layout.split_dirs("training", 3)


def test_dataset_dir_accepts_both_root_forms(tmp_path):
    base = make_dataset(tmp_path / "root", {"training": 1})
    assert base == tmp_path / "root" / "BioSR" / "Microtubules"
    assert layout.dataset_dir(tmp_path / "root") == base
    assert layout.dataset_dir(base) == base
    with pytest.raises(FileNotFoundError, match="biosr download"):
        layout.dataset_dir(tmp_path / "empty")


def test_pairs_enumerate_disk_in_order_for_both_root_forms(tmp_path):
    base = make_dataset(tmp_path / "root", {"training": 3, "test": 2})
    for root in (tmp_path / "root", base):
        train = layout.pairs(root, "training")
        assert [p.index for p in train] == [1, 2, 3]
        assert train[0].wf == base / "training_wf" / "00000001.tif"
        assert train[0].gt == base / "training_gt" / "00000001.tif"
        assert all(p.wf.is_file() and p.gt.is_file() for p in train)
        test = layout.pairs(root, "test")
        assert [(p.level, p.index) for p in test] == [
            (lv, i) for lv in layout.LEVELS for i in (1, 2)
        ]
        assert test[-1].wf == base / "test_wf" / "level_09" / "002.tif"
        assert test[-1].gt == base / "test_gt" / "002.tif"
        only = layout.pairs(root, "test", level=[1, 9])
        assert {p.level for p in only} == {1, 9}
    assert layout.pairs(base, "validate") == []


def test_pairs_with_count_do_not_touch_the_disk(tmp_path):
    ps = layout.pairs(tmp_path / "nothing", "test", level=5, count=3)
    assert [p.wf.name for p in ps] == ["001.tif", "002.tif", "003.tif"]
    assert ps[0].wf.parent.name == "level_05"


def test_release_files_follow_biosr_names(tmp_path):
    files = layout.release_files(tmp_path, 7)
    assert files["level_01"] == tmp_path / "Cell_007" / "RawSIMData_level_01.mrc"
    assert files["sim_gt"].name == "SIM_gt.mrc" and files["raw_gt"].name == "RawSIMData_gt.mrc"
    assert len(files) == 11


def test_the_structure_table_holds_the_notes_facts():
    # DATASET_NOTES.md section 7: five structures, their archives, levels, frames and GT scale.
    assert list(layout.STRUCTURES) == ["CCPs", "ER", "Microtubules", "F-actin", "F-actin_Nonlinear"]
    levels = {name: len(s.levels) for name, s in layout.STRUCTURES.items()}
    assert levels == {"CCPs": 9, "ER": 6, "Microtubules": 9, "F-actin": 12, "F-actin_Nonlinear": 9}
    nonlinear = layout.get_structure("F-actin_Nonlinear")
    assert (nonlinear.frames, nonlinear.gt_scale, nonlinear.gt_size) == (25, 3, 1506)
    assert layout.get_structure("ER").gt_per_level
    assert layout.MICROTUBULES.archive == "Microtubules.zip" == layout.RELEASE_ARCHIVE
    assert layout.MICROTUBULES.archive_md5 == "df983755a1b45d512b000475e3072fc7"
    total = sum(s.archive_bytes for s in layout.STRUCTURES.values())
    assert total == 12_479_529_068  # the five archives of the record (12,479,559,462 with the rest)


def test_crop_counts_follow_the_dl_sr_rule_and_keep_microtubules_published():
    assert layout.MICROTUBULES.crops == {"training": 38, "validate": 12, "test": 10}
    assert layout.MICROTUBULES.counts == layout.PUBLISHED_COUNTS
    er, actin = layout.get_structure("ER"), layout.get_structure("F-actin")
    # ceil(41040 / 30 / 6 / 4) = 57 and ceil(41040 / 30 / 12 / 4) = 29.
    assert er.crops["training"] == 57 and actin.crops["training"] == 29
    assert er.counts == {"training": 30 * 6 * 4 * 57, "validate": 5 * 6 * 4 * 18, "test": 150}


def test_levels_and_files_follow_the_structure(tmp_path):
    with pytest.raises(ValueError, match=r"1\.\.6"):
        layout.check_level(7, structure="ER")
    assert layout.check_level(12, structure="F-actin") == 12
    assert layout.split_levels("test", structure="F-actin")[-1] == 12
    er = layout.release_files(tmp_path, 3, structure="ER")
    assert er["level_06"] == tmp_path / "Cell_003" / "RawSIMData" / "RawSIMData_level_06.mrc"
    assert er["sim_gt_02"] == tmp_path / "Cell_003" / "GTSIM" / "GTSIM_level_02.mrc"
    assert "sim_gt" not in er and "level_07" not in er
    assert layout.release_files(tmp_path, 1, structure="F-actin_Nonlinear")["sim_gt"].name == (
        "SIM_gt_a.mrc"
    )
    with pytest.raises(ValueError, match="valid structures: CCPs, ER"):
        layout.get_structure("Mitochondria")


def test_dataset_dir_finds_a_structure_by_name_card_or_sole_presence(tmp_path):
    er = tmp_path / "root" / "BioSR" / "ER"
    (er / "training_wf").mkdir(parents=True)
    assert layout.dataset_dir(tmp_path / "root", structure="ER") == er
    assert layout.dataset_dir(tmp_path / "root") == er  # the only structure there
    assert layout.structure_of(er).name == "ER"
    other = tmp_path / "mine"
    (other / "test_wf").mkdir(parents=True)
    (other / layout.CARD_FILE).write_text('{"structure": "CCPs"}')
    assert layout.structure_of(other).name == "CCPs"
    assert layout.dataset_dir(tmp_path / "new", structure="F-actin", must_exist=False) == (
        tmp_path / "new" / "BioSR" / "F-actin"
    )
