"""The MONAI transform that reads one subject's images for a streamed dataset (what its cache keeps).

A module of its own so that MONAI is imported only when a study is streamed, and the class can be pickled
into DataLoader workers that start by spawning (macOS, Windows).

Imports from fusion_kit: data.io.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from monai.transforms import Transform
from torch import Tensor

from .io import read_error, read_image

__all__ = ["ReadImages"]


class ReadImages(Transform):
    """The deterministic part of the pipeline (what the cache keeps): every image of one subject, zeros where
    absent, each checked against its modality's shape. An item is ``{"where": ..., column: path or "", ...}``."""

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], image_size, scale_intensity: bool, spacing) -> None:
        self.shapes = dict(shapes)
        self.image_size, self.scale_intensity, self.spacing = image_size, scale_intensity, spacing

    def read(self, column: str, path: str, where: str) -> Tensor:
        try:
            image = read_image(Path(path), self.image_size, self.scale_intensity, self.spacing)
        except Exception as err:
            raise read_error(where, column, Path(path), err) from None
        if self.shapes.get(column) is not None and tuple(image.shape) != self.shapes[column]:
            hint = "pass image_size= to resize them all" if self.image_size is None else "give images of one kind"
            raise ValueError(f"{where}: {column} image has shape {tuple(image.shape)} but the first one has "
                             f"{self.shapes[column]}; {hint}")
        return image

    def __call__(self, item: Mapping[str, str]) -> dict[str, Tensor]:
        return {c: self.read(c, item[c], item["where"]) if item[c] else torch.zeros(shape)
                for c, shape in self.shapes.items()}
