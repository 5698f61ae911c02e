"""One training loop for every model: fit, evaluate, predict, checkpoints.

A model takes the batch dict and returns logits, or an output object with a
``.logits`` field. Optional hooks let a strategy change the recipe without its
own loop: ``model.before_fit(train)`` runs first (table statistics),
``model.loss(output, label)`` replaces cross-entropy, and ``model.after_fit(train)``
runs once after training (e.g. to fit a stacking meta-learner). A model with
``cross_fit = K > 1`` gets ``after_fit(train, refit=...)``: ``refit(part)`` trains a
copy from the same initial weights on part of the training set, for out-of-fold
predictions. Small in-memory datasets move to the device once and are
batched there by indexing, so the loop costs little beyond the model itself;
a streamed dataset (``stream_manifest``) goes through a DataLoader with
workers, the same batches in the same order. Under ``torchrun`` the same call
trains a DistributedDataParallel copy per process (``fusion_kit.distributed``).

Imports from fusion_kit: core, data, distributed, fusion (for ``logits_of``) and metrics.
"""
from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .core import get_device, quick_mode, seed_everything
from .data.dataset import MultimodalDataset, check_batch, presence
from .batching import Feed, default_batch_size, default_workers, epoch_batches
from .checkpoints import check_checkpoint_path, load_checkpoint, model_config, save_checkpoint
from .data.streaming import StreamingDataset
from .distributed import World, world
from .fusion.base import logits_of
from .metrics import Metrics, classification_metrics

__all__ = [
    "History", "Predictions", "fit", "distill", "pretrain_encoders", "default_batch_size", "default_workers",
    "evaluate", "predict",
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
    processes: int = 1  # under torchrun: how many trained together

    @property
    def epochs_run(self) -> int:
        return len(self.train_loss)

    def __str__(self) -> str:
        val = f", best val balanced accuracy {max(self.val_balanced_accuracy):.3f}" if self.val_balanced_accuracy else ""
        stop = " (stopped early)" if self.stopped_early else ""
        where = self.device + (f" x {self.processes} processes" if self.processes > 1 else "")
        return f"{self.epochs_run} epochs{stop} in {self.seconds:.1f}s on {where}; kept epoch {self.best_epoch}{val}"


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
def _loss(model: nn.Module, output, label: Tensor) -> Tensor:
    custom = getattr(model, "loss", None)
    return custom(output, label) if callable(custom) else F.cross_entropy(logits_of(output), label)


def _model_specs(model: nn.Module, dataset: MultimodalDataset | None):
    specs = getattr(model, "specs", None)
    if specs is None and dataset is None:
        raise TypeError(f"{type(model).__name__} has no .specs (its modalities): build it with fusion_kit.models.build_model")
    return specs if specs is not None else dataset.specs


def _check_compatible(model: nn.Module, dataset: MultimodalDataset, role: str) -> MultimodalDataset:
    """Fail before any work if ``dataset`` cannot feed ``model``; return it narrowed to the model's
    modalities, in the model's order (the dataset may list them in any order, and have more)."""
    if not isinstance(dataset, (MultimodalDataset, StreamingDataset)):
        raise TypeError(f"{role} must be a MultimodalDataset or a StreamingDataset, got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise ValueError(f"{role} set is empty")
    num_classes = getattr(model, "num_classes", dataset.num_classes)
    if dataset.num_classes > num_classes:
        raise ValueError(f"{role} set has {dataset.num_classes} classes but the model predicts {num_classes}")
    specs = _model_specs(model, dataset)
    missing = [m for m in specs if m not in dataset.modalities]
    if missing:
        raise KeyError(
            f"{role} set does not fit the model: it is missing modality {missing[0]!r} (it has "
            f"{', '.join(dataset.modalities)}; the model was built for {', '.join(specs)})"
        )
    dataset = dataset.select(list(specs))
    try:
        check_batch(dataset.batch(slice(0, 2)), specs, num_classes)
    except (KeyError, ValueError) as err:
        raise type(err)(f"{role} set does not fit the model: {err.args[0]}") from None
    if role == "training":
        never = [m for j, m in enumerate(dataset.modalities) if not bool(dataset.mask[:, j].any())]
        if never:
            raise ValueError(
                f"modality {never[0]!r} is absent for every subject of the training set, so nothing can learn "
                "from it; build the model without it (modalities=[...])"
            )
    return dataset


def _check_number(name: str, value, *, low: float = 0.0, strict: bool = True) -> float:
    """A real number above ``low`` (or at least ``low``); refuses strings, booleans and NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or value != value:
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if value < low or (strict and value == low):
        raise ValueError(f"{name} must be {'above' if strict else 'at least'} {low:g}, got {value!r}")
    return float(value)


def _check_integer(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        kind = "a positive integer" if low == 1 else f"an integer of at least {low}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, enabled=False)


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
    workers: int | None = None,
) -> History:
    """Train ``model`` on ``train`` with AdamW; keep the weights with the lowest validation loss.

    ``train`` and ``val`` are in memory (``MultimodalDataset``) or streamed from disk (``stream_manifest``):
    the same subjects in the same batches either way. Under ``torchrun`` every process calls ``fit`` alike; each
    trains a DistributedDataParallel copy on its share of each epoch, validation is gathered over all, and only
    rank 0 shows progress and writes the checkpoint.

    Args:
        val: validation set for early stopping; without it the last epoch is kept.
        batch_size: samples per optimizer step; default ``default_batch_size(len(train))``.
        patience: epochs without validation improvement before stopping (None: never stop early).
        device: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", ...
        amp: mixed precision on CUDA (bfloat16 where supported); ignored elsewhere.
        progress: show a progress bar; default on, except in quick mode (FUSION_KIT_QUICK=1).
        checkpoint: file to save the kept weights and model config to (written atomically).
        workers: DataLoader worker processes for streamed data (default ``default_workers()``; 0 reads in
            this process); in-memory data needs none.
    """
    epochs = _check_integer("epochs", epochs, 1)
    if batch_size is not None:
        batch_size = _check_integer("batch_size", batch_size, 2)
    lr = _check_number("lr", lr)
    weight_decay = _check_number("weight_decay", weight_decay, strict=False)
    if patience is not None:
        patience = _check_integer("patience", patience, 1)
    train = _check_compatible(model, train, "training")
    batch_size = batch_size or default_batch_size(len(train))
    if val is not None:
        val = _check_compatible(model, val, "validation")
    if checkpoint is not None:
        checkpoint = check_checkpoint_path(checkpoint)
    if workers is not None:
        workers = _check_integer("workers", workers, 0)
    place = world(get_device(device))
    _check_in_memory_only(model, train, place)
    seed_everything(seed)
    before_fit = getattr(model, "before_fit", None)
    if callable(before_fit):
        before_fit(train)
    model.to(place.device)
    initial = copy.deepcopy(model.state_dict()) if getattr(model, "cross_fit", 0) > 1 else None
    recipe = _Recipe(epochs, batch_size, lr, weight_decay, patience, place.device, amp, seed, workers, place)
    start = time.perf_counter()
    show = place.main and ((not quick_mode()) if progress is None else progress)
    history = _train(model, train, val, recipe, show)
    after_fit = getattr(model, "after_fit", None)
    dev = place.device
    if callable(after_fit) and initial is not None:  # cross-fitting: copies trained without each fold
        after_fit(train.to(dev), refit=lambda part: _refit(model, initial, part, val, recipe))
    elif callable(after_fit):
        after_fit(train.to(dev))
    history.seconds = time.perf_counter() - start
    if checkpoint is not None and place.main:
        save_checkpoint(model, checkpoint)
    return history


def _check_in_memory_only(model: nn.Module, train, place: World) -> None:
    """Strategies that fit a rule on the whole training set after training (stacking, weighted voting) need it in
    memory and in one process; refuse them before any work otherwise."""
    trained = model.student if isinstance(model, _Distillation) else model
    if not callable(getattr(trained, "after_fit", None)):
        return
    name = getattr(trained, "strategy", type(trained).__name__)
    if isinstance(train, StreamingDataset):
        raise ValueError(f"{name} fits a rule on the whole training set after training, which needs it in memory; "
                         "read the manifest with load_manifest, or choose another strategy")
    if place.size > 1:
        raise ValueError(f"{name} fits a rule on the whole training set after training, in one process; "
                         "run it without torchrun, or choose another strategy")


def distill(
    teacher: nn.Module,
    student: nn.Module,
    train: MultimodalDataset,
    val: MultimodalDataset | None = None,
    *,
    temperature: float = 2.0,
    weight: float = 0.5,
    representation: float = 1.0,
    **fit_options,
) -> History:
    """Train ``student`` to match a trained ``teacher``'s soft predictions and fused representation as well as
    the labels (knowledge distillation, Hinton et al. 2015; the representation term as in FitNets, Romero et
    al. 2015). The loss is

        (1 - weight) CE(student, y) + weight T² KL(p_teacher^T || p_student^T) + representation ‖W z_s - z_t‖² / ‖z_t‖²

    with both distributions softened by ``T = temperature``; ``z_s`` and ``z_t`` are what each model's head reads
    (its fused vector), and ``W`` a linear map from the student's size to the teacher's, trained with the student
    and then dropped. The last term asks a student without a modality to predict from what it has the vector the
    teacher built with it. ``representation=0`` matches predictions only (and is needed when either model fuses
    predictions, output fusion, and so has no fused vector).

    The student may use fewer modalities than the teacher (those available at test time), or the same ones with
    ``modality_dropout``. The teacher reads its own modalities from the same batches, in evaluation mode and
    without gradients; its term counts only for the subjects that have every one of its modalities (where its
    prediction is the one it was trained to make), the labels' term for everyone. ``fit_options`` go to ``fit``
    (epochs, lr, device, seed, checkpoint: the student's). Returns the student's training history.
    """
    temperature = _check_number("temperature", temperature)
    weight = _check_number("weight", weight, strict=False)
    representation = _check_number("representation", representation, strict=False)
    if weight > 1:
        raise ValueError(f"weight is the share of the teacher's term in the loss, between 0 and 1; got {weight!r}")
    if getattr(student, "cross_fit", 0) > 1:
        raise ValueError(f"{getattr(student, 'strategy', 'this student')} fits a meta-rule on out-of-fold predictions, "
                         "which distillation does not support; distil into another strategy")
    if getattr(teacher, "num_classes", None) != getattr(student, "num_classes", None):
        raise ValueError(f"the teacher predicts {getattr(teacher, 'num_classes', '?')} classes and the student "
                         f"{getattr(student, 'num_classes', '?')}: they must predict the same classes")
    checkpoint = fit_options.pop("checkpoint", None)
    if representation > 0:
        for role, model in (("teacher", teacher), ("student", student)):
            if not isinstance(getattr(model, "head", None), nn.Linear):
                raise ValueError(f"the {role} ({getattr(model, 'strategy', type(model).__name__)}) has no head over "
                                 "a fused vector to match (output fusion fuses predictions): pass representation=0")
    pair = _Distillation(teacher, student, temperature, weight, representation)
    history = fit(pair, train, val, **fit_options)
    if checkpoint is not None:
        save_checkpoint(student, checkpoint)
    return history


ENCODER_SIZES = ("out_dim", "channels", "tabular_hidden", "res_units", "dropout", "spatial_dims", "scale_tables")


def pretrain_encoders(
    model: nn.Module,
    train: MultimodalDataset,
    val: MultimodalDataset | None = None,
    *,
    freeze: bool = False,
    modalities=None,
    **fit_options,
) -> dict[str, History]:
    """Two-stage training, first stage: train a unimodal model (the same encoder, a linear head) on each of
    ``modalities`` (default: every modality with an encoder of its own), on the subjects that have it, and copy
    its encoder into ``model``. With ``freeze``, those encoders then stay fixed when ``fit`` trains the fusion
    (their parameters stop requiring gradients); without it, ``fit`` fine-tunes them. ``fit_options`` go to each
    unimodal ``fit``. Returns each modality's training history.
    """
    from .data.missingness import complete_cases
    from .models import build_model

    encoders = getattr(model, "encoders", None)
    options = dict(getattr(model, "options", {}))
    if not isinstance(encoders, nn.ModuleDict) or not getattr(model, "own_encoders", False) or options.get("shared_images"):
        raise ValueError(f"{getattr(model, 'strategy', type(model).__name__)} has no encoder of its own per modality "
                         "to pretrain (input fusion, shared image encoders): train it end to end with fit")
    names = list(encoders) if modalities is None else list(modalities)
    for m in names:
        if m not in encoders:
            raise KeyError(f"no encoder of its own for {m!r}; this model's encoders: {', '.join(encoders)}")
    sizes = {k: v for k, v in options.items() if k in ENCODER_SIZES}
    own = dict(options.get("encoders") or {})
    histories = {}
    for m in names:
        unimodal = build_model("unimodal", model.specs, num_classes=model.num_classes, modalities=[m], **sizes,
                               **({"encoders": {m: own[m]}} if m in own else {}))
        if set(unimodal.encoders[m].state_dict()) != set(encoders[m].state_dict()):
            raise ValueError(f"{model.strategy} builds its {m!r} encoder differently from a unimodal model (feature "
                             "maps only, or another width), so a pretrained one cannot be copied in: fit end to end")
        subjects = complete_cases(train.select([m]))
        held_out = complete_cases(val.select([m])) if val is not None else None
        histories[m] = fit(unimodal, subjects, held_out, **fit_options)
        encoders[m].load_state_dict(unimodal.encoders[m].state_dict())
        encoders[m].requires_grad_(not freeze)
    return histories


class _Distillation(nn.Module):
    """The student, trained with a frozen teacher beside it (what ``distill`` hands to ``fit``)."""

    def __init__(self, teacher: nn.Module, student: nn.Module, temperature: float, weight: float,
                 representation: float = 0.0) -> None:
        super().__init__()
        self.student, self.teacher = student, teacher.eval().requires_grad_(False)
        self.specs = {**_model_specs(student, None), **_model_specs(teacher, None)}
        self.modalities = tuple(self.specs)
        self.num_classes = student.num_classes
        self.temperature, self.weight, self.representation = temperature, weight, representation
        # W: the student's fused vector mapped to the teacher's size (trained here, dropped with the pair)
        self.project = nn.Linear(student.head.in_features, teacher.head.in_features) if representation > 0 else None
        self._teacher: dict[str, Tensor] = {}
        self._student_z: Tensor | None = None

    def train(self, mode: bool = True) -> "_Distillation":
        super().train(mode)
        self.teacher.eval()  # the teacher never trains (no dropout, no modality dropout)
        return self

    def before_fit(self, train: MultimodalDataset) -> None:
        hook = getattr(self.student, "before_fit", None)
        if callable(hook):
            hook(train)

    def after_fit(self, train: MultimodalDataset) -> None:
        hook = getattr(self.student, "after_fit", None)
        if callable(hook):
            hook(train)

    def forward(self, batch: Mapping[str, Tensor]):
        if not self.training:
            return self.student(batch)
        with torch.no_grad():
            logits, z_t = _with_head_input(self.teacher, batch, self.project is not None)
            self._teacher = {"log_p": (logits_of(logits).float() / self.temperature).log_softmax(-1),
                             "complete": presence(batch, self.teacher.modalities).all(1), "z": z_t}
        output, self._student_z = _with_head_input(self.student, batch, self.project is not None)
        return output

    def loss(self, output, label: Tensor) -> Tensor:
        hard = _loss(self.student, output, label)
        if not self.training or not self._teacher:
            return hard
        teacher = self._teacher
        complete, count = teacher["complete"], teacher["complete"].sum().clamp_min(1)
        student_log_p = (logits_of(output).float() / self.temperature).log_softmax(-1)
        kl = (teacher["log_p"].exp() * (teacher["log_p"] - student_log_p)).sum(-1)  # (B,)
        soft = torch.where(complete, kl, torch.zeros_like(kl)).sum() / count
        total = (1 - self.weight) * hard + self.weight * self.temperature**2 * soft
        if self.project is not None:
            z_t = teacher["z"].float()
            gap = (self.project(self._student_z.float()) - z_t).pow(2).mean(-1)  # (B,)
            scale = z_t[complete].pow(2).mean().clamp_min(1e-6) if complete.any() else 1.0
            total = total + self.representation * torch.where(complete, gap, torch.zeros_like(gap)).sum() / count / scale
        return total


def _with_head_input(model: nn.Module, batch: Mapping[str, Tensor], capture: bool) -> tuple[object, Tensor | None]:
    """``model(batch)`` and, with ``capture``, what its head read (the fused vector z, (B, F))."""
    if not capture:
        return model(batch), None
    seen = {}
    hook = model.head.register_forward_hook(lambda module, inputs, output: seen.update(z=inputs[0]))
    try:
        output = model(batch)
    finally:
        hook.remove()
    return output, seen["z"]


@dataclass(frozen=True)
class _Recipe:
    """How ``fit`` trains, checked: what a cross-fitted copy is trained with too."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    patience: int | None
    device: torch.device
    amp: bool
    seed: int
    workers: int | None = None
    world: World = World()


def _refit(model: nn.Module, initial: dict, train: MultimodalDataset, val: MultimodalDataset | None,
           recipe: _Recipe) -> nn.Module:
    """A copy of ``model`` from its initial weights, trained on ``train`` alone (no after_fit: a fold model)."""
    clone = copy.deepcopy(model)
    clone.load_state_dict(initial)
    _train(clone, train, val, recipe, False)
    return clone


def _train(model: nn.Module, train, val, recipe: _Recipe, show: bool) -> History:
    """The loop: AdamW, one pass over shuffled batches an epoch, the lowest validation loss kept."""
    seed_everything(recipe.seed)
    dev = recipe.device
    train_d = Feed(train, dev, recipe.workers, recipe.seed)
    val_d = Feed(val, dev, recipe.workers, recipe.seed) if val is not None else None
    net = _parallel(model, recipe.world)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    generator = torch.Generator().manual_seed(recipe.seed)
    history = History(device=str(dev), processes=recipe.world.size)
    best_loss, best_state, waited = float("inf"), None, 0
    bar = _progress_bar(recipe.epochs, show)
    for epoch in range(1, recipe.epochs + 1):
        history.train_loss.append(_train_one_epoch(net, model, train_d, optimizer, recipe, generator, show))
        if not math.isfinite(history.train_loss[-1]):
            bar.close()
            raise FloatingPointError(
                f"the training loss became {history.train_loss[-1]} in epoch {epoch}: the weights diverged; "
                f"lower the learning rate (lr={recipe.lr:g}, try lr={recipe.lr / 10:g}) and check the inputs for extreme values"
            )
        if val_d is not None:
            val_loss, val_bacc = _validate(model, val_d, recipe)
            history.val_loss.append(val_loss)
            history.val_balanced_accuracy.append(val_bacc)
            if val_loss < best_loss - 1e-4:
                best_loss, waited, history.best_epoch = val_loss, 0, epoch
                best_state = copy.deepcopy(model.state_dict())
            else:
                waited += 1
        bar.update(1)
        bar.set_postfix(_postfix(history), refresh=False)
        if recipe.patience is not None and val_d is not None and waited >= recipe.patience:
            history.stopped_early = True
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        history.best_epoch = history.epochs_run
    model.eval()
    return history


def _progress_bar(total: int, show: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="training", unit="epoch", disable=not show, leave=False)


def _postfix(history: History) -> dict[str, str]:
    out = {"loss": f"{history.train_loss[-1]:.3f}"}
    if history.val_balanced_accuracy:
        out["val_bacc"] = f"{history.val_balanced_accuracy[-1]:.3f}"
    return out


def _parallel(model: nn.Module, place: World) -> nn.Module:
    """The module that runs the forward pass: the model, or under torchrun its DistributedDataParallel wrapper
    (gradients averaged over processes after every backward pass)."""
    if place.size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [place.device.index] if place.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def _every_parameter(model: nn.Module) -> Tensor:
    """Zero, from every trainable parameter: added to the loss under DDP, so a parameter a batch leaves unused
    (an absent modality's branch) still gets its (zero) gradient and the processes' reductions stay in step."""
    return sum(p.reshape(-1)[0] * 0 for p in model.parameters() if p.requires_grad)


def _train_one_epoch(net: nn.Module, model: nn.Module, data: Feed, optimizer, recipe: _Recipe, generator,
                     show: bool) -> float:
    net.train()
    dev = recipe.device
    perm = recipe.world.shard(torch.randperm(len(data), generator=generator))
    total, count = torch.zeros((), device=dev), 0
    for batch in data.batches(epoch_batches(len(perm), recipe.batch_size, perm), show, "epoch"):
        with _autocast(dev, recipe.amp):
            output = net(batch)
            loss = _loss(model, output, batch["label"])
            if net is not model:
                loss = loss + _every_parameter(model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach().float() * len(batch["label"])
        count += len(batch["label"])
    return float(recipe.world.mean(total / count))  # one device sync per epoch


@torch.no_grad()
def _validate(model, data: Feed, recipe: _Recipe) -> tuple[float, float]:
    """Loss and balanced accuracy on the whole validation set (each process scores its share, then all agree)."""
    model.eval()
    dev, place = recipe.device, recipe.world
    size = recipe.batch_size if data.streamed else 512
    mine = place.shard(torch.arange(len(data)))
    losses, probs = torch.zeros((), device=dev), []
    for batch in data.batches(list(mine.split(size))):
        with _autocast(dev, recipe.amp):
            output = model(batch)
            losses += _loss(model, output, batch["label"]).float() * len(batch["label"])
        probs.append(logits_of(output).float().softmax(-1))
    loss = float(place.mean(losses / len(mine)))
    probs = place.gather(torch.cat(probs), len(data))
    metrics = classification_metrics(data.data.labels.cpu().numpy(), probs.cpu().numpy())
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
def predict(model: nn.Module, dataset, *, batch_size: int = 256, device: str | None = None,
            workers: int | None = None) -> Predictions:
    """Class probabilities (and attention or per-modality probabilities where the model gives them).

    ``dataset`` is in memory or streamed (read by a DataLoader with ``workers``); every process predicts every
    subject, so under torchrun each holds the same predictions."""
    dataset = _check_compatible(model, dataset, "prediction")
    dev = get_device(device) if device is not None else _model_device(model)
    model.to(dev).eval()
    data = Feed(dataset, dev, workers)
    probs, attention, modality = [], [], []
    for batch in data.batches(list(torch.arange(len(data)).split(batch_size))):
        output = model(batch)
        probs.append(_to_numpy(logits_of(output).float().softmax(-1)))
        attention.append(_to_numpy(getattr(output, "attention", None)))
        per_modality = getattr(output, "modality_logits", None)
        modality.append(_to_numpy({k: v.float().softmax(-1) for k, v in per_modality.items()}) if per_modality else None)
    return Predictions(np.concatenate(probs), dataset.labels.cpu().numpy(), _concat(attention), _concat(modality))


def evaluate(model: nn.Module, dataset, *, batch_size: int = 256, device: str | None = None,
             workers: int | None = None) -> Metrics:
    """Accuracy, balanced accuracy, macro AUC and confusion matrix of ``model`` on ``dataset`` (in memory or streamed)."""
    pred = predict(model, dataset, batch_size=batch_size, device=device, workers=workers)
    return classification_metrics(pred.labels, pred.probs, dataset.class_names)
