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
from .metrics import balanced_accuracy_rows

__all__ = ["paired_comparison", "read_scores", "family_guide", "best_of_family", "review_claim", "SIMPLE", "DEEP_FAMILIES",
           "markdown_table", "write_table"]

SIMPLE = ("channel_stack", "concat", "average", "stacking")
"""The simple fusions of the review's claim: stacking images, concatenation, averaging or stacking decisions."""
DEEP_FAMILIES = ("hierarchical", "attention")
"""The families the review reports as gaining 10-15 points over simple fusion."""


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
    ref = comparison.correct_by_seed(reference)
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
        mine = comparison.correct_by_seed(label)
        seeds = sorted(set(mine) & set(ref))
        if not seeds:
            raise ValueError(f"{label!r} and {reference!r} share no seed; pair runs with the same seeds")
        if any(not np.array_equal(mine[s][1], y) for s in seeds):
            raise ValueError(f"{label!r} and {reference!r} were scored on different subjects; compare them on one split")
        diffs = np.array([
            balanced_accuracy_rows(mine[s][0], y, k) - balanced_accuracy_rows(ref[s][0], y, k) for s in seeds
        ])
        boot = np.mean([
            balanced_accuracy_rows(mine[s][0][idx], y_boot, k) - balanced_accuracy_rows(ref[s][0][idx], y_boot, k)
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


SCORE_COLUMNS = ("regime", "model", "family", "seed", "balanced_accuracy", "seconds", "parameters")


def read_scores(path) -> pd.DataFrame:
    """A table of per-seed scores (one row per regime, model and seed), as ``benchmarks/regimes.py`` writes it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no scores at {path}: run  python benchmarks/regimes.py  in the course checkout")
    scores = pd.read_csv(path)
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {', '.join(missing)}: write it with benchmarks/regimes.py")
    return scores


def _by_seed(scores: pd.DataFrame, regime: str) -> pd.DataFrame:
    """Balanced accuracy of each model (columns) for each seed (rows) in one regime of a scores table."""
    rows = scores[scores["regime"] == regime]
    if rows.empty:
        raise KeyError(f"no scores for regime {regime!r}; regimes are {', '.join(scores['regime'].unique())}")
    return rows.pivot_table(index="seed", columns="model", values="balanced_accuracy")


def _paired(by_seed: pd.DataFrame, model: str, reference: str, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``model - reference`` over seeds, and its t interval (NaN with one seed)."""
    from scipy import stats

    d = (by_seed[model] - by_seed[reference]).to_numpy()
    half = stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def _name(model: str) -> str:
    return model.split(" (")[0]


def best_of_family(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per regime (rows) and family (columns): the mean balanced accuracy of the family's best model, and its
    spread over seeds. ``scores`` has one row per regime, model and seed (``benchmarks/regimes_scores.csv``)."""
    means, spreads = {}, {}
    for regime in scores["regime"].unique():
        rows = scores[scores["regime"] == regime]
        table = rows.groupby("model").agg(family=("family", "first"), mean=("balanced_accuracy", "mean"),
                                          sd=("balanced_accuracy", "std"))
        best = table.loc[table.groupby("family")["mean"].idxmax()]
        means[regime], spreads[regime] = best.set_index("family")["mean"], best.set_index("family")["sd"]
    return pd.DataFrame(means).T, pd.DataFrame(spreads).T


def family_guide(scores: pd.DataFrame, reference: str = "concat") -> pd.DataFrame:
    """When to use which family: per regime, the best model, its lead over ``reference`` paired by seed with a t
    interval over seeds, whether that lead is outside the noise, and what it costs against the reference."""
    rows = {}
    for regime in scores["regime"].unique():
        by_seed = _by_seed(scores, regime)
        info = scores[scores["regime"] == regime].groupby("model").agg(
            family=("family", "first"), seconds=("seconds", "mean"), parameters=("parameters", "first"))
        fused = info.index[info["family"] != "unimodal"]
        winner = by_seed[fused].mean().idxmax()
        ref = next(m for m in by_seed.columns if _name(m) == reference)
        diff, low, high = _paired(by_seed, winner, ref) if winner != ref else (0.0, 0.0, 0.0)
        rows[regime] = {
            "winner": _name(winner), "family": info.loc[winner, "family"], "bacc": by_seed[winner].mean(),
            f"vs {reference}": diff, "seeds 95% low": low, "seeds 95% high": high,
            "verdict": "tie: the interval holds 0" if low <= 0 <= high or winner == ref else
                       ("lead" if low > 0 else "behind"),
            "seconds x": info.loc[winner, "seconds"] / info.loc[ref, "seconds"],
            "parameters x": info.loc[winner, "parameters"] / info.loc[ref, "parameters"],
        }
    return pd.DataFrame(rows).T.rename_axis("regime").infer_objects()


def review_claim(scores: pd.DataFrame, simple=SIMPLE, deep=DEEP_FAMILIES) -> pd.DataFrame:
    """The review's claim in its two readings, per regime, in points and in per cent of the baseline:
    the best fusion against the best single modality, and the best deep model (``deep`` families) against
    the best simple one (``simple`` strategies), paired by seed."""
    rows = {}
    for regime in scores["regime"].unique():
        by_seed = _by_seed(scores, regime)
        family = scores[scores["regime"] == regime].groupby("model")["family"].first()
        mean = by_seed.mean()
        single = mean[family[family == "unimodal"].index].idxmax()
        fused = mean[family[family != "unimodal"].index].idxmax()
        best_deep = mean[family[family.isin(deep)].index].idxmax()
        best_simple = mean[[m for m in mean.index if _name(m) in simple]].idxmax()
        gain, g_low, g_high = _paired(by_seed, fused, single)
        lead, d_low, d_high = _paired(by_seed, best_deep, best_simple)
        rows[regime] = {
            "best single": single, "best fusion": _name(fused),
            "fusion gain (points)": 100 * gain, "fusion gain (%)": 100 * gain / mean[single],
            "fusion gain 95%": f"{100 * g_low:+.1f} to {100 * g_high:+.1f}",
            "best deep": _name(best_deep), "best simple": _name(best_simple),
            "deep - simple (points)": 100 * lead, "deep - simple (%)": 100 * lead / mean[best_simple],
            "deep - simple 95%": f"{100 * d_low:+.1f} to {100 * d_high:+.1f}",
        }
    return pd.DataFrame(rows).T.rename_axis("regime").infer_objects()


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
