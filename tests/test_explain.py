import numpy as np
import pytest
import torch

from fusion_kit.data import split_dataset
from fusion_kit.experiment import Setup, run
from fusion_kit.explain import modality_ablation

from conftest import make_toy_dataset


@pytest.fixture(scope="module")
def trained():
    data = make_toy_dataset(240)
    data = data.with_tensors(mri=torch.randn(data.tensors["mri"].shape, generator=torch.Generator().manual_seed(0)))
    splits = split_dataset(data, seed=0)  # the images are noise: only the table carries the class
    result = run(splits, Setup("average", ("mri", "clinical"), {"channels": (4, 8), "out_dim": 8}), epochs=6, progress=False)
    return result, splits


def test_ablation_table(trained):
    result, splits = trained
    table = modality_ablation(result.model, splits.test)
    assert list(table.index) == ["none", "mri", "clinical"]
    assert list(table.columns) == ["balanced_accuracy", "auc", "drop"]
    assert table.loc["none", "drop"] == 0
    assert table.loc["none", "balanced_accuracy"] == pytest.approx(result.metrics.balanced_accuracy)
    assert table.loc["clinical", "drop"] > 0.2  # the table carries the class: removing it costs a lot
    assert table.loc["clinical", "drop"] > table.loc["mri", "drop"] + 0.1
    only = modality_ablation(result.model, splits.test, ["mri"])
    assert list(only.index) == ["none", "mri"]


def test_ablation_errors(trained):
    result, splits = trained
    with pytest.raises(ValueError, match="cannot remove 'pet'"):
        modality_ablation(result.model, splits.test, ["pet"])
    with pytest.raises(ValueError, match="does not have"):
        modality_ablation(result.model, splits.test.select(["mri"]))
    with pytest.raises(TypeError, match="fusion_kit model"):
        modality_ablation(object(), splits.test)


def test_grad_cam_map(trained):
    import numpy as np

    from fusion_kit.explain import grad_cam

    result, splits = trained
    heat = grad_cam(result.model, splits.test, 0, "mri")
    assert heat.shape == splits.test.specs["mri"].spatial_shape
    assert np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
    other = grad_cam(result.model, splits.test, 0, "mri", class_idx=2)
    assert other.shape == heat.shape
    with pytest.raises(ValueError, match="own image encoder for 'clinical'"):
        grad_cam(result.model, splits.test, 0, "clinical")


def test_concat_contributions_add_up_to_the_logits_and_refuse_other_models(toy):
    import torch

    from fusion_kit.explain import concat_contributions
    from fusion_kit.models import build_model

    model = build_model("concat", toy)
    model.head.weight.data.normal_()
    table = concat_contributions(model, toy)
    assert list(table.columns) == list(model.modalities) and len(table) == len(toy)
    model.eval()
    with torch.no_grad():  # the blocks W_m h_m, summed with the bias, are the logits
        batch, mask = model.read(toy.batch())
        h, _ = model.encode(batch, mask)
        blocks = torch.einsum("kmd,nmd->nmk", model.head.weight.view(model.num_classes, len(model.modalities), -1), h)
        assert torch.allclose(blocks.sum(1) + model.head.bias, model(toy.batch()).logits, atol=1e-5)
    assert np.allclose(table.to_numpy(), blocks.std(-1).numpy(), atol=1e-6)
    with torch.no_grad():  # a modality whose block is zeroed moves no logit
        model.head.weight.view(model.num_classes, len(model.modalities), -1)[:, 0] = 0
    assert np.allclose(concat_contributions(model, toy).iloc[:, 0], 0)
    with pytest.raises(ValueError, match="concat model"):
        concat_contributions(build_model("sum", toy), toy)
