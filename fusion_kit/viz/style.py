"""What every figure shares: the figure class, colours, and small drawing helpers.

``CourseFigure`` is a matplotlib ``Figure`` that shows itself as a PNG when it is the last value of a
notebook cell, so figures display without ``%matplotlib inline`` and without touching IPython's or
pyplot's global state. Figures are built outside pyplot, so they never pile up in its memory.
"""
from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

__all__ = [
    "CourseFigure",
    "FAMILY_COLORS",
    "MODALITY_COLORS",
    "PART_COLORS",
    "new_figure",
    "middle_slice",
    "draw_confusion",
    "family_handles",
]

FAMILY_COLORS = {
    "unimodal": "#8c8c8c",
    "input": "#1f77b4",
    "single_level": "#ff7f0e",
    "hierarchical": "#2ca02c",
    "attention": "#d62728",
    "output": "#9467bd",
    "missing": "#17becf",
}
MODALITY_COLORS = {"mri": "#4c72b0", "pet": "#dd8452", "clinical": "#55a868"}
PART_COLORS = {  # boxes of the architecture diagrams
    "image": "#cfe2f3",
    "tabular": "#d9ead3",
    "encoder": "#eeeeee",
    "fusion": "#fce5cd",
    "head": "#e6d7f0",
    "output": "#ffffff",
}


class CourseFigure(Figure):
    """A Figure that Jupyter shows as a PNG when a cell ends with it (``_repr_png_``)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1, **kw):
    """A CourseFigure outside pyplot's state, and a 2D array of its axes."""
    fig = CourseFigure(figsize=(width, height))
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def middle_slice(image) -> np.ndarray:
    """(C, H, W) -> (H, W); (C, D, H, W) -> the middle axial slice."""
    image = np.asarray(image)
    return image[0] if image.ndim == 3 else image[0, image.shape[1] // 2]


def draw_confusion(ax, metrics, title: str) -> None:
    """Row-normalised confusion matrix of ``metrics`` on ``ax``, each cell labelled."""
    cm = metrics.confusion / np.maximum(metrics.confusion.sum(1, keepdims=True), 1)
    k = len(cm)
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    for r in range(k):
        for c in range(k):
            ax.text(c, r, f"{cm[r, c]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if cm[r, c] > 0.6 else "black")
    ticks = metrics.class_names or [str(i) for i in range(k)]
    ax.set_xticks(range(k), ticks, fontsize=8)
    ax.set_yticks(range(k), ticks, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_title(title, fontsize=9)


def family_handles(families) -> list[Patch]:
    """Legend entries for the families present, in order of first appearance."""
    return [Patch(color=FAMILY_COLORS[f], label=f.replace("_", "-")) for f in dict.fromkeys(families) if f in FAMILY_COLORS]
