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
