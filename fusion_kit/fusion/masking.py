"""Masking tools every family uses for absent modalities: hide them in training, impute, or skip them.

- ``ModalityDropout``: in training, hide each present modality with probability ``p`` (at least one
  stays), so a model cannot lean on one modality alone. Every strategy takes ``modality_dropout=p``.
- ``Imputer``: what an absent representation ``h_m`` becomes: the fusion's neutral element, so the
  modality is simply left out (``"neutral"``), the running mean of present ``h_m`` (``"mean"``), or a
  learned token (``"learned"``). Strategies that fuse representations take ``impute=...``.
- ``masked_softmax`` / ``masked_mean``: attention and pooling that skip absent entries without
  reading their content. The ``transformer`` strategy skips absent tokens the same way, through the
  key padding mask of ``nn.TransformerEncoder``.

None of these multiply content by the mask: absent entries are replaced with ``torch.where``, so
even a NaN in an absent modality cannot reach the output.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core import look_up_option

__all__ = ["IMPUTE_KINDS", "ModalityDropout", "Imputer", "masked_softmax", "masked_mean"]

IMPUTE_KINDS = ("neutral", "mean", "learned")


def masked_softmax(scores: Tensor, present: Tensor, dim: int = -1) -> Tensor:
    """w = softmax(scores) over present entries along ``dim``; absent entries (and empty rows) get 0."""
    lowest = torch.finfo(scores.dtype).min  # finite: an all-absent row gives no NaN
    weights = scores.masked_fill(~present, lowest).softmax(dim)
    return torch.where(present, weights, torch.zeros_like(weights))


def masked_mean(x: Tensor, present: Tensor, dim: int) -> Tensor:
    """Mean of ``x`` (..., N, D) over present entries ``present`` (..., N) along ``dim``; 0 if none."""
    keep = present.unsqueeze(-1)  # (..., N, 1)
    total = torch.where(keep, x, torch.zeros_like(x)).sum(dim)
    return total / keep.sum(dim).clamp_min(1).to(x.dtype)


class ModalityDropout(nn.Module):
    """mask' = mask ∧ ¬d, d ~ Bernoulli(p) per subject and modality, keeping one present modality (training only)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"modality_dropout is a probability in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, mask: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return mask
        drop = torch.rand(mask.shape, device=mask.device) < self.p
        kept = mask & ~drop  # (B, M)
        # a subject left with nothing keeps one of its present modalities, picked at random
        lucky = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, -1.0).argmax(1)  # (B,)
        rescue = F.one_hot(lucky, mask.shape[1]).bool() & mask  # (B, M)
        return torch.where(kept.any(1, keepdim=True), kept, rescue)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Imputer(nn.Module):
    """h_m <- h_m if present, else r_m: the neutral element, the running mean of present h_m, or a learned token."""

    def __init__(self, kind: str, num_modalities: int, dim: int, fill: float = 0.0, momentum: float = 0.1) -> None:
        super().__init__()
        self.kind = look_up_option(kind, IMPUTE_KINDS, "imputation (impute=)")
        self.fill = float(fill)
        self.momentum = momentum
        if self.kind == "learned":
            self.token = nn.Parameter(torch.zeros(num_modalities, dim))
        if self.kind == "mean":
            self.register_buffer("running_mean", torch.zeros(num_modalities, dim))
            self.register_buffer("updates", torch.zeros(num_modalities))

    def forward(self, h: Tensor, present: Tensor, cols: Sequence[int] | None = None) -> tuple[Tensor, Tensor]:
        """h (B, M, D) and present (B, M) for modalities ``cols`` -> (filled h, which entries to treat as present)."""
        keep = present.unsqueeze(-1)  # (B, M, 1)
        if self.kind == "neutral":
            return torch.where(keep, h, torch.full_like(h, self.fill)), present
        cols = list(range(h.shape[1])) if cols is None else list(cols)
        if self.kind == "mean":
            if self.training:
                self._update(h.detach().float(), present, cols)
            value = self.running_mean[cols]  # (M, D)
        else:
            value = self.token[cols]  # (M, D)
        filled = torch.where(keep, h, value.to(h.dtype).expand_as(h))
        return filled, torch.ones_like(present)  # imputed entries now count as present

    @torch.no_grad()
    def _update(self, h: Tensor, present: Tensor, cols: list[int]) -> None:
        counts = present.sum(0)  # (M,)
        batch_mean = torch.where(present.unsqueeze(-1), h, 0.0).sum(0) / counts.clamp_min(1).unsqueeze(-1)  # (M, D)
        seen = self.updates[cols]
        rate = torch.maximum(torch.full_like(seen, self.momentum), 1.0 / (seen + 1)).unsqueeze(-1)  # exact mean early on
        new = self.running_mean[cols] + rate * (batch_mean - self.running_mean[cols])
        has = (counts > 0).unsqueeze(-1)
        self.running_mean[cols] = torch.where(has, new, self.running_mean[cols])
        self.updates[cols] = seen + (counts > 0).float()

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"
