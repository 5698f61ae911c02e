import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from fusion_kit import widgets  # noqa: E402
from fusion_kit.data import split_dataset  # noqa: E402

from conftest import make_toy_dataset  # noqa: E402


@pytest.fixture(scope="module")
def splits():
    return split_dataset(make_toy_dataset(150), seed=0)


def test_plain_function_returns_figure_and_text(splits):
    from fusion_kit import viz

    shown = widgets.run_and_show(splits, ("concat", ["mri", "clinical"], {"channels": (4, 8), "out_dim": 8}), epochs=1,
                                 figure=lambda r: viz.plot_confusions({r.setup.label: r.metrics}), note=", a note")
    assert len(shown.figure.axes) == 1 and "concat (mri+clinical)</b>, a note:" in shown.text
    result = widgets.run_and_show(splits, ("concat", ["mri", "clinical"], {"channels": (4, 8), "out_dim": 8}), epochs=2)
    assert result.figure.axes and "balanced accuracy" in result.text
    assert result.data.setup.modalities == ("mri", "clinical")


def test_panel_trains_with_its_controls(splits):
    calls = []

    def run(modalities, strategy, depth):
        calls.append((tuple(modalities), strategy, depth))
        return widgets.run_and_show(splits, (strategy, modalities, {"channels": (4, 8), "out_dim": 8}), epochs=1)

    panel = widgets.training_panel(run, modalities=("mri", "clinical"), strategies=["concat", "sum"],
                                   knobs={"depth": (0, 3, 1, 2)}, selected=["mri"])
    assert panel.selected_modalities == ["mri"]
    panel.checkboxes["clinical"].value = True
    panel.strategy.value = "sum"
    panel.knobs["depth"].value = 1
    panel.button.click()  # exactly what pressing Train does
    assert calls == [(("mri", "clinical"), "sum", 1)]
    assert panel.result is not None and panel.status.value == panel.result.text
    assert not panel.button.disabled


def test_panel_with_no_modality_says_so(splits):
    panel = widgets.training_panel(lambda **kw: pytest.fail("must not run"), modalities=("mri",), strategies=["concat"])
    panel.checkboxes["mri"].value = False
    assert panel.train() is None
    assert "No modality selected" in panel.status.value


def test_panel_reports_impossible_choices(splits):
    def run(modalities, strategy):
        return widgets.run_and_show(splits, (strategy, modalities), epochs=1)

    panel = widgets.training_panel(run, modalities=("mri", "clinical"), strategies=["film"], selected=["mri"])
    assert panel.train() is None
    assert panel.status.value.startswith("Cannot train this combination")


def test_float_slider_and_dropdown_knobs():
    panel = widgets.training_panel(lambda **kw: None, modalities=("mri",), strategies=["concat"],
                                   knobs={"shift": (0.0, 6.0, 1.0, 2.0), "size": (["small", "large"], "small")})
    assert panel.values() == {"modalities": ["mri"], "strategy": "concat", "shift": 2.0, "size": "small"}
    with pytest.raises(ValueError, match="at least one strategy"):
        widgets.training_panel(lambda **kw: None, modalities=("mri",), strategies=[])


def test_panel_reports_impossible_choices_inside_a_kernel(splits):
    """Inside IPython, ipywidgets' Output swallows exceptions; the panel must still report the reason."""
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.instance()

    def run(modalities, strategy):
        return widgets.run_and_show(splits, (strategy, modalities), epochs=1)

    panel = widgets.training_panel(run, modalities=("mri", "clinical"), strategies=["film"], selected=["mri"])
    assert panel.train() is None
    assert "at least 2 modalities" in panel.status.value
    assert not panel.button.disabled
