"""The registry of fusion strategies, ``build_model`` and ``describe``.

``STRATEGIES`` is the only place a method is registered: adding a strategy is one class in
``fusion_kit/fusion`` and one line here. Every model takes the batch dict and returns a
``FusionOutput`` whose ``logits`` the training loop reads.

    >>> model = build_model("gmu", dataset, modalities=["mri", "clinical"])
    >>> print(describe(model))

Imports from fusion_kit: core, data and fusion.
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from .core import look_up_option
from .data.dataset import ModalitySpec, MultimodalDataset
from .data.streaming import StreamingDataset
from .fusion import (
    AverageFusion,
    ChannelAttention,
    ChannelStackFusion,
    ConcatFusion,
    CrossAttention,
    CustomFusion,
    DAFTFusion,
    EvidentialFusion,
    ExchangeFusion,
    FiLMFusion,
    FusionModel,
    FusionOutput,
    ModelConfig,
    GatedFusion,
    HeMISFusion,
    HierarchicalFusion,
    ImageCrossAttention,
    LearnedWeightFusion,
    LowRankFusion,
    MajorityVoteFusion,
    MaxFusion,
    MeanFusion,
    ModalityAttention,
    ProductFusion,
    ProductOfExperts,
    SharedSpecific,
    SpatialAttention,
    StackingFusion,
    SumFusion,
    TabularChannelsFusion,
    TensorFusion,
    TransformerFusion,
    UnimodalModel,
    WeightedVoteFusion,
    custom_strategy,
)

__all__ = [
    "FAMILIES",
    "STRATEGIES",
    "taxonomy_table",
    "FusionOutput",
    "ModelDescription",
    "build_model",
    "compatible_modalities",
    "register_fusion",
    "describe",
    "strategy_options",
    "strategies",
]

FAMILIES = ("unimodal", "input", "single_level", "hierarchical", "attention", "output", "missing")

STRATEGIES: dict[str, type[FusionModel]] = {
    "unimodal": UnimodalModel,
    # input fusion
    "channel_stack": ChannelStackFusion,
    "tabular_channels": TabularChannelsFusion,
    # single-level fusion
    "concat": ConcatFusion,
    "sum": SumFusion,
    "product": ProductFusion,
    "max": MaxFusion,
    "mean": MeanFusion,
    "gmu": GatedFusion,
    "tensor": TensorFusion,
    "low_rank": LowRankFusion,
    "film": FiLMFusion,
    "daft": DAFTFusion,
    "hemis": HeMISFusion,
    "poe": ProductOfExperts,
    "shared_specific": SharedSpecific,
    # hierarchical fusion
    "hierarchical": HierarchicalFusion,
    "exchange": ExchangeFusion,
    # attention-based fusion
    "modality_attention": ModalityAttention,
    "channel_attention": ChannelAttention,
    "spatial_attention": SpatialAttention,
    "transformer": TransformerFusion,
    "cross_attention": CrossAttention,
    "image_cross_attention": ImageCrossAttention,
    # output fusion
    "average": AverageFusion,
    "majority_vote": MajorityVoteFusion,
    "weighted_vote": WeightedVoteFusion,
    "learned_weights": LearnedWeightFusion,
    "stacking": StackingFusion,
    "evidential": EvidentialFusion,
}


BUILT_IN = frozenset(STRATEGIES)


def register_fusion(name: str, fusion_class: type[nn.Module], *, family: str = "single_level") -> str:
    """Register your own fusion module as strategy ``name``: one call, then ``build_model(name, data)``,
    ``fit``, ``run``, ``compare`` and ``Setup(name)`` take it like any other strategy.

    ``fusion_class(modalities, dim)`` builds the module; ``module(h, present)`` takes the marginal
    representations h (B, M, D) and the presence mask (B, M) and returns z (B, F). The course adds one encoder
    per modality, the table scaling, the imputation of absent h_m and a linear head on z. Registering a name
    again replaces your earlier class (re-running a cell); the built-in strategies cannot be replaced.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name the strategy with a short identifier such as 'my_fusion', not {name!r}")
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is a built-in strategy; register yours under another name, e.g. 'my_{name}'")
    family = look_up_option(family, [f for f in FAMILIES if f not in ("unimodal", "input", "missing")], "family")
    STRATEGIES[name] = custom_strategy(fusion_class, family)
    return name


def strategies(family: str | None = None) -> list[str]:
    """Registered strategy names, in registry order; only those of ``family`` if given."""
    if family is None:
        return list(STRATEGIES)
    family = look_up_option(family, FAMILIES, "family")
    return [name for name, cls in STRATEGIES.items() if cls.family == family]


def strategy_options(strategy: str) -> dict[str, object]:
    """Every option ``build_model(strategy, ...)`` accepts, with its default."""
    cls = STRATEGIES[look_up_option(strategy, STRATEGIES, "fusion strategy")]
    options: dict[str, object] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is nn.Module:
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        for p in params:
            if p.kind is p.KEYWORD_ONLY:
                options.setdefault(p.name, p.default)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return options


def _specs_and_classes(data, num_classes: int | None) -> tuple[dict[str, ModalitySpec], int]:
    if isinstance(data, (MultimodalDataset, StreamingDataset)):
        if num_classes is not None and num_classes < data.num_classes:
            raise ValueError(f"num_classes={num_classes} but the dataset has {data.num_classes} classes {data.class_names}")
        return dict(data.specs), int(num_classes or data.num_classes)
    if isinstance(data, Mapping) and all(isinstance(s, ModalitySpec) for s in data.values()):
        if num_classes is None:
            raise ValueError("building from modality specs needs num_classes=...; or pass the MultimodalDataset itself")
        return dict(data), int(num_classes)
    raise TypeError(f"data must be a MultimodalDataset, a StreamingDataset or a dict of ModalitySpec, got {type(data).__name__}")


def _select(specs: dict[str, ModalitySpec], modalities: Sequence[str] | str | None) -> dict[str, ModalitySpec]:
    if modalities is None:
        return specs
    chosen = [modalities] if isinstance(modalities, str) else list(modalities)
    if not chosen:
        raise ValueError(f"no modality selected: pass modalities=[...] with at least one of {', '.join(specs)}")
    for m in chosen:
        if m not in specs:
            raise ValueError(f"no modality {m!r}; the data has {', '.join(specs)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"modalities {chosen} name one modality twice")
    return {m: specs[m] for m in chosen}


def _check_option_type(name: str, value, default) -> None:
    """Refuse an option whose type cannot be what its default is (``rank="4"``, ``lr="3e-3"``, ``dropout=True``)."""
    number = (int, float, np.integer, np.floating)
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "True or False"
    elif isinstance(default, int):
        ok, kind = isinstance(value, (int, np.integer)) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, kind = isinstance(value, number) and not isinstance(value, bool), "a number"
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "a string"
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple, int, np.integer)) and not isinstance(value, bool)
        kind = f"a list or tuple such as {default!r}"
    else:  # None: the class checks it
        ok, kind = not isinstance(value, str), "a number, not a string"
    if not ok:
        raise TypeError(f"option {name} must be {kind}, got {value!r} ({type(value).__name__})")


def build_model(
    strategy: str,
    data: MultimodalDataset | Mapping[str, ModalitySpec],
    *,
    modalities: Sequence[str] | None = None,
    num_classes: int | None = None,
    **options,
) -> FusionModel:
    """Build the registered ``strategy`` for the modalities of ``data`` (or the subset ``modalities``).

    Options go to the strategy class: encoder sizes (``channels``, ``out_dim``, ``tabular_hidden``),
    missing-modality handling (``modality_dropout``, ``impute``) and the method's own (``rank``,
    ``depths``, ...); ``strategy_options(name)`` lists them. Requests the strategy cannot serve
    fail here, before any training, with a message saying what to change.
    """
    name = look_up_option(strategy, STRATEGIES, "fusion strategy")
    cls = STRATEGIES[name]
    specs, k = _specs_and_classes(data, num_classes)
    specs = _select(specs, modalities)
    valid = strategy_options(name)
    for key in options:
        if key not in valid:
            hint = difflib.get_close_matches(key, valid, n=1)
            did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(f"strategy {name!r} has no option {key!r}.{did_you_mean} Its options: {', '.join(valid)}")
    for key, value in options.items():
        _check_option_type(key, value, valid[key])
    config = ModelConfig(name, tuple(specs), {m: s.shape for m, s in specs.items()}, k, dict(sorted(options.items())))
    try:
        return cls.from_config(config, specs)
    except ValueError as err:
        raise ValueError(f"cannot build {name!r} for {', '.join(specs)}: {err}") from None


def compatible_modalities(
    strategy: str, data: MultimodalDataset | Mapping[str, ModalitySpec], num_classes: int | None = None
) -> tuple[str, ...]:
    """The largest modality selection ``strategy`` accepts: all, else the images only, else one modality."""
    specs, k = _specs_and_classes(data, num_classes)
    images = tuple(m for m, s in specs.items() if s.kind == "image")
    for choice in (tuple(specs), images, *((m,) for m in specs)):
        if not choice:
            continue
        try:
            build_model(strategy, specs, modalities=choice, num_classes=k)
        except ValueError:
            continue
        return choice
    raise ValueError(f"strategy {strategy!r} accepts no selection of {', '.join(specs)}")


@dataclass(frozen=True)
class ModelDescription:
    """What a model is: its family, strategy, where the modalities meet, parameters per part."""

    strategy: str
    family: str
    modalities: tuple[str, ...]
    where: str
    encoders: int
    fusion: int
    head: int
    tables: str = ""  # how tabular inputs are scaled
    per_modality: str = ""  # each modality's encoder, where encoders= set some of them apart

    @property
    def total(self) -> int:
        return self.encoders + self.fusion + self.head

    def __str__(self) -> str:
        kind = "no fusion" if self.family == "unimodal" else f"{self.family.replace('_', '-')} fusion"
        return "\n".join([
            f"{self.strategy} ({kind}) of {', '.join(self.modalities)}",
            f"  fuses at:   {self.where}",
            f"  parameters: encoders {self.encoders:,} | fusion {self.fusion:,} | head {self.head:,} | total {self.total:,}",
            *([f"  {self.tables}"] if self.tables else []),
            *([f"  encoders:   {self.per_modality}"] if self.per_modality else []),
        ])


WHAT_IS_FUSED = {  # per family, in the intermediate-fusion review's terms
    "unimodal": "nothing: one modality",
    "input": "the raw inputs x_m (image channels, table values)",
    "single_level": "the marginal representations h_m, once",
    "hierarchical": "feature maps f_m^(s) at several encoder depths",
    "attention": "the marginal representations h_m, weighted per subject",
    "output": "the per-modality decisions softmax(l_m)",
}


def taxonomy_table(specs: Mapping[str, ModalitySpec] | None = None):
    """Every registered strategy by family, *where* it fuses, *what* it fuses and *how* (its equation).

    Generated from the registry (a strategy's ``family``, its docstring's equation, and the fusion point a model
    built on ``specs`` reports; default: the course's MRI, PET and clinical table), so it lists whatever is
    registered. Returns a pandas DataFrame indexed by strategy name.
    """
    import pandas as pd

    specs = dict(specs) if specs is not None else {
        "mri": ModalitySpec("mri", "image", (1, 32, 32)), "pet": ModalitySpec("pet", "image", (1, 32, 32)),
        "clinical": ModalitySpec("clinical", "tabular", (5,), ("age", "sex", "education", "mmse", "apoe4"))}
    rows = {}
    for name, cls in STRATEGIES.items():
        modalities = list(specs)[:1] if cls.min_modalities == 1 and cls.family == "unimodal" else None
        where = cls.fusion_point or describe(build_model(name, specs, num_classes=3, modalities=modalities)).where
        rows[name] = {"family": cls.family, "where": where, "what": cls.fused or WHAT_IS_FUSED.get(cls.family, ""),
                      "how": (cls.__doc__ or "").strip().splitlines()[0]}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("strategy")


def describe(model: nn.Module) -> ModelDescription:
    """Family, strategy, fusion point and trainable parameters per part (encoders, fusion, head)."""
    counts = {"encoders": 0, "fusion": 0, "head": 0}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        part = name.split(".")[0]
        counts["encoders" if part == "encoders" else "head" if part in ("head", "heads") else "fusion"] += p.numel()
    return ModelDescription(
        strategy=str(getattr(model, "strategy", type(model).__name__)),
        family=str(getattr(model, "family", "")),
        modalities=tuple(getattr(model, "modalities", ())),
        where=str(getattr(model, "where", "")),
        **counts,
        tables=model.scaling.describe() if hasattr(model, "scaling") else "",
        per_modality=_per_modality(model),
    )


def _per_modality(model: nn.Module) -> str:
    """'mri 7,128 | pet 3,904 (kernel_size 5, channels (4, 8))': each encoder's parameters and own options."""
    own = getattr(model, "encoder_options", {})
    encoders = getattr(model, "encoders", {})
    shared = getattr(model, "shared_images", False)
    if not (own or shared) or not isinstance(encoders, nn.ModuleDict):
        return ""
    parts = []
    if shared:
        images = list(model.images)
        count = sum(p.numel() for p in encoders[images[0]].parameters() if p.requires_grad)
        parts.append(f"{' and '.join(images)} share one encoder {count:,} (with a learned embedding per modality)")
    for name, encoder in encoders.items():
        if shared and name in model.images:
            continue
        options = ", ".join(f"{k.replace('tabular_', '')} {v}" for k, v in own.get(name, {}).items())
        parts.append(f"{name} {sum(p.numel() for p in encoder.parameters() if p.requires_grad):,}"
                     + (f" ({options})" if options else ""))
    return " | ".join(parts)
