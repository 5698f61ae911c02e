"""Attention-based fusion: learned, per-subject weights decide how much each part of each modality counts.

Weights over modalities (``modality_attention``), over channels (``channel_attention``), over places in
the image (``spatial_attention``), over modality tokens (``transformer``), from one modality's tokens
to another's (``cross_attention``), or between the patches of two images (``image_cross_attention``).
Every model returns its weights in ``FusionOutput.attention`` and gives absent modalities zero weight
without reading their content.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..core import look_up_option
from ..data.dataset import ModalitySpec
from ..encoders import global_pool
from .base import FusionModel, FusionOutput, RepresentationFusion
from .masking import masked_mean, masked_softmax

__all__ = [
    "ModalityAttention",
    "ChannelAttention",
    "SpatialAttention",
    "TransformerFusion",
    "CrossAttention",
    "FeatureTokens",
    "ImageCrossAttention",
]

AFTER_ENCODERS = "after the encoders: one fusion point, weighted per subject"


class ModalityAttention(RepresentationFusion):
    """z = Σ_m α_m h_m,  α = softmax_m(v^T tanh(W h_m + b))"""

    family: ClassVar[str] = "attention"
    fusion_point: ClassVar[str] = AFTER_ENCODERS
    fusion_label: ClassVar[str] = "modality attention\nΣ α_m h_m"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, *, dim: int = 32, **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.score = nn.Sequential(nn.Linear(self.out_dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))
        self.head = nn.Linear(self.out_dim, self.num_classes)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        h, present = self.encode(batch, mask)  # (B, M, D)
        alpha = masked_softmax(self.score(h).squeeze(-1), present, dim=1)  # (B, M)
        z = (alpha.unsqueeze(-1) * h).sum(1)  # (B, D)
        return FusionOutput(self.head(z), attention=alpha, mask=mask)


class ChannelAttention(RepresentationFusion):
    """z = s ⊙ [h_1; ...; h_M],  s = σ(W_2 ReLU(W_1 [h_1; ...; h_M]))  (squeeze-and-excitation, Hu et al. 2018)"""

    family: ClassVar[str] = "attention"
    fusion_point: ClassVar[str] = AFTER_ENCODERS
    fusion_label: ClassVar[str] = "channel attention\ns ⊙ [h_1; ...; h_M]"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, *, reduction: int = 4, **options) -> None:
        super().__init__(specs, num_classes, **options)
        width = len(self.modalities) * self.out_dim
        hidden = max(width // reduction, 1)
        self.excite = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, width))
        self.head = nn.Linear(width, self.num_classes)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        h, _ = self.encode(batch, mask)  # (B, M, D), absent h_m = 0
        z = h.flatten(1)  # (B, M*D)
        s = torch.sigmoid(self.excite(z))  # (B, M*D)
        return FusionOutput(self.head(s * z), attention=s.view_as(h), mask=mask)


class SpatialAttention(FusionModel):
    """F = Σ_i a_i ⊙ F_i,  a(x) = softmax_i(w_i^T F_i(x)) at every location x of the deepest maps;  z = [ReLU(V pool(F)); h_tables]"""

    fused: ClassVar[str] = 'the deepest image feature maps F_i, weighted per location'

    family: ClassVar[str] = "attention"
    fusion_point: ClassVar[str] = "the deepest image feature maps, weighted location by location; tables join after"
    fusion_label: ClassVar[str] = "spatial attention\nΣ a_i(x) F_i(x)"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.require(images=2, same_grid=True, why="it chooses, location by location, which image to trust")
        c, dims = self.channels[-1], self.specs[self.images[0]].spatial_dims
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.encoders = nn.ModuleDict({m: self.make_encoder(m, maps_only=True) for m in self.modalities})
        self.score = nn.ModuleDict({m: conv(c, 1, kernel_size=1) for m in self.images})  # w_i
        self.embed = nn.Sequential(nn.Linear(c, self.out_dim), nn.ReLU())
        self.head = nn.Linear((1 + len(self.tables)) * self.out_dim, self.num_classes)

    def summarize_attention(self, attention) -> tuple[np.ndarray, list[str]]:
        """The mean weight of each image over the places of the deepest maps: (N, I)."""
        a = np.asarray(attention, dtype=float)
        return a.reshape(*a.shape[:2], -1).mean(-1), list(self.images)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        cols = [self.index[m] for m in self.images]
        present = mask[:, cols]  # (B, I)
        maps = torch.stack([self.encoders[m].forward_features(batch[m])[-1] for m in self.images], 1)  # (B, I, C, *S)
        shape = (*present.shape, *([1] * (maps.ndim - 2)))
        maps = torch.where(present.view(shape), maps, torch.zeros_like(maps))
        scores = torch.stack([self.score[m](maps[:, i]) for i, m in enumerate(self.images)], 1)  # (B, I, 1, *S)
        a = masked_softmax(scores, present.view(shape), dim=1)  # (B, I, 1, *S)
        fused = (a * maps).sum(1)  # (B, C, *S)
        parts = [self.embed(global_pool(fused))]  # (B, D)
        parts += [self.keep(self.encoders[m](batch[m]), self.present(mask, m)) for m in self.tables]
        return FusionOutput(self.head(torch.cat(parts, 1)), attention=a.squeeze(2), mask=mask)


class TransformerFusion(RepresentationFusion):
    """z = Transformer([c; W_1 h_1 + e_1; ...; W_M h_M + e_M])_0, absent modality tokens masked out as keys"""

    fused: ClassVar[str] = 'one token per modality, projected from h_m'

    family: ClassVar[str] = "attention"
    fusion_point: ClassVar[str] = "after the encoders: self-attention over one token per modality"
    fusion_label: ClassVar[str] = "transformer over\nmodality tokens"

    def __init__(
        self,
        specs: Mapping[str, ModalitySpec],
        num_classes: int,
        *,
        dim: int = 32,
        heads: int = 4,
        layers: int = 1,
        attention_dropout: float = 0.1,
        **options,
    ) -> None:
        super().__init__(specs, num_classes, **options)
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.tokens = nn.ModuleDict({m: nn.Linear(self.out_dim, dim) for m in self.modalities})  # W_m
        self.modality_embedding = nn.Parameter(0.02 * torch.randn(len(self.modalities), dim))  # e_m
        self.summary = nn.Parameter(0.02 * torch.randn(1, 1, dim))  # c, always present
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=attention_dropout, batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, self.num_classes)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        h, present = self.encode(batch, mask)  # (B, M, D)
        x = torch.stack([self.tokens[m](h[:, j]) for j, m in enumerate(self.modalities)], 1)  # (B, M, d)
        x = x + self.modality_embedding
        x = torch.cat([self.summary.expand(len(x), 1, -1), x], 1)  # (B, 1+M, d)
        skip = torch.cat([torch.zeros_like(present[:, :1]), ~present], 1)  # (B, 1+M), True = absent
        for layer in self.transformer.layers:
            with torch.no_grad():  # the weights are for display only
                y = layer.norm1(x)
                weights = layer.self_attn(y, y, y, key_padding_mask=skip, need_weights=True)[1]  # (B, 1+M, 1+M)
            x = layer(x, src_key_padding_mask=skip)
        z = self.norm(x[:, 0])  # (B, d)
        share = weights[:, 0, 1:]  # (B, M): what the summary token reads from each modality (last layer)
        share = share / share.sum(1, keepdim=True).clamp_min(1e-8)
        return FusionOutput(self.head(z), attention=share, mask=mask)


class FeatureTokens(nn.Module):
    """t_f = x_f w_f + b_f: one token per table column (the marginal encoder for cross-attention)."""

    def __init__(self, in_features: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_features, dim) / math.sqrt(dim))
        self.bias = nn.Parameter(torch.zeros(in_features, dim))

    def forward(self, x: Tensor) -> Tensor:
        return x.unsqueeze(-1) * self.weight + self.bias  # (B, F, d)


def _grid_after_stages(shape: tuple[int, ...], stages: int) -> tuple[int, ...]:
    for _ in range(stages):  # kernel 3, padding 1, stride 2
        shape = tuple((s - 1) // 2 + 1 for s in shape)
    return shape


class CrossAttention(FusionModel):
    """o_i = q_i + Σ_j softmax_j(q_i·k_j/√d) v_j, image patches q attend to table tokens k (or the reverse);  z = [mean o; mean k]"""

    fused: ClassVar[str] = 'image patch tokens and table feature tokens'

    family: ClassVar[str] = "attention"
    fusion_label: ClassVar[str] = "cross-attention\nquery → key tokens"

    def __init__(
        self,
        specs: Mapping[str, ModalitySpec],
        num_classes: int,
        *,
        queries: str = "image",
        dim: int = 32,
        heads: int = 4,
        **options,
    ) -> None:
        super().__init__(specs, num_classes, **options)
        self.require(images=1, tables=1, why="one modality's tokens attend to the other's")
        self.queries = look_up_option(queries, ("image", "table"), "queries (which side attends)")
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.encoders = nn.ModuleDict({
            m: self.make_encoder(m, maps_only=True) if m in self.images else FeatureTokens(self.specs[m].channels, dim)
            for m in self.modalities
        })
        grids = {m: _grid_after_stages(self.specs[m].spatial_shape, len(self.channels)) for m in self.images}
        self.patch = nn.ModuleDict({m: nn.Linear(self.channels[-1], dim) for m in self.images})
        self.position = nn.ParameterDict({
            m: nn.Parameter(0.02 * torch.randn(math.prod(grids[m]), dim)) for m in self.images  # one per patch
        })
        self.null = nn.Parameter(torch.zeros(1, 1, dim))  # a key that is always present: "attend to nothing"
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(2 * dim, self.num_classes)

    @property
    def where(self) -> str:
        other = "table feature tokens" if self.queries == "image" else "image patch tokens"
        mine = "image patch tokens" if self.queries == "image" else "table feature tokens"
        return f"after the encoders: {mine} attend to {other}"

    def summarize_attention(self, attention) -> tuple[np.ndarray, list[str]]:
        """The weight each query puts on each key source, averaged over queries: table columns (image
        queries) or images (table queries), with "nothing" for the always-present null key."""
        q = np.asarray(attention, dtype=float).mean(1)  # (N, 1+Nk): mean over queries
        if self.queries == "image":
            names = [f for t in self.tables for f in (self.specs[t].feature_names or
                                                      [f"{t}[{i}]" for i in range(self.specs[t].channels)])]
            return q, ["nothing", *names]
        cuts = np.cumsum([1] + [self.position[m].shape[0] for m in self.images])
        weights = [q[:, 0]] + [q[:, cuts[i]:cuts[i + 1]].sum(1) for i in range(len(self.images))]
        return np.stack(weights, 1), ["nothing", *self.images]

    def tokens(self, batch: Mapping[str, Tensor], mask: Tensor, names: tuple[str, ...]) -> tuple[Tensor, Tensor]:
        """Tokens (B, N, d) of the modalities ``names``, zero where absent, and their presence (B, N)."""
        out, present = [], []
        for m in names:
            if m in self.images:
                fmap = self.encoders[m].forward_features(batch[m])[-1]  # (B, C, *S)
                tok = self.patch[m](fmap.flatten(2).transpose(1, 2)) + self.position[m]  # (B, N_m, d)
            else:
                tok = self.encoders[m](batch[m])  # (B, F, d)
            p = self.present(mask, m).unsqueeze(1).expand(-1, tok.shape[1])  # (B, N_m)
            out.append(torch.where(p.unsqueeze(-1), tok, torch.zeros_like(tok)))
            present.append(p)
        return torch.cat(out, 1), torch.cat(present, 1)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        q_names, k_names = (self.images, self.tables) if self.queries == "image" else (self.tables, self.images)
        q, q_present = self.tokens(batch, mask, q_names)  # (B, Nq, d), (B, Nq)
        k, k_present = self.tokens(batch, mask, k_names)  # (B, Nk, d), (B, Nk)
        kv = torch.cat([self.null.expand(len(k), 1, -1), k], 1)  # (B, 1+Nk, d)
        kv_present = torch.cat([torch.ones_like(k_present[:, :1]), k_present], 1)  # (B, 1+Nk)
        o, weights = self.attention(q, kv, kv, key_padding_mask=~kv_present, need_weights=True)  # (B, Nq, d), (B, Nq, 1+Nk)
        o = self.norm(q + o)
        z = torch.cat([masked_mean(o, q_present, 1), masked_mean(k, k_present, 1)], 1)  # (B, 2d)
        return FusionOutput(self.head(z), attention=weights, mask=mask)  # attention[..., 0]: the "nothing" key


class ImageCrossAttention(FusionModel):
    """o_i = q_i + Σ_j softmax_j(q_i·k_j/√d) v_j: each image's patch tokens attend to the other images' patches; z = [mean FFN(o); h_tables]"""

    fused: ClassVar[str] = 'patch tokens of the deepest image feature maps'

    family: ClassVar[str] = "attention"
    fusion_point: ClassVar[str] = "the deepest image feature maps: every patch of one image attends to the patches of the other"
    fusion_label: ClassVar[str] = "cross-attention\nbetween image patches"

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, *, dim: int = 32, heads: int = 4,
                 **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.require(images=2, same_grid=True, why="a patch of one image attends to the patches of the other, place by place")
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        grid = _grid_after_stages(self.specs[self.images[0]].spatial_shape, len(self.channels))
        self.grid = grid
        self.encoders = nn.ModuleDict({m: self.make_encoder(m, maps_only=m in self.images) for m in self.modalities})
        self.patch = nn.ModuleDict({m: nn.Linear(self.channels[-1], dim) for m in self.images})
        self.position = nn.Parameter(0.02 * torch.randn(math.prod(grid), dim))  # one per place, shared by the images
        self.modality_embedding = nn.ParameterDict({m: nn.Parameter(0.02 * torch.randn(dim)) for m in self.images})
        self.null = nn.Parameter(torch.zeros(1, 1, dim))  # a key that is always present: "attend to nothing"
        self.attend = nn.ModuleDict({m: nn.MultiheadAttention(dim, heads, batch_first=True) for m in self.images})
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.feed = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))  # compares what met
        self.head = nn.Linear(dim + len(self.tables) * self.out_dim, self.num_classes)

    def summarize_attention(self, attention) -> tuple[np.ndarray, list[str]]:
        """The first image's patches: their weight on "nothing" and on the other images, summed over patches."""
        a = np.asarray(attention, dtype=float).mean(1)  # (N, 1 + (I-1) P): mean over the first image's patches
        patches = math.prod(self.grid)
        others = [a[:, 1 + i * patches: 1 + (i + 1) * patches].sum(1) for i in range(len(self.images) - 1)]
        return np.stack([a[:, 0], *others], 1), ["nothing", *self.images[1:]]

    def tokens(self, batch: Mapping[str, Tensor], mask: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
        """Per image: patch tokens (B, P, d), zero where the image is absent, and their presence (B, P)."""
        out = {}
        for m in self.images:
            fmap = self.encoders[m].forward_features(batch[m])[-1]  # (B, C, *S)
            tok = self.patch[m](fmap.flatten(2).transpose(1, 2)) + self.position + self.modality_embedding[m]  # (B, P, d)
            present = self.present(mask, m).unsqueeze(1).expand(-1, tok.shape[1])  # (B, P)
            out[m] = (torch.where(present.unsqueeze(-1), tok, torch.zeros_like(tok)), present)
        return out

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        tokens = self.tokens(batch, mask)
        fused, present, first = [], [], None
        for m in self.images:
            q, q_present = tokens[m]
            others = [tokens[o] for o in self.images if o != m]
            kv = torch.cat([self.null.expand(len(q), 1, -1), *(t for t, _ in others)], 1)  # (B, 1 + (I-1) P, d)
            kv_present = torch.cat([torch.ones_like(q_present[:, :1]), *(p for _, p in others)], 1)
            o, weights = self.attend[m](q, kv, kv, key_padding_mask=~kv_present, need_weights=True)  # (B, P, d)
            x = self.norm1(q + o)
            fused.append(self.norm2(x + self.feed(x)))  # (B, P, d)
            present.append(q_present)
            first = weights if first is None else first
        z = masked_mean(torch.cat(fused, 1), torch.cat(present, 1), 1)  # (B, d)
        parts = [z] + [self.keep(self.encoders[m](batch[m]), self.present(mask, m)) for m in self.tables]
        return FusionOutput(self.head(torch.cat(parts, 1)), attention=first, mask=mask)
