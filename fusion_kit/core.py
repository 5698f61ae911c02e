"""Small helpers every other module uses: seeding, devices, quick mode, option checks."""
from __future__ import annotations

import difflib
import os
import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

__all__ = ["seed_everything", "get_device", "quick_mode", "look_up_option", "cache_dir"]


def seed_everything(seed: int = 0) -> int:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run can be repeated exactly on CPU."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return seed


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def get_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``"auto"`` to CUDA, then MPS, then CPU; check any explicit choice exists."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {type(device).__name__}")
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    valid = ("auto", "cpu", "cuda", "mps")
    if kind not in valid:
        raise ValueError(f"unknown device {device!r}; use one of {', '.join(valid)} (or 'cuda:1' for a second GPU)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} asked for, but this torch has no CUDA GPU; use device='auto' or 'cpu'")
    if kind == "mps" and not _mps_available():
        raise RuntimeError(f"device {device!r} asked for, but MPS is not available; use device='auto' or 'cpu'")
    return torch.device(name)


def quick_mode() -> bool:
    """True when ``FUSION_KIT_QUICK`` is set to 1/true/yes: chapters then run at a smaller size."""
    return os.environ.get("FUSION_KIT_QUICK", "0").strip().lower() in {"1", "true", "yes", "on"}


def look_up_option(value: str, options: Iterable[str], what: str = "option") -> str:
    """Return ``value`` if it is one of ``options``; otherwise raise an error that lists them."""
    options = list(options)
    if value in options:
        return value
    hint = difflib.get_close_matches(str(value), options, n=1)
    did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
    raise ValueError(f"unknown {what} {value!r}.{did_you_mean} Valid choices: {', '.join(options)}")


def cache_dir() -> Path:
    """Folder for generated data.

    ``FUSION_KIT_CACHE`` if set; else ``datasets/cache`` in the course checkout;
    else ``~/.cache/fusion_kit`` for an installed copy.
    """
    env = os.environ.get("FUSION_KIT_CACHE")
    checkout_datasets = Path(__file__).resolve().parent.parent / "datasets"
    if env:
        path = Path(env)
    elif checkout_datasets.is_dir():
        path = checkout_datasets / "cache"
    else:
        path = Path.home() / ".cache" / "fusion_kit"
    path.mkdir(parents=True, exist_ok=True)
    return path
