"""Train-and-score in one call, and fair comparisons of several models over seeds and folds.

These are the verbs the chapters and widgets call: every model in a comparison sees the same
splits (or the same folds), the same budget and the same seeds, so differences come from the
fusion strategy and nothing else. A run keeps its predictions on the split it scored, so tables,
paired statistics and figures never predict again.

    >>> result = run(splits, "concat")                                # one model
    >>> table = compare(splits, ["concat", "gmu"], seeds=(0, 1, 2)).table()
    >>> table = compare(kfold(data, k=5), ["concat", "gmu"]).table()   # mean and spread over folds
    >>> by_regime = compare_regimes(["concat", "film"], ["default", "conditioning"], n_subjects=1000)

Imports from fusion_kit: core, data, encoders, fusion, metrics, models and train.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from torch import nn

from .core import look_up_option, quick_mode, seed_everything
from .data.splits import Splits
from .encoders import count_parameters
from .fusion import FallbackModel
from .metrics import Metrics, balanced_accuracy_rows, classification_metrics
from .train import History, Predictions, fit, predict

__all__ = [
    "Setup",
    "CompleteCases",
    "RunResult",
    "Comparison",
    "run",
    "compare",
    "REGIMES",
    "RegimeComparison",
    "compare_regimes",
    "MISSING_STRATEGIES",
    "missing_strategy",
]


PRETRAIN_STAGES = ("frozen", "fine-tuned")  # Setup option "pretrain": what happens to pretrained encoders


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


@dataclass(frozen=True)
class CompleteCases:
    """Train ``setup`` on complete subjects only; subjects lacking a modality are scored by ``fallback``.

    ``fallback`` is a Setup on the modalities that are never missing, or an already trained RunResult.
    With ``distilled``, the fallback (a Setup) is trained by ``train.distill`` from the complete-case model:
    it learns from the labels of every subject and from the teacher's predictions where the teacher has
    every modality, so what the missing modality shows reaches a model that never reads it.
    """

    setup: Setup
    fallback: Setup | RunResult
    name: str = ""
    distilled: bool = False

    @property
    def label(self) -> str:
        return self.name or f"{self.setup.label}, complete cases"


@dataclass
class RunResult:
    """One trained model, its test scores and its predictions on the split it was scored on."""

    setup: Setup
    seed: int
    metrics: Metrics
    history: History
    parameters: int
    seconds: float
    family: str
    model: nn.Module = field(repr=False)
    predictions: Predictions | None = field(default=None, repr=False)
    fold: int = 0

    def __str__(self) -> str:
        fold = f", fold {self.fold}" if self.fold else ""
        return f"{self.setup.label}, seed {self.seed}{fold}: {self.metrics}"


def _as_item(item, all_modalities: Sequence[str]) -> Setup | CompleteCases:
    """A Setup from a name, a (strategy, modalities[, options]) tuple or a Setup; CompleteCases as given."""
    if isinstance(item, CompleteCases):
        return item
    if isinstance(item, Setup):
        return item if item.modalities else Setup(item.strategy, tuple(all_modalities), item.options, item.name)
    if isinstance(item, str):
        return Setup(item, tuple(all_modalities))
    strategy, modalities, *rest = item
    modalities = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    return Setup(strategy, modalities, rest[0] if rest else {})


def _scored(model: nn.Module, splits: Splits, evaluate_on: str) -> tuple[Predictions, Metrics]:
    part = getattr(splits, look_up_option(evaluate_on, Splits._fields, "evaluate_on"))
    predictions = predict(model, part)
    return predictions, classification_metrics(predictions.labels, predictions.probs, part.class_names)


def run(
    splits: Splits,
    strategy: str | Setup | CompleteCases | tuple,
    modalities: Sequence[str] | None = None,
    *,
    seed: int = 0,
    epochs: int = 30,
    evaluate_on: str = "test",
    **fit_kwargs,
) -> RunResult:
    """Build ``strategy`` for ``modalities`` (default: all), fit on train, pick on val, score on test.

    ``strategy`` may be a registered name, a ``Setup``, or a ``CompleteCases`` protocol.
    """
    item = _as_item(strategy if modalities is None else (strategy, modalities), splits.train.modalities)
    if isinstance(item, CompleteCases):
        return _run_complete_cases(splits, item, seed=seed, epochs=epochs, evaluate_on=evaluate_on, **fit_kwargs)
    return _run_setup(splits, item, seed=seed, epochs=epochs, evaluate_on=evaluate_on, **fit_kwargs)


def _run_setup(splits: Splits, setup: Setup, *, seed: int, epochs: int, evaluate_on: str, teacher=None,
               **fit_kwargs) -> RunResult:
    """Build and train ``setup`` (by distillation from ``teacher`` when one is given), then score it. The option
    ``pretrain="frozen"`` or ``"fine-tuned"`` first trains each encoder on its own modality (two-stage training,
    ``train.pretrain_encoders``); the time reported includes that first stage."""
    from .models import build_model
    from .train import distill, pretrain_encoders

    if not setup.modalities:
        raise ValueError("no modality selected: tick at least one modality to train a model")
    options = dict(setup.options)
    stage = options.pop("pretrain", None)
    if stage is not None:
        stage = look_up_option(stage, PRETRAIN_STAGES, "pretrain")
    seed_everything(seed)
    model = build_model(setup.strategy, splits.train, modalities=list(setup.modalities), **options)
    start = time.perf_counter()
    if stage is not None:
        pretrain_encoders(model, splits.train, splits.val, freeze=stage == "frozen", epochs=epochs, seed=seed,
                          **fit_kwargs)
    if teacher is None:
        history = fit(model, splits.train, splits.val, epochs=epochs, seed=seed, **fit_kwargs)
    else:
        history = distill(teacher, model, splits.train, splits.val, epochs=epochs, seed=seed, **fit_kwargs)
    seconds = time.perf_counter() - start
    predictions, metrics = _scored(model, splits, evaluate_on)
    return RunResult(setup, seed, metrics, history, count_parameters(model), seconds, str(model.family), model, predictions)


def _run_complete_cases(splits: Splits, item: CompleteCases, *, seed: int, epochs: int, evaluate_on: str,
                        **fit_kwargs) -> RunResult:
    """Fit ``item.setup`` on the complete train/val subjects, then score every subject (fallback where incomplete)."""
    from .data.missingness import complete_cases

    setup = _as_item(item.setup, splits.train.modalities)
    complete = Splits(*(complete_cases(s, list(setup.modalities)) for s in splits))
    primary = _run_setup(complete, setup, seed=seed, epochs=epochs, evaluate_on="val", **fit_kwargs)
    fallback = item.fallback
    if item.distilled:
        if isinstance(fallback, RunResult):
            raise ValueError("a distilled fallback is trained here: give it as a Setup, not a trained RunResult")
        fallback = _run_setup(splits, _as_item(fallback, splits.train.modalities), seed=seed, epochs=epochs,
                              evaluate_on="val", teacher=primary.model, **fit_kwargs)
    elif not isinstance(fallback, RunResult):
        fallback = _run_setup(splits, _as_item(fallback, splits.train.modalities), seed=seed, epochs=epochs,
                              evaluate_on="val", **fit_kwargs)
    model = FallbackModel(primary.model, fallback.model)
    trained_here = fallback.seconds if not isinstance(item.fallback, RunResult) else 0.0
    predictions, metrics = _scored(model, splits, evaluate_on)
    return RunResult(
        Setup(setup.strategy, setup.modalities, setup.options, name=item.label), seed, metrics, primary.history,
        count_parameters(model), primary.seconds + trained_here, FallbackModel.family, model, predictions,
    )


@dataclass
class Comparison:
    """Several setups, each trained with several seeds (and on several folds) on the same splits."""

    runs: list[RunResult]

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(r.setup.label for r in self.runs))

    def runs_of(self, label: str) -> list[RunResult]:
        """The runs of one setup, in (seed, fold) order."""
        group = sorted((r for r in self.runs if r.setup.label == label), key=lambda r: (r.seed, r.fold))
        if not group:
            raise KeyError(f"no runs named {label!r}; names are {', '.join(self.labels)}")
        return group

    def table(self) -> pd.DataFrame:
        """One row per setup: mean and spread over seeds (and folds) of balanced accuracy and AUC, cost."""
        rows = []
        folds = len({r.fold for r in self.runs})
        for label in self.labels:
            group = self.runs_of(label)
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
                "seeds": len({r.seed for r in group}),
                **({"folds": len({r.fold for r in group})} if folds > 1 else {}),
            })
        return pd.DataFrame(rows).set_index("model")

    def scores(self, label: str) -> np.ndarray:
        """Balanced accuracy of ``label`` for each run, in (seed, fold) order."""
        return np.array([r.metrics.balanced_accuracy for r in self.runs_of(label)])

    def correct_by_seed(self, label: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per seed: (correct, labels) over the test subjects, folds pooled in fold order."""
        out: dict[int, tuple[list, list]] = {}
        for r in self.runs_of(label):
            if r.predictions is None:
                raise ValueError(f"run {r} kept no predictions; train it with fusion_kit.experiment.run or compare")
            correct, labels = out.setdefault(r.seed, ([], []))
            correct.append(r.predictions.predicted == r.predictions.labels)
            labels.append(r.predictions.labels)
        return {s: (np.concatenate(c), np.concatenate(y)) for s, (c, y) in out.items()}

    def score_interval(self, label: str, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
        """Percentile interval of ``label``'s balanced accuracy (mean over its seeds) when the test subjects are
        resampled: how far its score could move with another test set of the same size, for these models."""
        if not 0 < level < 1:
            raise ValueError(f"level must lie between 0 and 1, got {level}")
        runs = self.correct_by_seed(label)
        y = next(iter(runs.values()))[1]
        k = int(max(r.predictions.probs.shape[1] for r in self.runs_of(label)))
        idx = np.random.default_rng(seed).integers(0, len(y), size=(n_boot, len(y)))
        boot = np.mean([balanced_accuracy_rows(correct[idx], labels[idx], k) for correct, labels in runs.values()], 0)
        alpha = (1 - level) / 2
        return float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))

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
    splits: Splits | Sequence[Splits],
    setups: Sequence[Setup | CompleteCases | str | tuple],
    *,
    seeds: Sequence[int] = (0,),
    progress: bool | None = None,
    **kwargs,
) -> Comparison:
    """Train every setup with every seed on the same splits (or on every fold of ``kfold``) and budget.

    ``setups`` may mix names, ``(strategy, modalities)`` tuples, ``Setup`` and ``CompleteCases``;
    ``kwargs`` go to ``run``.
    """
    from tqdm.auto import tqdm

    folds = [splits] if isinstance(splits, Splits) else list(splits)
    if not folds or not all(isinstance(f, Splits) for f in folds):
        raise TypeError("compare needs a Splits (split_dataset) or a list of them (kfold)")
    items = [_as_item(s, folds[0].train.modalities) for s in setups]
    if not items:
        raise ValueError("nothing to compare: give at least one setup")
    labels = [item.label for item in items]
    twice = next((label for label in labels if labels.count(label) > 1), None)
    if twice is not None:
        raise ValueError(f"two setups are both called {twice!r}; name them apart with Setup(..., name=...)")
    show = (not quick_mode()) if progress is None else progress
    jobs = [(item, seed, i) for item in items for seed in seeds for i in range(len(folds))]
    runs = []
    for item, seed, i in tqdm(jobs, desc="models", unit="run", disable=not show, leave=False):
        result = run(folds[i], item, seed=seed, progress=False, **kwargs)
        result.fold = i
        runs.append(result)
    return Comparison(runs)


# ------------------------------------------------------- the cohort's regimes (chapters 02-06 and 08)
REGIMES: dict[str, dict[str, float]] = {
    "default": {},
    "interaction": {"interaction": 1.0},
    "conditioning": {"conditioning": 1.0},
    "reliability": {"reliability": 1.0},
}
"""The cohort's regimes by name: the knobs of ``make_brain_cohort`` each one sets (``datasets/brain_cohort.md``)."""


@dataclass
class RegimeComparison:
    """The same setups, seeds and budget in several regimes of the cohort: one ``Comparison`` per regime."""

    comparisons: dict[str, Comparison]
    splits: dict[str, Splits] = field(default_factory=dict, repr=False)

    @property
    def regimes(self) -> list[str]:
        return list(self.comparisons)

    def table(self) -> pd.DataFrame:
        """Mean balanced accuracy (rows: setups, columns: regimes), in the order the setups were given."""
        return pd.DataFrame({r: c.table()["balanced_accuracy"] for r, c in self.comparisons.items()})

    def spread(self) -> pd.DataFrame:
        """Standard deviation over seeds of balanced accuracy, laid out as ``table``."""
        return pd.DataFrame({r: c.table()["bacc_std"] for r, c in self.comparisons.items()})

    def margin(self, label: str, reference: str) -> pd.Series:
        """Per regime: mean over seeds of ``label`` minus ``reference`` (paired seed by seed)."""
        return pd.Series({r: float(np.mean(c.scores(label) - c.scores(reference))) for r, c in self.comparisons.items()})

    def __getitem__(self, regime: str) -> Comparison:
        return self.comparisons[look_up_option(regime, self.comparisons, "regime")]


def regime_knobs(regime: str | Mapping[str, float]) -> dict[str, float]:
    """The cohort knobs of a regime given by name (``REGIMES``) or as a mapping of knobs."""
    if isinstance(regime, Mapping):
        return dict(regime)
    return dict(REGIMES[look_up_option(regime, REGIMES, "regime")])


def compare_regimes(
    setups: Sequence[Setup | str | tuple],
    regimes: Sequence[str] | Mapping[str, Mapping[str, float]] = tuple(REGIMES),
    *,
    n_subjects: int = 1000,
    seed: int = 0,
    seeds: Sequence[int] = (0,),
    cohort_options: Mapping | None = None,
    progress: bool | None = None,
    **kwargs,
) -> RegimeComparison:
    """``compare`` the same setups in each regime: a cohort per regime (``make_brain_cohort(n_subjects,
    seed=seed, **knobs)``, cached) with its stratified split (``split_dataset(cohort, seed=seed)``).

    ``regimes`` lists names of ``REGIMES`` or maps names to knobs (``{"half": {"interaction": 0.5}}``);
    ``cohort_options`` are further knobs for every regime's cohort (``{"image_size": 32}``). ``kwargs`` go to ``compare`` (``epochs``, ``device``, ...).
    """
    from tqdm.auto import tqdm

    from .data import make_brain_cohort, split_dataset

    named = regimes if isinstance(regimes, Mapping) else {r: regime_knobs(r) for r in regimes}
    if not named:
        raise ValueError(f"no regime to compare: give names among {', '.join(REGIMES)}")
    show = (not quick_mode()) if progress is None else progress
    comparisons, splits = {}, {}
    for name, knobs in tqdm(list(named.items()), desc="regimes", unit="regime", disable=not show, leave=False):
        cohort = make_brain_cohort(n_subjects, seed=seed, **{**dict(cohort_options or {}), **dict(knobs)})
        splits[name] = split_dataset(cohort, seed=seed)
        comparisons[name] = compare(splits[name], setups, seeds=seeds, progress=show, **kwargs)
    return RegimeComparison(comparisons, splits)


# ------------------------------------------------------- missing modalities (chapter 07)
MISSING_STRATEGIES: dict[str, str] = {
    "complete cases": "train on subjects with every modality; the others go to a model of the modalities they have",
    "zero-fill": "concat; an absent h_m becomes 0 (impute='neutral')",
    "mean imputation": "concat; an absent h_m becomes the running mean of present ones (impute='mean')",
    "learned imputation": "concat; an absent h_m becomes a learned token (impute='learned')",
    "modality dropout": "concat trained with modality_dropout=0.3 (present modalities hidden at random), zero-fill",
    "masked attention": "transformer over modality tokens; absent tokens are masked out of attention",
    "output fusion": "average of the present modalities' class probabilities",
    "hemis": "mean and variance of the present modalities' representations (HeMIS): no imputation",
    "product of experts": "one Gaussian per present modality, multiplied with a prior (poe): no imputation",
    "shared-specific": "a shared and a specific part per modality; an absent one gets the present ones' shared part "
                       "(shared_specific, ShaSpec): no imputation",
    "distillation": "complete cases, whose fallback (no PET) is distilled from the complete-case model",
}


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
    name = look_up_option(name, MISSING_STRATEGIES, "missing-data strategy")
    modalities = tuple(modalities)
    if name in ("complete cases", "distillation"):
        others = tuple(m for m in modalities if m != incomplete)
        if not others:
            raise ValueError(f"{name} needs a fallback: select a modality besides {incomplete!r}")
        backup = Setup("unimodal" if len(others) == 1 else base, others)
        if name == "distillation":  # the fallback is trained here, from the complete-case model
            return CompleteCases(Setup(base, modalities), backup, name=name, distilled=True)
        return CompleteCases(Setup(base, modalities), fallback or backup, name=name)
    options = {
        "zero-fill": (base, {"impute": "neutral"}),
        "mean imputation": (base, {"impute": "mean"}),
        "learned imputation": (base, {"impute": "learned"}),
        "modality dropout": (base, {"modality_dropout": dropout}),
        "masked attention": ("transformer", {}),
        "output fusion": ("average", {}),
        "hemis": ("hemis", {}),
        "product of experts": ("poe", {}),
        "shared-specific": ("shared_specific", {}),
    }
    strategy, opts = options[name]
    return Setup(strategy, modalities, opts, name=name)
