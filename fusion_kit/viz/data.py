"""Pictures of the data: subjects and their images, the clinical table, and how well two images line up."""
from __future__ import annotations

import textwrap

import numpy as np

from .style import draw_confusion, middle_slice, new_figure

__all__ = [
    "plot_samples", "plot_pet_overlay", "plot_clinical", "plot_registration", "plot_registration_result", "plot_foci",
    "plot_augmentations",
]


def plot_samples(dataset, per_class: int = 2, modalities=None, *, indices=None, notes=None):
    """A grid of subjects (rows, grouped by class, or the subjects at ``indices``) by image modality (columns).

    ``notes`` (one string per row) is added to each row's label, e.g. what is special about that subject.
    """
    mods = [m for m in (modalities or dataset.modalities) if dataset.specs[m].kind == "image"]
    if not mods:
        raise ValueError("plot_samples needs at least one image modality")
    labels = dataset.labels.cpu().numpy()
    rows = ([int(i) for i in indices] if indices is not None
            else [i for k in range(dataset.num_classes) for i in np.flatnonzero(labels == k)[:per_class]])
    if notes is not None and len(notes) != len(rows):
        raise ValueError(f"give one note per row: {len(rows)} rows, {len(notes)} notes")
    fig, axes = new_figure(1.9 * len(mods), 1.9 * len(rows), ncols=len(mods), nrows=len(rows))
    for r, i in enumerate(rows):
        for c, m in enumerate(mods):
            ax = axes[r, c]
            present = bool(dataset.mask[i, dataset.modalities.index(m)])
            img = middle_slice(dataset.tensors[m][i].cpu())
            ax.imshow(img, cmap="gray" if m != "pet" else "hot", origin="lower")
            ax.set_xticks([]), ax.set_yticks([])
            if not present:
                ax.text(0.5, 0.5, "absent", ha="center", va="center", transform=ax.transAxes, color="w")
            if r == 0:
                ax.set_title(m.upper() if len(m) <= 4 else m)
            if c == 0:
                note = f"\n{notes[r]}" if notes is not None else ""
                ax.set_ylabel(f"{dataset.class_names[labels[i]]}\n{dataset.subject_ids[i]}{note}", fontsize=8)
    fig.tight_layout()
    return fig


def plot_pet_overlay(dataset, index: int = 0, alpha: float = 0.5):
    """PET in colour over the same subject's MRI: where metabolism sits in the anatomy."""
    mri = middle_slice(dataset.tensors["mri"][index].cpu())
    pet = middle_slice(dataset.tensors["pet"][index].cpu())
    fig, axes = new_figure(7.5, 2.8, ncols=3)
    for ax, img, title, cmap in ((axes[0, 0], mri, "MRI", "gray"), (axes[0, 1], pet, "PET", "hot")):
        ax.imshow(img, cmap=cmap, origin="lower")
        ax.set_title(title)
    axes[0, 2].imshow(mri, cmap="gray", origin="lower")
    axes[0, 2].imshow(pet, cmap="hot", alpha=alpha, origin="lower")
    axes[0, 2].set_title("PET over MRI")
    for ax in axes[0]:
        ax.set_xticks([]), ax.set_yticks([])
    label = dataset.class_names[int(dataset.labels[index])]
    fig.suptitle(f"{dataset.subject_ids[index]} ({label})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_clinical(dataset, modality: str = "clinical", raw_key: str = "clinical_raw"):
    """Distribution of every clinical variable per class (raw units when the dataset keeps them)."""
    spec = dataset.specs[modality]
    values = dataset.meta.get(raw_key)
    values = np.asarray(values) if values is not None else dataset.tensors[modality].cpu().numpy()
    names = spec.feature_names or tuple(str(i) for i in range(spec.channels))
    labels = dataset.labels.cpu().numpy()
    present = dataset.mask[:, dataset.modalities.index(modality)].cpu().numpy()
    units = dataset.meta.get(f"{modality}_units") or {}
    fig, axes = new_figure(2.3 * len(names), 2.6 if not units else 2.9, ncols=len(names))
    for j, name in enumerate(names):
        ax = axes[0, j]
        groups = [values[(labels == k) & present, j] for k in range(dataset.num_classes)]
        levels = np.unique(values[present, j])
        if name in units:
            ax.set_xlabel(textwrap.fill(str(units[name]), 26), fontsize=7)
        if len(levels) <= 2:  # binary: share of the higher value per class
            ax.bar(dataset.class_names, [(g == levels.max()).mean() if len(g) else 0 for g in groups], color="#55a868")
            ax.set_ylim(0, 1)
            ax.set_title(f"{name} (share of {levels.max():g})")
        elif len(levels) <= 4 and np.allclose(levels, np.round(levels)):  # a few integer levels: mean per class
            ax.bar(dataset.class_names, [g.mean() if len(g) else 0 for g in groups], color="#55a868")
            ax.set_title(f"{name} (mean)")
        else:
            ax.boxplot(groups, showfliers=False)
            ax.set_xticks(range(1, dataset.num_classes + 1), dataset.class_names)
            ax.set_title(name)
    fig.tight_layout()
    return fig


def _pet_contour(ax, pet, level: float, color: str, linestyle: str = "-", linewidth: float = 1.4) -> None:
    """PET iso-line at ``level`` times the PET maximum over the MRI's axes (nothing if PET is empty)."""
    pet = np.asarray(pet)
    if pet.max() > pet.min():
        ax.contour(pet, levels=[level * pet.max()], colors=color, linestyles=linestyle, linewidths=linewidth, origin="lower")


def _motion_label(dataset, index: int) -> str:
    """How far the generator moved this subject's PET against its MRI, from ``meta`` (empty if unknown)."""
    shift, angle = dataset.meta.get("pet_shift_mm"), dataset.meta.get("pet_rotation_deg")
    if shift is None or angle is None:
        return ""
    moved = float(np.linalg.norm(np.asarray(shift)[index]))
    turned = float(np.abs(np.asarray(angle)[index]).max())
    return f"PET moved {moved:.1f} mm, turned {turned:.1f}°"


def plot_registration(datasets, index: int = 0, level: float = 0.5, images=("mri", "pet")):
    """One subject's MRI (grey) with its PET contour (orange), one panel per dataset of the same subjects.

    ``datasets`` maps a panel title to a dataset (e.g. one cohort per misregistration level). The first
    dataset's PET contour is drawn dashed in every later panel: the gap between the lines is the motion.
    """
    if not isinstance(datasets, dict) or not datasets:
        raise TypeError("plot_registration needs a dict such as {'aligned': cohort, '9 mm': moved}")
    anatomy_key, pet_key = images
    for name, data in datasets.items():
        for key in images:
            if key not in data.modalities or data.specs[key].kind != "image":
                raise ValueError(f"dataset {name!r} has no image modality {key!r}; it has {', '.join(data.modalities)}")
    names = list(datasets)
    reference = middle_slice(datasets[names[0]].tensors[pet_key][index].cpu())
    fig, axes = new_figure(2.6 * len(names), 3.0, ncols=len(names))
    for j, name in enumerate(names):
        data, ax = datasets[name], axes[0, j]
        ax.imshow(middle_slice(data.tensors[anatomy_key][index].cpu()), cmap="gray", origin="lower")
        if j > 0:
            _pet_contour(ax, reference, level, "#4fc3f7", linestyle="--", linewidth=1.0)
        _pet_contour(ax, middle_slice(data.tensors[pet_key][index].cpu()), level, "#ff7f0e")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(_motion_label(data, index), fontsize=7.5)
    first = datasets[names[0]]
    label = first.class_names[int(first.labels[index])]
    note = f" (orange: PET contour; dashed blue: PET of '{names[0]}')" if len(names) > 1 else " (orange: PET contour)"
    fig.suptitle(f"{first.subject_ids[index]} ({label}): {anatomy_key.upper()} in grey{note}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_registration_result(result, dataset, index: int = 0, level: float = 0.5, images=("mri", "pet")):
    """A trained model beside the data it saw: one subject's PET contour over its MRI, validation curve, confusion."""
    anatomy_key, pet_key = images
    fig, axes = new_figure(10, 3.2, ncols=3, gridspec_kw={"width_ratios": [0.9, 1.1, 0.9]})
    ax = axes[0, 0]
    ax.imshow(middle_slice(dataset.tensors[anatomy_key][index].cpu()), cmap="gray", origin="lower")
    _pet_contour(ax, middle_slice(dataset.tensors[pet_key][index].cpu()), level, "#ff7f0e")
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(f"{dataset.subject_ids[index]}: PET contour on MRI", fontsize=9)
    ax.set_xlabel(_motion_label(dataset, index), fontsize=8)
    h = result.history
    if h.val_balanced_accuracy:
        axes[0, 1].plot(range(1, h.epochs_run + 1), h.val_balanced_accuracy, color="C2")
        axes[0, 1].axvline(h.best_epoch, color="k", linewidth=0.8, alpha=0.4)
    axes[0, 1].set(xlabel="epoch", ylabel="balanced accuracy", ylim=(0, 1))
    axes[0, 1].set_title("validation (line: kept epoch)", fontsize=9)
    draw_confusion(axes[0, 2], result.metrics, f"test: bal. acc. {result.metrics.balanced_accuracy:.2f}")
    axes[0, 2].set_ylabel("true")
    fig.suptitle(result.setup.label, fontsize=10)
    fig.tight_layout()
    return fig


def plot_foci(dataset, indices, images=("mri", "pet")):
    """The interaction regime's evidence: each subject's MRI and PET with their focal findings circled
    (``meta["lesion_voxels"]``), and whether the two foci coincide (``meta["lesions_coincide"]``)."""
    foci, together = dataset.meta.get("lesion_voxels"), dataset.meta.get("lesions_coincide")
    if foci is None or together is None:
        raise ValueError("this dataset has no focal findings: make it with make_brain_cohort(..., interaction=1.0)")
    fig, axes = new_figure(2.3 * len(indices) + 0.4, 4.8, ncols=len(indices), nrows=len(images))
    for c, i in enumerate(indices):
        for r, m in enumerate(images):
            ax = axes[r, c]
            ax.imshow(middle_slice(dataset.tensors[m][i].cpu()), cmap="gray", origin="lower")
            for j, color in enumerate(("#00e5ff", "#ff9f1c")):  # MRI focus, PET focus
                row, col = foci[i, j][-2:]
                ax.plot([col], [row], "o", markersize=13, markerfacecolor="none", markeredgecolor=color, mew=1.6)
            ax.set_xticks([]), ax.set_yticks([])
        label = dataset.class_names[int(dataset.labels[i])]
        axes[0, c].set_title(f"{dataset.subject_ids[i]}, {label}\nfoci {'together' if together[i] else 'apart'}",
                             fontsize=8)
    for r, m in enumerate(images):
        axes[r, 0].set_ylabel(m.upper(), fontsize=9)
    fig.suptitle("Focal findings: MRI focus in cyan, PET focus in orange, both drawn on both images "
                 "(together: the circles overlap)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_augmentations(samples, titles=None, images=("mri", "pet"), level: float = 0.5):
    """One subject as read several times (sample dicts, e.g. the original then augmented draws): the first image
    in grey with the second's contour over it (top row), the second alone (bottom row), middle slices.

    Where one random spatial transform moves both images alike, the contour stays on the same anatomy in every
    column; intensity changes show in the second row's brightness and grain.
    """
    anatomy, pet = images
    titles = list(titles) if titles is not None else [f"read {i + 1}" for i in range(len(samples))]
    if len(titles) != len(samples):
        raise ValueError(f"give one title per sample: {len(samples)} samples, {len(titles)} titles")
    fig, axes = new_figure(2.0 * len(samples), 4.2, ncols=len(samples), nrows=2)
    for c, (sample, title) in enumerate(zip(samples, titles)):
        under, over = middle_slice(sample[anatomy].cpu()), middle_slice(sample[pet].cpu())
        axes[0, c].imshow(under, cmap="gray", origin="lower")
        _pet_contour(axes[0, c], over, level, "#ff7f0e")
        axes[1, c].imshow(over, cmap="hot", origin="lower")
        axes[0, c].set_title(title, fontsize=9)
        for ax in axes[:, c]:
            ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_ylabel(f"{anatomy.upper()} + {pet.upper()} contour", fontsize=8)
    axes[1, 0].set_ylabel(pet.upper(), fontsize=8)
    fig.tight_layout()
    return fig
