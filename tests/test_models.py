"""The registry, build_model's checks and messages, describe, and the architecture diagrams."""
from __future__ import annotations

import itertools
import re

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fusion_kit.data import MultimodalDataset
from fusion_kit.encoders import count_parameters
from fusion_kit.fusion import FusionModel
from fusion_kit.models import (
    FAMILIES,
    STRATEGIES,
    FusionOutput,
    build_model,
    compatible_modalities,
    describe,
    strategies,
    strategy_options,
)
from fusion_kit.train import load_checkpoint, save_checkpoint
from fusion_kit.viz import draw_architecture


def cohort(n: int = 6, size: int = 16) -> MultimodalDataset:
    g = torch.Generator().manual_seed(0)
    return MultimodalDataset(
        {
            "mri": torch.randn(n, 1, size, size, generator=g),
            "pet": torch.randn(n, 1, size, size, generator=g),
            "clinical": torch.randn(n, 5, generator=g),
        },
        torch.arange(n) % 3,
        class_names=("CN", "MCI", "AD"),
    )


@pytest.fixture(scope="module")
def data() -> MultimodalDataset:
    return cohort()


# ------------------------------------------------------------------------------------ registry
def test_registry_covers_every_family_with_documented_classes():
    from fusion_kit.fusion import FallbackModel

    assert {cls.family for cls in STRATEGIES.values()} | {FallbackModel.family} == set(FAMILIES)
    for name, cls in STRATEGIES.items():
        assert re.fullmatch(r"[a-z_]+", name)
        assert issubclass(cls, FusionModel) and cls.family in FAMILIES
        doc = (cls.__doc__ or "").strip()
        assert doc and "\n" not in doc, f"{cls.__name__} needs a one-line docstring with its equation"
    assert strategies("output") == ["average", "majority_vote", "weighted_vote", "learned_weights", "stacking", "evidential"]
    assert len(strategies("attention")) == 6 and strategies("hierarchical") == ["hierarchical", "exchange"]


def test_build_model_sets_the_contract_attributes(data):
    for name in STRATEGIES:
        modalities = compatible_modalities(name, data)
        model = build_model(name, data, modalities=modalities)
        assert model.strategy == name and model.family == STRATEGIES[name].family
        assert model.modalities == tuple(modalities) and list(model.specs) == list(modalities)
        assert model.num_classes == 3
        batch = data.select(list(modalities)).batch()
        assert isinstance(model.eval()(batch), FusionOutput)


def test_modality_subset_keeps_the_given_order(data):
    model = build_model("concat", data, modalities=["clinical", "mri"])
    assert model.modalities == ("clinical", "mri")
    assert build_model("unimodal", data, modalities="pet").modalities == ("pet",)


def test_options_reach_the_encoders_and_are_recorded(data):
    model = build_model("concat", data, channels=(4, 8), out_dim=12, tabular_hidden=(6,))
    assert model.encoders["mri"].stage_channels == (4, 8) and model.encoders["mri"].out_dim == 12
    assert model.encoders["clinical"].net[0].out_features == 6
    assert model.options == {"channels": (4, 8), "out_dim": 12, "tabular_hidden": (6,)}
    assert model.head.in_features == 3 * 12
    assert {"rank", "dim", "impute", "modality_dropout", "channels"} <= set(strategy_options("low_rank"))


def test_build_from_specs_needs_num_classes(data):
    model = build_model("sum", data.specs, num_classes=4)
    assert model.num_classes == 4
    with pytest.raises(ValueError, match="num_classes"):
        build_model("sum", data.specs)


# ----------------------------------------------------------------------------- bad requests
def test_unknown_strategy_lists_the_valid_names(data):
    with pytest.raises(ValueError) as err:
        build_model("atention", data)
    message = str(err.value)
    assert "'atention'" in message and all(name in message for name in STRATEGIES)
    with pytest.raises(ValueError, match="Did you mean 'concat'"):
        build_model("concatenate", data)


def test_unknown_option_names_the_valid_ones(data):
    with pytest.raises(ValueError, match="has no option 'rnak'. Did you mean 'rank'"):
        build_model("low_rank", data, rnak=2)
    with pytest.raises(ValueError, match="'concat' has no option 'rank'.*Its options:.*impute"):
        build_model("concat", data, rank=2)


def test_input_fusion_needs_co_registered_images():
    ds = MultimodalDataset({"mri": torch.randn(4, 1, 16, 16), "pet": torch.randn(4, 1, 8, 8)}, [0, 1, 2, 0])
    expected = "channel stacking.*co-registered images of the same grid.*mri \\(16, 16\\), pet \\(8, 8\\)"
    with pytest.raises(ValueError, match=expected):
        build_model("channel_stack", ds)
    with pytest.raises(ValueError, match="same grid"):
        build_model("hierarchical", ds)
    assert build_model("concat", ds).num_classes == 3  # vector fusion does not care about grids


@pytest.mark.parametrize(
    "strategy, modalities, options, message",
    [
        ("channel_stack", ["mri", "clinical"], {}, "use 'tabular_channels'"),
        ("channel_stack", ["mri"], {}, "at least 2 modalities.*'unimodal'"),
        ("concat", ["mri"], {}, "at least 2 modalities but got only mri.*'unimodal'"),
        ("unimodal", ["mri", "pet"], {}, "exactly one modality.*modalities=\\['mri'\\]"),
        ("film", ["mri", "pet"], {}, "at least 1 tabular modality"),
        ("cross_attention", ["mri", "pet"], {}, "at least 1 tabular"),
        ("spatial_attention", ["mri", "clinical"], {}, "at least 2 image"),
        ("hierarchical", ["mri", "pet"], {"depths": (3,)}, "depths must be stage indices in 0..2"),
        ("hierarchical", ["mri", "pet"], {"depths": ()}, "depths must be"),
        ("cross_attention", None, {"queries": "clinical"}, "queries.*Valid choices: image, table"),
        ("concat", None, {"impute": "zero"}, "Valid choices: neutral, mean, learned"),
        ("concat", None, {"spatial_dims": 3}, "spatial_dims=3 asked for, but 'mri' is 2D"),
        ("concat", None, {"channels": (4, 8, 16, 32, 64, 64)}, "too small for 6 stride-2 encoder stages"),
        ("concat", None, {"modality_dropout": 1.5}, "modality_dropout is a probability"),
        ("transformer", None, {"dim": 30, "heads": 4}, "divisible by heads"),
        ("concat", [], {}, "no modality selected"),
        ("concat", ["mri", "ct"], {}, "no modality 'ct'; the data has mri, pet, clinical"),
    ],
)
def test_incompatible_requests_fail_before_training_with_a_fix(data, strategy, modalities, options, message):
    with pytest.raises(ValueError, match=message) as err:
        build_model(strategy, data, modalities=modalities, **options)
    assert "\n" not in str(err.value)


def test_wrong_batch_is_refused_at_forward(data):
    model = build_model("concat", data)
    batch = data.batch()
    del batch["mask"]
    with pytest.raises(KeyError, match="mask"):
        model(batch)


def test_compatible_modalities_picks_the_largest_selection(data):
    assert compatible_modalities("concat", data) == ("mri", "pet", "clinical")
    assert compatible_modalities("channel_stack", data) == ("mri", "pet")
    assert compatible_modalities("unimodal", data) == ("mri",)


def test_every_batch_norm_keeps_up_with_short_training(data):
    """Models train for a few dozen steps in quick mode: running statistics must follow (momentum 0.5)."""
    for name in ("concat", "hierarchical", "channel_stack"):
        model = build_model(name, data, modalities=compatible_modalities(name, data))
        norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        assert norms and all(m.momentum == 0.5 for m in norms), name


# --------------------------------------------------------------------------------- describe
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_describe_counts_every_parameter_once(data, name):
    model = build_model(name, data, modalities=compatible_modalities(name, data))
    info = describe(model)
    assert info.total == count_parameters(model)
    assert info.encoders > 0 and info.head > 0
    assert info.strategy == name and info.family == model.family and info.where
    assert str(info) == str(describe(build_model(name, data, modalities=compatible_modalities(name, data))))


def test_describe_prints_a_stable_summary(data):
    text = str(describe(build_model("concat", data, channels=(4, 8), out_dim=8, tabular_hidden=(8,))))
    assert text.splitlines()[0] == "concat (single-level fusion) of mri, pet, clinical"
    assert "after the encoders" in text and "| head 75 |" in text  # 3 * 8 * 3 + 3
    assert "no fusion" in str(describe(build_model("unimodal", data, modalities=["mri"])))
    assert describe(build_model("concat", data)).fusion == 0
    assert describe(build_model("gmu", data)).fusion > 0


# ------------------------------------------------------------------------------ checkpoints
def test_checkpoint_keeps_fitted_meta_learner_and_weights(tmp_path, data):
    from fusion_kit.train import fit

    torch.manual_seed(0)
    model = build_model("stacking", data, out_dim=8)
    fit(model, data, epochs=1, batch_size=3, progress=False)
    save_checkpoint(model, tmp_path / "m.pt")
    copy = load_checkpoint(build_model("stacking", data, out_dim=8), tmp_path / "m.pt").eval()
    with torch.no_grad():
        torch.testing.assert_close(copy(data.batch()).logits, model.eval()(data.batch()).logits)
    with pytest.raises(ValueError, match="different model configuration"):
        load_checkpoint(build_model("average", data, out_dim=8), tmp_path / "m.pt")


def test_a_model_is_built_from_plain_configuration_and_checkpoints_compare_it_field_by_field(tmp_path, data):
    model = build_model("low_rank", data, rank=2, channels=(4, 8))
    assert model.config.strategy == "low_rank" and model.config.options == {"channels": (4, 8), "rank": 2}
    assert model.config.as_dict()["options"] == {"channels": [4, 8], "rank": 2}  # plain data a checkpoint can hold
    save_checkpoint(model, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"options: checkpoint \{'channels': \[4, 8\], 'rank': 2\}, model .*'rank': 3"):
        load_checkpoint(build_model("low_rank", data, rank=3, channels=(4, 8)), tmp_path / "m.pt")
    load_checkpoint(build_model("low_rank", data, channels=[4, 8], rank=2), tmp_path / "m.pt")  # a list is the same


# ----------------------------------------------------------------------------------- diagrams
def _text_boxes(fig: Figure):
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(renderer)) for ax in fig.axes for t in ax.texts if t.get_text()], fig.bbox


def _four_modalities() -> MultimodalDataset:
    g = torch.Generator().manual_seed(0)
    return MultimodalDataset(
        {
            "t1": torch.randn(4, 1, 8, 8, 8, generator=g),
            "flair": torch.randn(4, 1, 8, 8, 8, generator=g),
            "pet": torch.randn(4, 1, 8, 8, 8, generator=g),
            "clinical": torch.randn(4, 5, generator=g),
        },
        [0, 1, 2, 0],
    )


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_architecture_diagrams_are_readable(data, name):
    for ds in (data, _four_modalities()):
        model = build_model(name, ds, modalities=compatible_modalities(name, ds))
        fig = draw_architecture(model)
        assert isinstance(fig, Figure)
        texts, frame = _text_boxes(fig)
        joined = " ".join(t for t, _ in texts)
        assert name in joined and all(m in joined for m in model.modalities)
        for (t1, b1), (t2, b2) in itertools.combinations(texts, 2):
            assert not b1.overlaps(b2), f"{name}: text {t1!r} overlaps {t2!r}"
        for t, b in texts:
            assert b.x0 >= frame.x0 - 1 and b.x1 <= frame.x1 + 1 and b.y0 >= frame.y0 - 1 and b.y1 <= frame.y1 + 1, (
                f"{name}: text {t!r} leaves the figure"
            )


def test_diagrams_show_where_each_family_fuses(data):
    def texts(name, **options):
        model = build_model(name, data, modalities=compatible_modalities(name, data), **options)
        return [t for t, _ in _text_boxes(draw_architecture(model))[0]]

    assert any(t.startswith("f (shared)") for t in texts("channel_stack"))  # one encoder after the merge
    assert sum(t == "+" for t in texts("hierarchical")) == 3  # three fusion points
    assert sum(t == "+" for t in texts("hierarchical", depths=(1,))) == 1
    assert sum(t.startswith("head_") for t in texts("average")) == 3  # one head per modality
    assert sum(t == "⊙" for t in texts("film")) == 2  # one conditioning per image
    with pytest.raises(TypeError, match="fusion_kit model"):
        draw_architecture(torch.nn.Linear(2, 2))


def test_every_strategy_builds_for_the_course_cohort():
    """The synthetic brain cohort of the chapters (skipped until fusion_kit.data provides it)."""
    data_module = pytest.importorskip("fusion_kit.data")
    make_brain_cohort = getattr(data_module, "make_brain_cohort", None)
    if make_brain_cohort is None:
        pytest.skip("fusion_kit.data.make_brain_cohort is not available yet")
    ds = make_brain_cohort(12)
    for name in STRATEGIES:
        modalities = compatible_modalities(name, ds)
        model = build_model(name, ds, modalities=modalities).eval()
        with torch.no_grad():
            out = model(ds.select(list(modalities)).batch())
        assert out.logits.shape == (12, ds.num_classes)


def test_taxonomy_table_lists_every_registered_strategy_by_where_what_and_how(monkeypatch):
    from fusion_kit import models

    table = models.taxonomy_table()
    assert list(table.index) == list(models.STRATEGIES)
    assert (table[["family", "where", "what", "how"]] != "").all().all()
    for name, cls in models.STRATEGIES.items():
        assert table.loc[name, "family"] == cls.family
        assert table.loc[name, "how"] == cls.__doc__.strip().splitlines()[0]
    assert "feature maps" in table.loc["film", "what"] and "decisions" in table.loc["average", "what"]
    assert "stages 0, 1, 2" in table.loc["hierarchical", "where"]  # read from a model built on the course's specs

    class Halves(models.STRATEGIES["concat"]):
        """z = [h_1 / 2; ...; h_M / 2]"""

    monkeypatch.setitem(models.STRATEGIES, "halves", Halves)
    assert models.taxonomy_table().loc["halves", "how"] == "z = [h_1 / 2; ...; h_M / 2]"
