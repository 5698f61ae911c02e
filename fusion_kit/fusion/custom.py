"""A fusion module of your own, as a registered strategy: ``models.register_fusion`` wraps it here.

Your module is the fusion function g of the notation: built as ``YourModule(modalities, dim)`` (the modality
names in the model's order and D, the size of each h_m), it takes ``h`` (B, M, D), the stacked marginal
representations, and ``present`` (B, M), which of them the subject has, and returns ``z`` (B, F). Everything
else (one encoder per modality, tables scaled, absent h_m filled, a linear head on z) is the course's
``RepresentationFusion``, so the strategy trains, benchmarks and saves like a registered one.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..data.dataset import ModalitySpec
from .base import FusionOutput, RepresentationFusion

__all__ = ["CustomFusion", "custom_strategy", "fused_size"]


def fused_size(module: nn.Module, modalities: tuple[str, ...], dim: int) -> int:
    """F, the size of z, from one forward pass on zeros; a clear error when the module breaks the contract."""
    name = type(module).__name__
    h, present = torch.zeros(2, len(modalities), dim), torch.ones(2, len(modalities), dtype=torch.bool)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            z = module(h, present)
    except Exception as err:
        raise ValueError(f"{name}(h, present) raised {type(err).__name__}: {err}; it takes h (B, M, D) and "
                         "present (B, M) and returns z (B, F)") from None
    finally:
        module.train(was_training)
    if not isinstance(z, Tensor) or z.ndim != 2 or len(z) != 2:
        got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise ValueError(f"{name}(h, present) must return z of shape (B, F); for B = 2 it returned {got}")
    return int(z.shape[1])


class CustomFusion(RepresentationFusion):
    """The course's encoders and head around a fusion module of your own (``fusion_class``)."""

    family: ClassVar[str] = "single_level"
    fusion_point: ClassVar[str] = "after the marginal encoders (your fusion module)"
    fusion_class: ClassVar[type[nn.Module]]

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, **options) -> None:
        super().__init__(specs, num_classes, **options)
        try:
            self.fusion = self.fusion_class(self.modalities, self.out_dim)
        except Exception as err:
            raise ValueError(f"{self.fusion_class.__name__}(modalities, dim) raised {type(err).__name__}: {err}") from None
        self.head = nn.Linear(fused_size(self.fusion, self.modalities, self.out_dim), self.num_classes)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        h, present = self.encode(batch, mask)  # (B, M, D)
        return FusionOutput(self.head(self.fusion(h, present)), mask=mask)


def custom_strategy(fusion_class: type[nn.Module], family: str) -> type[CustomFusion]:
    """A strategy class around ``fusion_class``; its docstring's first line is the equation the tables show."""
    if not isinstance(fusion_class, type) or not issubclass(fusion_class, nn.Module):
        raise TypeError(f"give your fusion as a class (a subclass of torch.nn.Module), not {fusion_class!r}")
    doc = (fusion_class.__doc__ or f"z = {fusion_class.__name__}(h, present)").strip()
    attributes = {"fusion_class": fusion_class, "family": family, "__doc__": doc,
                  "fusion_label": f"{fusion_class.__name__}\n(your module)", "__module__": fusion_class.__module__}
    return type(fusion_class.__name__ + "Strategy", (CustomFusion,), attributes)
