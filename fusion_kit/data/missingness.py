"""Missing modalities on purpose: hide one modality for part of a cohort, at a chosen rate and mechanism.

- ``"mcar"``, missing completely at random: every subject has the same chance to lose the modality,
  whatever their disease; the mask says nothing about the label.
- ``"mar"``, missing at random: the chance to lose the modality depends on a variable that is
  *observed* for everyone, by default the age in the clinical table (older subjects skip PET more
  often). The mask carries what the age says about the label, no more: a model that sees the age can
  correct for it, and complete-case analysis keeps a younger cohort than the one it is used on.
- ``"severity"``, missing depending on disease severity (missing not at random): the sicker the
  subject, the likelier the modality is absent, as when frail patients skip a second scan. The mask
  itself then carries information about the label, which no observed variable explains.

Exactly ``round(rate * N)`` subjects lose the modality: those with the highest missingness scores.
The scores depend only on the seed (and on the observed variable for ``"mar"``, on ``meta["severity"]``
for ``"severity"``), so for one
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

__all__ = ["MECHANISMS", "MAR_VARIABLE", "mask_modality", "missingness_scores", "observed_variable", "complete_cases",
           "missing_by_class"]

MECHANISMS = ("mcar", "mar", "severity")
MAR_VARIABLE = ("clinical", "age")  # (modality, column) that drives "mar" by default


def observed_variable(dataset: MultimodalDataset, variable: tuple[str, str] = MAR_VARIABLE) -> np.ndarray:
    """The column ``variable = (table, column)`` of every subject, checked to be observed for all of them."""
    table, column = variable
    spec = dataset.specs.get(table)
    if spec is None or spec.kind != "tabular" or column not in (spec.feature_names or ()):
        have = ", ".join(f"{m}.{c}" for m, s in dataset.specs.items() if s.kind == "tabular" for c in s.feature_names or ())
        raise ValueError(f"mechanism 'mar' needs the observed column {table}.{column}; this dataset has "
                         f"{have or 'no table'}: pass mar_variable=(table, column) or use mechanism='mcar'")
    j = dataset.modalities.index(table)
    if not bool(dataset.mask[:, j].all()):
        raise ValueError(f"mechanism 'mar' needs {table}.{column} observed for every subject, but {table} is absent "
                         f"for some: make it missing after, not before")
    return dataset.tensors[table][:, spec.feature_names.index(column)].double().cpu().numpy()


def missingness_scores(
    dataset: MultimodalDataset,
    mechanism: str = "mcar",
    *,
    seed: int = 0,
    strength: float = 2.0,
    mar_variable: tuple[str, str] = MAR_VARIABLE,
) -> np.ndarray:
    """One score per subject; the higher, the sooner the subject loses the modality as the rate grows.

    ``"mcar"``: uniform noise. ``"mar"``: ``strength * z(observed) + logistic noise`` with the observed
    column ``mar_variable``. ``"severity"``: the same with ``meta["severity"]``; ``strength`` sets how
    strongly missingness follows the variable.
    """
    mechanism = look_up_option(mechanism, MECHANISMS, "missingness mechanism")
    rng = np.random.default_rng(seed)
    n = len(dataset)
    if mechanism == "mcar":
        return rng.random(n)
    if mechanism == "mar":
        return strength * _standardised(observed_variable(dataset, mar_variable)) + rng.logistic(size=n)
    severity = dataset.meta.get("severity")
    if severity is None or len(severity) != n:
        raise ValueError(
            "mechanism 'severity' needs dataset.meta['severity'] (one value per subject), as make_brain_cohort "
            "provides; use mechanism='mcar' for a dataset without it"
        )
    severity = np.asarray(severity.cpu() if isinstance(severity, torch.Tensor) else severity, dtype=float)
    return strength * _standardised(severity) + rng.logistic(size=n)


def _standardised(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / max(float(values.std()), 1e-12)


def mask_modality(
    dataset: MultimodalDataset,
    modality: str,
    rate: float,
    mechanism: str = "mcar",
    *,
    seed: int = 0,
    strength: float = 2.0,
    mar_variable: tuple[str, str] = MAR_VARIABLE,
) -> MultimodalDataset:
    """The same subjects with ``modality`` absent for a share ``rate`` of them (other absences are kept).
    Under ``"mar"`` the observed column ``mar_variable`` must belong to another modality."""
    if modality not in dataset.modalities:
        raise KeyError(f"no modality {modality!r}; this dataset has {', '.join(dataset.modalities)}")
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"rate is the share of subjects that lose {modality!r}, between 0 and 1; got {rate!r}")
    if look_up_option(mechanism, MECHANISMS, "missingness mechanism") == "mar" and modality == mar_variable[0]:
        raise ValueError(f"under 'mar' the absence of {modality!r} would depend on its own column "
                         f"{mar_variable[1]!r} (missing not at random): use 'severity' or 'mcar' for it, or "
                         "mar_variable=(another table, column)")
    scores = missingness_scores(dataset, mechanism, seed=seed, strength=strength, mar_variable=mar_variable)
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
