"""Chapter 04's panel: hierarchical fusion at chosen depths, or a strategy without depths (``widgets.depth_setup``)."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from fusion_kit import widgets  # noqa: E402
from fusion_kit.data import split_dataset  # noqa: E402

from conftest import make_toy_dataset  # noqa: E402

SMALL = {"channels": (4, 8, 8), "out_dim": 8}


def depths_run(splits, modalities, strategy, depths, **fit_kwargs):
    """What the chapter's panel calls."""
    setup, note = widgets.depth_setup(strategy, modalities, depths)
    setup = type(setup)(setup.strategy, setup.modalities, {**setup.options, **SMALL}, setup.name)
    return widgets.run_and_show(splits, setup, note=note, **fit_kwargs)


@pytest.fixture(scope="module")
def splits():
    return split_dataset(make_toy_dataset(120), seed=0)


def test_depths_reach_the_hierarchical_model(splits):
    result = depths_run(splits, ["mri", "clinical"], "hierarchical", (1, 2), epochs=1)
    assert result.data.model.depths == (1, 2)
    assert result.figure.axes and "balanced accuracy" in result.text
    assert "depths 1, 2" in result.text


def test_single_depth_as_int(splits):
    result = depths_run(splits, ["mri", "clinical"], "hierarchical", 0, epochs=1)
    assert result.data.model.depths == (0,)


def test_strategy_without_depths_ignores_them_and_says_so(splits):
    result = depths_run(splits, ["mri", "clinical"], "concat", (0,), epochs=1)
    assert result.data.setup.strategy == "concat" and "depths" not in result.data.setup.options
    assert "not used" in result.text


def test_bad_choices_fail_before_training(splits):
    with pytest.raises(ValueError, match="depths must be stage indices"):
        depths_run(splits, ["mri", "clinical"], "hierarchical", (5,), epochs=1)
    with pytest.raises(ValueError, match="at least 2 modalities"):
        depths_run(splits, ["clinical"], "hierarchical", (0,), epochs=1)
    with pytest.raises(ValueError, match="hierarchical"):
        depths_run(splits, ["mri", "clinical"], "hierarchcal", (0,), epochs=1)


def test_panel_with_a_depth_dropdown(splits):
    options = [("early (0)", (0,)), ("late (2)", (2,)), ("all (0, 1, 2)", (0, 1, 2))]
    panel = widgets.training_panel(
        lambda modalities, strategy, depths: depths_run(splits, modalities, strategy, depths, epochs=1),
        modalities=("mri", "clinical"), strategies=["hierarchical", "concat"], knobs={"depths": (options, (0, 1, 2))},
    )
    assert panel.values()["depths"] == (0, 1, 2)
    panel.knobs["depths"].value = (2,)
    result = panel.train()
    assert result is not None and result.data.model.depths == (2,)
    panel.checkboxes["mri"].value = False  # clinical alone cannot be fused hierarchically
    assert panel.train() is None and panel.status.value.startswith("Cannot train this combination")
