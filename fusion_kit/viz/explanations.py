"""Explanations: where in an image a model's decision comes from (Grad-CAM heat maps from ``explain.grad_cam``)."""
from __future__ import annotations

import numpy as np

from .style import middle_slice, new_figure

__all__ = ["plot_heatmaps"]


def _head(image, background: float):
    """Boolean mask of the head: voxels above ``background`` times the maximum, with enclosed holes filled."""
    from scipy import ndimage

    return ndimage.binary_fill_holes(image >= background * image.max())


def plot_heatmaps(images, heats, titles, *, row_labels=("image", "Grad-CAM over image"), cmap: str = "gray",
                  heat_cmap: str = "magma", title: str = "", background: float | None = 0.15):
    """Images (top row) and the same images with a heat map on top (bottom row), one column per subject.

    ``images`` and ``heats`` are 2D arrays (or (C, H, W) / 3D volumes, shown as their middle slice). The heat
    map is hidden outside the head: where the image is darker than ``background`` times its maximum, except in
    dark regions enclosed by the head (a hypometabolic spot stays visible). ``heat_cmap`` is a perceptually
    uniform colour map by default (equal steps of the map look like equal steps of colour, unlike "jet").
    """
    n = len(images)
    fig, axes = new_figure(2.2 * n + 1.0, 4.8, ncols=n, nrows=2)
    fig.set_layout_engine("constrained")  # room for the colour bar
    for j, (image, heat, name) in enumerate(zip(images, heats, titles)):
        image = np.asarray(image)
        image = middle_slice(image if image.ndim >= 3 else image[None])
        heat = np.asarray(heat)
        heat = heat if heat.ndim == 2 else middle_slice(heat if heat.ndim >= 3 else heat[None])
        axes[0, j].imshow(image, cmap=cmap, origin="lower")
        axes[1, j].imshow(image, cmap="gray", origin="lower")
        if background is not None:
            heat = np.ma.masked_where(~_head(image, background), heat)
        shown = axes[1, j].imshow(heat, cmap=heat_cmap, alpha=0.6, origin="lower", vmin=0, vmax=1)
        axes[0, j].set_title(name, fontsize=8)
        for ax in axes[:, j]:
            ax.set_xticks([]), ax.set_yticks([])
    for r, label in enumerate(row_labels):
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.colorbar(shown, ax=list(axes[1]), shrink=0.8, pad=0.01, label="Grad-CAM (0 to 1)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
