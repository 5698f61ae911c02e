"""The build exercises: every check passes the reference answer, names two typical mistakes with their hints,
reports a crash without raising, and calls an untouched skeleton "not yet solved"."""
import pytest
import torch
from torch import nn

from fusion_kit import exercises
from fusion_kit.data import split_dataset
from fusion_kit.fusion import masked_softmax

from conftest import make_toy_dataset


@pytest.fixture(scope="module")
def tiny_splits():
    return split_dataset(make_toy_dataset(180), seed=0)


def _keep(h, present):
    return torch.where(present.unsqueeze(-1), h, torch.zeros_like(h))


# ------------------------------------------------------------------ learners' answers, right and wrong
class Vectors(nn.Module):
    def __init__(self, modalities, dim):
        super().__init__()


class Concat(Vectors):
    def forward(self, h, present):
        return _keep(h, present).flatten(1)


class ConcatLeaks(Vectors):
    def forward(self, h, present):
        return h.flatten(1)


class ReturnsH(Vectors):
    def forward(self, h, present):
        return h


class ConcatSums(Vectors):
    def forward(self, h, present):
        return _keep(h, present).sum(1)


class Gated(nn.Module):
    def __init__(self, modalities, dim):
        super().__init__()
        self.values = nn.ModuleList([nn.Linear(dim, dim) for _ in modalities])
        self.gate = nn.Linear(len(modalities) * dim, len(modalities) * dim)

    def parts(self, h, present):
        h = _keep(h, present)
        v = torch.stack([torch.tanh(V(h[:, j])) for j, V in enumerate(self.values)], 1)
        return v, self.gate(h.flatten(1)).view(len(h), len(self.values), -1)

    def forward(self, h, present):
        v, s = self.parts(h, present)
        return (masked_softmax(s, present.unsqueeze(-1), dim=1) * v).sum(1)


class GatedPlainSoftmax(Gated):
    def forward(self, h, present):
        v, s = self.parts(h, present)
        return (s.softmax(1) * v).sum(1)


class GatedSigmoid(Gated):
    def forward(self, h, present):
        v, s = self.parts(h, present)
        return (s.sigmoid() * present.unsqueeze(-1) * v).sum(1)


class GatedExtraLayer(Gated):
    def __init__(self, modalities, dim):
        super().__init__(modalities, dim)
        self.unused = nn.Linear(dim, dim)


class Pool(nn.Module):
    def __init__(self, modalities, dim):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))

    def forward(self, h, present):
        alpha = masked_softmax(self.score(h).squeeze(-1), present, dim=1)
        return (alpha.unsqueeze(-1) * h).sum(1)


class PoolMaskAfter(Pool):
    def forward(self, h, present):
        alpha = self.score(h).squeeze(-1).softmax(1) * present
        return (alpha.unsqueeze(-1) * h).sum(1)


class PoolReturnsWeights(Pool):
    def forward(self, h, present):
        return masked_softmax(self.score(h).squeeze(-1), present, dim=1)


class Moments(Vectors):
    def forward(self, h, present):
        n = present.sum(1, keepdim=True)
        mean = _keep(h, present).sum(1) / n
        var = _keep((h - mean.unsqueeze(1)) ** 2, present).sum(1) / n
        return torch.cat([mean, var], 1)


class MomentsOverAll(Vectors):
    def forward(self, h, present):
        h = _keep(h, present)
        return torch.cat([h.mean(1), h.var(1, unbiased=False)], 1)


class MomentsUnbiased(Vectors):
    def forward(self, h, present):
        n = present.sum(1, keepdim=True)
        mean = _keep(h, present).sum(1) / n
        return torch.cat([mean, _keep((h - mean.unsqueeze(1)) ** 2, present).sum(1) / (n - 1)], 1)


class Experts(nn.Module):
    prior = 1.0

    def __init__(self, modalities, dim):
        super().__init__()
        self.experts = nn.ModuleList([nn.Linear(dim, 2 * dim) for _ in modalities])

    def forward(self, h, present):
        mu, log_var = torch.stack([e(h[:, j]) for j, e in enumerate(self.experts)], 1).chunk(2, -1)
        keep = present.unsqueeze(-1)
        precision = torch.where(keep, torch.exp(-log_var), torch.zeros_like(log_var))
        total = self.prior + precision.sum(1)
        return torch.cat([torch.where(keep, precision * mu, torch.zeros_like(mu)).sum(1) / total, -torch.log(total)], 1)


class ExpertsWithoutPrior(Experts):
    prior = 0.0


class ExpertsLeak(Experts):
    def forward(self, h, present):
        mu, log_var = torch.stack([e(h[:, j]) for j, e in enumerate(self.experts)], 1).chunk(2, -1)
        total = 1.0 + torch.exp(-log_var).sum(1)
        return torch.cat([(torch.exp(-log_var) * mu).sum(1) / total, -torch.log(total)], 1)


class FiLM(nn.Module):
    one = 1.0

    def __init__(self, channels, table_dim):
        super().__init__()
        self.film = nn.Linear(table_dim, 2 * channels)

    def forward(self, maps, table, present):
        gamma, beta = self.film(table).chunk(2, -1)
        out = (self.one + gamma[:, :, None, None]) * maps + beta[:, :, None, None]
        return torch.where(present.view(-1, 1, 1, 1), out, maps)


class FiLMWithoutOne(FiLM):
    one = 0.0


class FiLMAbsentZeroed(FiLM):
    def forward(self, maps, table, present):
        gamma, beta = self.film(table * present.unsqueeze(-1)).chunk(2, -1)
        return (1 + gamma[:, :, None, None]) * maps + beta[:, :, None, None]


class FiLMNoBroadcast(FiLM):
    def forward(self, maps, table, present):
        gamma, beta = self.film(table).chunk(2, -1)
        return (1 + gamma) * maps + beta


class Vote(nn.Module):
    def __init__(self, modalities, num_classes):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(len(modalities)))

    def weights(self, logits, present):
        return masked_softmax(self.a.expand(len(logits), -1), present, dim=1).unsqueeze(-1)

    def forward(self, logits, present):
        return torch.log((self.weights(logits, present) * logits.softmax(-1)).sum(1))


class VoteOnLogits(Vote):
    def forward(self, logits, present):
        return (self.weights(logits, present) * _keep(logits, present)).sum(1)


class VoteNotRenormalised(Vote):
    def forward(self, logits, present):
        w = (self.a.softmax(0) * present).unsqueeze(-1)
        return torch.log((w * _keep(logits.softmax(-1), present)).sum(1))


class Skeleton(nn.Module):
    def __init__(self, *args):
        super().__init__()

    def forward(self, *inputs):
        ...


class Crashes(nn.Module):
    def __init__(self, *args):
        super().__init__()

    def forward(self, x, *rest):
        return x @ torch.ones(3, 3, 3)


CASES = {  # check: (right answer, {wrong answer: a phrase of its hint})
    exercises.check_concat_unit: (Concat, {ConcatLeaks: "zero their rows", ConcatSums: "That is a sum"}),
    exercises.check_gated_unit: (Gated, {GatedPlainSoftmax: "still get gate weight", GatedSigmoid: "Sigmoid gates",
                                         GatedExtraLayer: "unused.weight gets no gradient"}),
    exercises.check_attention_pool: (Pool, {PoolMaskAfter: "after the softmax", PoolReturnsWeights: "weights alpha"}),
    exercises.check_moments_unit: (Moments, {MomentsOverAll: "divided by M", MomentsUnbiased: "unbiased variance"}),
    exercises.check_expert_product: (Experts, {ExpertsWithoutPrior: "prior expert", ExpertsLeak: "absent modality"}),
    exercises.check_film_block: (FiLM, {FiLMWithoutOne: "(1 + gamma)", FiLMAbsentZeroed: "pass unchanged",
                                        FiLMNoBroadcast: "raised RuntimeError"}),
    exercises.check_vote_module: (Vote, {VoteOnLogits: "weighted the logits",
                                         VoteNotRenormalised: "must sum to 1"}),
}


@pytest.mark.parametrize("check", list(CASES), ids=lambda c: c.__name__)
def test_the_right_answer_passes(check):
    right, _ = CASES[check]
    feedback = check(right)
    assert feedback, feedback
    assert "Correct" in repr(feedback)


@pytest.mark.parametrize("check", list(CASES), ids=lambda c: c.__name__)
def test_typical_mistakes_get_their_own_hint(check):
    _, wrong = CASES[check]
    assert len(wrong) >= 2
    for answer, phrase in wrong.items():
        feedback = check(answer)
        assert not feedback, answer.__name__
        assert phrase in repr(feedback), (answer.__name__, repr(feedback))


@pytest.mark.parametrize("check", list(CASES), ids=lambda c: c.__name__)
def test_a_skeleton_is_not_yet_solved_and_a_crash_is_reported(check):
    assert repr(check(...)).startswith("Not yet solved")
    assert repr(check(Skeleton)).startswith("Not yet solved")
    crash = check(Crashes)
    assert not crash and "raised RuntimeError" in repr(crash)
    assert "not 3" in repr(check(3))


def test_a_registered_module_trains_and_its_result_is_checked(tiny_splits):
    from fusion_kit.experiment import run
    from fusion_kit.models import STRATEGIES, register_fusion

    name = register_fusion("test_gated_unit", Gated)
    try:
        result = run(tiny_splits, name, epochs=15, seed=0)
        feedback = exercises.check_gated_unit(Gated, trained=result)
        assert type(result.model.fusion) is Gated
        score = result.metrics.balanced_accuracy
        assert bool(feedback) == (score >= 1 / 3 + 0.1), (score, feedback)
        assert f"{score:.3f}" in repr(feedback)
        other = exercises.check_attention_pool(Pool, trained=result)  # the result of another class
        assert not other and "register_fusion" in repr(other)
    finally:
        STRATEGIES.pop("test_gated_unit", None)


def test_register_fusion_refuses_built_in_names_and_broken_modules(tiny_splits):
    from fusion_kit.models import STRATEGIES, build_model, register_fusion

    with pytest.raises(ValueError, match="built-in strategy; register yours under another name"):
        register_fusion("concat", Concat)
    with pytest.raises(ValueError, match="short identifier"):
        register_fusion("my fusion", Concat)
    with pytest.raises(TypeError, match="as a class"):
        register_fusion("my_fusion", Concat(("a",), 2))
    register_fusion("test_returns_h", ReturnsH)
    try:
        with pytest.raises(ValueError, match=r"must return z of shape \(B, F\)"):
            build_model("test_returns_h", tiny_splits.train)
        register_fusion("test_returns_h", Concat)  # registering again replaces the class
        model = build_model("test_returns_h", tiny_splits.train)
        assert model.head.in_features == len(model.modalities) * model.out_dim
    finally:
        STRATEGIES.pop("test_returns_h", None)
