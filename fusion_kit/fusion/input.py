"""Input fusion (early fusion): merge the raw inputs, then run one shared encoder.

    z = f([x_1; x_2; ...; x_M])   (channels stacked),   y = softmax(W z)

Only possible when the inputs line up voxel by voxel: co-registered images on one grid. Tabular
values can join as constant extra channels, one per feature.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..data.dataset import ModalitySpec
from .base import FusionModel, FusionOutput

__all__ = ["ChannelStackFusion", "TabularChannelsFusion"]


class ChannelStackFusion(FusionModel):
    """z = f([x_1; ...; x_M]) with the images' channels stacked; one encoder f for all."""

    family: ClassVar[str] = "input"
    layout: ClassVar[str] = "inputs"
    fusion_point: ClassVar[str] = "the inputs: image channels stacked before one shared encoder"
    fusion_label: ClassVar[str] = "stack\nchannels"
    own_encoders: ClassVar[bool] = False  # one encoder reads every modality

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.check_inputs()
        in_channels = sum(self.specs[m].channels for m in self.modalities)  # table features count as channels
        self.encoders = nn.ModuleDict({"stacked": self.make_encoder(self.images[0], in_channels=in_channels)})
        self.head = nn.Linear(self.out_dim, self.num_classes)

    def check_inputs(self) -> None:
        if self.tables:
            raise ValueError(
                f"channel stacking fuses images only, but {', '.join(self.tables)} is tabular; use 'tabular_channels' "
                "to broadcast table values as extra image channels, or leave the table out"
            )
        self.require(images=2, same_grid=True, why="channel stacking lays their voxels on top of each other as channels")

    def stack(self, batch: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        """(B, sum C_m, *spatial): each image, zeros where absent."""
        return torch.cat([self.keep(batch[m], self.present(mask, m)) for m in self.images], 1)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, M)
        x = self.stack(batch, mask)  # (B, C, *spatial)
        return FusionOutput(self.head(self.encoders["stacked"](x)), mask=mask)


class TabularChannelsFusion(ChannelStackFusion):
    """z = f([x_1; ...; x_I; t_1 1; ...; t_F 1]): images stacked, each table value broadcast as a constant channel."""

    fusion_point: ClassVar[str] = "the inputs: image channels stacked with table values broadcast as constant channels"
    fusion_label: ClassVar[str] = "stack channels\n+ table as maps"

    def check_inputs(self) -> None:
        self.require(images=1, tables=1, same_grid=True, why="table values become constant channels of the images' grid")

    def stack(self, batch: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        images = super().stack(batch, mask)  # (B, C_img, *spatial)
        grid = images.shape[2:]
        tables = [self.keep(batch[m], self.present(mask, m)) for m in self.tables]  # each (B, F)
        values = torch.cat(tables, 1)  # (B, F_total)
        maps = values.view(*values.shape, *([1] * len(grid))).expand(*values.shape, *grid)  # (B, F_total, *spatial)
        return torch.cat([images, maps.to(images.dtype)], 1)
