"""Two-stage training: each encoder pretrained on its own modality, then the fusion trained with it frozen or fine-tuned."""
import pytest
import torch

from fusion_kit.data import split_dataset
from fusion_kit.data.missingness import mask_modality
from fusion_kit.models import build_model
from fusion_kit.train import fit, pretrain_encoders

from conftest import make_toy_dataset

SMALL = {"out_dim": 8, "channels": (4, 8)}


@pytest.fixture(scope="module")
def splits():
    return split_dataset(mask_modality(make_toy_dataset(240), "mri", 0.3, seed=0), seed=0)


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def test_frozen_encoders_keep_their_pretrained_weights_and_the_head_learns(splits):
    torch.manual_seed(0)
    model = build_model("concat", splits.train, **SMALL)
    start = _params(model.encoders["mri"])
    histories = pretrain_encoders(model, splits.train, splits.val, freeze=True, epochs=3, progress=False)
    assert set(histories) == {"mri", "clinical"}
    pretrained = _params(model.encoders["mri"])
    assert any(not torch.equal(a, b) for a, b in zip(start, pretrained))  # the first stage trained the encoder
    head = _params(model.head)
    fit(model, splits.train, splits.val, epochs=3, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(pretrained, _params(model.encoders["mri"])))  # frozen
    assert any(not torch.equal(a, b) for a, b in zip(head, _params(model.head)))  # the fusion head trained


def test_unfrozen_encoders_are_fine_tuned_and_only_named_modalities_are_pretrained(splits):
    torch.manual_seed(0)
    model = build_model("gmu", splits.train, encoders={"clinical": {"hidden": (6,)}}, **SMALL)
    untouched = _params(model.encoders["mri"])
    pretrain_encoders(model, splits.train, splits.val, modalities=["clinical"], epochs=3, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(untouched, _params(model.encoders["mri"])))
    pretrained = _params(model.encoders["clinical"])
    fit(model, splits.train, splits.val, epochs=2, progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(pretrained, _params(model.encoders["clinical"])))


def test_models_without_copyable_encoders_are_refused(splits):
    data = splits.train
    with pytest.raises(ValueError, match="feature maps only"):
        pretrain_encoders(build_model("hierarchical", data, depths=(0, 1), **SMALL), data, epochs=1)
    with pytest.raises(ValueError, match="no encoder of its own"):
        pretrain_encoders(build_model("tabular_channels", data, **SMALL), data, epochs=1)
    with pytest.raises(KeyError, match="no encoder of its own for 'pet'"):
        pretrain_encoders(build_model("concat", data, **SMALL), data, modalities=["pet"], epochs=1)


def test_compare_runs_two_stage_setups_and_checks_the_option(splits):
    from fusion_kit.experiment import Setup, compare

    setups = [Setup("concat", ("mri", "clinical"), {**SMALL, "pretrain": stage}, name=stage) for stage in ("frozen", "fine-tuned")]
    comparison = compare(splits, setups, epochs=2, progress=False)
    frozen = comparison.runs[0].model
    assert not any(p.requires_grad for p in frozen.encoders.parameters())
    assert all(p.requires_grad for p in comparison.runs[1].model.encoders.parameters())
    with pytest.raises(ValueError, match="Did you mean 'frozen'"):
        compare(splits, [Setup("concat", ("mri", "clinical"), {"pretrain": "frozn"})], epochs=1, progress=False)
