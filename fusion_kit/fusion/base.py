"""What every fusion model shares: the output type, the base class and the unimodal reference model.

Notation (intermediate-fusion review): modality ``m`` has input ``x_m``, marginal encoder ``f_m`` and
representation ``h_m = f_m(x_m)`` of size ``D``; a fusion ``g`` gives ``z = g(h_1, ..., h_M)``; the
head gives ``y = softmax(W z)`` over ``K`` classes.

Every model takes the batch dict and returns a ``FusionOutput``. Parameters live under three names,
which ``describe`` counts separately: ``encoders`` (the marginal encoders), ``head``/``heads`` (the
classifier) and everything else (the fusion).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..data.dataset import ModalitySpec, check_batch, presence
from ..encoders import ImageEncoder, TableScaling, TabularEncoder, build_encoder, check_encoder_options
from .masking import Imputer, ModalityDropout

__all__ = ["FusionOutput", "FusionModel", "ModelConfig", "RepresentationFusion", "SharedEncoder", "UnimodalModel",
           "logits_of"]


def _plain(value):
    """Tuples as lists and NumPy numbers as Python ones, recursively: what a checkpoint can store and compare."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class ModelConfig:
    """How a model was built, as plain data: checkpoints store it and compare it field by field."""

    strategy: str  # the registry name
    modalities: tuple[str, ...]
    shapes: Mapping[str, tuple[int, ...]]  # per-subject shape of each modality
    num_classes: int
    options: Mapping = field(default_factory=dict)  # the options given to build_model

    def as_dict(self) -> dict:
        return _plain({"strategy": self.strategy, "modalities": self.modalities, "shapes": self.shapes,
                       "num_classes": self.num_classes, "options": dict(sorted(self.options.items()))})


@dataclass
class FusionOutput:
    """What a model returns: logits (B, K), and where the method has them, attention and per-modality logits."""

    logits: Tensor  # (B, K)
    attention: Tensor | dict[str, Tensor] | None = None  # e.g. (B, M) modality weights
    modality_logits: dict[str, Tensor] | None = None  # output fusion: name -> (B, K)
    uncertainty: Tensor | None = None  # evidential fusion: (B, M + 1), per modality then fused
    mask: Tensor | None = None  # (B, M) the presence mask the model used (after modality dropout)
    auxiliary: Tensor | None = None  # a training-only loss term the model adds to the cross-entropy (shared-specific)


def logits_of(output) -> Tensor:
    """The logits (B, K) of a model's output: a tensor itself, or an output object's ``.logits``."""
    return output if isinstance(output, Tensor) else output.logits


class FusionModel(nn.Module):
    """Base class: the modalities, their marginal encoders f_m and the presence mask; subclasses define forward."""

    family: ClassVar[str] = ""
    fusion_point: ClassVar[str] = ""  # where the modalities meet, in words (see ``describe``)
    fused: ClassVar[str] = ""  # what is fused, where it differs from the family's (``models.taxonomy_table``)
    fusion_label: ClassVar[str] = "fusion"  # short label for the architecture diagram
    layout: ClassVar[str] = "vectors"  # how the diagram is laid out (see ``diagram``)
    min_modalities: ClassVar[int] = 2
    own_encoders: ClassVar[bool] = True  # one encoder per modality, so per-modality encoder options apply
    own_channels: ClassVar[bool] = False  # image encoders may differ in stage channels (models that fuse vectors)

    def __init__(
        self,
        specs: Mapping[str, ModalitySpec],
        num_classes: int,
        *,
        out_dim: int = 32,
        channels: Sequence[int] = (8, 16, 32),
        tabular_hidden: Sequence[int] = (32,),
        res_units: int = 0,
        dropout: float | None = None,
        modality_dropout: float = 0.0,
        spatial_dims: int | None = None,
        scale_tables: bool = True,
        encoders: Mapping[str, Mapping] | None = None,
    ) -> None:
        super().__init__()
        if not specs:
            raise ValueError("no modality given: select at least one modality to build a model")
        self.specs: dict[str, ModalitySpec] = dict(specs)
        self.modalities: tuple[str, ...] = tuple(self.specs)
        self.index = {m: j for j, m in enumerate(self.modalities)}
        self.images = tuple(m for m, s in self.specs.items() if s.kind == "image")
        self.tables = tuple(m for m, s in self.specs.items() if s.kind == "tabular")
        self.num_classes = int(num_classes)
        shapes = {m: s.shape for m, s in self.specs.items()}
        self.config = ModelConfig(type(self).__name__, self.modalities, shapes, self.num_classes)  # see from_config
        if self.num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got num_classes={num_classes}")
        if not isinstance(out_dim, int) or out_dim < 1:
            raise ValueError(f"out_dim must be a positive integer, got {out_dim!r}")
        channels = tuple(channels)
        if not channels or any(not isinstance(c, int) or c < 1 for c in channels):
            raise ValueError(f"channels must be positive integers, one per encoder stage, got {channels!r}")
        self.out_dim, self.channels, self.tabular_hidden = out_dim, channels, tuple(tabular_hidden)
        if dropout is not None and (isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1):
            raise ValueError(f"dropout is a probability in [0, 1), got {dropout!r}")
        self.res_units, self.dropout = res_units, dropout
        self.modality_dropout = ModalityDropout(modality_dropout)
        self.scaling = TableScaling(self.specs, enabled=bool(scale_tables))
        self._check_modalities(spatial_dims)
        if encoders and not self.own_encoders:
            raise ValueError("it reads its modalities with one shared encoder, so per-modality encoder options do not "
                             "apply; set channels, res_units or dropout for the whole model")
        self.encoder_options = check_encoder_options(encoders, self.specs, own_channels=self.own_channels)
        self.built_encoders: set[str] = set()  # the modalities make_encoder was called for
        for m, options in self.encoder_options.items():
            if "channels" in options:
                self._check_depth(m, options["channels"])

    @classmethod
    def from_config(cls, config: ModelConfig, specs: Mapping[str, ModalitySpec]) -> "FusionModel":
        """The model ``config`` describes (``build_model`` builds every registered strategy this way)."""
        model = cls({m: specs[m] for m in config.modalities}, config.num_classes, **config.options)
        unused = [m for m in model.encoder_options if m not in model.built_encoders]
        if unused:
            raise ValueError(f"it builds no encoder of its own for {', '.join(unused)} (read as tokens or stacked with "
                             "another modality), so per-modality encoder options cannot apply there")
        model.config = config
        return model

    @property
    def strategy(self) -> str:
        return self.config.strategy

    @property
    def options(self) -> Mapping:
        return self.config.options

    # ------------------------------------------------------------ checks
    def _check_modalities(self, spatial_dims: int | None) -> None:
        if len(self.modalities) < self.min_modalities:
            raise ValueError(
                f"it fuses at least {self.min_modalities} modalities but got only {', '.join(self.modalities)}; "
                "add modalities, or use the 'unimodal' strategy for a single one"
            )
        for m in self.images:
            spec = self.specs[m]
            if spatial_dims is not None and spec.spatial_dims != spatial_dims:
                raise ValueError(
                    f"spatial_dims={spatial_dims} asked for, but {m!r} is {spec.spatial_dims}D with shape {spec.shape}; "
                    f"leave spatial_dims out (it is read from the data) or give {spec.spatial_dims}D images"
                )
            self._check_depth(m, self.channels)

    def _check_depth(self, m: str, channels: Sequence[int]) -> None:
        spec = self.specs[m]
        smallest = min(spec.spatial_shape)
        if smallest < 2 ** (len(channels) - 1):
            fits = int(math.log2(smallest)) + 1  # stride-2 stages an image of this size can take
            raise ValueError(
                f"{m!r} images of size {spec.spatial_shape} are too small for {len(channels)} stride-2 "
                f"encoder stages; pass at most {fits}, e.g. channels={tuple(channels)[:fits]}"
            )

    def require(self, *, images: int = 0, tables: int = 0, same_grid: bool = False, why: str = "") -> None:
        """Raise a clear error unless there are enough image/tabular modalities (on one grid if asked)."""
        why = f" ({why})" if why else ""
        have = ", ".join(f"{m} ({self.specs[m].kind})" for m in self.modalities)
        if len(self.images) < images:
            raise ValueError(f"it needs at least {images} image modality(ies){why}; got {have}")
        if len(self.tables) < tables:
            raise ValueError(f"it needs at least {tables} tabular modality(ies){why}; got {have}")
        grids = {self.specs[m].spatial_shape for m in self.images}
        if same_grid and len(grids) > 1:
            shapes = ", ".join(f"{m} {self.specs[m].spatial_shape}" for m in self.images)
            raise ValueError(
                f"it combines images position by position{why}, so they must be co-registered images of the same grid; "
                f"got {shapes}. Resample them to one shape, or use a strategy that fuses vectors such as 'concat'"
            )

    @property
    def where(self) -> str:
        """Where the modalities meet, in words."""
        return self.fusion_point

    # ------------------------------------------------------------ what the model says about itself
    def diagram(self) -> dict:
        """How to draw this model: a layout ("unimodal", "vectors", "inputs", "decisions", "conditioned",
        "stages") and what that layout needs beyond the modalities and encoder stages."""
        return {"layout": self.layout}

    def summarize_attention(self, attention) -> tuple[np.ndarray, list[str]]:
        """This model's ``FusionOutput.attention`` (as NumPy, from ``train.predict``) as one weight per
        source: ``(weights (N, C), names)``. Modality weights (N, M) stay as they are; per-channel gates
        (N, M, D) are averaged over the channels of each modality."""
        if attention is None:
            raise ValueError(f"{self.strategy} returns no attention weights; pick an attention-based strategy")
        a = np.asarray(attention, dtype=float)
        if a.ndim == 3 and a.shape[1] == len(self.modalities):
            return a.mean(-1), list(self.modalities)
        if a.ndim == 2 and a.shape[1] == len(self.modalities):
            return a, list(self.modalities)
        raise ValueError(f"{self.strategy} gives attention of shape {a.shape}, not one weight per modality")

    # ------------------------------------------------------------ building blocks
    def make_encoder(self, name: str, maps_only: bool = False, **overrides) -> ImageEncoder | TabularEncoder:
        """The marginal encoder f_m with this model's sizes; ``maps_only`` drops an image encoder's vector
        head (only stage maps used); the modality's own options (``encoders=``) come next, and ``overrides``
        (``channels``, ``in_channels``) last."""
        sizes = dict(out_dim=self.out_dim, channels=self.channels, tabular_hidden=self.tabular_hidden,
                     res_units=self.res_units, dropout=self.dropout)
        own = self.encoder_options.get(name, {})
        self.built_encoders.add(name)
        return build_encoder(self.specs[name], maps_only=maps_only, **{**sizes, **own, **overrides})

    def read(self, batch: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
        """Check the batch; return it with its tables scaled, and the presence mask (B, M) in this model's
        modality order, found by name (modality dropout applied in training)."""
        check_batch(batch, self.specs)
        return self.scaling(batch), self.modality_dropout(presence(batch, self.modalities))

    def before_fit(self, train) -> None:
        """Called by ``fit`` before training: the tables' statistics from the training set, set once."""
        if not bool(self.scaling.fitted):
            self.scaling.fit(train)
        encoders = getattr(self, "encoders", {})
        for m in self.tables:
            if m in encoders and getattr(encoders[m], "categorical", ()):
                table = train.rows(m).float()
                if m in self.scaling.names:  # the values the encoder will receive
                    mean, scale = self.scaling.statistics(m)
                    table = (table - mean) / scale
                encoders[m].fit_levels(table, self.specs[m].feature_names)

    def present(self, mask: Tensor, name: str) -> Tensor:
        """(B,) whether modality ``name`` is present."""
        return mask[:, self.index[name]]

    @staticmethod
    def keep(x: Tensor, present: Tensor, fill: float = 0.0) -> Tensor:
        """x where present (per subject), else ``fill``: absent content never passes."""
        where = present.view(-1, *([1] * (x.ndim - 1)))
        return torch.where(where, x, torch.full_like(x, fill))


class RepresentationFusion(FusionModel):
    """Base for methods that fuse the vectors h_m = f_m(x_m): one encoder per modality and an imputer."""

    own_channels: ClassVar[bool] = True

    fill: ClassVar[float] = 0.0  # neutral element of the fusion: what an absent h_m becomes by default
    can_share_images: ClassVar[bool] = True  # False where the model reads the image encoders stage by stage

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, *, impute: str = "neutral",
                 shared_images: bool = False, **options) -> None:
        super().__init__(specs, num_classes, **options)
        self.shared_images = bool(shared_images)
        if self.shared_images:
            self._check_shared_images()
            shared = SharedEncoder(self.make_encoder(self.images[0]), len(self.images), self.out_dim)
            tagged = {m: Tagged(shared, j) for j, m in enumerate(self.images)}
            self.encoders = nn.ModuleDict({m: tagged.get(m) or self.make_encoder(m) for m in self.modalities})
            self.built_encoders.update(self.images)
        else:
            self.encoders = nn.ModuleDict({m: self.make_encoder(m) for m in self.modalities})
        self.imputer = Imputer(impute, len(self.modalities), self.out_dim, fill=self.fill)

    def _check_shared_images(self) -> None:
        """One encoder for every image: at least two images, all of one shape, and no per-image encoder options."""
        if not self.can_share_images:
            raise ValueError("it reads each image encoder stage by stage, so shared_images is not available for it; "
                             "leave shared_images out, or pick a strategy that fuses vectors such as 'concat'")
        shapes = {m: self.specs[m].shape for m in self.images}
        if len(self.images) < 2:
            raise ValueError(f"shared_images=True shares one encoder between images, but it has "
                             f"{len(self.images)} image modality: leave shared_images out")
        if len(set(shapes.values())) > 1:
            listed = ", ".join(f"{m} {shape}" for m, shape in shapes.items())
            raise ValueError(f"shared_images=True needs images of one shape (channels and grid), got {listed}; "
                             "resample them to one grid, or leave shared_images out")
        own = [m for m in self.images if m in self.encoder_options]
        if own:
            raise ValueError(f"the images share one encoder, so encoders={{{own[0]!r}: ...}} cannot set one of them "
                             "apart: set channels, kernel_size or res_units for the whole model, or leave shared_images out")

    def encode(self, batch: Mapping[str, Tensor], mask: Tensor, names: Sequence[str] | None = None) -> tuple[Tensor, Tensor]:
        """Stacked representations (B, M', D) with absent ones imputed, and which to treat as present (B, M')."""
        names = self.modalities if names is None else tuple(names)
        h = torch.stack([self.encoders[m](batch[m]) for m in names], 1)  # (B, M', D)
        return self.impute(h, mask, names)

    def impute(self, h: Tensor, mask: Tensor, names: Sequence[str]) -> tuple[Tensor, Tensor]:
        cols = [self.index[m] for m in names]
        return self.imputer(h, mask[:, cols], cols)


class SharedEncoder(nn.Module):
    """One image encoder f for several co-registered modalities, and a learned embedding e_m per modality:
    h_m = f(x_m) + e_m, so that the fusion still knows which modality a vector came from."""

    def __init__(self, encoder: nn.Module, num_modalities: int, dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.embedding = nn.Parameter(torch.zeros(num_modalities, dim))  # e_m, learned; 0 at first

    def forward(self, x: Tensor, index: int) -> Tensor:
        return self.encoder(x) + self.embedding[index]


class Tagged(nn.Module):
    """The shared encoder as seen by one modality (its index into the embeddings): h_m = f(x_m) + e_m."""

    def __init__(self, shared: SharedEncoder, index: int) -> None:
        super().__init__()
        self.shared, self.index = shared, index

    def forward(self, x: Tensor) -> Tensor:
        return self.shared(x, self.index)


class UnimodalModel(FusionModel):
    """y = softmax(W f_m(x_m)): one modality, its encoder and a linear head; the reference for every comparison."""

    family: ClassVar[str] = "unimodal"
    fusion_point: ClassVar[str] = "none: a single modality"
    fusion_label: ClassVar[str] = "no fusion"
    layout: ClassVar[str] = "unimodal"
    min_modalities: ClassVar[int] = 1
    own_channels: ClassVar[bool] = True

    def __init__(self, specs: Mapping[str, ModalitySpec], num_classes: int, **options) -> None:
        super().__init__(specs, num_classes, **options)
        if len(self.modalities) != 1:
            raise ValueError(
                f"it uses exactly one modality, got {', '.join(self.modalities)}; "
                f"pass modalities=[{self.modalities[0]!r}] (or another one)"
            )
        self.encoders = nn.ModuleDict({m: self.make_encoder(m) for m in self.modalities})
        self.head = nn.Linear(self.out_dim, self.num_classes)

    def forward(self, batch: Mapping[str, Tensor]) -> FusionOutput:
        batch, mask = self.read(batch)  # (B, 1)
        (m,) = self.modalities
        h = self.keep(self.encoders[m](batch[m]), mask[:, 0])  # (B, D)
        return FusionOutput(self.head(h), mask=mask)
