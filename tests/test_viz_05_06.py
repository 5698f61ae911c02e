"""Figures, calibration metrics and the attention panel added for chapters 05 (attention) and 06 (output fusion)."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fusion_kit import viz, widgets  # noqa: E402
from fusion_kit.data import MultimodalDataset, split_dataset  # noqa: E402
from fusion_kit.explain import attention_summary  # noqa: E402
from fusion_kit.metrics import calibration_bins, expected_calibration_error  # noqa: E402
from fusion_kit.models import build_model  # noqa: E402
from fusion_kit.train import fit, predict  # noqa: E402

from conftest import make_toy_dataset  # noqa: E402

SMALL = {"channels": (4, 8), "out_dim": 8}


@pytest.fixture(scope="module")
def three():
    """Two images on one grid and a table."""
    toy = make_toy_dataset(90)
    g = torch.Generator().manual_seed(1)
    pet = toy.tensors["mri"].flip(-1) + 0.3 * torch.randn(toy.tensors["mri"].shape, generator=g)
    return MultimodalDataset({"mri": toy.tensors["mri"], "pet": pet, "clinical": toy.tensors["clinical"]}, toy.labels,
                             class_names=toy.class_names, feature_names={"clinical": ("a", "b", "c", "d")})


# ------------------------------------------------------------------ calibration metrics
def test_calibration_bins_and_ece_by_hand():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.95, 0.05], [0.85, 0.15], [0.3, 0.7], [0.75, 0.25]])  # confidences .95 .85 .7 .75
    conf, acc, count = calibration_bins(labels, probs, bins=4)  # bins [0,.25) [.25,.5) [.5,.75) [.75,1]
    assert count.tolist() == [0, 0, 1, 3]
    assert acc[3] == pytest.approx(2 / 3) and conf[3] == pytest.approx((0.95 + 0.85 + 0.75) / 3)
    expected = 0.25 * abs(1 - 0.7) + 0.75 * abs(2 / 3 - 0.85)
    assert expected_calibration_error(labels, probs, bins=4) == pytest.approx(expected)
    assert expected_calibration_error([0, 1], np.array([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="shape"):
        calibration_bins([0, 1, 1], probs)
    with pytest.raises(ValueError, match="bins"):
        calibration_bins(labels, probs, bins=0)


def test_plot_reliability_shows_ece_per_model():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    probs = {"a": rng.dirichlet(np.ones(3), 200), "b": np.eye(3)[labels] * 0.9 + 0.1 / 3}
    fig = viz.plot_reliability(probs, labels)
    texts = fig.axes[0].get_legend().get_texts()
    assert any("b (ECE 0.067)" in t.get_text() for t in texts)
    assert len(fig.axes) == 2


# ------------------------------------------------------------------ attention summaries and figures
@pytest.mark.parametrize("strategy,options,names", [
    ("modality_attention", {}, ["mri", "pet", "clinical"]),
    ("transformer", {"dim": 8, "heads": 2}, ["mri", "pet", "clinical"]),
    ("channel_attention", {}, ["mri", "pet", "clinical"]),
    ("spatial_attention", {}, ["mri", "pet"]),
    ("cross_attention", {"queries": "image", "dim": 8, "heads": 2}, ["nothing", "a", "b", "c", "d"]),
    ("cross_attention", {"queries": "table", "dim": 8, "heads": 2}, ["nothing", "mri", "pet"]),
    ("learned_weights", {}, ["mri", "pet", "clinical"]),
])
def test_each_model_summarises_its_attention_one_column_per_source(three, strategy, options, names):
    model = build_model(strategy, three, **SMALL, **options).eval()
    summary = attention_summary(model, predict(model, three))
    assert summary.names == names and summary.weights.shape == (len(three), len(names))
    assert np.array_equal(summary.labels, three.labels.numpy())
    if strategy not in ("channel_attention", "spatial_attention"):  # softmax weights over sources sum to 1
        assert np.allclose(summary.weights.sum(1), 1, atol=1e-4)
    assert np.isfinite(summary.weights).all() and (summary.weights >= 0).all() and (summary.weights <= 1 + 1e-6).all()


def test_a_model_without_attention_says_so(three):
    model = build_model("concat", three, **SMALL).eval()
    with pytest.raises(ValueError, match="no attention"):
        attention_summary(model, predict(model, three))


def test_attention_figures(three):
    models = {s: build_model(s, three, **SMALL).eval() for s in ("modality_attention", "spatial_attention")}
    summaries = {s: attention_summary(m, predict(m, three)) for s, m in models.items()}
    fig = viz.plot_attention_by_class(summaries, three.class_names, ncols=3)
    assert [ax.get_title() for ax in fig.axes] == list(models)
    fig = viz.plot_attention_by_class({**summaries, "again": summaries["modality_attention"]}, three.class_names, ncols=2)
    assert len(fig.axes) == 4 and not fig.axes[3].axison
    pred = predict(models["modality_attention"], three)
    severity = np.linspace(-1, 3, len(three))
    fig = viz.plot_attention_by_severity(pred.attention, severity, ["mri", "pet", "clinical"], pred.labels, three.class_names)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["mri", "pet", "clinical"]
    spatial = predict(models["spatial_attention"], three).attention
    fig = viz.plot_spatial_attention(three, spatial, [0, 1])
    assert len(fig.axes) == 5  # 2 subjects x 2 images + colour bar


def test_plot_uncertainty_with_and_without_severity():
    rng = np.random.default_rng(0)
    u = rng.random((50, 4))
    correct = rng.random(50) > 0.3
    assert len(viz.plot_uncertainty(u, correct, ["mri", "pet", "clinical"]).axes) == 1
    fig = viz.plot_uncertainty(u, correct, ["mri", "pet", "clinical"], severity=rng.normal(size=50))
    assert len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["mri", "pet", "clinical", "fused"]


def test_evidential_uncertainty_feeds_the_figure(three):
    model = build_model("evidential", three, **SMALL)
    fit(model, three, epochs=1, progress=False)
    with torch.no_grad():
        out = model.eval()(three.batch())
    u = out.uncertainty.numpy()
    assert u.shape == (len(three), 4) and ((u > 0) & (u <= 1)).all()
    assert len(viz.plot_uncertainty(u, out.logits.argmax(1).numpy() == three.labels.numpy(), model.modalities).axes) == 1


# ------------------------------------------------------------------ the attention panel's plain function
def test_attention_panel_shows_the_weights_the_run_kept(three):
    splits = split_dataset(three, seed=0)
    figure = widgets.attention_figure(splits.test.class_names)
    result = widgets.run_and_show(splits, ("modality_attention", ["mri", "clinical"], SMALL), figure=figure, epochs=1)
    assert "balanced accuracy" in result.text and result.figure.axes
    assert result.data.setup.modalities == ("mri", "clinical")
    with pytest.raises(ValueError, match="no attention"):
        widgets.run_and_show(splits, ("concat", ["mri", "clinical"], SMALL), figure=figure, epochs=1)


def test_figures_show_themselves_as_png_and_importing_changes_nothing():
    import subprocess
    import sys

    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    data, _ = shell.display_formatter.format(viz.plot_uncertainty(np.full((3, 2), 0.5), [True, False, True], ["mri"]))
    assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n" or data["image/png"][:4] == "iVBO"  # raw bytes or base64
    from matplotlib.figure import Figure

    assert Figure not in shell.display_formatter.formatters["image/png"].type_printers
    probe = ("import sys; import fusion_kit, fusion_kit.viz, fusion_kit.widgets, fusion_kit.models, fusion_kit.train; "
             "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot (and its global figure state) was imported'")
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_evidential_validation_loss_uses_the_full_kl_weight(three):
    """Early stopping compares validation losses across epochs: they must not depend on the annealing step."""
    model = build_model("evidential", three, **SMALL).eval()
    batch = three.batch(slice(0, 16))
    with torch.no_grad():
        out = model(batch)
        first = model.loss(out, batch["label"])
        model.steps = 5  # as after a few training steps
        assert torch.allclose(model.loss(out, batch["label"]), first)
    model.train()
    model.steps = 0
    early = model.loss(model(batch), batch["label"])  # KL weight 1/anneal_steps
    model.steps = 10**6
    late = model.loss(model(batch), batch["label"])  # full KL weight
    assert early.item() != late.item()
