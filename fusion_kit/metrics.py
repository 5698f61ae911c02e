"""Classification metrics: a thin, printable layer over scikit-learn.

Imports nothing from the rest of fusion_kit.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Metrics", "classification_metrics"]


@dataclass
class Metrics:
    """Scores of one model on one dataset."""

    accuracy: float
    balanced_accuracy: float
    auc: float  # macro one-vs-rest ROC-AUC; nan when a class is absent from the labels
    confusion: np.ndarray = field(repr=False)  # (K, K): rows true class, columns predicted
    class_names: tuple[str, ...] = ()
    n: int = 0

    def as_dict(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "balanced_accuracy": self.balanced_accuracy, "auc": self.auc}

    def __str__(self) -> str:
        return (
            f"balanced accuracy {self.balanced_accuracy:.3f} | accuracy {self.accuracy:.3f} | "
            f"macro AUC {self.auc:.3f} | n={self.n}"
        )


def classification_metrics(
    labels: Sequence[int] | np.ndarray, probs: np.ndarray, class_names: Sequence[str] | None = None
) -> Metrics:
    """Accuracy, balanced accuracy, macro ROC-AUC and confusion matrix from class probabilities (N, K)."""
    from sklearn import metrics as skm  # imported when first needed: scikit-learn loads slowly
    labels = np.asarray(labels).astype(int).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError(f"probs must have shape (N, K) with N = {len(labels)} labels, got {probs.shape}")
    k = probs.shape[1]
    if len(labels) and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must lie in 0..{k - 1} for {k} columns of probabilities")
    predicted = probs.argmax(1)
    present = np.unique(labels)
    if len(present) == k and k > 1:
        p = probs / probs.sum(1, keepdims=True)
        auc = float(skm.roc_auc_score(labels, p if k > 2 else p[:, 1], multi_class="ovr", average="macro"))
    else:
        auc = float("nan")
    return Metrics(
        accuracy=float(skm.accuracy_score(labels, predicted)),
        balanced_accuracy=float(skm.balanced_accuracy_score(labels, predicted)) if len(labels) else float("nan"),
        auc=auc,
        confusion=skm.confusion_matrix(labels, predicted, labels=np.arange(k)),
        class_names=tuple(class_names) if class_names is not None else tuple(str(i) for i in range(k)),
        n=len(labels),
    )


# ------------------------------------------------------------------ calibration (chapter 06)
def calibration_bins(labels, probs, bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width confidence bin: mean confidence, accuracy and count (confidence = max probability)."""
    labels = np.asarray(labels).astype(int).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError(f"probs must have shape (N, K) with N = {len(labels)} labels, got {probs.shape}")
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    confidence = probs.max(1)
    right = probs.argmax(1) == labels
    which = np.clip((confidence * bins).astype(int), 0, bins - 1)  # bin b holds confidences in [b/bins, (b+1)/bins)
    count = np.bincount(which, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, weights=confidence, minlength=bins) / count
        acc = np.bincount(which, weights=right.astype(float), minlength=bins) / count
    return conf, acc, count.astype(int)


def expected_calibration_error(labels, probs, bins: int = 10) -> float:
    """ECE = Σ_b (n_b / N) |accuracy_b - confidence_b| over equal-width confidence bins."""
    conf, acc, count = calibration_bins(labels, probs, bins)
    keep = count > 0
    if not keep.any():
        return float("nan")
    return float((count[keep] / count.sum() * np.abs(acc[keep] - conf[keep])).sum())


def balanced_accuracy_rows(correct: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Balanced accuracy of every row of ``correct`` (..., N) against ``labels`` (..., N), broadcast: many
    resamples of a test set at once (a class absent from a row is left out of that row's mean)."""
    recalls = []
    for k in range(num_classes):
        in_k = labels == k
        count = in_k.sum(-1)
        hits = (correct & in_k).sum(-1)
        recalls.append(np.where(count > 0, hits / np.maximum(count, 1), np.nan))
    return np.nanmean(np.stack(recalls, -1), -1)


__all__ += ["calibration_bins", "expected_calibration_error", "balanced_accuracy_rows"]
