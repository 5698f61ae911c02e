"""What a trained model relies on: modality ablation, its attention per subject, and Grad-CAM.

``modality_ablation`` scores a model on a dataset as it is, then again with each modality marked
absent in the mask (its content zeroed, as for a subject who never had it). The drop in balanced
accuracy says how much *this trained model* leans on that modality. It is not the information the
modality carries: a model retrained without it might compensate with the others, and a model never
trained with absent modalities meets an unfamiliar input when one is masked.

    >>> table = modality_ablation(result.model, splits.test)

``concat_contributions`` looks inside concatenation: its logits are a sum of one block per modality,
``W z = sum_m W_m h_m``, so how far each block moves a subject's logits says how much the model listens
to that modality for that subject, with no explicit weight.

Imports from fusion_kit: data, encoders, fusion and train.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from torch import nn

from .data.dataset import MultimodalDataset
from .train import Predictions, evaluate

__all__ = ["AttentionSummary", "attention_summary", "modality_ablation", "concat_contributions", "grad_cam"]


@dataclass
class AttentionSummary:
    """One weight per source and subject: what a model weighed, in its own terms."""

    weights: np.ndarray  # (N, C)
    names: list[str]  # the C sources: modalities, images, table columns, "nothing"
    labels: np.ndarray  # (N,) true classes


def attention_summary(model: nn.Module, predictions: Predictions) -> AttentionSummary:
    """The attention a trained model returned for some subjects (a run's kept ``predictions``), one weight
    per source, as the model itself summarises it (``model.summarize_attention``)."""
    summarize = getattr(model, "summarize_attention", None)
    if not callable(summarize):
        raise TypeError("attention_summary needs a fusion_kit model (built with fusion_kit.models.build_model)")
    weights, names = summarize(predictions.attention)
    return AttentionSummary(weights, names, predictions.labels)


def modality_ablation(
    model: nn.Module, dataset: MultimodalDataset, modalities: Sequence[str] | None = None
) -> pd.DataFrame:
    """Balanced accuracy and AUC with every modality, then with each of ``modalities`` masked out.

    Returns a table indexed by ``"none"`` (nothing removed) and each removed modality, with columns
    ``balanced_accuracy``, ``auc`` and ``drop`` (balanced accuracy lost against ``"none"``).
    """
    own = tuple(getattr(model, "modalities", ()))
    if not own:
        raise TypeError("modality_ablation needs a fusion_kit model (it reads model.modalities)")
    missing = [m for m in own if m not in dataset.modalities]
    if missing:
        raise ValueError(f"the model uses {', '.join(missing)}, which the dataset does not have")
    names = list(own if modalities is None else modalities)
    for m in names:
        if m not in own:
            raise ValueError(f"cannot remove {m!r}: the model uses {', '.join(own)}")
    data = dataset.select(list(own))
    rows = {"none": evaluate(model, data)}
    for m in names:
        mask = data.mask.clone()
        mask[:, own.index(m)] = False
        rows[m] = evaluate(model, data.with_mask(mask))
    table = pd.DataFrame(
        {"balanced_accuracy": [s.balanced_accuracy for s in rows.values()], "auc": [s.auc for s in rows.values()]},
        index=pd.Index(list(rows), name="removed"),
    )
    table["drop"] = table.loc["none", "balanced_accuracy"] - table["balanced_accuracy"]
    return table


class _OneImage(nn.Module):
    """The model as a function of one image modality, the rest of the subject's batch held fixed."""

    def __init__(self, model: nn.Module, batch: dict, modality: str) -> None:
        super().__init__()
        self.model, self.batch, self.modality = model, batch, modality

    def forward(self, x):
        from .fusion import logits_of

        return logits_of(self.model({**self.batch, self.modality: x}))


def concat_contributions(model: nn.Module, dataset: MultimodalDataset) -> pd.DataFrame:
    """For a ``concat`` model, whose logits are ``sum_m W_m h_m + b``: per subject (rows) and modality (columns),
    the spread over classes (standard deviation) of ``W_m h_m``, how far that modality's block moves the logits.

    A block that moves every class's logit alike (spread 0) changes no decision: the model ignores that
    modality for that subject, whatever its weights.
    """
    import torch

    if getattr(model, "strategy", None) != "concat":
        raise ValueError(f"concat_contributions reads a concat model's head; got {getattr(model, 'strategy', type(model).__name__)!r}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            batch, mask = model.read(dataset.to(model.head.weight.device).select(model.modalities).batch())
            h, _ = model.encode(batch, mask)  # (N, M, D)
            blocks = model.head.weight.view(model.num_classes, len(model.modalities), -1)  # (K, M, D)
            logits = torch.einsum("kmd,nmd->nmk", blocks, h)  # (N, M, K): W_m h_m
    finally:
        model.train(was_training)
    return pd.DataFrame(logits.std(-1).cpu().numpy(), columns=list(model.modalities), index=dataset.subject_ids)


def grad_cam(model: nn.Module, dataset: MultimodalDataset, index: int, modality: str, class_idx: int | None = None):
    """Grad-CAM (MONAI) of one subject's ``modality`` image: where the last stage of its encoder drives the class.

    Returns an array of the image's spatial shape, scaled to [0, 1]; ``class_idx`` defaults to the predicted class.
    Needs a model with its own encoder for ``modality`` (``model.encoders[modality]``), as every
    strategy that fuses representations or decisions has.
    """
    from monai.visualize import GradCAM

    from .encoders import ImageEncoder

    encoders = getattr(model, "encoders", {})
    if modality not in encoders or not isinstance(encoders[modality], ImageEncoder):
        raise ValueError(
            f"grad_cam needs a model with its own image encoder for {modality!r}; "
            f"this one has encoders for {', '.join(encoders) or 'nothing'}"
        )
    data = dataset.select(list(model.modalities))
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in data.batch([index]).items()}
    probe = _OneImage(model, batch, modality).eval()
    layer = f"model.encoders.{modality}.stages.{len(encoders[modality].stages) - 1}"
    heat = GradCAM(probe, target_layers=layer)(batch[modality], class_idx=class_idx)
    return heat[0, 0].detach().cpu().numpy()

