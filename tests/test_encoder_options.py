"""Per-modality encoders (``build_model(..., encoders={"pet": {...}})``): each option reaches the encoder it names
and no other, and every request a model cannot serve is refused with the valid choices."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fusion_kit.data import MultimodalDataset
from fusion_kit.models import STRATEGIES, build_model, compatible_modalities, describe
from fusion_kit.train import load_checkpoint, save_checkpoint

OWN = {"pet": {"kernel_size": 5, "res_units": 1}, "clinical": {"hidden": (7,), "dropout": 0.25}}


def three_modalities(n: int = 24, size: int = 16) -> MultimodalDataset:
    g = torch.Generator().manual_seed(0)
    return MultimodalDataset(
        {"mri": torch.randn(n, 1, size, size, generator=g), "pet": torch.randn(n, 1, size, size, generator=g),
         "clinical": torch.randn(n, 4, generator=g)},
        torch.arange(n) % 3, class_names=("CN", "MCI", "AD"),
    )


def kernels(encoder: nn.Module) -> set[int]:
    return {m.kernel_size[0] for m in encoder.modules() if isinstance(m, nn.Conv2d) and m.stride[0] == 2}


def residual_units(encoder: nn.Module) -> int:
    return sum(type(m).__name__ == "ResidualUnit" for m in encoder.modules())


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_each_option_reaches_the_encoder_it_names_and_no_other(strategy):
    data = three_modalities()
    chosen = ("pet",) if strategy == "unimodal" else compatible_modalities(strategy, data)
    own = {m: o for m, o in OWN.items() if m in chosen}
    cls = STRATEGIES[strategy]
    if not own:
        pytest.skip(f"{strategy} takes none of {', '.join(OWN)}")
    if not cls.own_encoders:
        with pytest.raises(ValueError, match="one shared encoder"):
            build_model(strategy, data, modalities=chosen, encoders=own)
        return
    try:
        model = build_model(strategy, data, modalities=chosen, encoders=own)
    except ValueError as err:  # a table read as tokens: the options could not apply, and it says so
        assert "builds no encoder of its own for clinical" in str(err), err
        return
    plain = build_model(strategy, data, modalities=chosen)
    for m in chosen:
        mine, theirs = model.encoders[m], plain.encoders[m]
        if m == "pet":
            assert kernels(mine) == {5} and residual_units(mine) == residual_units(theirs) + len(mine.stages)
        elif m == "clinical":
            linears = [x for x in mine.modules() if isinstance(x, nn.Linear)]
            assert linears[0].out_features == 7
            assert {x.p for x in mine.modules() if isinstance(x, nn.Dropout)} == {0.25}
        else:  # untouched: exactly the default encoder
            assert [p.shape for p in mine.parameters()] == [p.shape for p in theirs.parameters()]
            assert kernels(mine) <= {3}


def test_vector_fusion_lets_images_differ_in_channels_and_map_fusion_refuses():
    data = three_modalities()
    model = build_model("concat", data, encoders={"pet": {"channels": (4, 8)}})
    assert model.encoders["pet"].stage_channels == (4, 8) and model.encoders["mri"].stage_channels == (8, 16, 32)
    assert model(data.batch(slice(0, 4))).logits.shape == (4, 3)
    for strategy in ("hierarchical", "film", "spatial_attention", "exchange"):
        with pytest.raises(ValueError, match="must share their stage channels"):
            build_model(strategy, data, encoders={"pet": {"channels": (4, 8)}})


def test_mistakes_name_the_valid_choices():
    data = three_modalities()
    with pytest.raises(ValueError, match="its modalities: mri, pet, clinical"):
        build_model("concat", data, encoders={"ct": {"kernel_size": 5}})
    with pytest.raises(ValueError, match="Did you mean 'kernel_size'"):
        build_model("concat", data, encoders={"pet": {"kernel": 5}})
    with pytest.raises(ValueError, match="Its options: hidden, dropout"):
        build_model("concat", data, encoders={"clinical": {"channels": (4,)}})
    with pytest.raises(ValueError, match="odd positive integer"):
        build_model("concat", data, encoders={"pet": {"kernel_size": 4}})
    with pytest.raises(ValueError, match="too small for 6 stride-2"):
        build_model("concat", data, encoders={"pet": {"channels": (4, 4, 4, 4, 4, 4)}})
    with pytest.raises(ValueError, match="maps a modality"):
        build_model("concat", data, encoders=[("pet", {})])


def test_describe_and_checkpoints_carry_the_per_modality_encoders(tmp_path):
    data = three_modalities()
    model = build_model("concat", data, encoders={"pet": {"kernel_size": 5}})
    line = str(describe(model)).splitlines()[-1]
    assert line.startswith("  encoders:") and "pet" in line and "kernel_size 5" in line
    path = save_checkpoint(model, tmp_path / "m.pt")
    load_checkpoint(build_model("concat", data, encoders={"pet": {"kernel_size": 5}}), path)
    with pytest.raises(ValueError, match="encoders"):
        load_checkpoint(build_model("concat", data), path)


# ------------------------------------------------------------------------- one encoder shared by the images
SHARING = [name for name, cls in STRATEGIES.items() if getattr(cls, "can_share_images", False)]


@pytest.mark.parametrize("strategy", SHARING)
def test_shared_images_use_one_parameter_set_and_keep_absent_content_out(strategy):
    data = three_modalities()
    torch.manual_seed(0)
    shared = build_model(strategy, data, shared_images=True, channels=(4, 8), out_dim=8)
    torch.manual_seed(0)
    separate = build_model(strategy, data, channels=(4, 8), out_dim=8)
    mri, pet = shared.encoders["mri"].shared, shared.encoders["pet"].shared
    assert mri is pet
    one_image = sum(p.numel() for p in separate.encoders["pet"].parameters())
    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    assert count(shared) == count(separate) - one_image + 2 * 8  # one encoder less, one embedding per image more
    batch = data.batch(slice(0, 6))
    batch["mask"][::2, 1] = False  # PET absent for every other subject
    shared.eval()
    before = shared(batch).logits
    changed = dict(batch, pet=torch.where(batch["mask"][:, 1].view(-1, 1, 1, 1), batch["pet"], torch.full_like(batch["pet"], 1e3)))
    torch.testing.assert_close(shared(changed).logits, before)  # absent content never reaches the output
    shared.train()
    torch.nn.functional.cross_entropy(shared(data.batch(slice(0, 6))).logits, batch["label"]).backward()
    assert mri.embedding.grad is not None and (mri.embedding.grad.abs().sum(1) > 0).all()  # both images' embeddings learn


def test_shared_encoder_learns_from_both_images_and_survives_a_checkpoint(tmp_path):
    data = three_modalities()
    model = build_model("concat", data, shared_images=True, channels=(4, 8), out_dim=8)
    weight = next(model.encoders["mri"].shared.encoder.parameters())
    batch = data.batch(slice(0, 6))
    only_pet = dict(batch, mask=batch["mask"].clone())
    only_pet["mask"][:, 0] = False  # no MRI at all: the shared encoder still gets a gradient, from PET
    torch.nn.functional.cross_entropy(model(only_pet).logits, batch["label"]).backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    path = save_checkpoint(model, tmp_path / "shared.pt")
    back = load_checkpoint(build_model("concat", data, shared_images=True, channels=(4, 8), out_dim=8), path)
    with pytest.raises(ValueError):  # a model without sharing is another configuration
        load_checkpoint(build_model("concat", data, channels=(4, 8), out_dim=8), path)
    assert back.encoders["mri"].shared is back.encoders["pet"].shared
    model.eval(), back.eval()
    torch.testing.assert_close(back(batch).logits, model(batch).logits)
    assert "share one encoder" in str(describe(back))


def test_shared_images_refusals_say_what_to_do():
    data = three_modalities()
    with pytest.raises(ValueError, match="stage by stage"):
        build_model("film", data, shared_images=True)
    with pytest.raises(ValueError, match="1 image modality"):
        build_model("concat", data, modalities=["mri", "clinical"], shared_images=True)
    with pytest.raises(ValueError, match="cannot set one of them apart"):
        build_model("concat", data, shared_images=True, encoders={"pet": {"kernel_size": 5}})
    with pytest.raises(ValueError, match="has no option 'shared_images'"):
        build_model("spatial_attention", data, shared_images=True)
    other = MultimodalDataset({"mri": torch.randn(24, 1, 16, 16), "pet": torch.randn(24, 1, 8, 8)}, torch.arange(24) % 3)
    with pytest.raises(ValueError, match="one shape"):
        build_model("concat", other, shared_images=True)


def test_stage_maps_show_each_image_encoder_stage_by_stage():
    from fusion_kit import viz

    data = three_modalities()
    own = build_model("concat", data, channels=(4, 8, 8), encoders={"pet": {"channels": (4, 8)}})
    fig = viz.plot_stage_maps(own, data, 1)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert sum(t.startswith("mri") for t in titles) == 1 and sum("stage 2" in t for t in titles) == 1  # PET: 2 stages
    shared = viz.plot_stage_maps(build_model("concat", data, shared_images=True, channels=(4, 8)), data, 0)
    assert sum(bool(ax.get_title()) for ax in shared.axes) == 6  # two images, input and two stages each
    with pytest.raises(ValueError, match="no image encoder"):
        viz.plot_stage_maps(build_model("channel_stack", data, modalities=["mri", "pet"]), data, 0)


@pytest.mark.parametrize("dims", [2, 3])
def test_densenet_reaches_only_the_modality_it_names_and_trains(dims):
    from fusion_kit.encoders import DenseNetEncoder, ImageEncoder

    shape = (16, 16) if dims == 2 else (16, 16, 16)
    g = torch.Generator().manual_seed(0)
    data = MultimodalDataset({"mri": torch.randn(12, 1, *shape, generator=g), "pet": torch.randn(12, 1, *shape, generator=g),
                              "clinical": torch.randn(12, 3, generator=g)}, torch.arange(12) % 3)
    model = build_model("gmu", data, channels=(4, 8), out_dim=8, encoders={"pet": {"network": "densenet", "channels": (4, 4)}})
    assert isinstance(model.encoders["pet"], DenseNetEncoder) and isinstance(model.encoders["mri"], ImageEncoder)
    assert "network densenet" in str(describe(model))
    out = model(data.batch(slice(0, 6)))
    torch.nn.functional.cross_entropy(out.logits, data.labels[:6]).backward()
    assert all(p.grad is not None for p in model.encoders["pet"].parameters())
    with pytest.raises(ValueError, match="stage maps"):
        from fusion_kit import viz
        viz.plot_stage_maps(model, data, 0, images=["pet"])


def test_densenet_refusals_say_what_to_do():
    data = three_modalities()
    with pytest.raises(ValueError, match="must stay 'cnn'"):
        build_model("film", data, encoders={"pet": {"network": "densenet"}})
    with pytest.raises(ValueError, match="shapes the course's CNN"):
        build_model("concat", data, encoders={"pet": {"network": "densenet", "res_units": 1}})
    with pytest.raises(ValueError, match="one of cnn, densenet"):
        build_model("concat", data, encoders={"pet": {"network": "resnet"}})


def test_architecture_diagram_names_each_modality_encoder():
    from fusion_kit import viz

    data = three_modalities()
    own = {"pet": {"channels": (4, 8), "kernel_size": 5}, "mri": {"network": "densenet"}, "clinical": {"hidden": (6, 4)}}
    texts = " ".join(t.get_text() for ax in viz.draw_architecture(build_model("concat", data, encoders=own)).axes
                     for t in ax.texts)
    assert "DenseNet, 3 blocks" in texts and "CNN, 2 stages, k5" in texts and "MLP 6-4" in texts
    shared = viz.draw_architecture(build_model("gmu", data, shared_images=True))
    assert "CNN shared, 3 stages" in " ".join(t.get_text() for ax in shared.axes for t in ax.texts)


def test_categorical_columns_are_embedded_from_the_training_values():
    from fusion_kit.encoders import MAX_LEVELS
    from fusion_kit.train import fit

    g = torch.Generator().manual_seed(0)
    n = 60
    table = torch.randn(n, 3, generator=g)
    table[:, 1] = torch.arange(n) % 3 * 10.0  # a category coded 0, 10, 20
    data = MultimodalDataset({"mri": torch.randn(n, 1, 16, 16, generator=g), "clinical": table}, torch.arange(n) % 3,
                             feature_names={"clinical": ["a", "site", "b"]})
    model = build_model("concat", data, channels=(4, 8), out_dim=8, encoders={"clinical": {"categorical": ["site"]}})
    other = build_model("concat", data, channels=(4, 8), out_dim=8)
    assert model.encoders["clinical"].categorical == (1,) and other.encoders["clinical"].categorical == ()
    fit(model, data, epochs=2, progress=False)
    encoder = model.encoders["clinical"]
    assert int(torch.isfinite(encoder.levels).sum()) == 3  # three values seen in training
    scaled = model.scaling(data.batch(slice(0, 6)))["clinical"]
    assert encoder.codes(scaled)[:, 0].tolist() == [0, 1, 2, 0, 1, 2]
    unseen = scaled.clone()
    unseen[:, 1] = 99.0
    assert (encoder.codes(unseen) == MAX_LEVELS).all()  # a value never seen in training: the "unseen" category
    torch.nn.functional.cross_entropy(model(data.batch(slice(0, 6))).logits, data.labels[:6]).backward()
    assert encoder.embeddings[0].weight.grad is not None
    assert "categorical ('site',)" in str(describe(model))


def test_categorical_refusals_say_what_to_do():
    data = three_modalities()  # its table has no column names
    with pytest.raises(ValueError, match="no column names"):
        build_model("concat", data, encoders={"clinical": {"categorical": ["sex"]}})
    named = MultimodalDataset({"mri": torch.randn(40, 1, 16, 16), "clinical": torch.randn(40, 2)}, torch.arange(40) % 3,
                              feature_names={"clinical": ["age", "score"]})
    with pytest.raises(ValueError, match="does not have; its columns: age, score"):
        build_model("concat", named, encoders={"clinical": {"categorical": ["sex"]}})
    with pytest.raises(ValueError, match="lists column names"):
        build_model("concat", named, encoders={"clinical": {"categorical": 3}})
    from fusion_kit.train import fit
    with pytest.raises(ValueError, match="read it as a number"):  # 40 distinct values: not a category
        fit(build_model("concat", named, channels=(4, 8), encoders={"clinical": {"categorical": ["age"]}}), named, epochs=1)
