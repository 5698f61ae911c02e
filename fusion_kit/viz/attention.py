"""Attention: what per-subject weights a model put on each modality, class or place.

Every figure here takes weights already computed: ``explain.attention_summary(model, predictions)``
turns a run's kept predictions into one weight per source, in the model's own terms.
"""
from __future__ import annotations

import numpy as np

from .style import MODALITY_COLORS, middle_slice, new_figure

__all__ = [
    "plot_modality_weights", "plot_attention_by_class", "plot_attention_by_severity", "plot_spatial_attention",
    "plot_patch_attention", "plot_weights_when_degraded",
]


def plot_modality_weights(weights, labels, modalities, class_names, title: str = "Attention per modality"):
    """Mean attention weight of each modality, per class: (N, M) weights, (N,) labels."""
    weights, labels = np.asarray(weights), np.asarray(labels)
    fig, axes = new_figure(6, 3.2)
    ax = axes[0, 0]
    width = 0.8 / len(modalities)
    for j, m in enumerate(modalities):
        means = [weights[labels == k, j].mean() if (labels == k).any() else 0 for k in range(len(class_names))]
        ax.bar(np.arange(len(class_names)) + j * width, means, width, label=m,
               color=MODALITY_COLORS.get(m, f"C{j}"))
    ax.set_xticks(np.arange(len(class_names)) + width * (len(modalities) - 1) / 2, class_names)
    ax.set(ylabel="mean weight", title=title, ylim=(0, 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _source_color(name: str, j: int) -> str:
    return MODALITY_COLORS.get(name, "#bbbbbb" if name == "nothing" else f"C{(j + 3) % 10}")


def plot_attention_by_class(summaries, class_names, ncols: int = 3,
                            title: str = "What each model weighs, per true class (test set)"):
    """One panel per model: the mean weight per source for each true class.

    ``summaries`` maps a label to an ``explain.AttentionSummary`` (weights (N, C) per subject, the C
    source names and the true labels). Error bars: standard deviation over the subjects of the class.
    """
    items = list(summaries.items())
    nrows = -(-len(items) // ncols)
    ncols = min(ncols, len(items))
    fig, axes = new_figure(3.6 * ncols, 2.9 * nrows + 0.4, ncols=ncols, nrows=nrows)
    k = len(class_names)
    for ax, (label, summary) in zip(axes.flat, items):
        width = 0.8 / len(summary.names)
        for j, name in enumerate(summary.names):
            groups = [summary.weights[summary.labels == c, j] for c in range(k)]
            means = [g.mean() if len(g) else 0.0 for g in groups]
            stds = [g.std() if len(g) else 0.0 for g in groups]
            ax.bar(np.arange(k) + (j - (len(summary.names) - 1) / 2) * width, means, width, yerr=stds, capsize=1.5,
                   error_kw={"elinewidth": 0.6}, label=name, color=_source_color(name, j))
        ax.errorbar([], [], yerr=[], color="k", capsize=1.5, elinewidth=0.6, linestyle="none",
                    label="± 1 sd over the subjects of a class")
        ax.set_xticks(np.arange(k), class_names)
        ax.set_ylim(0, 1)
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=6.5, ncols=2 if len(summary.names) > 3 else 1, loc="upper left")
    for ax in axes.flat[len(items):]:
        ax.set_axis_off()
    for r in range(nrows):
        axes[r, 0].set_ylabel("mean weight")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_attention_by_severity(weights, severity, names, labels=None, class_names=None,
                               title: str = "Attention per subject against disease severity"):
    """Per-subject weights (N, C) against the latent severity: dots per subject, a line of binned means per source."""
    weights, severity = np.asarray(weights, dtype=float), np.asarray(severity, dtype=float)
    fig, axes = new_figure(6.5, 3.6)
    ax = axes[0, 0]
    edges = np.quantile(severity, np.linspace(0, 1, 9))
    centers = 0.5 * (edges[1:] + edges[:-1])
    which = np.clip(np.searchsorted(edges, severity, side="right") - 1, 0, len(centers) - 1)
    for j, name in enumerate(names):
        color = _source_color(name, j)
        ax.scatter(severity, weights[:, j], s=7, alpha=0.35, color=color, linewidths=0)
        means = [weights[which == b, j].mean() if (which == b).any() else np.nan for b in range(len(centers))]
        ax.plot(centers, means, color=color, linewidth=2, label=name)
    if labels is not None and class_names is not None:
        labels = np.asarray(labels)
        for c, name in enumerate(class_names):
            if (labels == c).any():
                ax.axvline(np.median(severity[labels == c]), color="#888888", linestyle=":", linewidth=0.8)
                ax.text(np.median(severity[labels == c]), 1.01, f"median {name}", fontsize=7, ha="center",
                        va="bottom", color="#555555", transform=ax.get_xaxis_transform())
    ax.set(xlabel="latent disease severity (from the generator)", ylabel="weight", ylim=(0, 1))
    ax.set_title(title, fontsize=10, pad=14)
    ax.legend(fontsize=7, loc="upper left", title="binned mean", title_fontsize=7)
    fig.tight_layout()
    return fig


def plot_spatial_attention(dataset, attention, indices, images=("mri", "pet")):
    """Each image of the chosen subjects with its spatial-attention weight a_i(x) overlaid (0: ignored, 1: trusted).

    ``attention`` (N, I, *S) comes from ``train.predict`` on ``dataset`` with a ``spatial_attention`` model;
    the coarse map of the deepest features is stretched over the image. 3D: the middle axial slice.
    """
    attention = np.asarray(attention, dtype=float)
    images = list(images)
    fig, axes = new_figure(2.5 * len(images) + 0.6, 2.5 * len(indices), ncols=len(images), nrows=len(indices))
    shown = None
    for r, i in enumerate(indices):
        label = dataset.class_names[int(dataset.labels[i])]
        for c, m in enumerate(images):
            ax = axes[r, c]
            img = middle_slice(dataset.tensors[m][i].cpu())
            a = attention[i, c]
            a = a[a.shape[0] // 2] if a.ndim == 3 else a
            h, w = img.shape
            ax.imshow(img, cmap="gray", origin="lower")
            shown = ax.imshow(a, cmap="coolwarm", vmin=0, vmax=1, alpha=0.5, origin="lower",
                              extent=(-0.5, w - 0.5, -0.5, h - 0.5), interpolation="bilinear")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"weight on {m.upper()}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{dataset.subject_ids[i]}\n{label}", fontsize=8)
    fig.set_layout_engine("constrained")
    if shown is not None:
        fig.colorbar(shown, ax=axes, shrink=0.8, label="weight a_i(x)")
    return fig


def plot_patch_attention(dataset, attention, indices, grid, *, query=None, images=("mri", "pet")):
    """Where one image's patches look in the other (``image_cross_attention``): for each subject, the first
    image with its query patch marked, and the second with that patch's attention over its patches.

    ``attention`` (N, P, 1 + P) comes from the run's kept predictions on ``dataset``; ``grid`` is the patch
    grid (``model.grid``). ``query`` gives, per subject, the (row, column) pixel to ask about (default:
    the MRI focus of the interaction regime, ``meta["lesion_voxels"]``); the PET focus is circled.
    """
    attention = np.asarray(attention, dtype=float)
    first, second = images
    foci = dataset.meta.get("lesion_voxels")
    fig, axes = new_figure(5.2, 2.5 * len(indices), ncols=2, nrows=len(indices))
    fig.set_layout_engine("constrained")  # room for the colour bar
    for r, i in enumerate(indices):
        a, b = middle_slice(dataset.tensors[first][i].cpu()), middle_slice(dataset.tensors[second][i].cpu())
        row, col = query[r] if query is not None else foci[i, 0][-2:]
        scale = a.shape[0] / grid[0], a.shape[1] / grid[1]
        patch = int(row // scale[0]) * grid[1] + int(col // scale[1])
        weights = attention[i, patch, 1:].reshape(grid)  # drop the "nothing" key
        axes[r, 0].imshow(a, cmap="gray", origin="lower")
        axes[r, 0].plot([col], [row], "s", markersize=9, markerfacecolor="none", markeredgecolor="#00e5ff", mew=2)
        axes[r, 1].imshow(b, cmap="gray", origin="lower")
        shown = axes[r, 1].imshow(weights, cmap="magma", alpha=0.6, origin="lower", interpolation="nearest",
                                  extent=(-0.5, b.shape[1] - 0.5, -0.5, b.shape[0] - 0.5))
        if foci is not None:
            axes[r, 1].plot([foci[i, 1][-1]], [foci[i, 1][-2]], "o", markersize=12, markerfacecolor="none",
                            markeredgecolor="#00e5ff", mew=1.5)
        label = dataset.class_names[int(dataset.labels[i])]
        together = dataset.meta.get("lesions_coincide")
        note = "" if together is None else (", foci together" if together[i] else ", foci apart")
        axes[r, 0].set_ylabel(f"{dataset.subject_ids[i]}\n{label}{note}", fontsize=8)
        for ax in axes[r]:
            ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_title(f"{first.upper()}: the query patch", fontsize=9)
    axes[0, 1].set_title(f"its attention over {second.upper()} (circle: PET focus)", fontsize=9)
    fig.colorbar(shown, ax=axes, shrink=0.7, label="attention weight")
    return fig


def plot_weights_when_degraded(summary, degraded, modalities, *, title: str = ""):
    """The weight a model put on each modality, for the subjects where that modality was degraded and where
    it was intact: one dot per subject, the mean as a bar.

    ``summary`` is an ``explain.AttentionSummary`` with one weight per modality; ``degraded`` (N, M) marks,
    per subject and modality of ``modalities`` (in that order), the degraded ones (``meta["degraded"]``).
    """
    degraded = np.asarray(degraded, dtype=bool)
    missing = [m for m in modalities if m not in summary.names]
    if missing:
        raise ValueError(f"the summary has no weight for {', '.join(missing)}; its sources are {', '.join(summary.names)}")
    fig, axes = new_figure(2.6 * len(modalities) + 0.6, 3.4, ncols=len(modalities), sharey=True)
    rng = np.random.default_rng(0)  # horizontal jitter of the dots only
    for ax, (j, m) in zip(axes[0], enumerate(modalities)):
        w = summary.weights[:, summary.names.index(m)]
        for x, (state, rows) in enumerate((("intact", ~degraded[:, j]), ("degraded", degraded[:, j]))):
            color = MODALITY_COLORS.get(m, "C0") if state == "intact" else "#9e9e9e"
            ax.bar(x, w[rows].mean() if rows.any() else 0.0, 0.6, color=color, alpha=0.45)
            ax.plot(x + rng.uniform(-0.22, 0.22, rows.sum()), w[rows], ".", color=color, markersize=3, alpha=0.8)
        ax.set_xticks([0, 1], [f"intact\n({(~degraded[:, j]).sum()})", f"degraded\n({degraded[:, j].sum()})"], fontsize=8)
        ax.set_title(f"weight on {m.upper() if m != 'clinical' else m}", fontsize=9)
        ax.set_ylim(0, 1)
    axes[0, 0].set_ylabel("weight (dot: one subject; bar: mean)")
    fig.suptitle(title or "Per-subject weights when a modality is degraded (test set)", fontsize=10)
    fig.tight_layout()
    return fig
