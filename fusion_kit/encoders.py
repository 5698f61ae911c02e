"""Marginal encoders: one per modality kind, each reporting its output sizes.

In the notation of the intermediate-fusion review, modality ``m`` with input
``x_m`` has a marginal encoder ``f_m`` giving a representation ``h_m = f_m(x_m)``.
Image encoders also expose their stage feature maps ``f_m^(1..S)(x_m)`` so that
hierarchical and attention-based fusion can work at several depths.

Imports from fusion_kit: core and data.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from .data.dataset import ModalitySpec
from .data.splits import table_statistics

__all__ = [
    "BATCH_NORM", "ENCODER_OPTIONS", "NETWORKS", "DenseNetEncoder", "ImageEncoder", "TableScaling", "TabularEncoder",
    "build_encoder",
    "check_encoder_options", "count_parameters", "global_pool",
]

ENCODER_OPTIONS = {"image": ("channels", "kernel_size", "res_units", "dropout", "network"),
                   "tabular": ("hidden", "dropout", "categorical")}
MAX_LEVELS = 16  # a categorical column may have at most this many values in the training set
NETWORKS = ("cnn", "densenet")  # an image encoder: the course's small CNN, or a small MONAI DenseNet
CNN_ONLY = ("kernel_size", "res_units")  # options that shape the course's CNN only
"""What one modality's encoder may set for itself (``build_model(..., encoders={"pet": {"kernel_size": 5}})``)."""

# Batch norm whose running statistics follow the last few steps. A quick-size cohort gives a model only
# a few dozen optimizer steps; with PyTorch's default momentum (0.1) the running statistics then lag the
# weights, and the validation loss (computed with them) swings so much that early stopping keeps an
# epoch-1 model. With 0.5 the statistics keep up; at full size the two settings score alike.
BATCH_NORM = ("BATCH", {"momentum": 0.5})


def global_pool(feature_map: Tensor) -> Tensor:
    """Average over every spatial axis: (B, C, *spatial) -> (B, C)."""
    return feature_map.flatten(2).mean(-1)


class ImageEncoder(nn.Module):
    """x (B, C, *spatial) -> stage maps f^(s) (B, C_s, *spatial/2^s) -> h = ReLU(W pool(f^(S))) (B, out_dim).

    Each stage halves the resolution with a strided MONAI ``Convolution`` (conv of ``kernel_size``, batch norm,
    ReLU), optionally followed by ``res_units`` MONAI ``ResidualUnit`` blocks. ``spatial_dims`` picks 2D or 3D.
    """

    def __init__(
        self,
        in_channels: int = 1,
        spatial_dims: int = 2,
        channels: Sequence[int] = (8, 16, 32),
        out_dim: int = 32,
        res_units: int = 0,
        dropout: float = 0.0,
        kernel_size: int = 3,
    ) -> None:
        from monai.networks.blocks import Convolution, ResidualUnit  # imported when first needed: MONAI loads slowly

        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if in_channels < 1 or not channels or out_dim < 1:
            raise ValueError("in_channels, channels and out_dim must be positive")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.stage_channels: tuple[int, ...] = tuple(int(c) for c in channels)
        self.out_dim = out_dim
        stages = []
        c_in = in_channels
        for c_out in self.stage_channels:
            blocks: list[nn.Module] = [
                Convolution(spatial_dims, c_in, c_out, strides=2, kernel_size=kernel_size, act="RELU", norm=BATCH_NORM)
            ]
            blocks += [
                ResidualUnit(spatial_dims, c_out, c_out, act="RELU", norm=BATCH_NORM, subunits=1)
                for _ in range(res_units)
            ]
            stages.append(nn.Sequential(*blocks))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.stage_channels[-1], out_dim), nn.ReLU())

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Every stage's feature map, shallow to deep."""
        self._check_input(x)
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps

    def embed(self, feature_map: Tensor) -> Tensor:
        """The vector representation h from the deepest feature map: (B, C_S, ...) -> (B, out_dim)."""
        return self.head(global_pool(feature_map))

    def forward(self, x: Tensor) -> Tensor:
        return self.embed(self.forward_features(x)[-1])

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(
                f"this is a {self.spatial_dims}D encoder and expects input (B, C, {'D, ' if self.spatial_dims == 3 else ''}H, W); "
                f"got shape {tuple(x.shape)}. Build the encoder with spatial_dims={x.ndim - 2} for this data"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(f"encoder built for {self.in_channels} input channel(s), got {x.shape[1]}")


class TabularEncoder(nn.Module):
    """x (B, F) -> h = MLP([x_numeric; E_1 c_1; ...]) (B, out_dim), ReLU between layers; each ``categorical`` column
    j is read as a category c_j (one of the values it takes in the training set, or "unseen") and embedded by a
    learned table E_j of ``embed_dim`` numbers per category, instead of being read as a number."""

    def __init__(self, in_features: int, hidden: Sequence[int] = (32,), out_dim: int = 32, dropout: float = 0.1,
                 categorical: Sequence[int] = (), embed_dim: int = 4) -> None:
        super().__init__()
        if in_features < 1 or out_dim < 1:
            raise ValueError("in_features and out_dim must be positive")
        self.in_features = in_features
        self.out_dim = out_dim
        self.categorical = tuple(int(j) for j in categorical)
        self.numeric = [j for j in range(in_features) if j not in self.categorical]
        self.embeddings = nn.ModuleList(nn.Embedding(MAX_LEVELS + 1, embed_dim) for _ in self.categorical)  # last: unseen
        self.register_buffer("levels", torch.full((len(self.categorical), MAX_LEVELS), float("nan")))
        layers: list[nn.Module] = []
        width = len(self.numeric) + embed_dim * len(self.categorical)
        for h in (*hidden, out_dim):
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.net = nn.Sequential(*layers[:-1])  # no dropout on the output

    @torch.no_grad()
    def fit_levels(self, x: Tensor, names: Sequence[str] | None = None) -> None:
        """The values each categorical column takes in ``x`` (the training subjects, as the encoder receives them)."""
        for k, j in enumerate(self.categorical):
            values = torch.unique(x[:, j].float().cpu())
            values = values[torch.isfinite(values)]
            if len(values) > MAX_LEVELS:
                column = names[j] if names else f"column {j}"
                raise ValueError(f"categorical column {column!r} takes {len(values)} values in the training set (at most "
                                 f"{MAX_LEVELS}): read it as a number (leave it out of 'categorical')")
            self.levels[k].fill_(float("nan"))
            self.levels[k, : len(values)] = values.to(self.levels)

    def codes(self, x: Tensor) -> Tensor:
        """(B, C) category indices: the position of each value among its column's levels, MAX_LEVELS if unseen."""
        values = x[:, list(self.categorical)].unsqueeze(-1)  # (B, C, 1)
        levels = self.levels.to(x.dtype).unsqueeze(0)  # (1, C, L)
        match = torch.isclose(values, levels, rtol=1e-4, atol=1e-5)  # NaN levels never match
        return torch.where(match.any(-1), match.float().argmax(-1), torch.full_like(values[..., 0], MAX_LEVELS)).long()

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"tabular encoder expects (B, {self.in_features}); got {tuple(x.shape)}")
        if not self.categorical:
            return self.net(x)
        codes = self.codes(x)
        parts = [x[:, self.numeric]] + [e(codes[:, k]) for k, e in enumerate(self.embeddings)]
        return self.net(torch.cat(parts, 1))


class TableScaling(nn.Module):
    """x_m <- (x_m - μ_m) / σ_m for every tabular modality m, with μ and σ from the training set.

    A model carries its tables' statistics (buffers, so checkpoints keep them): ``fit`` sets them once,
    from the present subjects of the training set, and every later prediction uses the same ones. Raw
    tables whose columns differ by orders of magnitude (0.1 to 1,000) would otherwise train poorly.
    A column constant in the training set gets scale 1. Until fitted, it changes nothing.
    """

    def __init__(self, specs: dict[str, ModalitySpec], enabled: bool = True) -> None:
        super().__init__()
        tables = tuple(m for m, s in specs.items() if s.kind == "tabular")
        self.names = tables if enabled else ()
        self.unscaled = () if enabled else tables
        self.feature_names = {m: specs[m].feature_names for m in self.names}
        for m in self.names:
            self.register_buffer(f"mean_{m}", torch.zeros(specs[m].channels))
            self.register_buffer(f"scale_{m}", torch.ones(specs[m].channels))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def statistics(self, name: str) -> tuple[Tensor, Tensor]:
        return getattr(self, f"mean_{name}"), getattr(self, f"scale_{name}")

    @torch.no_grad()
    def fit(self, data) -> None:
        """Set μ and σ from the subjects of ``data`` (in memory or streamed) that have each table."""
        for m in self.names:
            mean, scale = table_statistics(data.rows(m).float().cpu())
            self.statistics(m)[0].copy_(mean)
            self.statistics(m)[1].copy_(scale)
        self.fitted.fill_(True)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.names:
            return batch
        out = dict(batch)
        for m in self.names:
            mean, scale = self.statistics(m)
            out[m] = (batch[m] - mean.to(batch[m].dtype)) / scale.to(batch[m].dtype)
        return out

    def describe(self) -> str:
        """One line per table: its columns' training means and standard deviations."""
        if self.unscaled:
            return f"tables: {', '.join(self.unscaled)} used as given (scale_tables=False)"
        if not self.names:
            return ""
        if not bool(self.fitted):
            return f"tables: {', '.join(self.names)} to be scaled with the training set's mean and sd (set by fit)"
        lines = []
        for m in self.names:
            mean, scale = self.statistics(m)
            columns = self.feature_names[m] or tuple(str(j) for j in range(len(mean)))
            pairs = [f"{c} {mu:.3g}±{sd:.3g}" for c, mu, sd in zip(columns, mean.tolist(), scale.tolist())]
            pairs = ", ".join(pairs[:6]) + (f", ... ({len(pairs)} columns)" if len(pairs) > 6 else "")
            lines.append(f"{m} scaled by training mean±sd: {pairs}")
        return "tables: " + "\n              ".join(lines)


def build_encoder(
    spec: ModalitySpec,
    *,
    out_dim: int = 32,
    channels: Sequence[int] = (8, 16, 32),
    tabular_hidden: Sequence[int] = (32,),
    res_units: int = 0,
    dropout: float | None = None,
    in_channels: int | None = None,
    maps_only: bool = False,
    kernel_size: int = 3,
    network: str = "cnn",
    categorical: Sequence[str] = (),
) -> nn.Module:
    """The marginal encoder f_m for a modality: the one place every model builds its encoders.

    An image gets an ``ImageEncoder`` with one stride-2 stage per entry of ``channels``; a table a
    ``TabularEncoder`` with ``tabular_hidden`` layers. ``in_channels`` overrides the image's own (input
    fusion stacks several images); ``maps_only`` drops the vector head of a model that fuses stage maps.
    ``dropout=None`` keeps each encoder's own default. ``network="densenet"`` gives an image a small MONAI
    DenseNet instead (a vector only: no stage maps).
    """
    extra = {} if dropout is None else {"dropout": dropout}
    if spec.kind == "tabular":
        columns = [spec.feature_names.index(c) for c in categorical]
        return TabularEncoder(spec.channels, hidden=tabular_hidden, out_dim=out_dim, categorical=columns, **extra)
    if network == "densenet":
        if maps_only:
            raise ValueError("a DenseNet encoder gives a vector, not stage maps: use network='cnn' for this model")
        return DenseNetEncoder(in_channels or spec.channels, spec.spatial_dims, channels=channels, out_dim=out_dim,
                               **extra)
    encoder = ImageEncoder(in_channels or spec.channels, spec.spatial_dims, channels=channels, out_dim=out_dim,
                           res_units=res_units, kernel_size=kernel_size, **extra)
    if maps_only:
        encoder.head = nn.Identity()  # unused: the model fuses feature maps, not vectors
    return encoder


def check_encoder_options(encoders, specs: dict[str, ModalitySpec], *, own_channels: bool) -> dict[str, dict]:
    """Per-modality encoder options, checked: ``{modality: {option: value}}`` with options from ``ENCODER_OPTIONS``
    (a table's ``hidden`` becomes ``tabular_hidden``, as ``build_encoder`` names it). ``own_channels``: whether
    this model lets image encoders differ in their stage channels (models that fuse vectors do; models that
    combine feature maps stage by stage need one set of channels for every image)."""
    import difflib

    if encoders is None:
        return {}
    if not isinstance(encoders, Mapping):
        raise ValueError(f"encoders maps a modality to its encoder's options, e.g. encoders={{'pet': {{'kernel_size': 5}}}}; "
                         f"got {encoders!r}")
    checked = {}
    for name, options in encoders.items():
        if name not in specs:
            raise ValueError(f"encoders names {name!r}, which this model does not have; its modalities: {', '.join(specs)}")
        kind = specs[name].kind
        valid = ENCODER_OPTIONS[kind]
        if not isinstance(options, Mapping):
            raise ValueError(f"encoders[{name!r}] must map options to values, e.g. {{{valid[1]!r}: ...}}; got {options!r}")
        for key in options:
            if key not in valid:
                hint = difflib.get_close_matches(str(key), valid, n=1)
                did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
                raise ValueError(f"the {kind} encoder of {name!r} has no option {key!r}.{did_you_mean} "
                                 f"Its options: {', '.join(valid)}")
        if "categorical" in options:
            _check_columns(name, options["categorical"], specs[name])
        network = options.get("network", "cnn")
        if network != "cnn" and not own_channels:
            raise ValueError(f"it reads the image encoders' stage maps, which only the course's CNN has: "
                             f"encoders[{name!r}]['network'] must stay 'cnn' for this model")
        shaping = [k for k in CNN_ONLY if k in options]
        if network != "cnn" and shaping:
            raise ValueError(f"encoders[{name!r}][{shaping[0]!r}] shapes the course's CNN; a {network} takes channels "
                             "(its first width and growth, one dense block per entry) and dropout")
        if "channels" in options and not own_channels:
            raise ValueError(f"its image encoders must share their stage channels (it combines their feature maps); set "
                             f"channels for the whole model, and per modality only {', '.join(valid[1:])}")
        checked[name] = {("tabular_hidden" if k == "hidden" else k): _checked_value(name, k, v) for k, v in options.items()}
    return checked


def _check_columns(name: str, value, spec: ModalitySpec) -> None:
    """Every column named in ``categorical`` exists in the table (which must have column names)."""
    columns = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else []
    if not columns or not all(isinstance(c, str) for c in columns):
        raise ValueError(f"encoders[{name!r}]['categorical'] lists column names, e.g. ['sex', 'apoe4']; got {value!r}")
    if not spec.feature_names:
        raise ValueError(f"{name!r} has no column names, so encoders[{name!r}]['categorical'] cannot name its columns; "
                         "give the table column names (a DataFrame, or feature_names=)")
    unknown = [c for c in columns if c not in spec.feature_names]
    if unknown:
        raise ValueError(f"encoders[{name!r}]['categorical'] names {unknown[0]!r}, which {name!r} does not have; its "
                         f"columns: {', '.join(spec.feature_names)}")


def _checked_value(name: str, key: str, value):
    """One per-modality encoder option, checked against what it can be."""
    where = f"encoders[{name!r}][{key!r}]"
    if key in ("channels", "hidden"):
        sizes = (value,) if isinstance(value, int) else tuple(value)
        if not sizes and key == "channels" or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in sizes):
            raise ValueError(f"{where} must be positive integers, one per {'stage' if key == 'channels' else 'layer'}; "
                             f"got {value!r}")
        return sizes
    if key == "kernel_size" and (isinstance(value, bool) or not isinstance(value, int) or value < 1 or value % 2 == 0):
        raise ValueError(f"{where} must be an odd positive integer (the convolution keeps the grid), got {value!r}")
    if key == "res_units" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{where} must be a whole number of residual units, 0 or more, got {value!r}")
    if key == "categorical":  # checked against the table's columns by _check_columns
        return (value,) if isinstance(value, str) else tuple(value)
    if key == "network" and value not in NETWORKS:
        raise ValueError(f"{where} must be one of {', '.join(NETWORKS)}, got {value!r}")
    if key == "dropout" and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1):
        raise ValueError(f"{where} is a probability in [0, 1), got {value!r}")
    return value


class DenseNetEncoder(nn.Module):
    """x -> h = ReLU(DenseNet(x)) (B, out_dim): a small MONAI ``DenseNet`` (Huang et al. 2017) as an image's encoder,
    with ``channels[0]`` initial features, the same growth rate, and one dense block of two layers per entry of
    ``channels``. It gives a vector only, so models that fuse stage maps keep the course's CNN."""

    def __init__(self, in_channels: int = 1, spatial_dims: int = 2, channels: Sequence[int] = (8, 16, 32),
                 out_dim: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        from monai.networks.nets import DenseNet

        width = int(channels[0])
        self.net = DenseNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_dim,
                            init_features=width, growth_rate=width, block_config=(2,) * len(channels),
                            dropout_prob=dropout, norm=BATCH_NORM)
        self.spatial_dims = spatial_dims

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(f"this is a {self.spatial_dims}D encoder and expects (B, C, *spatial) with "
                             f"{self.spatial_dims} spatial axes; got shape {tuple(x.shape)}")
        return torch.relu(self.net(x))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)

