"""The batch contract and the in-memory dataset every chapter trains on.

A *batch* is a plain dict::

    {"mri": (B, C, H, W), "pet": (B, C, H, W), "clinical": (B, F),
     "mask": BoolTensor (B, M), "label": LongTensor (B,)}

``mask[:, m]`` says whether modality ``m`` (in the dataset's ``modalities``
order) is present for each subject. An absent modality's tensor holds zeros;
models must read the mask, never the content, to know what is there.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ModalitySpec",
    "MultimodalDataset",
    "Splits",
    "split_dataset",
    "subsample",
    "check_batch",
    "standardize",
]

RESERVED_KEYS = ("mask", "label")


@dataclass(frozen=True)
class ModalitySpec:
    """What one modality looks like per subject: its kind and per-sample shape."""

    name: str
    kind: Literal["image", "tabular"]
    shape: tuple[int, ...]  # image: (C, H, W) or (C, D, H, W); tabular: (F,)
    feature_names: tuple[str, ...] | None = None

    @property
    def spatial_dims(self) -> int | None:
        return len(self.shape) - 1 if self.kind == "image" else None

    @property
    def channels(self) -> int:
        """Image channels, or number of tabular features."""
        return self.shape[0]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.shape[1:] if self.kind == "image" else ()

    @staticmethod
    def infer(name: str, tensor: Tensor, feature_names: Sequence[str] | None = None) -> "ModalitySpec":
        """Infer the spec from a stacked tensor: 2 dims tabular, 4 dims 2D image, 5 dims 3D image."""
        if tensor.ndim == 2:
            names = tuple(feature_names) if feature_names is not None else None
            if names is not None and len(names) != tensor.shape[1]:
                raise ValueError(f"{name!r} has {tensor.shape[1]} columns but {len(names)} feature names were given")
            return ModalitySpec(name, "tabular", tuple(tensor.shape[1:]), names)
        if tensor.ndim in (4, 5):
            return ModalitySpec(name, "image", tuple(tensor.shape[1:]))
        raise ValueError(
            f"modality {name!r} has shape {tuple(tensor.shape)}; expected (N, F) for a table, "
            "(N, C, H, W) for 2D images or (N, C, D, H, W) for 3D images"
        )


def _as_tensor(name: str, value) -> Tensor:
    tensor = torch.as_tensor(value)
    if not torch.is_floating_point(tensor):
        tensor = tensor.float()
    return tensor.float() if tensor.dtype == torch.float64 else tensor


class MultimodalDataset(torch.utils.data.Dataset):
    """Subjects with several modalities, a presence mask and a class label, all in memory.

    Args:
        data: modality name -> stacked tensor (or array) with subjects first.
        labels: integer class per subject, in ``range(len(class_names))``.
        mask: (N, M) bool, modality present; default all present.
        class_names: names of the classes; default ``class_0, class_1, ...``.
        feature_names: for tabular modalities, column names.
        subject_ids: one id per subject; default ``sub-0000, ...``.
        meta: free-form information (generator parameters, latent variables as arrays of length N).
    """

    def __init__(
        self,
        data: Mapping[str, Tensor | np.ndarray],
        labels: Tensor | np.ndarray | Sequence[int],
        *,
        mask: Tensor | np.ndarray | None = None,
        class_names: Sequence[str] | None = None,
        feature_names: Mapping[str, Sequence[str]] | None = None,
        subject_ids: Sequence[str] | None = None,
        meta: Mapping | None = None,
    ) -> None:
        if not data:
            raise ValueError("a MultimodalDataset needs at least one modality")
        for key in data:
            if key in RESERVED_KEYS:
                raise ValueError(f"{key!r} is reserved for the batch contract; rename that modality")
        self.tensors: dict[str, Tensor] = {k: _as_tensor(k, v) for k, v in data.items()}
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1)
        n = len(self.labels)
        for key, tensor in self.tensors.items():
            if tensor.shape[0] != n:
                raise ValueError(f"modality {key!r} has {tensor.shape[0]} subjects but there are {n} labels")
        feature_names = feature_names or {}
        self.specs: dict[str, ModalitySpec] = {
            k: ModalitySpec.infer(k, t, feature_names.get(k)) for k, t in self.tensors.items()
        }
        num_classes = len(class_names) if class_names is not None else int(self.labels.max()) + 1 if n else 0
        self.class_names: tuple[str, ...] = (
            tuple(class_names) if class_names is not None else tuple(f"class_{i}" for i in range(num_classes))
        )
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            bad = self.labels[(self.labels < 0) | (self.labels >= len(self.class_names))][0].item()
            raise ValueError(f"label {bad} is out of range for {len(self.class_names)} classes {self.class_names}")
        m = len(self.tensors)
        self.mask = torch.ones(n, m, dtype=torch.bool) if mask is None else torch.as_tensor(np.asarray(mask)).bool()
        if tuple(self.mask.shape) != (n, m):
            raise ValueError(f"mask must have shape (subjects, modalities) = ({n}, {m}), got {tuple(self.mask.shape)}")
        self.subject_ids: tuple[str, ...] = (
            tuple(subject_ids) if subject_ids is not None else tuple(f"sub-{i:04d}" for i in range(n))
        )
        if len(self.subject_ids) != n:
            raise ValueError(f"{len(self.subject_ids)} subject ids given for {n} subjects")
        self.meta: dict = dict(meta or {})
        self._zero_absent()
        self._check_finite()

    # ------------------------------------------------------------------ checks
    def _zero_absent(self) -> None:
        """Absent modalities hold zeros, so no model can read what is not there."""
        for j, key in enumerate(self.modalities):
            absent = ~self.mask[:, j]
            if absent.any():
                self.tensors[key] = self.tensors[key].clone()
                self.tensors[key][absent] = 0

    def _check_finite(self) -> None:
        for key, tensor in self.tensors.items():
            bad = ~torch.isfinite(tensor.reshape(len(tensor), -1)).all(dim=1)
            if bad.any():
                i = int(bad.nonzero()[0])
                where = ""
                spec = self.specs[key]
                if spec.kind == "tabular":
                    col = int((~torch.isfinite(tensor[i])).nonzero()[0])
                    where = f" in column {spec.feature_names[col] if spec.feature_names else col}"
                raise ValueError(
                    f"NaN or infinite value in {key!r}{where} for subject {self.subject_ids[i]}: "
                    "impute it, or mark that modality absent in the mask"
                )

    # ------------------------------------------------------------ properties
    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.tensors)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        sample = {k: t[index] for k, t in self.tensors.items()}
        sample["mask"] = self.mask[index]
        sample["label"] = self.labels[index]
        return sample

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(s.shape)}" for k, s in self.specs.items())
        return f"MultimodalDataset({len(self)} subjects, {self.num_classes} classes; {shapes})"

    # ------------------------------------------------------------ batching
    def batch(self, indices: Tensor | Sequence[int] | slice | None = None) -> dict[str, Tensor]:
        """The batch dict for the given subjects (all of them by default)."""
        if indices is None:
            indices = slice(None)
        out = {k: t[indices] for k, t in self.tensors.items()}
        out["mask"] = self.mask[indices]
        out["label"] = self.labels[indices]
        return out

    def to(self, device: torch.device | str) -> "MultimodalDataset":
        """The same dataset with its tensors on ``device`` (cheap when already there)."""
        moved = self._replace()
        moved.tensors = {k: t.to(device) for k, t in self.tensors.items()}
        moved.labels = self.labels.to(device)
        moved.mask = self.mask.to(device)
        return moved

    @property
    def device(self) -> torch.device:
        return self.labels.device

    # --------------------------------------------------------- derived sets
    def _replace(self) -> "MultimodalDataset":
        clone = object.__new__(MultimodalDataset)
        clone.__dict__.update(self.__dict__)
        clone.meta = dict(self.meta)
        return clone

    def subset(self, indices: Tensor | Sequence[int] | np.ndarray) -> "MultimodalDataset":
        """The subjects at ``indices`` (per-subject arrays in ``meta`` are subset too)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        sub = self._replace()
        sub.tensors = {k: t[idx.to(t.device)] for k, t in self.tensors.items()}
        sub.labels = self.labels[idx.to(self.labels.device)]
        sub.mask = self.mask[idx.to(self.mask.device)]
        sub.subject_ids = tuple(self.subject_ids[i] for i in idx.tolist())
        n = len(self)
        for key, value in self.meta.items():
            if isinstance(value, (np.ndarray, Tensor)) and len(value) == n and getattr(value, "ndim", 0) >= 1:
                sub.meta[key] = value[idx.numpy()] if isinstance(value, np.ndarray) else value[idx]
        return sub

    def select(self, modalities: Sequence[str]) -> "MultimodalDataset":
        """Keep only ``modalities`` (in that order)."""
        if isinstance(modalities, str):
            modalities = [modalities]
        modalities = list(modalities)
        if not modalities:
            raise ValueError(f"select at least one modality; this dataset has {', '.join(self.modalities)}")
        for name in modalities:
            if name not in self.tensors:
                raise KeyError(f"no modality {name!r}; this dataset has {', '.join(self.modalities)}")
        sub = self._replace()
        cols = [self.modalities.index(m) for m in modalities]
        sub.tensors = {m: self.tensors[m] for m in modalities}
        sub.specs = {m: self.specs[m] for m in modalities}
        sub.mask = self.mask[:, cols]
        return sub

    def with_mask(self, mask: Tensor | np.ndarray) -> "MultimodalDataset":
        """The same subjects with a new presence mask; newly absent content is zeroed."""
        return MultimodalDataset(
            self.tensors,
            self.labels,
            mask=mask,
            class_names=self.class_names,
            feature_names={k: s.feature_names for k, s in self.specs.items() if s.feature_names},
            subject_ids=self.subject_ids,
            meta=self.meta,
        )

    def with_tensors(self, **tensors: Tensor) -> "MultimodalDataset":
        """The same subjects with some modality tensors replaced (same number of subjects)."""
        data = dict(self.tensors)
        data.update(tensors)
        return MultimodalDataset(
            data,
            self.labels,
            mask=self.mask,
            class_names=self.class_names,
            feature_names={k: s.feature_names for k, s in self.specs.items() if s.feature_names},
            subject_ids=self.subject_ids,
            meta=self.meta,
        )

    def class_counts(self) -> dict[str, int]:
        counts = torch.bincount(self.labels.cpu(), minlength=self.num_classes).tolist()
        return dict(zip(self.class_names, counts))

    def summary(self) -> str:
        """A short, deterministic table: one line per modality, then the classes."""
        lines = [f"{len(self)} subjects, {self.num_classes} classes"]
        for j, (key, spec) in enumerate(self.specs.items()):
            present = int(self.mask[:, j].sum())
            lines.append(f"  {key:<10} {spec.kind:<8} shape {str(spec.shape):<16} present {present}/{len(self)}")
        lines.append("  classes: " + ", ".join(f"{k} {v}" for k, v in self.class_counts().items()))
        return "\n".join(lines)


class Splits(NamedTuple):
    train: MultimodalDataset
    val: MultimodalDataset
    test: MultimodalDataset


def split_dataset(
    dataset: MultimodalDataset, val: float = 0.15, test: float = 0.15, seed: int = 0
) -> Splits:
    """Stratified, reproducible train/validation/test split by subject."""
    from sklearn.model_selection import train_test_split

    for name, frac in (("val", val), ("test", test)):
        if not 0 < frac < 1:
            raise ValueError(f"{name} fraction must be between 0 and 1, got {frac}")
    if val + test >= 1:
        raise ValueError(f"val + test must leave subjects to train on, got {val} + {test}")
    labels = dataset.labels.cpu().numpy()
    index = np.arange(len(dataset))
    counts = np.bincount(labels, minlength=dataset.num_classes)
    stratify = labels if counts[counts > 0].min() >= 3 else None
    train_val, test_idx = train_test_split(index, test_size=test, random_state=seed, stratify=stratify)
    strat_tv = labels[train_val] if stratify is not None else None
    train_idx, val_idx = train_test_split(
        train_val, test_size=val / (1 - test), random_state=seed, stratify=strat_tv
    )
    return Splits(*(dataset.subset(np.sort(i)) for i in (train_idx, val_idx, test_idx)))


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


def check_batch(batch: Mapping[str, Tensor], specs: Mapping[str, ModalitySpec], num_classes: int | None = None) -> None:
    """Raise a clear error if ``batch`` does not follow the contract for these modalities.

    Cheap shape and key checks only (no device sync), so a model can call it on every forward.
    """
    if not isinstance(batch, Mapping):
        raise TypeError(f"a batch is a dict of tensors, got {type(batch).__name__}")
    missing = [k for k in specs if k not in batch]
    if missing:
        raise KeyError(
            f"batch is missing modality {missing[0]!r} (has {', '.join(k for k in batch if k not in RESERVED_KEYS)}); "
            "pass every modality the model was built for and mark absent ones in 'mask'"
        )
    if "mask" not in batch:
        raise KeyError("batch has no 'mask'; add a (B, M) bool tensor of which modalities are present")
    first = batch[next(iter(specs))]
    b = first.shape[0]
    mask = batch["mask"]
    if tuple(mask.shape) != (b, len(specs)):
        raise ValueError(
            f"mask has shape {tuple(mask.shape)}; expected (batch, modalities) = ({b}, {len(specs)}) "
            f"for modalities {', '.join(specs)}"
        )
    for key, spec in specs.items():
        shape = tuple(batch[key].shape[1:])
        if shape != spec.shape:
            raise ValueError(f"modality {key!r} has per-subject shape {shape}; the model was built for {spec.shape}")
    if num_classes is not None and "label" in batch:
        label = batch["label"]
        if label.numel() and (int(label.min()) < 0 or int(label.max()) >= num_classes):
            raise ValueError(f"labels must lie in 0..{num_classes - 1}, got values from {int(label.min())} to {int(label.max())}")


def standardize(train: MultimodalDataset, *others: MultimodalDataset) -> list[MultimodalDataset]:
    """Z-score every tabular modality with the training set's statistics (present subjects only).

    Returns ``[train, *others]`` standardized the same way, so no information leaks from test to train.
    """
    out = [train, *others]
    for j, (key, spec) in enumerate(train.specs.items()):
        if spec.kind != "tabular":
            continue
        present = train.mask[:, j]
        values = train.tensors[key][present]
        mean = values.mean(0) if len(values) else torch.zeros(spec.shape)
        std = values.std(0).clamp_min(1e-6) if len(values) > 1 else torch.ones(spec.shape)
        out = [ds.with_tensors(**{key: (ds.tensors[key] - mean.to(ds.device)) / std.to(ds.device)}) for ds in out]
    return out
