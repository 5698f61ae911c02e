import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fusion_kit import viz, widgets  # noqa: E402
from fusion_kit.data import split_dataset  # noqa: E402
from fusion_kit.data.missingness import mask_modality  # noqa: E402
from fusion_kit.experiment import CompleteCases, Setup  # noqa: E402

from conftest import make_toy_dataset  # noqa: E402


def test_grouped_bars_from_dicts_and_frames():
    fig = viz.plot_grouped_bars({"CN": {"mcar": 0.5, "severity": 0.2}, "AD": {"mcar": 0.5, "severity": 0.9}},
                                ylabel="share", title="t", ylim=(0, 1))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CN", "AD"]
    assert len(ax.patches) == 4 and ax.get_title() == "t"
    values = pd.DataFrame({"mri": [0.1, 0.2], "pet": [0.0, 0.3]}, index=["a", "b"])
    fig = viz.plot_grouped_bars(values, errors=values / 10, chance=1 / 3, error_label="± 1 sd over 3 seeds")
    assert len(fig.axes[0].patches) == 4
    assert "± 1 sd over 3 seeds" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    with pytest.raises(ValueError, match="error_label"):  # error bars must say what they are over
        viz.plot_grouped_bars(values, errors=values / 10)


def test_differences_and_cost():
    stats = pd.DataFrame({"diff": [0.05, -0.01], "seed_low": [0.0, float("nan")], "seed_high": [0.1, float("nan")],
                          "boot_low": [0.01, -0.05], "boot_high": [0.09, 0.03]}, index=["a", "b"])
    fig = viz.plot_differences(stats, reference="unimodal (pet)")
    assert "unimodal (pet)" in fig.axes[0].get_xlabel()
    table = pd.DataFrame({"family": ["unimodal", "single_level"], "balanced_accuracy": [0.6, 0.7],
                          "parameters": [1000, 5000], "seconds": [1.0, 2.0]},
                         index=["unimodal (mri)", "concat (mri+pet)"])
    fig = viz.plot_cost(table)
    assert len(fig.axes) == 2 and {t.get_text() for t in fig.axes[0].get_yticklabels()} == set(table.index)


@pytest.mark.parametrize("complete", [False, True])
def test_run_and_show(complete):
    small = {"channels": (4, 8), "out_dim": 8}
    splits = split_dataset(mask_modality(make_toy_dataset(150), "mri", 0.3, seed=0), seed=0)
    item = Setup("concat", ("mri", "clinical"), small)
    if complete:
        item = CompleteCases(item, Setup("unimodal", ("clinical",), small), name="cc")
    result = widgets.run_and_show(splits, item, epochs=2, patience=1)
    assert result.figure.axes and "balanced accuracy" in result.text
    assert result.data.metrics.n == len(splits.test)


def test_heatmaps():
    import numpy as np

    rng = np.random.default_rng(0)
    fig = viz.plot_heatmaps([rng.random((1, 16, 16)), rng.random((16, 16))], [rng.random((16, 16))] * 2, ["a", "b"],
                            title="t")
    assert len(fig.axes) == 5 and fig.axes[0].get_title() == "a"  # 4 panels and a colour bar
    assert fig.axes[2].images[-1].get_cmap().name == "magma"  # a perceptually uniform map, not jet


def test_robustness():
    fig = viz.plot_robustness([0.0, 0.5, 0.75], {"a": [0.8, 0.7, 0.7], "b": [0.7, 0.6, 0.6]}, 0.65,
                              xlabel="missing", floor_label="no PET", title="t", percent=True)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0%", "50%", "75%"]
    assert list(ax.get_xticks()) == [0.0, 0.5, 0.75]  # spaced as the shares are, not evenly
    assert ax.get_ylim() == (0, 1)  # the whole scale: a small drop looks small
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "mean of the strategies", "no PET"]
    assert list(ax.lines[2].get_ydata()) == pytest.approx([0.75, 0.65, 0.65])
    assert ax.get_xlabel() == "missing"


def test_sweep_on_a_log_axis_labels_every_size():
    sizes = [35, 70, 175, 700]
    fig = viz.plot_sweep(sizes, {"concat": [0.6, 0.62, 0.7, 0.73]}, xlabel="training subjects", chance=1 / 3, logx=True)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["35", "70", "175", "700"]
    assert viz.plot_sweep(sizes, {"concat": [0.6] * 4}, xlabel="n").axes[0].get_xscale() == "linear"


def test_one_seed_draws_no_spread_and_says_so():
    table = pd.DataFrame({"family": ["unimodal", "single_level"], "balanced_accuracy": [0.6, 0.7], "bacc_std": [0.0, 0.0],
                          "parameters": [1000, 5000], "seconds": [1.0, 2.0], "seeds": [1, 1]},
                         index=["unimodal (mri)", "concat (mri+pet)"])
    assert not viz.plot_comparison(table).axes[0].collections  # no error bars
    assert "seeds" not in viz.plot_cost(table).axes[1].get_xlabel()
    several = table.assign(bacc_std=[0.01, 0.02], seeds=[3, 3])
    figure = viz.plot_comparison(several, ceiling=0.8)
    assert len(figure.axes[0].collections) > 0  # error bars
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "± 1 sd over 3 seeds" in legend and any("ceiling" in t for t in legend)
    assert "mean over seeds" in viz.plot_cost(several).axes[1].get_xlabel()


def test_heat_map_hides_the_background_but_not_dark_spots_inside_the_head():
    import numpy as np

    yy, xx = np.mgrid[:32, :32]
    image = ((yy - 16) ** 2 + (xx - 16) ** 2 < 12 ** 2).astype(float)  # a bright disk: the head
    image[14:18, 14:18] = 0.0  # a dark spot inside it (hypometabolism)
    fig = viz.plot_heatmaps([image], [np.ones((32, 32))], ["a"])
    shown = fig.axes[1].get_images()[-1].get_array()
    assert shown.mask[0, 0] and not shown.mask[16, 16] and not shown.mask[16, 8]
