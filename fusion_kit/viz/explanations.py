"""Explanations: where in an image a model's decision comes from (Grad-CAM heat maps from ``explain.grad_cam``)."""
from __future__ import annotations

import numpy as np

from .style import middle_slice, new_figure

__all__ = ["plot_heatmaps", "plot_stage_maps"]


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


def plot_stage_maps(model, dataset, index: int = 0, images=None, *, title: str = ""):
    """What each image encoder of ``model`` makes of one subject, stage by stage: the input, then at every stage
    the mean absolute activation over its channels (brighter: more response), each panel scaled to its own range.
    Works for any model whose ``encoders`` hold image encoders (``forward_features``), shared ones included."""
    import torch

    encoders = getattr(model, "encoders", {})
    unwrap = lambda e: e.shared.encoder if hasattr(e, "shared") else e  # noqa: E731 - a shared image encoder
    names = [m for m in (images or getattr(model, "images", ())) if m in encoders
             and hasattr(unwrap(encoders[m]), "forward_features")]
    if not names:
        raise ValueError("this model has no image encoder with stage maps to show (input fusion stacks the images; "
                         "a DenseNet encoder gives a vector only)")
    batch = dataset.batch(slice(index, index + 1))
    if hasattr(model, "scaling"):
        batch = model.scaling(batch)
    stages = max(len(unwrap(encoders[m]).stages) for m in names)
    fig, axes = new_figure(1.7 * (stages + 1), 1.8 * len(names), nrows=len(names), ncols=stages + 1)
    model.eval()
    with torch.no_grad():
        for row, m in enumerate(names):
            maps = unwrap(encoders[m]).forward_features(batch[m].to(next(model.parameters()).device))
            panels = [batch[m][0, 0]] + [f[0].abs().mean(0) for f in maps]
            for col, ax in enumerate(axes[row]):
                ax.axis("off")
                if col >= len(panels):
                    continue
                ax.imshow(middle_slice(panels[col][None].cpu().numpy()), cmap="gray" if col == 0 else "magma")
                size = "x".join(str(s) for s in panels[col].shape)
                ax.set_title(f"{m}: input {size}" if col == 0 else f"stage {col - 1}: {maps[col - 1].shape[1]} ch, {size}",
                             fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
