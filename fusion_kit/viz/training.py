"""Training and comparisons: learning curves, confusion matrices, scores of several models (with their
noise), sweeps over a knob, paired differences and what each model costs."""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from .style import FAMILY_COLORS, MODALITY_COLORS, draw_confusion, family_handles, new_figure

__all__ = [
    "plot_panel_history",
    "plot_history",
    "plot_confusions",
    "plot_result",
    "plot_comparison",
    "plot_regimes",
    "plot_sweep",
    "plot_grouped_bars",
    "plot_differences",
    "plot_cost",
    "plot_robustness",
]


def plot_history(histories):
    """Training and validation loss, and validation balanced accuracy, per epoch."""
    if not isinstance(histories, dict):
        histories = {"model": histories}
    fig, axes = new_figure(9, 3.2, ncols=2)
    for i, (name, h) in enumerate(histories.items()):
        color = f"C{i % 10}"
        epochs = range(1, h.epochs_run + 1)
        axes[0, 0].plot(epochs, h.train_loss, color=color, label=f"{name} train")
        if h.val_loss:
            axes[0, 0].plot(epochs, h.val_loss, color=color, linestyle="--", label=f"{name} val")
            axes[0, 1].plot(epochs, h.val_balanced_accuracy, color=color, label=name)
            axes[0, 1].axvline(h.best_epoch, color=color, linewidth=0.8, alpha=0.4)
    axes[0, 0].set(xlabel="epoch", ylabel="loss", title="loss (dashed: validation)")
    axes[0, 1].set(xlabel="epoch", ylabel="balanced accuracy", title="validation (thin line: kept epoch)")
    axes[0, 1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_confusions(results):
    """Row-normalised confusion matrices side by side: which classes each model confuses."""
    names = list(results)
    fig, axes = new_figure(2.9 * len(names), 3.0, ncols=len(names))
    for ax, name in zip(axes[0], names):
        draw_confusion(ax, results[name], f"{name}\nbal. acc. {results[name].balanced_accuracy:.2f}")
    axes[0, 0].set_ylabel("true")
    fig.tight_layout()
    return fig


def plot_comparison(comparison, num_classes: int = 3, title: str = "Balanced accuracy on the test set", *,
                    ceiling: float | None = None, ceiling_label: str = "ceiling (true latents, all modalities)"):
    """Bars of mean balanced accuracy, coloured by family, with chance, the best single modality and the noise.

    With several seeds, error bars show ± 1 sd over seeds. When the runs kept their predictions, a grey
    band shows the 95% interval of the best model's score over resampled test subjects: bars inside it
    are within the test set's noise of the best. ``ceiling`` draws what no model can expect to beat
    (``data.latent_ceiling``).
    """
    table = comparison.table() if hasattr(comparison, "table") else comparison
    table = table.sort_values("balanced_accuracy")
    fig, axes = new_figure(7.5, 0.45 * len(table) + 1.6)
    ax = axes[0, 0]
    colors = [FAMILY_COLORS.get(f, "#444444") for f in table["family"]]
    spread = table.get("bacc_std")
    several = spread is not None and (spread > 0).any()
    seeds = int(table["seeds"].max()) if "seeds" in table else 0
    ax.barh(range(len(table)), table["balanced_accuracy"], xerr=spread if several else None, color=colors, capsize=3)
    if several:
        ax.errorbar([], [], xerr=[], color="k", capsize=3, linestyle="none", label=f"± 1 sd over {seeds} seeds")
    ax.set_yticks(range(len(table)), table.index, fontsize=8)
    if hasattr(comparison, "score_interval") and all(r.predictions is not None for r in comparison.runs):
        low, high = comparison.score_interval(str(table.index[-1]))
        ax.axvspan(low, high, color="#999999", alpha=0.2, zorder=0, label="best model, 95% over test subjects")
    ax.axvline(1 / num_classes, color="k", linestyle=":", linewidth=1, label="chance")
    uni = table[table["family"] == "unimodal"]
    if len(uni):
        ax.axvline(uni["balanced_accuracy"].max(), color="#8c8c8c", linestyle="--", linewidth=1, label="best single modality")
    if ceiling is not None:
        ax.axvline(ceiling, color="#b45f06", linestyle="-.", linewidth=1.2, label=ceiling_label)
    ax.set_xlim(0, 1)
    ax.set_xlabel("balanced accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(handles=family_handles(table["family"]) + ax.get_legend_handles_labels()[0], fontsize=7,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_sweep(
    x, curves, xlabel: str, ylabel: str = "balanced accuracy", title: str = "", chance: float | None = None,
    logx: bool = False,
):
    """Lines of a score against a knob, one per model: ``curves`` maps name -> (mean, std) arrays or means.

    ``logx`` spaces the knob logarithmically (for sizes such as 35, 70, 175, 700), labelled at each x.
    """
    fig, axes = new_figure(6, 3.6)
    ax = axes[0, 0]
    for i, (name, values) in enumerate(curves.items()):
        mean, std = (values if isinstance(values, tuple) else (values, None))
        mean = np.asarray(mean)
        ax.plot(x, mean, marker="o", label=name, color=f"C{i % 10}")
        if std is not None:
            ax.fill_between(x, mean - np.asarray(std), mean + np.asarray(std), alpha=0.15, color=f"C{i % 10}")
    if chance is not None:
        ax.axhline(chance, color="k", linestyle=":", linewidth=1, label="chance")
    if logx:
        ax.set_xscale("log")
        ax.set_xticks(list(x), [f"{v:g}" for v in x])
        ax.minorticks_off()
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_result(result):
    """One trained model at a glance: learning curves and test confusion matrix."""
    fig, axes = new_figure(10, 3.2, ncols=3, gridspec_kw={"width_ratios": [1.1, 1.1, 0.9]})
    h = result.history
    epochs = range(1, h.epochs_run + 1)
    axes[0, 0].plot(epochs, h.train_loss, label="train")
    if h.val_loss:
        axes[0, 0].plot(epochs, h.val_loss, linestyle="--", label="validation")
        axes[0, 1].plot(epochs, h.val_balanced_accuracy, color="C2")
        axes[0, 1].axvline(h.best_epoch, color="k", linewidth=0.8, alpha=0.4)
    axes[0, 0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[0, 0].legend(fontsize=8)
    axes[0, 1].set(xlabel="epoch", ylabel="balanced accuracy", title="validation (line: kept epoch)", ylim=(0, 1))
    draw_confusion(axes[0, 2], result.metrics, f"test: bal. acc. {result.metrics.balanced_accuracy:.2f}")
    axes[0, 2].set_ylabel("true")
    fig.suptitle(result.setup.label, fontsize=10)
    fig.tight_layout()
    return fig


def plot_grouped_bars(values, errors=None, *, ylabel: str = "balanced accuracy", title: str = "",
                      chance: float | None = None, ylim=None, colors=None, legend_title: str | None = None,
                      error_label: str | None = None):
    """Grouped bars: ``values`` is a DataFrame (rows: groups on the x axis, columns: one bar each) or a dict of dicts.

    ``errors`` (same layout) draws error bars, which ``error_label`` names in the legend (what they are
    over: seeds, subjects); ``colors`` maps column names to colours.
    """
    if errors is not None and not error_label:
        raise ValueError("say what the error bars show: error_label='± 1 sd over 3 seeds', for example")
    table = values if isinstance(values, pd.DataFrame) else pd.DataFrame(values).T
    err = None if errors is None else (errors if isinstance(errors, pd.DataFrame) else pd.DataFrame(errors).T)
    groups, series = list(table.index), list(table.columns)
    fig, axes = new_figure(min(10.0, max(5.0, 0.75 * len(groups) * max(1, len(series)) ** 0.5 + 2.0)), 3.6)
    ax = axes[0, 0]
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    for j, name in enumerate(series):
        color = (colors or {}).get(name, MODALITY_COLORS.get(name, f"C{j % 10}"))
        yerr = None if err is None or name not in err else err.loc[groups, name].to_numpy(dtype=float)
        ax.bar(x + (j - (len(series) - 1) / 2) * width, table[name].to_numpy(dtype=float), width,
               yerr=yerr, capsize=2, label=str(name), color=color)
    wrap = 18 if len(groups) <= 6 else 11  # many groups: narrower columns, so shorter lines
    ax.set_xticks(x, [textwrap.fill(str(g), wrap, break_long_words=False) for g in groups], fontsize=8)
    if chance is not None:
        ax.axhline(chance, color="k", linestyle=":", linewidth=1, label="chance")
    if err is not None:
        ax.errorbar([], [], yerr=[], color="k", capsize=2, linestyle="none", label=error_label)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.axhline(0, color="k", linewidth=0.6)
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize=7, title=legend_title, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_regimes(regimes, *, title: str = "The same models in each regime (test set)", chance: float | None = None,
                 colors=None):
    """One group of bars per regime of a ``RegimeComparison``: mean balanced accuracy over seeds, ± 1 sd."""
    seeds = max(int(c.table()["seeds"].max()) for c in regimes.comparisons.values())
    values, spread = regimes.table().T, regimes.spread().T
    return plot_grouped_bars(values, spread if seeds > 1 else None, title=title, chance=chance, ylim=(0, 1),
                             colors=colors, legend_title="model", error_label=f"± 1 sd over {seeds} seeds")


def plot_differences(stats, *, reference: str = "", title: str = ""):
    """Forest plot of paired differences against a reference (``report.paired_comparison`` table).

    Thick bar: interval over test-set resamples (bootstrap); thin line: interval over seeds.
    """
    table = stats.sort_values("diff")
    fig, axes = new_figure(7.5, 0.42 * len(table) + 1.5)
    ax = axes[0, 0]
    y = np.arange(len(table))
    seed_lo, seed_hi = table["seed_low"].to_numpy(dtype=float), table["seed_high"].to_numpy(dtype=float)
    has_seed = np.isfinite(seed_lo)
    ax.hlines(y[has_seed], seed_lo[has_seed], seed_hi[has_seed], color="#888888", linewidth=1,
              label="interval over seeds (t)")
    ax.hlines(y, table["boot_low"], table["boot_high"], color="#1f77b4", linewidth=5, alpha=0.45,
              label="interval over test subjects (bootstrap)")
    ax.plot(table["diff"], y, "o", color="#1f77b4", label="mean difference")
    ax.axvline(0, color="k", linewidth=1, linestyle=":")
    ax.set_yticks(y, table.index, fontsize=8)
    ref = f" − {reference}" if reference else " − reference"
    ax.set_xlabel(f"balanced accuracy: model{ref}")
    ax.set_title(title or "Paired differences on the same test subjects", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_cost(table, *, title: str = "What each model costs"):
    """Trainable parameters and training seconds per run, one bar per model (rows of ``table``), coloured by family."""
    names = list(table.index)
    fig, axes = new_figure(10, 0.32 * len(names) + 1.6, ncols=2, sharey=True)
    colors = [FAMILY_COLORS.get(f, "#444444") for f in table["family"]]
    y = np.arange(len(names))[::-1]
    several_seeds = "seeds" in table and (table["seeds"] > 1).any()
    seconds_label = "training seconds per run" + (" (mean over seeds)" if several_seeds else "")
    panels = ((axes[0, 0], "parameters", "trainable parameters"), (axes[0, 1], "seconds", seconds_label))
    for ax, column, label in panels:
        ax.barh(y, table[column].to_numpy(dtype=float), color=colors)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y, names, fontsize=8)
    axes[0, 1].legend(handles=family_handles(table["family"]), fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_robustness(x, curves, floor: float, *, xlabel: str, floor_label: str = "floor", ylabel: str = "balanced accuracy",
                    title: str = "", mean_label: str | None = "mean of the strategies", percent: bool = False,
                    chance: float | None = None, ylim=(0, 1), spread=None, spread_label: str | None = None):
    """Score of each strategy (``curves``: name -> values at ``x``) against a knob, with a reference ``floor`` dashed.

    ``x`` is numeric and spaced as it is (``percent`` labels it as shares, 0.5 -> 50%); the y axis spans
    ``ylim`` (the whole scale by default, so small differences look small). With ``mean_label``, the mean
    over strategies is drawn as a thick black line (less noisy than any one curve). ``spread`` (name ->
    values at ``x``, such as the sd over seeds) draws a band of ± that much around each curve, named by
    ``spread_label`` (required with it).
    """
    if spread is not None and not spread_label:
        raise ValueError("say what the bands are: spread_label='± 1 sd over 3 seeds', for example")
    x = np.asarray(x, dtype=float)
    fig, axes = new_figure(7.5, 3.8)
    ax = axes[0, 0]
    for i, (name, values) in enumerate(curves.items()):
        style = "-" if i < 10 else "--"  # ten colours, then dashed lines, so no two curves look alike
        ax.plot(x, np.asarray(values), marker="o", markersize=4, linewidth=1.2, alpha=0.75, label=name, color=f"C{i % 10}",
                linestyle=style)
        if spread is not None and name in spread:
            values, band = np.asarray(values, dtype=float), np.asarray(spread[name], dtype=float)
            ax.fill_between(x, values - band, values + band, color=f"C{i % 10}", alpha=0.12, linewidth=0)
    if spread is not None:
        ax.fill_between([], [], [], color="0.6", alpha=0.3, label=f"band: {spread_label}")
    if mean_label:
        ax.plot(x, np.mean([np.asarray(v) for v in curves.values()], 0), marker="s", color="k", linewidth=2.8,
                label=mean_label)
    ax.axhline(floor, color="k", linestyle="--", linewidth=1.2, label=floor_label)
    if chance is not None:
        ax.axhline(chance, color="k", linestyle=":", linewidth=1, label="chance")
    ax.set_xticks(x, [f"{v:.0%}" if percent else f"{v:g}" for v in x])
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, ylim=ylim)
    ax.legend(fontsize=7.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def plot_panel_history(history):
    """The runs of a training panel in this session: one dot per seed, the mean with ± 1 sd over seeds.

    ``history`` is a list of ``{"run": n, "setup": label, "seeds": [...], "scores": [...]}`` (what
    ``TrainingPanel.history`` keeps). Runs of one seed have no bar: a single number carries no band.
    """
    runs = [h for h in history if h["scores"]]
    if not runs:
        raise ValueError("no run with a score to show yet")
    fig, axes = new_figure(min(10.0, 2.5 + 0.9 * len(runs)), 3.2)
    ax = axes[0, 0]
    for x, h in enumerate(runs):
        scores = np.asarray(h["scores"], dtype=float)
        ax.scatter(np.full(len(scores), x), scores, s=14, color="#4c72b0", alpha=0.6, zorder=3)
        if len(scores) > 1:
            ax.errorbar(x, scores.mean(), yerr=scores.std(ddof=1), fmt="D", color="#c44e52", capsize=4, zorder=4)
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([f"{h['run']}. " + "\n".join(textwrap.wrap(h["setup"], 16)) for h in runs], fontsize=7)
    ax.set_ylabel("balanced accuracy (test)")
    ax.set_title("This session's runs: dots are seeds, diamonds the mean ± 1 sd over seeds", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
