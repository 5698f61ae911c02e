"""Single-level fusion (intermediate fusion at one point): z = g(h_1, ..., h_M), then y = softmax(W z).

Each modality has its own marginal encoder; the representations meet once. ``g`` ranges from a plain
concatenation to gated, multiplicative and feature-wise affine (FiLM/DAFT) interactions.
An absent modality's ``h_m`` is replaced by the fusion's neutral element (``impute="neutral"``: 0 for
sums and concatenation, 1 for products), by the running mean, or by a learned token.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..data.dataset import ModalitySpec
from ..encoders import global_pool
from .base import FusionOutput, RepresentationFusion
from .masking import masked_softmax

__all__ = [
    "ConcatFusion",
    "SumFusion",
    "ProductFusion",
    "MaxFusion",
    "GatedFusion",
    "TensorFusion",
    "LowRankFusion",
    "FiLMFusion",
    "DAFTFusion",
]

AFTER_ENCODERS = "after the encoders: one fusion point"


class ConcatFusion(RepresentationFusion):
    """z = [h_1; h_2; ...; h_M]"""

    family: ClassVar[str] = "single_level"
    fusion_point: ClassVar[str] = AFTER_ENCODERS
    fusion_label: ClassVar[str] = "concatenate\n[h_1; ...; h_M]"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.head = nn.Linear(len(self.modalities) * self.out_dim, self.num_classes)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        h, _ = self.encode(batch, mask)  # (B, M, D)
        return FusionOutput(self.head(h.flatten(1)), mask=mask)


class _Elementwise(RepresentationFusion):
    """z = h_1 ∘ h_2 ∘ ... ∘ h_M for an element-wise operation ∘ (subclasses define ``reduce``)."""

    family: ClassVar[str] = "single_level"
    fusion_point: ClassVar[str] = AFTER_ENCODERS

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.head = nn.Linear(self.out_dim, self.num_classes)

    def reduce(self, h: Tensor) -> Tensor:  # (B, M, D) -> (B, D)
        raise NotImplementedError

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        h, _ = self.encode(batch, mask)  # (B, M, D), absent h_m = neutral element
        return FusionOutput(self.head(self.reduce(h)), mask=mask)


class SumFusion(_Elementwise):
    """z = Σ_m h_m"""

    fusion_label: ClassVar[str] = "sum\nΣ h_m"

    def reduce(self, h: Tensor) -> Tensor:
        return h.sum(1)


class ProductFusion(_Elementwise):
    """z = Π_m h_m (element-wise)"""

    fill: ClassVar[float] = 1.0  # an absent modality multiplies by one
    fusion_label: ClassVar[str] = "product\nΠ h_m"

    def reduce(self, h: Tensor) -> Tensor:
        return h.prod(1)


class MaxFusion(_Elementwise):
    """z = max_m h_m (element-wise)"""

    fusion_label: ClassVar[str] = "maximum\nmax h_m"  # h_m >= 0 (ReLU), so an absent h_m = 0 never wins

    def reduce(self, h: Tensor) -> Tensor:
        return h.amax(1)


class GatedFusion(RepresentationFusion):
    """z = Σ_m g_m ⊙ tanh(V_m h_m),  g = softmax_m(W_g [h_1; ...; h_M])  (gated multimodal unit, Arevalo et al. 2017)"""

    family: ClassVar[str] = "single_level"
    fusion_point: ClassVar[str] = AFTER_ENCODERS
    fusion_label: ClassVar[str] = "gated unit (GMU)\nΣ g_m tanh(V_m h_m)"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, *, dim: int = 32, **options) -> None:
        super().__init__(specs, num_classes, **options)
        m, d = len(self.modalities), self.out_dim
        self.dim = dim
        self.values = nn.ModuleDict({name: nn.Linear(d, dim) for name in self.modalities})
        self.gate = nn.Linear(m * d, m * dim)
        self.head = nn.Linear(dim, self.num_classes)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        h, present = self.encode(batch, mask)  # (B, M, D)
        v = torch.stack([torch.tanh(self.values[m](h[:, j])) for j, m in enumerate(self.modalities)], 1)  # (B, M, dim)
        scores = self.gate(h.flatten(1)).view(len(h), len(self.modalities), self.dim)  # (B, M, dim)
        g = masked_softmax(scores, present.unsqueeze(-1), dim=1)  # (B, M, dim), absent gates 0
        z = (g * v).sum(1)  # (B, dim)
        return FusionOutput(self.head(z), attention=g.mean(-1), mask=mask)


class TensorFusion(RepresentationFusion):
    """z = vec([u_1; 1] ⊗ [u_2; 1] ⊗ ... ⊗ [u_M; 1]),  u_m = V_m h_m  (tensor fusion, Zadeh et al. 2017)"""

    family: ClassVar[str] = "single_level"
    fusion_point: ClassVar[str] = AFTER_ENCODERS
    fusion_label: ClassVar[str] = "tensor fusion\n⊗ [u_m; 1]"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, *, dim: int = 8, **options) -> None:
        super().__init__(specs, num_classes, **options)
        if (dim + 1) ** len(self.modalities) > 2**20:
            raise ValueError(f"(dim + 1)^M = {(dim + 1) ** len(self.modalities)} features is too large; lower dim")
        self.project = nn.ModuleDict({m: nn.Linear(self.out_dim, dim) for m in self.modalities})
        self.head = nn.Linear((dim + 1) ** len(self.modalities), self.num_classes)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        h, present = self.encode(batch, mask)  # (B, M, D)
        z = h.new_ones(len(h), 1)  # (B, 1)
        for j, m in enumerate(self.modalities):
            u = self.keep(self.project[m](h[:, j]), present[:, j])  # (B, dim); absent -> [0; 1]: drops out
            u1 = torch.cat([u, torch.ones_like(u[:, :1])], 1)  # (B, dim + 1)
            z = (z.unsqueeze(2) * u1.unsqueeze(1)).flatten(1)  # (B, prod (dim + 1))
        return FusionOutput(self.head(z), mask=mask)


class LowRankFusion(RepresentationFusion):
    """z = Σ_{i=1}^{r} ⊙_m W_m^(i) [h_m; 1]  (low-rank multimodal fusion, Liu et al. 2018)"""

    family: ClassVar[str] = "single_level"
    fusion_point: ClassVar[str] = AFTER_ENCODERS
    fusion_label: ClassVar[str] = "low-rank tensor\nΣ_i ⊙_m W_m^(i)[h_m; 1]"

    def __init__(
        self, specs: Mapping[str, ModalitySpec], num_classes: int, *, rank: int = 4, dim: int = 32, **options
    ) -> None:
        super().__init__(specs, num_classes, **options)
        if rank < 1:
            raise ValueError(f"rank must be a positive integer, got {rank}")
        m, d = len(self.modalities), self.out_dim
        self.factors = nn.Parameter(torch.randn(m, rank, d + 1, dim) / math.sqrt(d + 1))  # W_m^(i)
        self.bias = nn.Parameter(torch.zeros(dim))
        self.head = nn.Linear(dim, self.num_classes)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        h, present = self.encode(batch, mask)  # (B, M, D)
        h = torch.where(present.unsqueeze(-1), h, torch.zeros_like(h))  # absent -> [0; 1]
        h1 = torch.cat([h, torch.ones_like(h[..., :1])], -1)  # (B, M, D + 1)
        f = torch.einsum("bmd,mrdo->bmro", h1, self.factors.to(h1.dtype))  # (B, M, r, dim)
        z = f.prod(1).sum(1) + self.bias  # (B, dim)
        return FusionOutput(self.head(z), mask=mask)


class FiLMFusion(RepresentationFusion):
    """F' = (1 + γ) ⊙ F^(s) + β,  [γ; β] = W [h_t1; ...], on each image's stage-s feature maps  (FiLM, Perez et al. 2018)"""

    fused: ClassVar[str] = "image feature maps F^(s), modulated by the tables' h_t"

    family: ClassVar[str] = "single_level"
    fusion_label: ClassVar[str] = "FiLM\n(1+γ)F + β"
    own_channels: ClassVar[bool] = False  # γ and β are sized for one set of stage channels
    can_share_images: ClassVar[bool] = False  # it runs each image encoder stage by stage

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, *, stage: int = -1, **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.require(images=1, tables=1, why="the table conditions the image feature maps")
        n = len(self.channels)
        if not -n <= stage < n:
            raise ValueError(f"stage must index one of the {n} encoder stages (0..{n - 1} or negative), got {stage}")
        self.stage = stage % n
        self.conditioner = nn.ModuleDict({m: self.make_conditioner() for m in self.images})
        self.head = nn.Linear(len(self.images) * self.out_dim, self.num_classes)

    @property
    def where(self) -> str:
        return f"inside the image encoders: stage-{self.stage} feature maps scaled and shifted by the table"

    def diagram(self) -> dict:
        return {"layout": "conditioned", "stage": self.stage}

    def make_conditioner(self) -> nn.Module:
        return nn.Linear(len(self.tables) * self.out_dim, 2 * self.channels[self.stage])

    def condition(self, name: str, fmap: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """(γ, β), each (B, C_s), from the table representation t (B, T*D)."""
        return self.conditioner[name](t).chunk(2, dim=1)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        t, _ = self.encode(batch, mask, self.tables)  # (B, T, D)
        t = t.flatten(1)  # (B, T*D)
        hs = []
        for m in self.images:
            x = batch[m]
            encoder = self.encoders[m]
            for s, stage in enumerate(encoder.stages):
                x = stage(x)  # (B, C_s, *spatial_s)
                if s == self.stage:
                    gamma, beta = self.condition(m, x, t)  # (B, C_s) each
                    shape = (*gamma.shape, *([1] * (x.ndim - 2)))
                    x = (1 + gamma.view(shape)) * x + beta.view(shape)
            hs.append(encoder.embed(x))  # (B, D)
        h, _ = self.impute(torch.stack(hs, 1), mask, self.images)  # (B, I, D)
        return FusionOutput(self.head(h.flatten(1)), mask=mask)


class DAFTFusion(FiLMFusion):
    """F' = (1 + γ) ⊙ F^(s) + β,  [γ; β] = MLP([pool(F^(s)); h_t])  (dynamic affine feature transform, Wolf et al. 2022)"""

    fusion_label: ClassVar[str] = "DAFT\n(1+γ)F + β"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, *, bottleneck: int = 8, **options) -> None:
        self.bottleneck = bottleneck  # read by make_conditioner during super().__init__
        super().__init__(specs, num_classes, **options)

    @property
    def where(self) -> str:
        return (
            f"inside the image encoders: stage-{self.stage} feature maps scaled and shifted "
            "by an MLP of the pooled maps and the table"
        )

    def make_conditioner(self) -> nn.Module:
        c = self.channels[self.stage]
        return nn.Sequential(
            nn.Linear(c + len(self.tables) * self.out_dim, self.bottleneck), nn.ReLU(), nn.Linear(self.bottleneck, 2 * c)
        )

    def condition(self, name: str, fmap: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        return self.conditioner[name](torch.cat([global_pool(fmap), t], 1)).chunk(2, dim=1)
