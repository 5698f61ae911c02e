"""Checkpoints: a model's weights with the configuration it was built with, written atomically, refused when
loaded into a model built differently.

Imports from fusion_kit: core.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .core import atomic_save

__all__ = ["model_config", "save_checkpoint", "load_checkpoint", "check_checkpoint_path"]


def check_checkpoint_path(path) -> Path:
    """The checkpoint file, checked before any training: not a folder, in a folder we can write to."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a folder; give a file name, such as {path / 'model.pt'}")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write checkpoint {path}: {existing} is not a folder you can write to; choose another path")
    return path


def model_config(model: nn.Module) -> dict:
    """Plain-typed description of how ``model`` was built; a checkpoint must match it, field by field, to load."""
    config = getattr(model, "config", None)
    if hasattr(config, "as_dict"):
        return {"class": type(model).__name__, **config.as_dict()}
    specs = getattr(model, "specs", None) or {}  # any other model: what it says about itself
    return {
        "class": type(model).__name__,
        "strategy": str(getattr(model, "strategy", type(model).__name__)),
        "modalities": [str(m) for m in specs],
        "shapes": {str(k): [int(d) for d in s.shape] for k, s in specs.items()},
        "num_classes": int(getattr(model, "num_classes", 0)),
        "options": {},
    }


def save_checkpoint(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save weights and config atomically (a temporary file, then a rename)."""
    path = Path(path)
    payload = {"config": model_config(model), "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    atomic_save(payload, path)
    return path


def _read_checkpoint(path: Path) -> dict:
    """The saved payload, or an error naming the file and what is wrong with it."""
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint {path} is empty (0 bytes): it was not saved completely; save it again")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle error, not a torch file ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"checkpoint {path} cannot be read ({reason}); it is truncated or not a file written by save_checkpoint"
        ) from None
    if not isinstance(payload, dict) or "state_dict" not in payload or "config" not in payload:
        raise ValueError(f"{path} is not a checkpoint written by fusion_kit.train.save_checkpoint (no config and weights)")
    return payload


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load weights saved by ``save_checkpoint`` into ``model``, refusing a different configuration."""
    path = Path(path)
    payload = _read_checkpoint(path)
    saved, current = payload["config"], model_config(model)
    diffs = [f"{k}: checkpoint {saved.get(k)!r}, model {current[k]!r}" for k in current if saved.get(k) != current[k]]
    if diffs:
        raise ValueError(
            f"checkpoint {path.name} was saved from a different model configuration ("
            + "; ".join(diffs)
            + "); build the model with the same strategy, modalities and options"
        )
    model.load_state_dict(payload["state_dict"])
    return model
