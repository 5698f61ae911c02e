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


def test_panel_with_seeds_runs_each_and_keeps_a_history(splits):
    seen = []

    def run(modalities, strategy, seed):
        seen.append(seed)
        return widgets.run_and_show(splits, (strategy, modalities, {"channels": (4, 8), "out_dim": 8}), epochs=1,
                                    seed=seed)

    panel = widgets.training_panel(run, modalities=("mri", "clinical"), strategies=["concat"])
    assert panel.seeded
    panel.seed.value, panel.repeats.value = 5, 3
    result = panel.train()
    assert seen == [5, 6, 7] and result is not None
    assert "over seeds 5, 6, 7" in panel.status.value and "±" in panel.status.value
    panel.repeats.value = 1
    panel.train()
    assert [h["seeds"] for h in panel.history] == [[5, 6, 7], [5]] and len(panel.history[0]["scores"]) == 3
    table = widgets.history_table(panel.history)
    assert table.count("<tr>") == 3 and "concat (mri+clinical)" in table
    from fusion_kit import viz

    fig = viz.plot_panel_history(panel.history)
    assert len(fig.axes[0].get_xticklabels()) == 2


def test_a_run_that_fails_unexpectedly_leaves_a_readable_status_and_no_stale_result(splits):
    calls = []

    def run(modalities, strategy, seed):
        calls.append(seed)
        if len(calls) > 1:
            raise RuntimeError("out of memory")
        return widgets.run_and_show(splits, (strategy, modalities, {"channels": (4, 8), "out_dim": 8}), epochs=1)

    panel = widgets.training_panel(run, modalities=("mri",), strategies=["unimodal"])
    assert panel.train() is not None
    assert panel.train() is None
    assert panel.result is None and panel.status.value == "Training failed (RuntimeError): out of memory"
    assert not panel.button.disabled and len(panel.history) == 1


def test_a_run_without_a_seed_gets_no_seed_control(splits):
    panel = widgets.training_panel(lambda modalities, strategy: None, modalities=("mri",), strategies=["concat"])
    assert not panel.seeded and panel.seeds() == [None]
