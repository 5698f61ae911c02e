"""Missing modalities on purpose: hide one modality for part of a cohort, at a chosen rate and mechanism.

- ``"mcar"``, missing completely at random: every subject has the same chance to lose the modality,
  whatever their disease; the mask says nothing about the label.
- ``"severity"``, missing depending on disease severity (missing not at random): the sicker the
  subject, the likelier the modality is absent, as when frail patients skip a second scan. The mask
  itself then carries information about the label.

Exactly ``round(rate * N)`` subjects lose the modality: those with the highest missingness scores.
The scores depend only on the seed (and, for ``"severity"``, on ``meta["severity"]``), so for one
seed the masks are nested: a subject hidden at rate 0.25 is also hidden at rate 0.5, and a sweep over
rates changes nothing else.

    >>> masked = mask_modality(cohort, "pet", 0.5, "severity", seed=0)
    >>> complete = complete_cases(masked)          # subjects with every modality
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..core import look_up_option
from .dataset import MultimodalDataset

__all__ = ["MECHANISMS", "mask_modality", "missingness_scores", "complete_cases", "missing_by_class"]

MECHANISMS = ("mcar", "severity")


def missingness_scores(
    dataset: MultimodalDataset, mechanism: str = "mcar", *, seed: int = 0, strength: float = 2.0
) -> np.ndarray:
    """One score per subject; the higher, the sooner the subject loses the modality as the rate grows.

    ``"mcar"``: uniform noise. ``"severity"``: ``strength * z(severity) + logistic noise``, where
    ``z`` standardises ``meta["severity"]``; ``strength`` sets how strongly missingness follows disease.
    """
    mechanism = look_up_option(mechanism, MECHANISMS, "missingness mechanism")
    rng = np.random.default_rng(seed)
    n = len(dataset)
    if mechanism == "mcar":
        return rng.random(n)
    severity = dataset.meta.get("severity")
    if severity is None or len(severity) != n:
        raise ValueError(
            "mechanism 'severity' needs dataset.meta['severity'] (one value per subject), as make_brain_cohort "
            "provides; use mechanism='mcar' for a dataset without it"
        )
    severity = np.asarray(severity.cpu() if isinstance(severity, torch.Tensor) else severity, dtype=float)
    z = (severity - severity.mean()) / max(float(severity.std()), 1e-12)
    return strength * z + rng.logistic(size=n)


def mask_modality(
    dataset: MultimodalDataset,
    modality: str,
    rate: float,
    mechanism: str = "mcar",
    *,
    seed: int = 0,
    strength: float = 2.0,
) -> MultimodalDataset:
    """The same subjects with ``modality`` absent for a share ``rate`` of them (other absences are kept)."""
    if modality not in dataset.modalities:
        raise KeyError(f"no modality {modality!r}; this dataset has {', '.join(dataset.modalities)}")
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"rate is the share of subjects that lose {modality!r}, between 0 and 1; got {rate!r}")
    scores = missingness_scores(dataset, mechanism, seed=seed, strength=strength)
    count = int(round(float(rate) * len(dataset)))
    hidden = np.zeros(len(dataset), dtype=bool)
    hidden[np.argsort(-scores, kind="stable")[:count]] = True
    mask = dataset.mask.clone().cpu()
    j = dataset.modalities.index(modality)
    mask[:, j] &= ~torch.from_numpy(hidden)
    return dataset.with_mask(mask)


def complete_cases(dataset: MultimodalDataset, modalities: Sequence[str] | None = None) -> MultimodalDataset:
    """The subjects that have every modality (or every one of ``modalities``) present."""
    names = list(dataset.modalities if modalities is None else modalities)
    for m in names:
        if m not in dataset.modalities:
            raise KeyError(f"no modality {m!r}; this dataset has {', '.join(dataset.modalities)}")
    cols = [dataset.modalities.index(m) for m in names]
    keep = dataset.mask[:, cols].all(1).cpu().numpy()
    if not keep.any():
        raise ValueError(f"no subject has all of {', '.join(names)}; lower the missing rate or drop a modality")
    return dataset.subset(np.flatnonzero(keep))


def missing_by_class(dataset: MultimodalDataset, modality: str) -> dict[str, float]:
    """Share of subjects without ``modality``, per class."""
    if modality not in dataset.modalities:
        raise KeyError(f"no modality {modality!r}; this dataset has {', '.join(dataset.modalities)}")
    absent = ~dataset.mask[:, dataset.modalities.index(modality)].cpu().numpy()
    labels = dataset.labels.cpu().numpy()
    return {
        name: float(absent[labels == k].mean()) if (labels == k).any() else float("nan")
        for k, name in enumerate(dataset.class_names)
    }
