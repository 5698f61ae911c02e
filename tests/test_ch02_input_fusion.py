"""Chapter 02: the misregistration panel (a cohort per level, trained with ``run_and_show``) and the registration figures."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from fusion_kit import viz, widgets  # noqa: E402
from fusion_kit.data import make_brain_cohort, split_dataset  # noqa: E402

SMALL = {"channels": (4, 8), "out_dim": 8}


def moved_run(modalities, strategy, misregistration, epochs=1):
    """What the chapter's panel calls: the cohort with PET moved by ``misregistration`` mm, one model, its figure."""
    moved = split_dataset(make_brain_cohort(45, misregistration=misregistration), seed=0)
    return widgets.run_and_show(moved, (strategy, modalities, SMALL), epochs=epochs,
                                note=f", PET moved by {misregistration:g} mm",
                                figure=lambda result: viz.plot_registration_result(result, moved.test))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSION_KIT_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def cohorts():
    return {"aligned": make_brain_cohort(24, cache=False), "6 mm": make_brain_cohort(24, misregistration=6.0, cache=False)}


def test_the_panel_function_trains_on_the_moved_cohort():
    shown = moved_run(["mri", "pet"], "channel_stack", 6)
    assert "PET moved by 6 mm" in shown.text and "balanced accuracy" in shown.text
    assert shown.data.setup.modalities == ("mri", "pet") and shown.data.family == "input"
    assert len(shown.figure.axes) == 3


def test_the_panel_function_refuses_what_the_strategy_cannot_take():
    with pytest.raises(ValueError, match="at least 2 modalities"):
        moved_run(["clinical"], "channel_stack", 0)
    with pytest.raises(ValueError, match="tabular_channels"):
        moved_run(["mri", "pet", "clinical"], "channel_stack", 0)
    with pytest.raises(ValueError, match="no modality selected"):
        moved_run([], "concat", 0)


def test_panel_passes_the_misregistration_knob_and_reports_bad_choices():
    calls = []

    def run(modalities, strategy, misregistration):
        calls.append((tuple(modalities), strategy, misregistration))
        return moved_run(modalities, strategy, misregistration)

    panel = widgets.training_panel(run, modalities=("mri", "pet", "clinical"), strategies=["channel_stack", "concat"],
                                   knobs={"misregistration": (0.0, 12.0, 1.0, 3.0)}, selected=["clinical"])
    assert panel.train() is None
    assert panel.status.value.startswith("Cannot train this combination") and "modalities" in panel.status.value
    panel.checkboxes["clinical"].value = False
    panel.checkboxes["mri"].value = panel.checkboxes["pet"].value = True
    assert panel.train() is not None and "PET moved by 3 mm" in panel.status.value
    assert calls[-1] == (("mri", "pet"), "channel_stack", 3.0)


def test_plot_registration_one_panel_per_dataset(cohorts):
    assert torch.equal(cohorts["aligned"].tensors["mri"], cohorts["6 mm"].tensors["mri"])  # only PET moves
    fig = viz.plot_registration(cohorts, index=1)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_xlabel().startswith("PET moved 0.0 mm")
    assert not fig.axes[1].get_xlabel().startswith("PET moved 0.0 mm")
    assert "sub-0002" in fig._suptitle.get_text()


def test_plot_registration_checks_its_inputs(cohorts):
    with pytest.raises(TypeError, match="dict"):
        viz.plot_registration([cohorts["aligned"]])
    with pytest.raises(ValueError, match="no image modality 'pet'"):
        viz.plot_registration({"mri only": cohorts["aligned"].select(["mri", "clinical"])})
