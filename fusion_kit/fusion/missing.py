"""Methods built for incomplete data.

``MeanFusion``, ``HeMISFusion``, ``ProductOfExperts`` and ``SharedSpecific`` fuse the representations of
whichever modalities a subject has into a vector of the same size for any subset, without imputing the
absent ones: by their mean; by their mean and variance (HeMIS); by multiplying one Gaussian per present
modality with a prior; by a part every modality maps into one shared space and a part of its own, the
absent modalities' own parts replaced by the present ones' shared part (ShaSpec). ``FallbackModel`` is complete-case analysis made usable at test time: a model trained on the
subjects that have every modality answers for complete subjects, and a model of the modalities that
are never missing answers for the others. The masking tools that every strategy uses (modality
dropout, imputation, masked attention) live in ``fusion.masking``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.dataset import ModalitySpec, presence
from .base import FusionOutput, RepresentationFusion, logits_of
from .masking import masked_mean

__all__ = ["MeanFusion", "HeMISFusion", "ProductOfExperts", "SharedSpecific", "FallbackModel"]

ANY_SUBSET = "after the encoders: one fusion point, over the modalities present"


class MeanFusion(RepresentationFusion):
    """z = (1/|P|) Σ_{m∈P} h_m: the mean of the representations present, on one scale for any subset"""

    fused: ClassVar[str] = "the h_m of the modalities present, averaged"

    family: ClassVar[str] = "single_level"
    fusion_point: ClassVar[str] = ANY_SUBSET
    fusion_label: ClassVar[str] = "mean\n(1/|P|) Σ h_m"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.head = nn.Linear(self.out_dim, self.num_classes)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        h, present = self.encode(batch, mask)  # (B, M, D)
        return FusionOutput(self.head(masked_mean(h, present, dim=1)), mask=mask)


class HeMISFusion(RepresentationFusion):
    """z = [mean_{m∈P} h_m ; var_{m∈P} h_m] over the present modalities P (HeMIS, Havaei et al. 2016)"""

    fused: ClassVar[str] = 'the h_m of the modalities present, by their moments'

    family: ClassVar[str] = "single_level"
    fusion_point: ClassVar[str] = ANY_SUBSET
    fusion_label: ClassVar[str] = "HeMIS\n[mean; var] over present"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.head = nn.Linear(2 * self.out_dim, self.num_classes)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        h, present = self.encode(batch, mask)  # (B, M, D)
        mean = masked_mean(h, present, dim=1)  # (B, D)
        var = masked_mean((h - mean.unsqueeze(1)) ** 2, present, dim=1)  # (B, D), 0 with one modality
        return FusionOutput(self.head(torch.cat([mean, var], 1)), mask=mask)


class ProductOfExperts(RepresentationFusion):
    """z = [μ; -log T],  T = 1 + Σ_{m∈P} σ_m⁻²,  μ = T⁻¹ Σ_{m∈P} σ_m⁻² μ_m:  N(0, I) Π_{m∈P} N(μ_m, σ_m²) ∝ N(μ, T⁻¹)  (product of experts, Wu and Goodman 2018)"""

    fused: ClassVar[str] = 'Gaussian experts N(mu_m, sigma_m^2) from the h_m present'

    # each present modality m is an expert N(μ_m, σ_m²) over a shared latent, μ_m = A_m h_m and log σ_m² = B_m h_m;
    # the prior expert N(0, I) keeps the product defined, and shrinks weak evidence towards 0

    family: ClassVar[str] = "single_level"
    fusion_point: ClassVar[str] = ANY_SUBSET
    fusion_label: ClassVar[str] = "product of experts\nΣ σ⁻² μ / (1 + Σ σ⁻²)"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, *, dim: int = 32, **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.dim = dim
        self.experts = nn.ModuleDict({m: nn.Linear(self.out_dim, 2 * dim) for m in self.modalities})  # [A_m; B_m]
        self.head = nn.Linear(2 * dim, self.num_classes)

    def posterior(self, h: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
        """The product's mean (B, d) and log variance (B, d): the prior N(0, I) times each present expert."""
        stats = torch.stack([self.experts[m](h[:, j]) for j, m in enumerate(self.modalities)], 1)  # (B, M, 2d)
        mu, log_var = stats.split(self.dim, dim=-1)  # (B, M, d) each
        precision = torch.exp(-log_var.clamp(-8.0, 8.0))  # σ_m⁻², bounded so that one expert cannot overflow
        precision = torch.where(present.unsqueeze(-1), precision, torch.zeros_like(precision))  # absent: no vote
        weighted = torch.where(present.unsqueeze(-1), precision * mu, torch.zeros_like(mu))
        total = 1.0 + precision.sum(1)  # (B, d): the prior's precision is 1
        return weighted.sum(1) / total, -torch.log(total)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        h, present = self.encode(batch, mask)  # (B, M, D)
        mu, log_var = self.posterior(h, present)
        return FusionOutput(self.head(torch.cat([mu, log_var], 1)), mask=mask)


class SharedSpecific(RepresentationFusion):
    """z = [c_1; ...; c_M],  c_m = s_m + p_m for m ∈ P, else mean_{j∈P} s_j;  s_m = S h_m shared, p_m = P_m h_m specific; training adds λ (modality CE on p_m + ‖s_m − mean_{j∈P} s_j‖²)  (ShaSpec, Wang et al. 2023)"""

    fused: ClassVar[str] = "a shared and a specific part of each h_m present; the shared mean stands in for an absent one"

    # One linear map S puts every modality in a common space (s_m), pulled together across the modalities a
    # subject has; a map P_m per modality keeps what is its own (p_m), which a small classifier must be able to
    # tell apart by modality. An absent modality's slot is filled from what the present ones share.

    family: ClassVar[str] = "single_level"
    fusion_point: ClassVar[str] = ANY_SUBSET
    fusion_label: ClassVar[str] = "shared + specific\nabsent: shared mean"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, *, dim: int = 32, weight: float = 0.1,
                 **options) -> None:
        super().__init__(specs, num_classes, **options)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"weight (of the shared and specific terms in the loss) must be >= 0, got {weight!r}")
        self.dim, self.weight = dim, float(weight)
        self.shared = nn.Linear(self.out_dim, dim)  # S, the same for every modality
        self.specific = nn.ModuleDict({m: nn.Linear(self.out_dim, dim) for m in self.modalities})  # P_m
        self.domain = nn.Linear(dim, len(self.modalities))  # which modality a specific part comes from
        self.head = nn.Linear(len(self.modalities) * dim, self.num_classes)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        h, present = self.encode(batch, mask)  # (B, M, D)
        s = self.shared(h)  # (B, M, d)
        p = torch.stack([self.specific[m](h[:, j]) for j, m in enumerate(self.modalities)], 1)  # (B, M, d)
        common = masked_mean(s, present, dim=1)  # (B, d): what the present modalities share
        c = torch.where(present.unsqueeze(-1), s + p, common.unsqueeze(1).expand_as(s))
        output = FusionOutput(self.head(c.flatten(1)), mask=mask)
        if self.training and self.weight > 0:
            output.auxiliary = self.weight * self.split_loss(s, p, present, common)
        return output

    def split_loss(self, s: Tensor, p: Tensor, present: Tensor, common: Tensor) -> Tensor:
        """Over the present modalities: cross-entropy of telling each p_m's modality (the specific parts stay
        apart) plus the squared distance of each s_m to the subject's shared mean (the shared parts align)."""
        which = torch.arange(len(self.modalities), device=p.device).expand(present.shape)  # (B, M)
        told = F.cross_entropy(self.domain(p)[present].float(), which[present])
        aligned = ((s - common.unsqueeze(1)) ** 2).sum(-1)[present].float().mean()
        return told + aligned

    def loss(self, output: FusionOutput, label: Tensor) -> Tensor:
        """Cross-entropy, plus the shared and specific terms in training."""
        ce = F.cross_entropy(output.logits.float(), label)
        return ce if output.auxiliary is None else ce + output.auxiliary


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
