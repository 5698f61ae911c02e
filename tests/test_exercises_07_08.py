import numpy as np
import pandas as pd
import pytest

from fusion_kit import exercises
from fusion_kit.data import split_dataset
from fusion_kit.experiment import Setup, compare

from conftest import make_toy_dataset

SMALL = {"channels": (4, 8), "out_dim": 8}


def test_complete_share():
    assert exercises.complete_share({"pet": 0.5, "clinical": 0.2}) == pytest.approx(0.4)
    assert exercises.check_complete_share(0.4)
    assert "Not yet solved" in repr(exercises.check_complete_share(...))
    assert "no subject misses both" in repr(exercises.check_complete_share(0.3))
    assert "missing *both*" in repr(exercises.check_complete_share(0.1))
    assert "not a percentage" in repr(exercises.check_complete_share(40))
    assert "one number" in repr(exercises.check_complete_share("a lot"))


def test_mask_only_score():
    uniform = {"CN": 0.5, "MCI": 0.5, "AD": 0.5}
    assert exercises.mask_only_score(uniform) == pytest.approx(1 / 3)
    shares = {"CN": 0.1, "MCI": 0.5, "AD": 0.9}
    assert exercises.mask_only_score(shares) == pytest.approx((0.9 + 0.9) / 3)  # present -> CN, absent -> AD
    ok = exercises.check_mask_only_score(0.6, shares)
    assert ok and "leaks the label" in repr(ok)
    assert "hardly above chance" in repr(exercises.check_mask_only_score(1 / 3, uniform))
    assert "ignores the mask" in repr(exercises.check_mask_only_score(1 / 3, shares))
    assert "Too high" in repr(exercises.check_mask_only_score(0.9, shares))
    assert "Not the best rule" in repr(exercises.check_mask_only_score(0.45, shares))
    assert "Not yet solved" in repr(exercises.check_mask_only_score(None, shares))


def test_beats_floor():
    curves = {"a": np.array([0.8, 0.7]), "b": np.array([0.8, 0.6]), "c": np.array([0.8, 0.75])}
    assert exercises.check_beats_floor(["a", "c"], curves, 0.65)
    assert exercises.check_beats_floor([], curves, 0.9)
    assert "ends at 0.600" in repr(exercises.check_beats_floor(["a", "b", "c"], curves, 0.65))
    assert "1 more strategy" in repr(exercises.check_beats_floor(["a"], curves, 0.65))
    assert "not a curve" in repr(exercises.check_beats_floor(["z"], curves, 0.65))
    assert exercises.check_beats_floor("c", curves, 0.72)


def test_clear_winners():
    stats = pd.DataFrame({"diff": [0.1, 0.05, -0.02], "boot_low": [0.03, -0.01, -0.08]}, index=["a", "b", "c"])
    assert exercises.check_clear_winners(["a"], stats)
    assert "0 (no gain) is inside it" in repr(exercises.check_clear_winners(["a", "b"], stats))
    assert "boot_low" in repr(exercises.check_clear_winners([], stats))
    assert "not a row" in repr(exercises.check_clear_winners(["z"], stats))
    assert "Not yet solved" in repr(exercises.check_clear_winners(..., stats))


@pytest.fixture(scope="module")
def bench():
    splits = split_dataset(make_toy_dataset(180), seed=0)
    return splits, compare(splits, [Setup("unimodal", ("mri",), SMALL), Setup("concat", (), SMALL)], epochs=3, progress=False)


def test_capstone_rejections(bench, tmp_path):
    splits, benchmark = bench
    args = (splits, benchmark, tmp_path)
    assert "Not yet solved" in repr(exercises.check_capstone(..., *args))
    assert "Give a fusion_kit.experiment.Setup" in repr(exercises.check_capstone("gmu", *args))
    assert "Give your entry a name" in repr(exercises.check_capstone(Setup("gmu", (), SMALL), *args))
    assert "already a row" in repr(exercises.check_capstone(Setup("gmu", (), SMALL, name="concat (mri+clinical)"), *args))
    bad = exercises.check_capstone(Setup("gmu", (), {**SMALL, "modality_dropout": 1.5}, name="mine"), *args)
    assert "does not build yet" in repr(bad) and "modality_dropout" in repr(bad)
    assert "does not build yet" in repr(exercises.check_capstone(Setup("gmu", (), {"rnak": 2}, name="mine"), *args))
    assert not list(tmp_path.iterdir())  # nothing written for a setup that does not build


def test_capstone_solution(bench, tmp_path):
    splits, benchmark = bench
    setup = Setup("concat", (), {**SMALL, "modality_dropout": 0.1, "impute": "learned"}, name="my fusion")
    feedback = exercises.check_capstone(setup, splits, benchmark, tmp_path / "results", epochs=4, seeds=(0, 1), patience=3)
    assert feedback, repr(feedback)
    assert "Entered: my fusion" in repr(feedback) and "rank" in repr(feedback)
    assert "my fusion" in feedback.table.index and len(feedback.table) == 3
    assert (tmp_path / "results" / "capstone.md").read_text().count("my fusion") == 1
    starved = exercises.check_capstone(setup, splits, benchmark, tmp_path, epochs=1, chance_margin=0.99)
    assert not starved and "reaches only" in repr(starved)
