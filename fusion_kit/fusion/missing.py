"""Methods for incomplete data that combine whole models.

``FallbackModel`` is complete-case analysis made usable at test time: a model trained on the subjects
that have every modality answers for complete subjects, and a model of the modalities that are never
missing answers for the others. The masking tools that every strategy uses (modality dropout,
imputation, masked attention) live in ``fusion.masking``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..data.dataset import presence
from .base import FusionOutput, logits_of

__all__ = ["FallbackModel"]


class FallbackModel(nn.Module):
    """p(y | x) = primary(x) for subjects with every modality, else fallback(x restricted to its modalities)."""

    family: ClassVar[str] = "missing"

    def __init__(self, primary: nn.Module, fallback: nn.Module) -> None:
        super().__init__()
        extra = [m for m in fallback.modalities if m not in primary.modalities]
        if extra:
            raise ValueError(f"the fallback uses {', '.join(extra)}, which the primary model does not see")
        self.primary, self.fallback = primary, fallback
        self.specs = dict(primary.specs)
        self.modalities = tuple(primary.modalities)
        self.num_classes = primary.num_classes
        self.strategy = f"{primary.strategy} (complete cases) + {fallback.strategy} fallback"

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        main = logits_of(self.primary(batch)).float()  # (B, K)
        backup = logits_of(self.fallback(batch)).float()  # (B, K); it reads its own modalities by name
        mask = presence(batch, self.modalities)  # (B, M)
        complete = mask.all(1, keepdim=True)  # (B, 1)
        return FusionOutput(torch.where(complete, main.log_softmax(-1), backup.log_softmax(-1)), mask=mask)
