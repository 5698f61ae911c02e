"""Splitting subjects: stratified train/validation/test, your own split, k-fold cross-validation.

Every split is by subject and stratified by class, and every class keeps at least one subject in
each part, so no part silently loses a class (a class too small for that is an error naming it).

    >>> train, val, test = split_dataset(data, seed=0)              # 70 / 15 / 15 per class
    >>> splits = split_by(data, train=my_train_ids, test=my_test_ids)   # yours; validation from train
    >>> folds = kfold(data, k=5, seed=0)                            # five Splits, each subject tested once
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from .dataset import MultimodalDataset

__all__ = ["Splits", "split_dataset", "split_by", "kfold", "subsample", "standardize"]

MIN_PER_CLASS = 3  # one subject each for train, validation and test


class Splits(NamedTuple):
    train: MultimodalDataset
    val: MultimodalDataset
    test: MultimodalDataset


def _check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 < value < 1:
        raise ValueError(f"{name} fraction must be a number between 0 and 1, got {value!r}")
    return float(value)


def _small_classes(dataset: MultimodalDataset, labels: np.ndarray, minimum: int) -> list[tuple[str, int]]:
    counts = np.bincount(labels, minlength=dataset.num_classes)
    return [(dataset.class_names[k], int(c)) for k, c in enumerate(counts) if 0 < c < minimum]


def _refuse_small(small: list[tuple[str, int]], minimum: int, what: str, option: str) -> None:
    name, count = small[0]
    raise ValueError(
        f"class {name!r} has only {count} subject(s), too few for {what} (at least {minimum} per class); "
        f"collect more, merge or drop that class, or pass {option} to accept parts without it"
    )


def _allocate(labels: np.ndarray, index: np.ndarray, fractions: Sequence[float], rng: np.random.Generator) -> list[np.ndarray]:
    """Split ``index`` by class: per class, round(f n) subjects to each held-out part (at least one
    each while the class can spare them, always one left for the first part); the rest to the first part."""
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for k in np.unique(labels[index]):
        members = rng.permutation(index[labels[index] == k])
        n, start = len(members), 0
        takes = []
        for f in fractions:
            spare = n - start - 1 - (len(fractions) - len(takes) - 1)  # keep one for train and one per later part
            takes.append(int(min(max(1, round(f * n)), max(spare, 0))))
            start += takes[-1]
        start = 0
        for j, take in enumerate(takes, 1):
            parts[j] += members[start : start + take].tolist()
            start += take
        parts[0] += members[start:].tolist()
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def split_dataset(
    dataset: MultimodalDataset, val: float = 0.15, test: float = 0.15, seed: int = 0, *, allow_small_classes: bool = False
) -> Splits:
    """Stratified, reproducible train/validation/test split by subject.

    Each class sends round(val n) and round(test n) of its n subjects to validation and test, at least
    one each, so every class appears in every part. A class with fewer than 3 subjects is an error
    (``allow_small_classes=True`` accepts it, leaving it out of validation and then test).
    """
    val, test = _check_fraction("val", val), _check_fraction("test", test)
    if val + test >= 1:
        raise ValueError(f"val + test must leave subjects to train on, got {val} + {test}")
    labels = dataset.labels.cpu().numpy()
    small = _small_classes(dataset, labels, MIN_PER_CLASS)
    if small and not allow_small_classes:
        _refuse_small(small, MIN_PER_CLASS, "a train/validation/test split", "allow_small_classes=True")
    train, val_idx, test_idx = _allocate(labels, np.arange(len(dataset)), [val, test], np.random.default_rng(seed))
    return Splits(dataset.subset(train), dataset.subset(val_idx), dataset.subset(test_idx))


def _positions(dataset: MultimodalDataset, items, part: str) -> np.ndarray:
    """Subject positions from indices or subject ids; refuses unknown ids and out-of-range indices."""
    items = [i.item() if isinstance(i, np.generic) else i for i in np.asarray(items).reshape(-1)]
    if not items:
        raise ValueError(f"the {part} set is empty; give at least one subject")
    if all(isinstance(i, str) for i in items):
        where = {sid: i for i, sid in enumerate(dataset.subject_ids)}
        unknown = [i for i in items if i not in where]
        if unknown:
            raise ValueError(f"{part}: subject id {unknown[0]!r} is not in the dataset")
        return np.array([where[i] for i in items], dtype=np.int64)
    if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in items):
        raise TypeError(f"{part}: give subject positions (integers) or subject ids (strings), not a mix")
    positions = np.asarray(items, dtype=np.int64)
    bad = positions[(positions < 0) | (positions >= len(dataset))]
    if len(bad):
        raise ValueError(f"{part}: index {int(bad[0])} is out of range for {len(dataset)} subjects")
    return positions


def split_by(
    dataset: MultimodalDataset, *, train, test, val=None, val_fraction: float = 0.15, seed: int = 0
) -> Splits:
    """Your own split, as subject positions or subject ids. Without ``val``, a stratified share
    ``val_fraction`` of ``train`` becomes the validation set (for early stopping)."""
    parts = {"train": _positions(dataset, train, "train"), "test": _positions(dataset, test, "test")}
    if val is not None:
        parts["val"] = _positions(dataset, val, "val")
    names = list(parts)
    for i, a in enumerate(names):
        if len(set(parts[a].tolist())) != len(parts[a]):
            raise ValueError(f"the {a} set lists a subject twice")
        for b in names[i + 1 :]:
            shared = np.intersect1d(parts[a], parts[b])
            if len(shared):
                raise ValueError(f"subject {dataset.subject_ids[shared[0]]} is in both {a} and {b}; the parts must not overlap")
    if val is None:
        labels = dataset.labels.cpu().numpy()
        rest, held = _allocate(labels, parts["train"], [_check_fraction("val", val_fraction)], np.random.default_rng(seed))
        parts["train"], parts["val"] = rest, held
    return Splits(*(dataset.subset(np.sort(parts[p])) for p in ("train", "val", "test")))


def kfold(dataset: MultimodalDataset, k: int = 5, *, seed: int = 0, val: float = 0.15) -> list[Splits]:
    """Stratified k-fold cross-validation: ``k`` Splits, every subject in exactly one test fold.

    Each fold's validation set is a stratified share ``val`` of all subjects, taken from that fold's
    training part. A class with fewer than ``k`` subjects is an error naming it.
    """
    from sklearn.model_selection import StratifiedKFold

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer of at least 2 folds, got {k!r}")
    val = _check_fraction("val", val)
    labels = dataset.labels.cpu().numpy()
    small = _small_classes(dataset, labels, max(k, MIN_PER_CLASS))
    if small:
        name, count = small[0]
        raise ValueError(
            f"class {name!r} has only {count} subject(s), too few for {k}-fold cross-validation with a validation "
            f"set (at least {max(k, MIN_PER_CLASS)} per class); use fewer folds, or merge or drop that class"
        )
    share = val / (1 - 1 / k)  # of each fold's training part
    if share >= 1:
        raise ValueError(f"val={val} leaves nothing to train on with k={k} folds")
    folds = StratifiedKFold(n_splits=int(k), shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)
    out = []
    for i, (rest, test) in enumerate(folds):
        train, held = _allocate(labels, rest, [share], np.random.default_rng([seed, i]))
        out.append(Splits(dataset.subset(train), dataset.subset(held), dataset.subset(np.sort(test))))
    return out


def subsample(dataset: MultimodalDataset, size: int | float, seed: int = 0) -> MultimodalDataset:
    """A stratified random subset: ``size`` subjects, or that fraction of them if a float in (0, 1]."""
    from sklearn.model_selection import train_test_split

    n = round(size * len(dataset)) if isinstance(size, float) else int(size)
    if not 0 < n <= len(dataset):
        raise ValueError(f"size must give between 1 and {len(dataset)} subjects, got {size}")
    if n == len(dataset):
        return dataset
    labels = dataset.labels.cpu().numpy()
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 and n >= dataset.num_classes else None
    keep, _ = train_test_split(np.arange(len(dataset)), train_size=n, random_state=seed, stratify=stratify)
    return dataset.subset(np.sort(keep))


def table_statistics(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and scale (F,) of a table's rows: the standard deviation, 1 for a constant column (or no rows)."""
    if len(values) == 0:
        return torch.zeros(values.shape[1:]), torch.ones(values.shape[1:])
    mean = values.double().mean(0)
    std = values.double().std(0, unbiased=False) if len(values) > 1 else torch.zeros_like(mean)
    constant = std <= 1e-7 * mean.abs().clamp_min(1.0)
    return mean.float(), torch.where(constant, torch.ones_like(std), std).float()


def standardize(first, *others: MultimodalDataset):
    """Z-score every tabular modality with the first (training) set's statistics, present subjects only.

    ``standardize(splits)`` returns a ``Splits``; ``standardize(train, val, test)`` a tuple of the same
    length. A column constant in the training set is only centred (scale 1). Models built with
    ``build_model`` already do this inside (``scale_tables=True``); this is the explicit version.
    """
    given = first if isinstance(first, Splits) else (first, *others)
    if isinstance(first, Splits) and others:
        raise TypeError("give either one Splits or the datasets themselves, not both")
    train = given[0]
    out = list(given)
    for j, (key, spec) in enumerate(train.specs.items()):
        if spec.kind != "tabular":
            continue
        mean, scale = table_statistics(train.tensors[key][train.mask[:, j]].cpu())
        out = [ds.with_tensors(**{key: (ds.tensors[key] - mean.to(ds.device)) / scale.to(ds.device)}) for ds in out]
    return Splits(*out) if isinstance(first, Splits) else tuple(out)
