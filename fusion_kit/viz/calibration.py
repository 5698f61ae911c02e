"""Calibration and uncertainty: are a model's probabilities honest, and does it know when it is unsure?"""
from __future__ import annotations

import numpy as np

from ..metrics import calibration_bins, expected_calibration_error
from .style import new_figure

__all__ = ["plot_reliability", "plot_uncertainty"]


def plot_reliability(probs, labels, bins: int = 10, title: str = "Reliability diagram (test set)"):
    """Confidence against accuracy per confidence bin for each model (``probs``: name -> (N, K)), with ECE.

    A calibrated model lies on the diagonal: among subjects predicted with confidence 0.8, 80% are right.
    Below: how many subjects fall in each bin.
    """
    fig, axes = new_figure(5.2, 5.6, nrows=2, sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    top, bottom = axes[0, 0], axes[1, 0]
    top.plot([0, 1], [0, 1], color="k", linestyle=":", linewidth=1, label="perfect calibration")
    step = 1.0 / bins
    names = list(probs)
    for j, name in enumerate(names):
        p = np.asarray(probs[name])
        conf, acc, count = calibration_bins(labels, p, bins)
        ece = expected_calibration_error(labels, p, bins)
        keep = count > 0
        top.plot(conf[keep], acc[keep], marker="o", markersize=4, color=f"C{j % 10}", label=f"{name} (ECE {ece:.3f})")
        lefts = np.arange(bins) * step + j * step / len(names)
        bottom.bar(lefts, count, width=step / len(names), align="edge", color=f"C{j % 10}")
    top.set(ylabel="accuracy in the bin", xlim=(0, 1), ylim=(0, 1))
    top.set_title(title, fontsize=10)
    top.legend(fontsize=7, loc="upper left")
    bottom.set(xlabel="confidence (probability of the predicted class)", ylabel="subjects")
    fig.tight_layout()
    return fig


def plot_uncertainty(uncertainty, correct, names, severity=None, title: str = "Evidential uncertainty (test set)"):
    """Uncertainty u of each modality's opinion and of the fused one, for right and wrong fused predictions.

    ``uncertainty`` (N, M + 1): per modality, then fused (``FusionOutput.uncertainty`` of ``evidential``);
    ``correct`` (N,) bool; with ``severity`` (N,), a second panel plots the fused u against it.
    """
    u, correct = np.asarray(uncertainty, dtype=float), np.asarray(correct, dtype=bool)
    names = list(names) + ["fused"]
    fig, axes = new_figure(10.5 if severity is not None else 6, 3.6, ncols=2 if severity is not None else 1,
                        gridspec_kw={"width_ratios": [1.4, 1]} if severity is not None else None)
    ax = axes[0, 0]
    positions, data, colors = [], [], []
    for j, name in enumerate(names):
        for s, ok in enumerate((True, False)):
            positions.append(3 * j + s)
            data.append(u[correct == ok, j])
            colors.append("#55a868" if ok else "#c44e52")
    parts = ax.boxplot([d if len(d) else [np.nan] for d in data], positions=positions, widths=0.8,
                       showfliers=False, patch_artist=True)
    for patch, color in zip(parts["boxes"], colors):
        patch.set_facecolor(color), patch.set_alpha(0.6)
    ax.set_xticks([3 * j + 0.5 for j in range(len(names))], names)
    ax.set(ylabel="uncertainty u = K / S", ylim=(0, 1))
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="#55a868", alpha=0.6, label="fused prediction right"),
                       Patch(color="#c44e52", alpha=0.6, label="fused prediction wrong")], fontsize=7, loc="upper right")
    ax.set_title("per modality and fused", fontsize=9)
    if severity is not None:
        ax2 = axes[0, 1]
        severity = np.asarray(severity, dtype=float)
        ax2.scatter(severity[correct], u[correct, -1], s=9, alpha=0.5, color="#55a868", label="right")
        ax2.scatter(severity[~correct], u[~correct, -1], s=14, alpha=0.8, color="#c44e52", marker="x", label="wrong")
        ax2.set(xlabel="latent disease severity", ylabel="fused uncertainty")
        ax2.set_title("fused uncertainty against severity", fontsize=9)
        ax2.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
