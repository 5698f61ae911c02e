"""Figures of chapters 00 (the taxonomy) and 01 (the clinical table per class)."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fusion_kit import viz  # noqa: E402
from fusion_kit.data import MultimodalDataset  # noqa: E402


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [fig._suptitle.get_text() if fig._suptitle else ""]


def test_taxonomy_draws_five_families_in_order():
    fig = viz.draw_taxonomy()
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5
    texts = _texts(fig)
    titles = ["Input fusion", "Single-level fusion", "Hierarchical fusion", "Attention-based fusion", "Output fusion"]
    for ax, title in zip(fig.axes, titles):  # one strip per family, from the earliest fusion to the latest
        assert title in [t.get_text() for t in ax.texts]
    for modality in ("MRI", "PET", "clinical"):
        assert texts.count(modality) == 5, f"every strip shows the {modality} input"
    fig.canvas.draw()  # mathtext labels and equations render


def _table_dataset(n: int = 90) -> MultimodalDataset:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 3
    raw = np.stack([
        60 + 5 * labels + rng.normal(0, 3, n),  # continuous
        rng.integers(0, 2, n),  # binary
        np.minimum(labels, rng.integers(0, 3, n)),  # three integer levels
    ], 1).astype(float)
    return MultimodalDataset({"clinical": raw}, labels, class_names=("CN", "MCI", "AD"),
                             feature_names={"clinical": ("age", "sex", "apoe4")},
                             meta={"clinical_raw": raw, "clinical_units": {"age": "years", "sex": "0 male, 1 female"}})


def test_plot_clinical_binary_share_and_integer_levels_as_means():
    data = _table_dataset()
    fig = viz.plot_clinical(data)
    age, sex, apoe = fig.axes
    assert age.get_title() == "age"
    assert sex.get_title() == "sex (share of 1)" and apoe.get_title() == "apoe4 (mean)"
    labels = data.labels.numpy()
    raw = data.meta["clinical_raw"]
    heights = [p.get_height() for p in apoe.patches]
    assert heights == pytest.approx([raw[labels == k, 2].mean() for k in range(3)])
    shares = [p.get_height() for p in sex.patches]
    assert shares == pytest.approx([(raw[labels == k, 1] == 1).mean() for k in range(3)])
    assert age.get_xlabel() == "years" and apoe.get_xlabel() == ""  # units where the dataset gives them


def test_plot_clinical_ignores_absent_tables():
    data = _table_dataset()
    mask = np.ones((len(data), 1), dtype=bool)
    mask[:30, 0] = False  # absent tables are zeroed; they must not count in the class summaries
    masked = data.with_mask(mask)
    fig = viz.plot_clinical(masked)
    labels = masked.labels.numpy()
    raw = masked.meta["clinical_raw"]
    keep = mask[:, 0]
    heights = [p.get_height() for p in fig.axes[2].patches]
    assert heights == pytest.approx([raw[(labels == k) & keep, 2].mean() for k in range(3)])
