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
