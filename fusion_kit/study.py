"""Your study from disk, end to end: stream a manifest, train one split or k folds, write what came out.

    >>> result = train_study("study/participants.csv", "concat", image_size=64, folds=5, out="runs/concat")
    >>> print(result.table())

What ``fusion-kit train`` runs. Under ``torchrun`` every process calls it alike: ``fit`` trains one
DistributedDataParallel copy per process, every process scores the test subjects, and only rank 0 writes
``OUT/model.pt`` (``OUT/fold_K/model.pt`` with folds), ``OUT/metrics.json`` and ``OUT/history.csv``.

Imports from fusion_kit: core, data, distributed, models, train.
"""
from __future__ import annotations

import csv
import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core import check_output_folder, look_up_option, seed_everything
from .data import kfold, split_dataset
from .data.streaming import augment as augmented, stream_manifest
from .distributed import main_process
from .models import STRATEGIES, build_model
from .train import History, evaluate, fit

__all__ = ["StudyResult", "train_study"]

SCORES = ("balanced_accuracy", "accuracy", "auc")


@dataclass
class StudyResult:
    """Per-fold scores and histories of one strategy on one study, with their mean and spread."""

    strategy: str
    manifest: str
    folds: list[dict] = field(default_factory=list)  # per fold: scores, test size, epochs, seconds
    histories: list[History] = field(default_factory=list)
    processes: int = 1

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean and sample standard deviation over folds of each score (sd 0 for one split)."""
        out = {}
        for key in SCORES:
            values = [f[key] for f in self.folds]
            out[key] = {"mean": float(np.mean(values)), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}
        return out

    def as_dict(self) -> dict:
        return {"strategy": self.strategy, "manifest": self.manifest, "processes": self.processes,
                "folds": self.folds, "summary": self.summary()}

    def table(self) -> str:
        lines = [f"{self.strategy} on {Path(self.manifest).name}: {len(self.folds)} "
                 f"{'folds' if len(self.folds) > 1 else 'split'}, {self.processes} process(es)",
                 f"{'fold':>5} {'test n':>7} {'balanced acc':>13} {'accuracy':>9} {'macro AUC':>10} {'epochs':>7}"]
        for f in self.folds:
            lines.append(f"{f['fold']:>5} {f['n_test']:>7} {f['balanced_accuracy']:>13.3f} {f['accuracy']:>9.3f} "
                         f"{f['auc']:>10.3f} {f['epochs_run']:>7}")
        s = self.summary()
        if len(self.folds) > 1:
            lines.append(f"{'mean':>5} {'':>7} {s['balanced_accuracy']['mean']:>13.3f} {s['accuracy']['mean']:>9.3f} "
                         f"{s['auc']['mean']:>10.3f}")
            lines.append(f"{'sd':>5} {'':>7} {s['balanced_accuracy']['sd']:>13.3f} {s['accuracy']['sd']:>9.3f} "
                         f"{s['auc']['sd']:>10.3f}")
        return "\n".join(lines)


def _write(result: StudyResult, out: Path) -> None:
    (out / "metrics.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    with open(out / "history.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["fold", "epoch", "train_loss", "val_loss", "val_balanced_accuracy"])
        for fold, h in zip(result.folds, result.histories):
            for e, loss in enumerate(h.train_loss):
                val = h.val_loss[e] if e < len(h.val_loss) else ""
                bacc = h.val_balanced_accuracy[e] if e < len(h.val_balanced_accuracy) else ""
                writer.writerow([fold["fold"], e + 1, f"{loss:.6f}", val if val == "" else f"{val:.6f}",
                                 bacc if bacc == "" else f"{bacc:.6f}"])


def train_study(
    manifest: str | os.PathLike,
    strategy: str,
    *,
    image_size: int | None = None,
    image_columns=("mri", "pet"),
    epochs: int = 30,
    batch_size: int | None = None,
    folds: int = 1,
    augment: bool = False,
    device: str = "auto",
    workers: int | None = None,
    out: str | os.PathLike = "runs/study",
    seed: int = 0,
    cache: str = "disk",
    progress: bool | None = None,
) -> StudyResult:
    """Train ``strategy`` on a participants CSV streamed from disk; test it on held-out subjects.

    ``folds=1``: one stratified train / validation / test split (70/15/15); ``folds=K``: K-fold cross-validation,
    every subject tested once, each fold's validation set taken from its training part. ``augment``: MONAI random
    transforms on the training subjects (``fusion_kit.data.augment``). Every option is checked, and the manifest
    read and checked, before training starts. Returns the scores per fold, with mean and spread.
    """
    strategy = look_up_option(strategy, STRATEGIES, "fusion strategy")
    if callable(getattr(STRATEGIES[strategy], "after_fit", None)):
        raise ValueError(f"{strategy} fits a rule on the whole training set in memory after training, which a study "
                         "streamed from disk does not allow; choose another strategy (average, concat, ...)")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise ValueError(f"folds must be 1 (one split) or the number of folds (at least 2), got {folds!r}")
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 2), ("workers", workers, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ValueError(f"{name} must be a whole number of at least {low}, got {value!r}")
    out = check_output_folder(Path(out)) if main_process() else Path(out)
    data = stream_manifest(manifest, image_size=image_size, image_columns=image_columns, cache=cache)
    parts = [split_dataset(data, seed=seed)] if folds == 1 else kfold(data, folds, seed=seed)
    build_model(strategy, data)  # a strategy that cannot take these modalities fails before any training
    result = StudyResult(strategy, str(Path(manifest).resolve()))
    for k, (train, val, test) in enumerate(parts, start=1):
        seed_everything(seed)
        model = build_model(strategy, data)
        checkpoint = out / ("model.pt" if folds == 1 else f"fold_{k}/model.pt")
        history = fit(model, augmented(train, seed=seed) if augment else train, val, epochs=epochs,
                      batch_size=batch_size, device=device, workers=workers, seed=seed, checkpoint=checkpoint,
                      progress=progress)
        scores = evaluate(model, test, workers=workers)
        result.processes = history.processes
        result.histories.append(history)
        result.folds.append({"fold": k, **{key: float(v) for key, v in scores.as_dict().items()}, "n_test": len(test),
                             "epochs_run": history.epochs_run, "best_epoch": history.best_epoch,
                             "seconds": round(history.seconds, 2), "device": history.device})
    if main_process():
        _write(result, out)
    return result
