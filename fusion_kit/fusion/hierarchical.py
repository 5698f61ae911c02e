"""Hierarchical fusion: the modalities meet at several depths of the image encoders.

A fusion branch ``b`` starts at the first fusion depth and follows the encoder's stages. At every depth
``s`` in ``depths`` it receives the stage-``s`` feature maps of all image modalities (concatenated and
mixed by a 1x1 convolution), shifted channel-wise by the tabular representation:

    b_s = B_s(b_{s-1}) + φ_s([f_1^(s)(x_1); ...; f_I^(s)(x_I)]) + U_s [h_t1; ...]   (s in depths)
    b_s = B_s(b_{s-1})                                                            (otherwise)
    y   = softmax(W pool(b_S))

``depths=(0,)`` is early fusion (one shallow stage per modality, the rest shared), ``depths=(S-1,)`` late
fusion of the deepest maps, ``depths=(0, 1, 2)`` fuses at every depth.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..data.dataset import ModalitySpec
from ..encoders import BATCH_NORM, global_pool
from .base import FusionModel, FusionOutput

__all__ = ["HierarchicalFusion", "ExchangeFusion"]


def check_depths(depths: Sequence[int] | int, channels: Sequence[int]) -> tuple[int, ...]:
    """Encoder stage indices, sorted and unique; negative ones count from the last stage."""
    n = len(channels)
    depths = (depths,) if isinstance(depths, int) else tuple(depths)
    bad = [d for d in depths if not isinstance(d, int) or not -n <= d < n]
    if not depths or bad:
        raise ValueError(
            f"depths must be stage indices in 0..{n - 1} (the encoder has {n} stages, channels={tuple(channels)}), "
            f"e.g. (0,) early, ({n - 1},) late or {tuple(range(n))} all; got {depths!r}"
        )
    return tuple(sorted({d % n for d in depths}))


class HierarchicalFusion(FusionModel):
    """b_s = B_s(b_{s-1}) + φ_s([f_1^(s); ...; f_I^(s)]) + U_s h_tab at each s in depths;  z = pool(b_S)"""

    family: ClassVar[str] = "hierarchical"
    fusion_label: ClassVar[str] = "fuse stage maps"

    def __init__(
        self, specs: Mapping[str, ModalitySpec], num_classes: int, *, depths: Sequence[int] = (0, 1, 2), **options
    ) -> None:
        from monai.networks.blocks import Convolution  # imported when first needed: MONAI loads slowly

        super().__init__(specs, num_classes, **options)
        self.require(images=1, same_grid=True, why="hierarchical fusion mixes image feature maps at each depth")
        self.depths = check_depths(depths, self.channels)
        n, c, dims = len(self.channels), self.channels, self.specs[self.images[0]].spatial_dims
        last = self.depths[-1]
        self.encoders = nn.ModuleDict()
        for m in self.modalities:  # image encoders stop at the last fusion depth; the branch goes on
            if self.specs[m].kind == "image":
                self.encoders[m] = self.make_encoder(m, maps_only=True, channels=c[: last + 1])
            else:
                self.encoders[m] = self.make_encoder(m)
        width = len(self.images)
        self.fuse = nn.ModuleDict({
            str(s): Convolution(dims, width * c[s], c[s], kernel_size=1, strides=1, act="RELU", norm=BATCH_NORM)
            for s in self.depths
        })
        t = len(self.tables) * self.out_dim
        self.shift = nn.ModuleDict({str(s): nn.Linear(t, c[s]) for s in self.depths}) if self.tables else None  # U_s
        self.branch = nn.ModuleDict({
            str(s): Convolution(dims, c[s - 1], c[s], strides=2, kernel_size=3, act="RELU", norm=BATCH_NORM)
            for s in range(self.depths[0] + 1, n)
        })
        self.head = nn.Linear(c[-1], self.num_classes)

    @property
    def where(self) -> str:
        stages = ", ".join(str(s) for s in self.depths)
        tables = "; the table shifts every fused map" if self.tables else ""
        points = "1 fusion point" if len(self.depths) == 1 else f"{len(self.depths)} fusion points"
        word = "stage" if len(self.depths) == 1 else "stages"
        return f"image feature maps after encoder {word} {stages} ({points}){tables}"

    def diagram(self) -> dict:
        return {"layout": "stages", "depths": self.depths}

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        maps = {m: self.encoders[m].forward_features(batch[m]) for m in self.images}  # each: list of (B, C_s, *spatial_s)
        t = None
        if self.tables:
            t = torch.cat([self.keep(self.encoders[m](batch[m]), self.present(mask, m)) for m in self.tables], 1)  # (B, T*D)
        b = None
        for s in range(self.depths[0], len(self.channels)):
            if b is not None:
                b = self.branch[str(s)](b)  # (B, C_s, *spatial_s)
            if s in self.depths:
                stacked = torch.cat([self.keep(maps[m][s], self.present(mask, m)) for m in self.images], 1)  # (B, I*C_s, .)
                f = self.fuse[str(s)](stacked)  # (B, C_s, *spatial_s)
                if t is not None:
                    shift = self.shift[str(s)](t)  # (B, C_s)
                    f = f + shift.view(*shift.shape, *([1] * (f.ndim - 2)))
                b = f if b is None else b + f
        return FusionOutput(self.head(global_pool(b)), mask=mask)


class ExchangeFusion(FusionModel):
    """f_i^(s) = B_i^(s)(f_i^(s-1)) + Σ_{j≠i} φ_s^(j→i)(B_j^(s)(f_j^(s-1))) at each s in depths: the image encoders exchange maps both ways;  z = [h_1; ...; h_M]"""

    family: ClassVar[str] = "hierarchical"
    fusion_label: ClassVar[str] = "encoders exchange\nfeature maps"

    def __init__(
        self, specs: Mapping[str, ModalitySpec], num_classes: int, *, depths: Sequence[int] = (0, 1, 2), **options
    ) -> None:
        super().__init__(specs, num_classes, **options)
        self.require(images=2, same_grid=True, why="the encoders exchange feature maps place by place")
        self.depths = check_depths(depths, self.channels)
        conv = nn.Conv2d if self.specs[self.images[0]].spatial_dims == 2 else nn.Conv3d
        self.encoders = nn.ModuleDict({m: self.make_encoder(m) for m in self.modalities})
        self.exchange = nn.ModuleDict({  # φ_s^(j→i): a 1x1 convolution from image j's maps into image i's
            f"{s}_{j}_{i}": conv(self.channels[s], self.channels[s], kernel_size=1)
            for s in self.depths for i in self.images for j in self.images if i != j
        })
        for phi in self.exchange.values():  # start as separate encoders: the exchange is learned from zero
            nn.init.zeros_(phi.weight)
            nn.init.zeros_(phi.bias)
        self.head = nn.Linear(len(self.modalities) * self.out_dim, self.num_classes)

    @property
    def where(self) -> str:
        stages = ", ".join(str(s) for s in self.depths)
        return f"inside the image encoders: after stage(s) {stages} each image's maps receive the others'; tables join at the head"

    def diagram(self) -> dict:
        return {"layout": "exchange", "depths": self.depths}

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        x = {m: batch[m] for m in self.images}
        for s in range(len(self.channels)):
            x = {m: self.keep(self.encoders[m].stages[s](x[m]), self.present(mask, m)) for m in self.images}  # (B, C_s, .)
            if s in self.depths:  # simultaneous exchange: every image reads the others' maps of this stage
                x = {i: x[i] + sum(self.exchange[f"{s}_{j}_{i}"](x[j]) for j in self.images if j != i) for i in self.images}
        h = [self.keep(self.encoders[m].embed(x[m]), self.present(mask, m)) for m in self.images]
        h += [self.keep(self.encoders[m](batch[m]), self.present(mask, m)) for m in self.tables]
        return FusionOutput(self.head(torch.cat(h, 1)), mask=mask)
