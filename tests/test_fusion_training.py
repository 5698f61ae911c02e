"""Every registered strategy learns: trained with fusion_kit.train.fit, it scores above chance."""
from __future__ import annotations

import pytest
import torch

from fusion_kit.data import MultimodalDataset, Splits, split_dataset
from fusion_kit.models import STRATEGIES, build_model, compatible_modalities
from fusion_kit.train import evaluate, fit

CHANCE = 1 / 3


def make_cohort(n: int = 240, size: int = 16, seed: int = 0, missing: float = 0.0) -> MultimodalDataset:
    """Three classes; each modality tells part of the story, so fusing them helps.

    MRI: a bright square for MCI and AD; PET: a bright corner for AD only; clinical: a noisy class score.
    ``missing``: probability that a modality is absent (every subject keeps at least one).
    """
    g = torch.Generator().manual_seed(seed)
    y = (torch.arange(n) % 3)[torch.randperm(n, generator=g)]
    mri = 0.5 * torch.randn(n, 1, size, size, generator=g)
    pet = 0.5 * torch.randn(n, 1, size, size, generator=g)
    lo, hi = size // 4, 3 * size // 4
    mri[..., lo:hi, lo:hi] += (y >= 1).float().view(-1, 1, 1, 1)
    pet[..., :hi, :hi] += (y == 2).float().view(-1, 1, 1, 1)
    clinical = torch.randn(n, 4, generator=g)
    clinical[:, 0] += y
    mask = torch.rand(n, 3, generator=g) >= missing
    mask[:, 0] |= ~mask.any(1)
    return MultimodalDataset(
        {"mri": mri, "pet": pet, "clinical": clinical}, y, mask=mask, class_names=("CN", "MCI", "AD")
    )


@pytest.fixture(scope="module")
def splits():
    return split_dataset(make_cohort(), seed=0)


@pytest.fixture(scope="module")
def incomplete_splits():
    return split_dataset(make_cohort(missing=0.3, seed=1), seed=0)


def train_and_score(name: str, splits, epochs: int = 8, **options) -> float:
    modalities = list(compatible_modalities(name, splits.train))
    parts = [s.select(modalities) for s in splits]
    torch.manual_seed(0)
    model = build_model(name, parts[0], **options)
    fit(model, parts[0], parts[1], epochs=epochs, batch_size=32, progress=False, seed=0)
    return evaluate(model, parts[2]).balanced_accuracy


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_trains_above_chance(name, splits):
    assert train_and_score(name, splits) > CHANCE + 0.15


@pytest.mark.parametrize(
    "name, options",
    [
        ("concat", {"impute": "learned", "modality_dropout": 0.2}),
        ("sum", {"impute": "mean"}),
        ("transformer", {"modality_dropout": 0.2}),
        ("evidential", {}),
        ("channel_stack", {}),
    ],
)
def test_strategies_train_on_incomplete_data(name, options, incomplete_splits):
    assert train_and_score(name, incomplete_splits, **options) > CHANCE + 0.15


def test_fusion_beats_the_best_single_modality(splits):
    """In this cohort no modality separates all three classes alone; concatenation of all of them does."""
    single = [Splits(*(s.select([m]) for s in splits)) for m in ("mri", "pet", "clinical")]
    unimodal = max(train_and_score("unimodal", one) for one in single)
    assert train_and_score("concat", splits) > unimodal + 0.05


@pytest.mark.parametrize("strategy", ["stacking", "weighted_vote"])
def test_meta_rules_are_fitted_on_out_of_fold_probabilities(strategy, monkeypatch):
    """Each fold of the training set is predicted by a copy trained without it; cross_fit=1 skips that."""
    from fusion_kit import train

    splits = split_dataset(make_cohort(), seed=0)
    parts, real = [], train._refit
    monkeypatch.setattr(train, "_refit", lambda model, initial, part, val, recipe: parts.append(len(part))
                        or real(model, initial, part, val, recipe))
    model = build_model(strategy, splits.train, cross_fit=3, channels=(4, 8), out_dim=8)
    fit(model, splits.train, splits.val, epochs=2, progress=False)
    assert len(parts) == 3 and all(abs(p - len(splits.train) * 2 / 3) <= 3 for p in parts)
    assert evaluate(model, splits.test).balanced_accuracy > CHANCE
    parts.clear()
    fit(build_model(strategy, splits.train, cross_fit=1, channels=(4, 8), out_dim=8), splits.train, epochs=1, progress=False)
    assert parts == []
    with pytest.raises(ValueError, match="cross_fit is a number of folds"):
        build_model(strategy, splits.train, cross_fit=0)
