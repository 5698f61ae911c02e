"""The batch contract and the in-memory dataset every chapter trains on.

A *batch* is a plain dict::

    {"mri": (B, C, H, W), "pet": (B, C, H, W), "clinical": (B, F),
     "mask": BoolTensor (B, M), "label": LongTensor (B,)}

The modalities are matched by name. ``mask[:, j]`` says whether the ``j``-th modality *the batch
lists* is present, in the order the dict lists them (every key but ``"mask"`` and ``"label"``):
a model finds each of its modalities' columns by name, so a batch may list its modalities in any
order, or carry more than the model uses. An absent modality's tensor holds zeros; models read
the mask, never the content, to know what is there.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ModalitySpec",
    "MultimodalDataset",
    "batch_modalities",
    "presence",
    "check_batch",
    "encode_labels",
]

RESERVED_KEYS = ("mask", "label")
_INTEGER = re.compile(r"^[+-]?\d+$")


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
            names = tuple(str(f) for f in feature_names) if feature_names is not None else None
            if names is not None and len(names) != tensor.shape[1]:
                raise ValueError(f"{name!r} has {tensor.shape[1]} columns but {len(names)} feature names were given")
            return ModalitySpec(name, "tabular", tuple(tensor.shape[1:]), names)
        if tensor.ndim in (4, 5):
            return ModalitySpec(name, "image", tuple(tensor.shape[1:]))
        raise ValueError(
            f"modality {name!r} has shape {tuple(tensor.shape)}; expected (N, F) for a table, "
            "(N, C, H, W) for 2D images or (N, C, D, H, W) for 3D images"
        )


# ------------------------------------------------------------------ inputs at the door
def _is_frame(value) -> bool:
    return hasattr(value, "columns") and hasattr(value, "to_numpy") and hasattr(value, "dtypes")


def _as_tensor(name: str, value) -> tuple[Tensor, tuple[str, ...] | None]:
    """A float32 tensor from a tensor, array or pandas DataFrame (whose column names are returned)."""
    columns = None
    if _is_frame(value):
        text = [str(c) for c, dtype in value.dtypes.items() if dtype.kind not in "biuf"]
        if text:
            raise TypeError(
                f"modality {name!r}: column(s) {', '.join(text)} of the DataFrame are not numeric; "
                "convert them to numbers (e.g. one-hot codes) or leave them out"
            )
        columns = tuple(str(c) for c in value.columns)
        value = value.to_numpy(dtype=np.float64)
    if isinstance(value, Tensor):
        tensor = value.detach()
    else:
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"modality {name!r} holds {array.dtype} values, not numbers; convert it to a numeric array "
                "(text columns to codes) or leave it out"
            )
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_complex():
        raise TypeError(f"modality {name!r} holds complex numbers; give its magnitude (or real and imaginary parts)")
    return (tensor if tensor.dtype == torch.float32 else tensor.float()), columns


def _sorted_names(found) -> tuple[str, ...]:
    """Class names in order: numerically when every name is an integer ('2' before '10'), else alphabetically."""
    if all(_INTEGER.match(f) for f in found):
        return tuple(sorted(found, key=int))
    return tuple(sorted(found))


def _numeric_codes(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "b":
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            i = int(np.flatnonzero(~np.isfinite(values))[0])
            raise ValueError(f"label of subject {i} is {values[i]}; every subject needs a class")
        fractional = values != np.round(values)
        if fractional.any():
            i = int(np.flatnonzero(fractional)[0])
            raise ValueError(
                f"label {values[i]:g} of subject {i} is not a whole number: labels are class indices 0..K-1 or "
                "class names; to classify a continuous value, bin it first (e.g. np.digitize(values, edges))"
            )
    if values.dtype.kind not in "biuf":
        raise TypeError(f"labels must be class indices or class names, got values of type {values.dtype}")
    return values.astype(np.int64)


def _check_numbering(codes: np.ndarray) -> tuple[str, ...]:
    """Default names class_0..class_{K-1} for integer labels, refusing labels that leave a class empty."""
    if not len(codes):
        return ()
    present = np.unique(codes)
    if present[0] < 0:
        raise ValueError(f"label {int(present[0])} is negative; class indices run from 0 to K-1")
    if len(present) != present[-1] + 1:
        low, high = int(present[0]), int(present[-1])
        if low > 0 and len(present) == high - low + 1:
            fix = f"pass labels - {low}, or give class_names with one name per class"
            raise ValueError(f"labels run from {low} to {high}, but class indices start at 0, so class 0 would be empty; {fix}")
        empty = sorted(set(range(high + 1)) - set(present.tolist()))
        raise ValueError(
            f"labels {present.tolist()} leave class(es) {empty} without subjects; renumber them 0..{len(present) - 1}, "
            "or pass class_names= with a name for every index to keep an empty class on purpose"
        )
    return tuple(f"class_{k}" for k in range(len(present)))


def encode_labels(labels, class_names: Sequence[str] | None = None) -> tuple[Tensor, tuple[str, ...]]:
    """Class indices (N,) and class names from labels given as names or as indices.

    Names (strings) are looked up in ``class_names``; without it the classes are the distinct names,
    ordered numerically when they are all integers ('2' before '10'), else alphabetically. Indices
    must be whole numbers in ``range(len(class_names))``; without ``class_names`` they must run from 0
    with no class left empty (labels 1..3 are refused: class 0 would have no subject).
    """
    values = np.asarray(labels.detach().cpu() if isinstance(labels, Tensor) else labels).reshape(-1)
    names = None if class_names is None else tuple(str(c) for c in class_names)
    if names is not None and len(set(names)) != len(names):
        raise ValueError(f"class_names {names} name one class twice")
    if values.dtype.kind in "OUS":
        text = [str(v).strip() for v in values]
        names = names if names is not None else _sorted_names(set(text))
        index = {name: k for k, name in enumerate(names)}
        for i, t in enumerate(text):
            if t not in index:
                raise ValueError(
                    f"label {t!r} of subject {i} is not one of the classes {', '.join(names)}; "
                    "fix the label or add it to class_names"
                )
        return torch.tensor([index[t] for t in text], dtype=torch.long), names
    codes = _numeric_codes(values)
    if names is None:
        names = _check_numbering(codes)
    elif len(codes) and (codes.min() < 0 or codes.max() >= len(names)):
        bad = int(codes[(codes < 0) | (codes >= len(names))][0])
        hint = "; labels index class_names from 0" + (f": subtract {int(codes.min())}" if codes.min() > 0 else "")
        raise ValueError(f"label {bad} is out of range for {len(names)} classes {names}{hint}")
    return torch.as_tensor(codes, dtype=torch.long), names


def _as_mask(mask, n: int, m: int) -> Tensor:
    """(N, M) bool presence; accepts bool, or numbers that are exactly 0 or 1."""
    if mask is None:
        return torch.ones(n, m, dtype=torch.bool)
    mask = torch.as_tensor(np.asarray(mask.detach().cpu() if isinstance(mask, Tensor) else mask))
    if tuple(mask.shape) != (n, m):
        raise ValueError(f"mask must have shape (subjects, modalities) = ({n}, {m}), got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        _check_zero_one(mask)
    return mask.bool()


def _check_zero_one(mask: Tensor) -> None:
    bad = (mask != 0) & (mask != 1)
    if bad.any():
        i, j = (int(v) for v in bad.nonzero()[0])
        raise ValueError(
            f"mask must be boolean (or exactly 0/1): True where a modality is present; got {mask[i, j].item()!r} "
            f"for subject {i}, modality column {j}"
        )


class MultimodalDataset(torch.utils.data.Dataset):
    """Subjects with several modalities, a presence mask and a class label, all in memory.

    Args:
        data: modality name -> stacked tensor, NumPy array or pandas DataFrame, subjects first
            (a DataFrame's column names become the feature names). Values become float32.
        labels: one class per subject: class names (strings) or class indices (see ``encode_labels``).
        mask: (N, M) bool (or 0/1), modality present, columns in the order of ``data``; default all present.
        class_names: names of the classes, in index order; default from the labels.
        feature_names: for tabular modalities, column names.
        subject_ids: one id per subject; default ``sub-0000, ...``.
        meta: free-form information (generator parameters, latent variables as arrays of length N).
    """

    def __init__(
        self,
        data: Mapping[str, Tensor | np.ndarray],
        labels,
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
        converted = {k: _as_tensor(k, v) for k, v in data.items()}
        self.tensors: dict[str, Tensor] = {k: t for k, (t, _) in converted.items()}
        self.labels, self.class_names = encode_labels(labels, class_names)
        n = len(self.labels)
        for key, tensor in self.tensors.items():
            if tensor.shape[0] != n:
                raise ValueError(f"modality {key!r} has {tensor.shape[0]} subjects but there are {n} labels")
        names = {k: columns for k, (_, columns) in converted.items() if columns is not None}
        names.update(feature_names or {})
        self.specs: dict[str, ModalitySpec] = {k: ModalitySpec.infer(k, t, names.get(k)) for k, t in self.tensors.items()}
        self.mask = _as_mask(mask, n, len(self.tensors))
        self.subject_ids: tuple[str, ...] = (
            tuple(str(s) for s in subject_ids) if subject_ids is not None else tuple(f"sub-{i:04d}" for i in range(n))
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
        if modalities == list(self.modalities):
            return self
        sub = self._replace()
        cols = [self.modalities.index(m) for m in modalities]
        sub.tensors = {m: self.tensors[m] for m in modalities}
        sub.specs = {m: self.specs[m] for m in modalities}
        sub.mask = self.mask[:, cols]
        return sub

    def _rebuild(self, tensors: Mapping[str, Tensor], mask: Tensor) -> "MultimodalDataset":
        return MultimodalDataset(
            tensors,
            self.labels,
            mask=mask,
            class_names=self.class_names,
            feature_names={k: s.feature_names for k, s in self.specs.items() if s.feature_names},
            subject_ids=self.subject_ids,
            meta=self.meta,
        )

    def with_mask(self, mask: Tensor | np.ndarray) -> "MultimodalDataset":
        """The same subjects with a new presence mask; newly absent content is zeroed."""
        return self._rebuild(self.tensors, mask)

    def with_tensors(self, **tensors: Tensor) -> "MultimodalDataset":
        """The same subjects with some modality tensors replaced (same number of subjects)."""
        return self._rebuild({**self.tensors, **tensors}, self.mask)

    def rows(self, name: str) -> Tensor:
        """The table ``name`` of the subjects that have it (F columns): what table statistics are fitted on."""
        return self.tensors[name][self.mask[:, self.modalities.index(name)].to(self.tensors[name].device)]

    def class_counts(self) -> dict[str, int]:
        counts = torch.bincount(self.labels.cpu(), minlength=self.num_classes).tolist()
        return dict(zip(self.class_names, counts))

    def summary(self) -> str:
        """A short, deterministic table: one line per modality, then the classes (and columns left out)."""
        return summary_table(self)


def summary_table(dataset, heading: str = "") -> str:
    """One line per modality (kind, shape, how many present), then the classes and any columns left out."""
    n = len(dataset)
    lines = [f"{n} subjects, {dataset.num_classes} classes{heading}"]
    for j, (key, spec) in enumerate(dataset.specs.items()):
        present = int(dataset.mask[:, j].sum())
        lines.append(f"  {key:<10} {spec.kind:<8} shape {str(spec.shape):<16} present {present}/{n}")
    lines.append("  classes: " + ", ".join(f"{k} {v}" for k, v in dataset.class_counts().items()))
    skipped = dataset.meta.get("skipped_columns") or []
    if skipped:
        lines.append("  columns left out (text, not numbers): " + ", ".join(map(str, skipped)))
    return "\n".join(lines)


# ------------------------------------------------------------------ the batch contract
def batch_modalities(batch: Mapping[str, Tensor]) -> tuple[str, ...]:
    """The modalities a batch lists, in the order of its mask columns: every key but "mask" and "label"."""
    return tuple(k for k in batch if k not in RESERVED_KEYS)


def presence(batch: Mapping[str, Tensor], names: Sequence[str]) -> Tensor:
    """The mask columns of ``names`` (B, len(names)), found by name: whatever order the batch lists them in."""
    listed = batch_modalities(batch)
    cols = [listed.index(m) for m in names]
    mask = batch["mask"]
    if cols == list(range(mask.shape[1])):
        return mask.bool()
    return mask[:, cols].bool()


def check_batch(batch: Mapping[str, Tensor], specs: Mapping[str, ModalitySpec], num_classes: int | None = None) -> None:
    """Raise a clear error if ``batch`` does not follow the contract for these modalities.

    Cheap shape and key checks (no device sync for a boolean mask), so a model can call it on every forward.
    """
    if not isinstance(batch, Mapping):
        raise TypeError(f"a batch is a dict of tensors, got {type(batch).__name__}")
    listed = batch_modalities(batch)
    missing = [k for k in specs if k not in batch]
    if missing:
        raise KeyError(
            f"batch is missing modality {missing[0]!r} (has {', '.join(listed)}); "
            "pass every modality the model was built for and mark absent ones in 'mask'"
        )
    if "mask" not in batch:
        raise KeyError("batch has no 'mask'; add a (B, M) bool tensor of which modalities are present")
    b = batch[next(iter(specs))].shape[0]
    mask = batch["mask"]
    if tuple(mask.shape) != (b, len(listed)):
        raise ValueError(
            f"mask has shape {tuple(mask.shape)}; expected (batch, modalities) = ({b}, {len(listed)}), "
            f"one column per modality the batch lists, in its order: {', '.join(listed)}"
        )
    if mask.dtype != torch.bool:
        _check_zero_one(mask)
    for key, spec in specs.items():
        shape = tuple(batch[key].shape[1:])
        if shape != spec.shape:
            raise ValueError(f"modality {key!r} has per-subject shape {shape}; the model was built for {spec.shape}")
    if num_classes is not None and "label" in batch:
        label = batch["label"]
        if label.numel() and (int(label.min()) < 0 or int(label.max()) >= num_classes):
            raise ValueError(f"labels must lie in 0..{num_classes - 1}, got values from {int(label.min())} to {int(label.max())}")
