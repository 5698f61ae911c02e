"""Train-and-score in one call, and fair comparisons of several models over seeds.

These are the verbs the chapters and widgets call: every model in a comparison
sees the same splits, the same budget and the same seeds, so differences come
from the fusion strategy and nothing else.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from torch import nn

from .core import seed_everything
from .data.dataset import MultimodalDataset, Splits
from .encoders import count_parameters
from .metrics import Metrics
from .train import History, evaluate, fit

__all__ = ["Setup", "RunResult", "Comparison", "run", "compare"]


@dataclass(frozen=True)
class Setup:
    """One model to train: a strategy, the modalities it sees, and its options."""

    strategy: str
    modalities: tuple[str, ...] = ()
    options: Mapping = field(default_factory=dict)
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.strategy} ({'+'.join(self.modalities)})"


@dataclass
class RunResult:
    """One trained model and its test scores."""

    setup: Setup
    seed: int
    metrics: Metrics
    history: History
    parameters: int
    seconds: float
    family: str
    model: nn.Module = field(repr=False)

    def __str__(self) -> str:
        return f"{self.setup.label}, seed {self.seed}: {self.metrics}"


def _as_setup(item, all_modalities: Sequence[str]) -> Setup:
    if isinstance(item, Setup):
        return item if item.modalities else Setup(item.strategy, tuple(all_modalities), item.options, item.name)
    if isinstance(item, str):
        return Setup(item, tuple(all_modalities))
    strategy, modalities, *rest = item
    modalities = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    return Setup(strategy, modalities, rest[0] if rest else {})


def run(
    splits: Splits,
    strategy: str | Setup,
    modalities: Sequence[str] | None = None,
    *,
    seed: int = 0,
    epochs: int = 30,
    evaluate_on: str = "test",
    **fit_kwargs,
) -> RunResult:
    """Build ``strategy`` for ``modalities`` (default: all), fit on train, pick on val, score on test."""
    from .models import build_model

    train = splits.train
    setup = _as_setup(strategy if modalities is None else (strategy, modalities), train.modalities)
    if not setup.modalities:
        raise ValueError("no modality selected: tick at least one modality to train a model")
    seed_everything(seed)
    model = build_model(setup.strategy, train, modalities=list(setup.modalities), **dict(setup.options))
    parts = [s.select(list(setup.modalities)) for s in splits]
    start = time.perf_counter()
    history = fit(model, parts[0], parts[1], epochs=epochs, seed=seed, **fit_kwargs)
    seconds = time.perf_counter() - start
    scored = {"train": parts[0], "val": parts[1], "test": parts[2]}[evaluate_on]
    return RunResult(
        setup=setup,
        seed=seed,
        metrics=evaluate(model, scored),
        history=history,
        parameters=count_parameters(model),
        seconds=seconds,
        family=str(getattr(model, "family", "")),
        model=model,
    )


@dataclass
class Comparison:
    """Several setups, each trained with several seeds on the same splits."""

    runs: list[RunResult]

    def table(self) -> pd.DataFrame:
        """One row per setup: mean and spread over seeds of balanced accuracy and AUC, cost."""
        rows = []
        for label in dict.fromkeys(r.setup.label for r in self.runs):
            group = [r for r in self.runs if r.setup.label == label]
            bacc = np.array([r.metrics.balanced_accuracy for r in group])
            auc = np.array([r.metrics.auc for r in group])
            rows.append({
                "model": label,
                "family": group[0].family,
                "balanced_accuracy": bacc.mean(),
                "bacc_std": bacc.std(ddof=1) if len(bacc) > 1 else 0.0,
                "auc": auc.mean(),
                "auc_std": auc.std(ddof=1) if len(auc) > 1 else 0.0,
                "parameters": group[0].parameters,
                "seconds": float(np.mean([r.seconds for r in group])),
                "seeds": len(group),
            })
        return pd.DataFrame(rows).set_index("model")

    def scores(self, label: str) -> np.ndarray:
        """Balanced accuracy of ``label`` for each seed, in seed order."""
        group = sorted((r for r in self.runs if r.setup.label == label), key=lambda r: r.seed)
        if not group:
            raise KeyError(f"no runs named {label!r}; names are {', '.join(self.table().index)}")
        return np.array([r.metrics.balanced_accuracy for r in group])

    def best(self, family: str | None = None) -> str:
        """Label of the setup with the highest mean balanced accuracy (within ``family`` if given)."""
        table = self.table()
        if family is not None:
            table = table[table["family"] == family]
            if table.empty:
                raise KeyError(f"no runs of family {family!r}")
        return str(table["balanced_accuracy"].idxmax())

    def __str__(self) -> str:
        table = self.table()
        show = table[["family", "balanced_accuracy", "bacc_std", "auc", "parameters", "seconds"]]
        return show.to_string(float_format=lambda v: f"{v:.3f}")


def compare(
    splits: Splits,
    setups: Sequence[Setup | str | tuple],
    *,
    seeds: Sequence[int] = (0,),
    progress: bool | None = None,
    **kwargs,
) -> Comparison:
    """Train every setup with every seed on the same splits and budget; ``kwargs`` go to ``run``."""
    from tqdm.auto import tqdm

    from .core import quick_mode

    items = [_as_setup(s, splits.train.modalities) for s in setups]
    if not items:
        raise ValueError("nothing to compare: give at least one setup")
    show = (not quick_mode()) if progress is None else progress
    jobs = [(s, seed) for s in items for seed in seeds]
    runs = []
    for setup, seed in tqdm(jobs, desc="models", unit="run", disable=not show, leave=False):
        runs.append(run(splits, setup, seed=seed, progress=False, **kwargs))
    return Comparison(runs)


def as_splits(data: Splits | Sequence[MultimodalDataset]) -> Splits:
    """Accept a ``Splits`` or a (train, val, test) sequence."""
    return data if isinstance(data, Splits) else Splits(*data)


# ------------------------------------------------------- missing modalities (chapter 07)
import torch  # noqa: E402

MISSING_STRATEGIES: dict[str, str] = {
    "complete cases": "train on subjects with every modality; the others go to a model of the modalities they have",
    "zero-fill": "concat; an absent h_m becomes 0 (impute='neutral')",
    "mean imputation": "concat; an absent h_m becomes the running mean of present ones (impute='mean')",
    "learned imputation": "concat; an absent h_m becomes a learned token (impute='learned')",
    "modality dropout": "concat trained with modality_dropout=0.3 (present modalities hidden at random), zero-fill",
    "masked attention": "transformer over modality tokens; absent tokens are masked out of attention",
    "output fusion": "average of the present modalities' class probabilities",
}


@dataclass(frozen=True)
class CompleteCases:
    """Train ``setup`` on complete subjects only; subjects lacking a modality are scored by ``fallback``.

    ``fallback`` is a Setup on the modalities that are never missing, or an already trained RunResult.
    """

    setup: Setup
    fallback: Setup | RunResult
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.setup.label}, complete cases"


class FallbackModel(nn.Module):
    """p(y | x) = primary(x) for subjects with every modality, else fallback(x restricted to its modalities)."""

    family = "missing"

    def __init__(self, primary: nn.Module, fallback: nn.Module) -> None:
        super().__init__()
        extra = [m for m in fallback.modalities if m not in primary.modalities]
        if extra:
            raise ValueError(f"the fallback uses {', '.join(extra)}, which the primary model does not see")
        self.primary, self.fallback = primary, fallback
        self.specs = dict(primary.specs)
        self.modalities = tuple(primary.modalities)
        self.num_classes = primary.num_classes
        self.strategy = f"{primary.strategy} (complete cases) + {fallback.strategy} fallback"
        self.cols = [self.modalities.index(m) for m in fallback.modalities]

    def forward(self, batch):
        from .fusion import FusionOutput
        from .train import _logits

        mask = batch["mask"].bool()  # (B, M)
        main = _logits(self.primary(batch)).float()  # (B, K)
        sub = {m: batch[m] for m in self.fallback.modalities}
        sub["mask"] = mask[:, self.cols]
        backup = _logits(self.fallback(sub)).float()  # (B, K)
        complete = mask.all(1, keepdim=True)  # (B, 1)
        return FusionOutput(torch.where(complete, main.log_softmax(-1), backup.log_softmax(-1)), mask=mask)


def run_complete_cases(splits: Splits, item: CompleteCases, *, seed: int = 0, epochs: int = 30, **fit_kwargs) -> RunResult:
    """Fit ``item.setup`` on the complete train/val subjects, then score every test subject (fallback where incomplete)."""
    from .data.missingness import complete_cases

    setup = _as_setup(item.setup, splits.train.modalities)
    complete = Splits(*(complete_cases(s.select(list(setup.modalities))) for s in splits))
    primary = run(complete, setup, seed=seed, epochs=epochs, **fit_kwargs)
    fallback = item.fallback
    if not isinstance(fallback, RunResult):
        fallback = run(splits, fallback, seed=seed, epochs=epochs, **fit_kwargs)
    model = FallbackModel(primary.model, fallback.model)
    trained_here = fallback.seconds if not isinstance(item.fallback, RunResult) else 0.0
    return RunResult(
        setup=Setup(setup.strategy, setup.modalities, setup.options, name=item.label),
        seed=seed,
        metrics=evaluate(model, splits.test.select(list(setup.modalities))),
        history=primary.history,
        parameters=count_parameters(model),
        seconds=primary.seconds + trained_here,
        family="missing",
        model=model,
    )


def missing_strategy(
    name: str,
    modalities: Sequence[str],
    *,
    incomplete: str = "pet",
    base: str = "concat",
    dropout: float = 0.3,
    fallback: RunResult | None = None,
) -> Setup | CompleteCases:
    """The setup behind one of ``MISSING_STRATEGIES`` for ``modalities``, where ``incomplete`` may be absent."""
    from .core import look_up_option

    name = look_up_option(name, MISSING_STRATEGIES, "missing-data strategy")
    modalities = tuple(modalities)
    if name == "complete cases":
        others = tuple(m for m in modalities if m != incomplete)
        if not others:
            raise ValueError(f"complete cases needs a fallback: select a modality besides {incomplete!r}")
        backup = fallback or Setup("unimodal" if len(others) == 1 else base, others)
        return CompleteCases(Setup(base, modalities), backup, name=name)
    options = {
        "zero-fill": (base, {"impute": "neutral"}),
        "mean imputation": (base, {"impute": "mean"}),
        "learned imputation": (base, {"impute": "learned"}),
        "modality dropout": (base, {"modality_dropout": dropout}),
        "masked attention": ("transformer", {}),
        "output fusion": ("average", {}),
    }
    strategy, opts = options[name]
    return Setup(strategy, modalities, opts, name=name)


def run_any(splits: Splits, item: Setup | CompleteCases | str | tuple, *, seed: int = 0, **kwargs) -> RunResult:
    """``run`` for a Setup (or name, or tuple), ``run_complete_cases`` for a CompleteCases."""
    if isinstance(item, CompleteCases):
        return run_complete_cases(splits, item, seed=seed, **kwargs)
    return run(splits, item, seed=seed, **kwargs)


def compare_any(
    splits: Splits, items: Sequence, *, seeds: Sequence[int] = (0,), progress: bool | None = None, **kwargs
) -> Comparison:
    """``compare`` that also accepts ``CompleteCases`` items."""
    from tqdm.auto import tqdm

    from .core import quick_mode

    if not items:
        raise ValueError("nothing to compare: give at least one setup")
    show = (not quick_mode()) if progress is None else progress
    jobs = [(item, seed) for item in items for seed in seeds]
    runs = [
        run_any(splits, item, seed=seed, progress=False, **kwargs)
        for item, seed in tqdm(jobs, desc="models", unit="run", disable=not show, leave=False)
    ]
    return Comparison(runs)


# ------------------------------------------------------- benchmark statistics (chapter 08)
def _balanced_accuracy_rows(correct: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Balanced accuracy of every row of ``correct`` (..., N) against ``labels`` (..., N) (broadcast)."""
    recalls = []
    for k in range(num_classes):
        in_k = labels == k
        count = in_k.sum(-1)
        hits = (correct & in_k).sum(-1)
        recalls.append(np.where(count > 0, hits / np.maximum(count, 1), np.nan))
    return np.nanmean(np.stack(recalls, -1), -1)


def paired_comparison(
    comparison: Comparison,
    splits: Splits,
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
    ``p_boot`` (share of resamples where the model is not ahead).
    """
    from scipy import stats

    from .train import predict

    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1, got {level}")
    labels_all = dict.fromkeys(r.setup.label for r in comparison.runs)
    if reference not in labels_all:
        raise KeyError(f"no runs named {reference!r}; names are {', '.join(labels_all)}")
    test = splits.test
    y = test.labels.cpu().numpy()
    k = test.num_classes

    def correct(label: str) -> dict[int, np.ndarray]:
        out = {}
        for r in comparison.runs:
            if r.setup.label == label:
                probs = predict(r.model, test.select(list(r.setup.modalities))).probs
                out[r.seed] = probs.argmax(1) == y
        return out

    ref = correct(reference)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))  # one set of resamples for every model
    y_boot = y[idx]  # (n_boot, N)
    alpha = (1 - level) / 2
    rows = []
    for label in labels_all:
        if label == reference:
            continue
        mine = correct(label)
        seeds = sorted(set(mine) & set(ref))
        if not seeds:
            raise ValueError(f"{label!r} and {reference!r} share no seed; pair runs with the same seeds")
        diffs = np.array([
            _balanced_accuracy_rows(mine[s], y, k) - _balanced_accuracy_rows(ref[s], y, k) for s in seeds
        ])
        boot = np.mean([
            _balanced_accuracy_rows(mine[s][idx], y_boot, k) - _balanced_accuracy_rows(ref[s][idx], y_boot, k)
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


def write_table(table: pd.DataFrame, folder, name: str, figure=None, digits: int = 3) -> dict[str, "Path"]:
    """Write ``table`` as ``name.csv`` and ``name.md`` (and ``figure`` as ``name.png``) in ``folder`` (created)."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / f"{name}.csv", "md": folder / f"{name}.md"}
    table.to_csv(paths["csv"])
    paths["md"].write_text(markdown_table(table, digits))
    if figure is not None:
        paths["png"] = folder / f"{name}.png"
        figure.savefig(paths["png"], dpi=110, bbox_inches="tight")
    return paths


__all__ += [
    "MISSING_STRATEGIES",
    "CompleteCases",
    "FallbackModel",
    "run_complete_cases",
    "missing_strategy",
    "run_any",
    "compare_any",
    "paired_comparison",
    "markdown_table",
    "write_table",
]
