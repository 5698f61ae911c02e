"""One training loop for every model: fit, evaluate, predict, checkpoints.

A model takes the batch dict and returns logits, or an output object with a
``.logits`` field. Two optional hooks let a strategy change the recipe without
its own loop: ``model.loss(output, label)`` replaces cross-entropy, and
``model.after_fit(train)`` runs once after training (e.g. to fit a stacking
meta-learner). Small in-memory datasets move to the device once and are
batched there by indexing, so the loop costs little beyond the model itself.
"""
from __future__ import annotations

import copy
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .core import get_device, quick_mode, seed_everything
from .data.dataset import MultimodalDataset, check_batch
from .metrics import Metrics, classification_metrics

__all__ = [
    "History", "Predictions", "fit", "default_batch_size", "evaluate", "predict",
    "model_config", "save_checkpoint", "load_checkpoint",
]


@dataclass
class History:
    """What happened during ``fit``: per-epoch curves and where the kept weights came from."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_balanced_accuracy: list[float] = field(default_factory=list)
    best_epoch: int = 0  # 1-based epoch whose weights were kept
    stopped_early: bool = False
    seconds: float = 0.0
    device: str = "cpu"

    @property
    def epochs_run(self) -> int:
        return len(self.train_loss)

    def __str__(self) -> str:
        val = f", best val balanced accuracy {max(self.val_balanced_accuracy):.3f}" if self.val_balanced_accuracy else ""
        stop = " (stopped early)" if self.stopped_early else ""
        return f"{self.epochs_run} epochs{stop} in {self.seconds:.1f}s on {self.device}; kept epoch {self.best_epoch}{val}"


@dataclass
class Predictions:
    """Model outputs on a dataset, as NumPy arrays on the CPU."""

    probs: np.ndarray  # (N, K)
    labels: np.ndarray  # (N,)
    attention: np.ndarray | dict[str, np.ndarray] | None = None
    modality_probs: dict[str, np.ndarray] | None = None

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(1)


# ---------------------------------------------------------------------- helpers
def _logits(output) -> Tensor:
    return output if isinstance(output, Tensor) else output.logits


def _loss(model: nn.Module, output, label: Tensor) -> Tensor:
    custom = getattr(model, "loss", None)
    return custom(output, label) if callable(custom) else F.cross_entropy(_logits(output), label)


def _model_specs(model: nn.Module, dataset: MultimodalDataset):
    specs = getattr(model, "specs", None)
    return specs if specs is not None else dataset.specs


def _check_compatible(model: nn.Module, dataset: MultimodalDataset, role: str) -> None:
    """Fail before any work if ``dataset`` cannot feed ``model``."""
    if not isinstance(dataset, MultimodalDataset):
        raise TypeError(f"{role} must be a MultimodalDataset, got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise ValueError(f"{role} set is empty")
    num_classes = getattr(model, "num_classes", dataset.num_classes)
    if dataset.num_classes > num_classes:
        raise ValueError(f"{role} set has {dataset.num_classes} classes but the model predicts {num_classes}")
    specs = _model_specs(model, dataset)
    try:
        check_batch(dataset.batch(slice(0, 2)), specs, num_classes)
    except (KeyError, ValueError) as err:
        raise type(err)(f"{role} set does not fit the model: {err.args[0]}") from None
    if set(dataset.modalities) != set(specs):
        dataset_has = ", ".join(dataset.modalities)
        raise ValueError(
            f"the model uses modalities {', '.join(specs)} but the {role} set has {dataset_has}; "
            f"use dataset.select({list(specs)}) so the mask columns match"
        )


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, enabled=False)


MIN_STEPS_PER_EPOCH = 8


def default_batch_size(n_train: int) -> int:
    """64, or smaller for a small training set, so that an epoch takes at least 8 optimizer steps.

    A quick-mode cohort of a few hundred subjects would otherwise get four steps an epoch, too few
    for a short budget to train reliably.
    """
    return max(2, min(64, n_train // MIN_STEPS_PER_EPOCH))


def _batches(n: int, batch_size: int, perm: Tensor) -> list[Tensor]:
    chunks = list(perm.split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:  # batch norm cannot train on one sample
        chunks[-2] = torch.cat(chunks[-2:])
        chunks.pop()
    return chunks


# ------------------------------------------------------------------------- fit
def fit(
    model: nn.Module,
    train: MultimodalDataset,
    val: MultimodalDataset | None = None,
    *,
    epochs: int = 30,
    batch_size: int | None = None,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    patience: int | None = 8,
    device: str | torch.device = "auto",
    amp: bool = True,
    progress: bool | None = None,
    seed: int = 0,
    checkpoint: str | os.PathLike | None = None,
) -> History:
    """Train ``model`` on ``train`` with AdamW; keep the weights with the lowest validation loss.

    Args:
        val: validation set for early stopping; without it the last epoch is kept.
        batch_size: samples per optimizer step; default ``default_batch_size(len(train))``.
        patience: epochs without validation improvement before stopping (None: never stop early).
        device: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", ...
        amp: mixed precision on CUDA (bfloat16 where supported); ignored elsewhere.
        progress: show a progress bar; default on, except in quick mode (FUSION_KIT_QUICK=1).
        checkpoint: file to save the kept weights and model config to (written atomically).
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if batch_size is None:
        batch_size = default_batch_size(len(train))
    if not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"batch_size must be an integer of at least 2, got {batch_size!r}")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    _check_compatible(model, train, "training")
    if val is not None:
        _check_compatible(model, val, "validation")
    dev = get_device(device)
    seed_everything(seed)
    model.to(dev)
    train_d = train.to(dev)
    val_d = val.to(dev) if val is not None else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = History(device=str(dev))
    best_loss, best_state, waited = float("inf"), None, 0
    show = (not quick_mode()) if progress is None else progress
    start = time.perf_counter()
    bar = _progress_bar(epochs, show)
    for epoch in range(1, epochs + 1):
        history.train_loss.append(_train_one_epoch(model, train_d, optimizer, batch_size, generator, dev, amp))
        if val_d is not None:
            val_loss, val_bacc = _validate(model, val_d, dev, amp)
            history.val_loss.append(val_loss)
            history.val_balanced_accuracy.append(val_bacc)
            if val_loss < best_loss - 1e-4:
                best_loss, waited, history.best_epoch = val_loss, 0, epoch
                best_state = copy.deepcopy(model.state_dict())
            else:
                waited += 1
        bar.update(1)
        bar.set_postfix(_postfix(history), refresh=False)
        if patience is not None and val_d is not None and waited >= patience:
            history.stopped_early = True
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        history.best_epoch = history.epochs_run
    model.eval()
    after_fit = getattr(model, "after_fit", None)
    if callable(after_fit):
        after_fit(train_d)
    history.seconds = time.perf_counter() - start
    if checkpoint is not None:
        save_checkpoint(model, checkpoint)
    return history


def _progress_bar(total: int, show: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="training", unit="epoch", disable=not show, leave=False)


def _postfix(history: History) -> dict[str, str]:
    out = {"loss": f"{history.train_loss[-1]:.3f}"}
    if history.val_balanced_accuracy:
        out["val_bacc"] = f"{history.val_balanced_accuracy[-1]:.3f}"
    return out


def _train_one_epoch(model, data: MultimodalDataset, optimizer, batch_size: int, generator, dev, amp: bool) -> float:
    model.train()
    perm = torch.randperm(len(data), generator=generator).to(dev)
    total = torch.zeros((), device=dev)
    for idx in _batches(len(data), batch_size, perm):
        batch = data.batch(idx)
        with _autocast(dev, amp):
            output = model(batch)
            loss = _loss(model, output, batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach().float() * len(idx)
    return float(total) / len(data)  # one device sync per epoch


@torch.no_grad()
def _validate(model, data: MultimodalDataset, dev, amp: bool) -> tuple[float, float]:
    model.eval()
    losses, probs = [], []
    for idx in torch.arange(len(data), device=dev).split(512):
        batch = data.batch(idx)
        with _autocast(dev, amp):
            output = model(batch)
            losses.append(_loss(model, output, batch["label"]).float() * len(idx))
        probs.append(_logits(output).float().softmax(-1))
    loss = float(torch.stack(losses).sum()) / len(data)
    metrics = classification_metrics(data.labels.cpu().numpy(), torch.cat(probs).cpu().numpy())
    return loss, metrics.balanced_accuracy


# -------------------------------------------------------------- evaluation
def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _to_numpy(value):
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: _to_numpy(v) for k, v in value.items()}
    return value.detach().float().cpu().numpy()


def _concat(parts: list):
    if not parts or parts[0] is None:
        return None
    if isinstance(parts[0], Mapping):
        return {k: _concat([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


@torch.no_grad()
def predict(model: nn.Module, dataset: MultimodalDataset, *, batch_size: int = 256, device: str | None = None) -> Predictions:
    """Class probabilities (and attention or per-modality probabilities where the model gives them)."""
    _check_compatible(model, dataset, "prediction")
    dev = get_device(device) if device is not None else _model_device(model)
    model.to(dev).eval()
    data = dataset.to(dev)
    probs, attention, modality = [], [], []
    for idx in torch.arange(len(data), device=dev).split(batch_size):
        output = model(data.batch(idx))
        probs.append(_to_numpy(_logits(output).float().softmax(-1)))
        attention.append(_to_numpy(getattr(output, "attention", None)))
        per_modality = getattr(output, "modality_logits", None)
        modality.append(_to_numpy({k: v.float().softmax(-1) for k, v in per_modality.items()}) if per_modality else None)
    return Predictions(np.concatenate(probs), dataset.labels.cpu().numpy(), _concat(attention), _concat(modality))


def evaluate(model: nn.Module, dataset: MultimodalDataset, *, batch_size: int = 256, device: str | None = None) -> Metrics:
    """Accuracy, balanced accuracy, macro AUC and confusion matrix of ``model`` on ``dataset``."""
    pred = predict(model, dataset, batch_size=batch_size, device=device)
    return classification_metrics(pred.labels, pred.probs, dataset.class_names)


# -------------------------------------------------------------- checkpoints
def model_config(model: nn.Module) -> dict:
    """Plain-typed description of how ``model`` was built; a checkpoint must match it to load."""
    specs = getattr(model, "specs", None) or {}
    return {
        "class": type(model).__name__,
        "strategy": str(getattr(model, "strategy", type(model).__name__)),
        "modalities": [str(m) for m in specs],
        "shapes": {str(k): [int(d) for d in s.shape] for k, s in specs.items()},
        "num_classes": int(getattr(model, "num_classes", 0)),
        "options": {str(k): repr(v) for k, v in sorted((getattr(model, "options", None) or {}).items())},
    }


def save_checkpoint(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save weights and config atomically (a temporary file, then a rename)."""
    from .data.io import atomic_save

    path = Path(path)
    payload = {"config": model_config(model), "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    atomic_save(payload, path)
    return path


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load weights saved by ``save_checkpoint`` into ``model``, refusing a different configuration."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    saved, current = payload.get("config", {}), model_config(model)
    diffs = [f"{k}: checkpoint {saved.get(k)!r}, model {current[k]!r}" for k in current if saved.get(k) != current[k]]
    if diffs:
        raise ValueError(
            f"checkpoint {path.name} was saved from a different model configuration ("
            + "; ".join(diffs)
            + "); build the model with the same strategy, modalities and options"
        )
    model.load_state_dict(payload["state_dict"])
    return model
