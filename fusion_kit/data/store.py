"""The cache format: a whole MultimodalDataset in one file, written atomically, read without running code.

Generated cohorts (``cohort.make_brain_cohort``) and loaded manifests (``io.load_manifest(cache=True)``)
are kept in ``cache_dir()`` in this format; ``torch.load(weights_only=True)`` reads it back.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..core import atomic_save
from .dataset import MultimodalDataset

__all__ = ["save_dataset", "load_dataset"]

_FORMAT = "fusion_kit.MultimodalDataset/1"


def _split_meta(meta: Mapping) -> tuple[dict[str, Tensor], dict[str, Tensor], str]:
    """Meta as (numpy arrays as tensors, tensors, everything else as JSON): all loadable with weights_only."""
    arrays, tensors, plain = {}, {}, {}
    for key, value in meta.items():
        if isinstance(value, np.ndarray):
            if value.dtype == object or value.dtype.kind in "USV":
                raise TypeError(f"meta[{key!r}] is an array of {value.dtype}; store numbers, or a list of strings")
            arrays[key] = torch.from_numpy(np.ascontiguousarray(value))
        elif isinstance(value, Tensor):
            tensors[key] = value.detach().cpu()
        else:
            plain[key] = value
    try:
        text = json.dumps(plain)
    except TypeError as err:
        raise TypeError(f"meta values must be arrays, tensors or JSON-like (dict, list, str, number): {err}") from None
    return arrays, tensors, text


def save_dataset(dataset: MultimodalDataset, path: str | os.PathLike) -> Path:
    """Write a dataset (tensors, labels, mask, names, meta) to one file, atomically; reload with ``load_dataset``."""
    arrays, tensors, meta_json = _split_meta(dataset.meta)
    obj = {
        "format": _FORMAT,
        "tensors": {k: t.cpu() for k, t in dataset.tensors.items()},
        "labels": dataset.labels.cpu(),
        "mask": dataset.mask.cpu(),
        "class_names": list(dataset.class_names),
        "feature_names": {k: list(s.feature_names) for k, s in dataset.specs.items() if s.feature_names},
        "subject_ids": list(dataset.subject_ids),
        "meta_arrays": arrays,
        "meta_tensors": tensors,
        "meta_json": meta_json,
    }
    path = Path(path)
    atomic_save(obj, path)
    return path


def load_dataset(path: str | os.PathLike) -> MultimodalDataset:
    """Read a file written by ``save_dataset`` (``torch.load(weights_only=True)``: no code is run)."""
    obj = torch.load(Path(path), weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a dataset file written by fusion_kit.data.save_dataset")
    meta = json.loads(obj["meta_json"])
    meta.update({k: v.numpy() for k, v in obj["meta_arrays"].items()})
    meta.update(obj["meta_tensors"])
    return MultimodalDataset(
        obj["tensors"],
        obj["labels"],
        mask=obj["mask"],
        class_names=obj["class_names"],
        feature_names=obj["feature_names"],
        subject_ids=obj["subject_ids"],
        meta=meta,
    )
