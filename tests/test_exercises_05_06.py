"""Exercise checks of chapters 05 (attention-based fusion) and 06 (output fusion): solutions, hints, wrong answers."""
import pandas as pd
import torch

from fusion_kit import exercises
from fusion_kit.fusion import masked_softmax
from fusion_kit.fusion.output import EvidentialFusion


# ------------------------------------------------------------------ chapter 05
def test_masked_softmax_solution_and_hints():
    assert exercises.check_masked_softmax(lambda s, p: masked_softmax(s, p, dim=1))
    assert exercises.check_masked_softmax(lambda s, p: s.masked_fill(~p, float("-inf")).softmax(1))
    assert "Not yet solved" in repr(exercises.check_masked_softmax(lambda s, p: None))
    assert "plain softmax" in repr(exercises.check_masked_softmax(lambda s, p: s.softmax(1)))
    assert "exp(0) = 1" in repr(exercises.check_masked_softmax(lambda s, p: (s * p).softmax(1)))
    zeroed = exercises.check_masked_softmax(lambda s, p: torch.where(p, s.softmax(1), torch.zeros_like(s)))
    assert not zeroed and "sum to 1" in repr(zeroed)
    assert "shape" in repr(exercises.check_masked_softmax(lambda s, p: s.softmax(1)[:, :2]))
    assert "raised ZeroDivisionError" in repr(exercises.check_masked_softmax(lambda s, p: 1 / 0))
    nan = torch.full((5, 3), float("nan"))
    assert "NaN" in repr(exercises.check_masked_softmax(lambda s, p: nan))


def test_attention_shift():
    table = pd.DataFrame({"mri": [0.3, 0.3, 0.5], "pet": [0.3, 0.4, 0.35], "clinical": [0.4, 0.3, 0.15]},
                         index=["CN", "MCI", "AD"])
    assert exercises.largest_shift(table) == "mri"
    assert exercises.check_attention_shift("mri", table)
    assert "Not yet solved" in repr(exercises.check_attention_shift(..., table))
    assert "not a column" in repr(exercises.check_attention_shift("ct", table))
    assert "another modality changes more" in repr(exercises.check_attention_shift("pet", table))
    table.loc["AD", "pet"] = 0.6  # pet now has the largest AD weight, mri still the largest shift? no: pet +0.3
    assert exercises.largest_shift(table) == "pet"
    table.loc["CN", "pet"] = 0.45  # pet: +0.15, mri: +0.2 -> largest shift mri, largest AD weight pet
    assert "largest *change*" in repr(exercises.check_attention_shift("pet", table))


def test_attention_quiz():
    assert exercises.check_attention_quiz(dict(exercises.ATTENTION_QUIZ))
    assert "Not yet solved" in repr(exercises.check_attention_quiz({s: ... for s in exercises.ATTENTION_QUIZ}))
    flipped = {s: not v for s, v in exercises.ATTENTION_QUIZ.items()}
    feedback = exercises.check_attention_quiz(flipped)
    assert not feedback and f"{len(flipped)} to revisit" in repr(feedback)
    assert "not True or False" in repr(exercises.check_attention_quiz({s: "yes" for s in exercises.ATTENTION_QUIZ}))


# ------------------------------------------------------------------ chapter 06
def test_weighted_vote_solution_and_hints():
    ex = exercises.VOTE_EXAMPLE
    shares = exercises.weighted_vote_shares(ex["probs"], ex["weights"], 3)
    assert abs(sum(shares) - 1) < 1e-9 and max(range(3), key=lambda k: shares[k]) == 2  # AD
    feedback = exercises.check_weighted_vote(shares)
    assert feedback and "AD" in repr(feedback)
    assert exercises.check_weighted_vote((0.55 / 1.95, 0.60 / 1.95, 0.80 / 1.95))
    assert "Not yet solved" in repr(exercises.check_weighted_vote(...))
    assert "divide by the total weight" in repr(exercises.check_weighted_vote((0.55, 0.60, 0.80)))
    average = tuple(sum(p[k] for p in ex["probs"].values()) / 3 for k in range(3))
    assert "averages the probabilities" in repr(exercises.check_weighted_vote(average))
    assert "plain majority" in repr(exercises.check_weighted_vote((1 / 3, 1 / 3, 1 / 3)))
    assert "three numbers" in repr(exercises.check_weighted_vote("AD"))
    assert "3 numbers, not 2" in repr(exercises.check_weighted_vote((0.5, 0.5)))
    assert "most probable class first" in repr(exercises.check_weighted_vote((0.2, 0.2, 0.6)))


def test_dempster_solution_matches_the_library_and_hints():
    torch.manual_seed(0)
    alpha1, alpha2 = torch.rand(4, 3) * 5 + 1, torch.rand(4, 3) * 5 + 1
    b1, u1 = (alpha1 - 1) / alpha1.sum(-1, keepdim=True), 3 / alpha1.sum(-1, keepdim=True)
    b2, u2 = (alpha2 - 1) / alpha2.sum(-1, keepdim=True), 3 / alpha2.sum(-1, keepdim=True)
    mine, library = exercises.dempster_rule(b1, u1, b2, u2), EvidentialFusion.dempster(b1, u1, b2, u2)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(mine, library))
    assert exercises.check_dempster(exercises.dempster_rule)
    assert exercises.check_dempster(EvidentialFusion.dempster)
    assert "Not yet solved" in repr(exercises.check_dempster(lambda *a: None))
    assert "divide by 1 - C" in repr(exercises.check_dempster(lambda b1, u1, b2, u2: (b1 * b2 + b1 * u2 + b2 * u1, u1 * u2)))

    def with_diagonal(b1, u1, b2, u2):  # conflict summed over every pair, i = j included
        c = b1.sum(-1, keepdim=True) * b2.sum(-1, keepdim=True)
        return (b1 * b2 + b1 * u2 + b2 * u1) / (1 - c), u1 * u2 / (1 - c)

    assert "Σ_k b_k + u = 1" in repr(exercises.check_dempster(with_diagonal))
    assert "pair (b, u)" in repr(exercises.check_dempster(lambda *a: 3.0))
    assert "shape" in repr(exercises.check_dempster(lambda b1, u1, b2, u2: (b1[:2], u1[:2])))
    assert "raised" in repr(exercises.check_dempster(lambda *a: 1 / 0))

    def average(b1, u1, b2, u2):  # sums to 1 but is not Dempster's rule
        return (b1 + b2) / 2, (u1 + u2) / 2

    assert "vacuous" in repr(exercises.check_dempster(average))
