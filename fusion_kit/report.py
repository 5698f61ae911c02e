"""What a comparison shows, with its noise: paired differences with intervals, and tables on disk.

``paired_comparison`` sets every model against a reference on the same test subjects, seed by seed
(and fold by fold), from the predictions the runs kept: nothing is predicted again.

    >>> stats = paired_comparison(comparison, "concat (mri+pet+clinical)")
    >>> write_table(comparison.table(), "build/results", "benchmark")

Imports from fusion_kit: experiment.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .experiment import Comparison

__all__ = ["paired_comparison", "markdown_table", "write_table"]


def _balanced_accuracy_rows(correct: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Balanced accuracy of every row of ``correct`` (..., N) against ``labels`` (..., N) (broadcast)."""
    recalls = []
    for k in range(num_classes):
        in_k = labels == k
        count = in_k.sum(-1)
        hits = (correct & in_k).sum(-1)
        recalls.append(np.where(count > 0, hits / np.maximum(count, 1), np.nan))
    return np.nanmean(np.stack(recalls, -1), -1)


def _correct_by_seed(comparison: Comparison, label: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per seed: (correct, labels) over the test subjects, folds pooled in fold order."""
    out: dict[int, tuple[list, list]] = {}
    for r in comparison.runs_of(label):
        if r.predictions is None:
            raise ValueError(f"run {r} kept no predictions; train it with fusion_kit.experiment.run or compare")
        correct, labels = out.setdefault(r.seed, ([], []))
        correct.append(r.predictions.predicted == r.predictions.labels)
        labels.append(r.predictions.labels)
    return {s: (np.concatenate(c), np.concatenate(y)) for s, (c, y) in out.items()}


def paired_comparison(
    comparison: Comparison,
    reference: str,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Each setup against ``reference`` on the same test subjects: paired differences in balanced accuracy.

    Columns: ``diff`` (mean over seeds of model minus reference, seed by seed), ``wins`` (seeds where the
    model is ahead), ``seed_low``/``seed_high`` (t interval of the mean difference over seeds: training
    variability; NaN for one seed), ``boot_low``/``boot_high`` (percentile interval from resampling the
    test subjects, the same resample for both models: test-set variability for these trained models),
    ``p_boot`` (share of resamples where the model is not ahead). With folds, each seed's test
    subjects are those of every fold together (each subject tested once).
    """
    from scipy import stats

    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1, got {level}")
    ref = _correct_by_seed(comparison, reference)
    y = next(iter(ref.values()))[1]
    k = int(max(r.predictions.probs.shape[1] for r in comparison.runs if r.predictions is not None))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))  # one set of resamples for every model
    y_boot = y[idx]  # (n_boot, N)
    alpha = (1 - level) / 2
    rows = []
    for label in comparison.labels:
        if label == reference:
            continue
        mine = _correct_by_seed(comparison, label)
        seeds = sorted(set(mine) & set(ref))
        if not seeds:
            raise ValueError(f"{label!r} and {reference!r} share no seed; pair runs with the same seeds")
        if any(not np.array_equal(mine[s][1], y) for s in seeds):
            raise ValueError(f"{label!r} and {reference!r} were scored on different subjects; compare them on one split")
        diffs = np.array([
            _balanced_accuracy_rows(mine[s][0], y, k) - _balanced_accuracy_rows(ref[s][0], y, k) for s in seeds
        ])
        boot = np.mean([
            _balanced_accuracy_rows(mine[s][0][idx], y_boot, k) - _balanced_accuracy_rows(ref[s][0][idx], y_boot, k)
            for s in seeds
        ], axis=0)  # (n_boot,)
        n = len(diffs)
        half = stats.t.ppf(1 - alpha, n - 1) * diffs.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
        rows.append({
            "model": label,
            "diff": diffs.mean(),
            "wins": f"{int((diffs > 0).sum())}/{n}",
            "seed_low": diffs.mean() - half,
            "seed_high": diffs.mean() + half,
            "boot_low": float(np.quantile(boot, alpha)),
            "boot_high": float(np.quantile(boot, 1 - alpha)),
            "p_boot": float((boot <= 0).mean()),
        })
    return pd.DataFrame(rows).set_index("model")


def markdown_table(table: pd.DataFrame, digits: int = 3) -> str:
    """A pandas table as a GitHub markdown table (index as the first column), floats rounded."""
    def cell(value) -> str:
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        if isinstance(value, (int, np.integer)):
            return f"{value:,}"
        return str(value)

    head = [table.index.name or ""] + [str(c) for c in table.columns]
    align = ["---"] + ["---:" if pd.api.types.is_numeric_dtype(table[c]) else "---" for c in table.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for index, row in table.iterrows():
        lines.append("| " + " | ".join([str(index)] + [cell(v) for v in row]) + " |")
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, folder, name: str, figure=None, digits: int = 3) -> dict[str, Path]:
    """Write ``table`` as ``name.csv`` and ``name.md`` (and ``figure`` as ``name.png``) in ``folder`` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / f"{name}.csv", "md": folder / f"{name}.md"}
    table.to_csv(paths["csv"])
    paths["md"].write_text(markdown_table(table, digits))
    if figure is not None:
        paths["png"] = folder / f"{name}.png"
        figure.savefig(paths["png"], dpi=110, bbox_inches="tight")
    return paths
