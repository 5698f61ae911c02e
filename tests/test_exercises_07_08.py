import numpy as np
import pandas as pd
import pytest
import torch

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


class MeanAndMax(torch.nn.Module):
    """z = [mean_{m∈P} h_m; max_{m∈P} h_m], a projection first: a learner's own design"""

    def __init__(self, modalities, dim):
        super().__init__()
        self.project = torch.nn.Linear(dim, dim)

    def forward(self, h, present):
        keep = present.unsqueeze(-1)
        u = torch.relu(self.project(h))
        mean = torch.where(keep, u, 0.0).sum(1) / keep.sum(1)
        return torch.cat([mean, torch.where(keep, u, -1e4).amax(1)], 1)


class MeanOverAll(MeanAndMax):
    def forward(self, h, present):
        return torch.relu(self.project(h)).mean(1)  # absent content passes


class Crashing(MeanAndMax):
    def forward(self, h, present):
        return self.project(h.flatten(1))


@pytest.fixture(scope="module")
def bench():
    from fusion_kit.models import STRATEGIES, register_fusion

    register_fusion("test_capstone", MeanAndMax)
    register_fusion("test_capstone_leak", MeanOverAll)
    register_fusion("test_capstone_crash", Crashing)
    splits = split_dataset(make_toy_dataset(180), seed=0)
    yield splits, compare(splits, [Setup("unimodal", ("mri",), SMALL), Setup("concat", (), SMALL)], epochs=3, progress=False)
    for name in ("test_capstone", "test_capstone_leak", "test_capstone_crash"):
        STRATEGIES.pop(name)


def test_capstone_rejections(bench, tmp_path):
    splits, benchmark = bench
    args = (splits, benchmark, tmp_path)
    assert "Not yet solved" in repr(exercises.check_capstone(..., *args))
    assert "Give a fusion_kit.experiment.Setup" in repr(exercises.check_capstone("gmu", *args))
    built_in = exercises.check_capstone(Setup("gmu", (), SMALL, name="mine"), *args)
    assert "not a module of your own" in repr(built_in) and "register_fusion" in repr(built_in)
    assert "Give your entry a name" in repr(exercises.check_capstone(Setup("test_capstone", (), SMALL), *args))
    named_twice = Setup("test_capstone", (), SMALL, name="concat (mri+clinical)")
    assert "already a row" in repr(exercises.check_capstone(named_twice, *args))
    leak = exercises.check_capstone(Setup("test_capstone_leak", (), SMALL, name="mine"), *args)
    assert "absent modality holds changed the output" in repr(leak)
    crash = exercises.check_capstone(Setup("test_capstone_crash", (), SMALL, name="mine"), *args)
    assert "Crashing.forward raised RuntimeError" in repr(crash)
    bad = exercises.check_capstone(Setup("test_capstone", (), {**SMALL, "modality_dropout": 1.5}, name="mine"), *args)
    assert "does not build yet" in repr(bad) and "modality_dropout" in repr(bad)
    assert not list(tmp_path.iterdir())  # nothing written for a setup that does not build


def test_capstone_solution(bench, tmp_path):
    splits, benchmark = bench
    setup = Setup("test_capstone", (), {**SMALL, "modality_dropout": 0.1}, name="my fusion")
    feedback = exercises.check_capstone(setup, splits, benchmark, tmp_path / "results", epochs=4, seeds=(0, 1), patience=3)
    assert feedback, repr(feedback)
    assert "Entered: my fusion" in repr(feedback) and "rank" in repr(feedback)
    assert "my fusion" in feedback.table.index and len(feedback.table) == 3
    assert (tmp_path / "results" / "capstone.md").read_text().count("my fusion") == 1
    starved = exercises.check_capstone(setup, splits, benchmark, tmp_path, epochs=1, chance_margin=0.99)
    assert not starved and "reaches only" in repr(starved)
