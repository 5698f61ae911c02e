"""Fusion strategies, one module per family of the taxonomy (review arXiv 2404.15022).

- ``input``: merge the raw inputs before one shared encoder (channel stacking).
- ``single_level``: one fusion point between the encoders and the head (concatenation, sums, GMU, tensor, FiLM ...).
- ``hierarchical``: fusion at several depths of the encoders.
- ``attention``: learned per-subject weights over modalities, channels, places or tokens.
- ``output``: one classifier per modality, decisions combined (voting, stacking, Dempster-Shafer).
- ``missing``: modality dropout, imputation and masking tools that every family uses.

``fusion_kit.models`` holds the registry; build models with ``build_model(name, data)``.
"""
from .attention import (
    ChannelAttention,
    CrossAttention,
    FeatureTokens,
    ModalityAttention,
    SpatialAttention,
    TransformerFusion,
)
from .base import FusionModel, FusionOutput, RepresentationFusion, UnimodalModel
from .hierarchical import HierarchicalFusion
from .input import ChannelStackFusion, TabularChannelsFusion
from .missing import IMPUTE_KINDS, Imputer, ModalityDropout, masked_mean, masked_softmax
from .output import (
    AverageFusion,
    EvidentialFusion,
    LearnedWeightFusion,
    MajorityVoteFusion,
    OutputFusion,
    StackingFusion,
    WeightedVoteFusion,
)
from .single_level import (
    ConcatFusion,
    DAFTFusion,
    FiLMFusion,
    GatedFusion,
    LowRankFusion,
    MaxFusion,
    ProductFusion,
    SumFusion,
    TensorFusion,
)

__all__ = [
    "AverageFusion",
    "ChannelAttention",
    "ChannelStackFusion",
    "ConcatFusion",
    "CrossAttention",
    "DAFTFusion",
    "EvidentialFusion",
    "FeatureTokens",
    "FiLMFusion",
    "FusionModel",
    "FusionOutput",
    "GatedFusion",
    "HierarchicalFusion",
    "IMPUTE_KINDS",
    "Imputer",
    "LearnedWeightFusion",
    "LowRankFusion",
    "MajorityVoteFusion",
    "MaxFusion",
    "ModalityAttention",
    "ModalityDropout",
    "OutputFusion",
    "ProductFusion",
    "RepresentationFusion",
    "SpatialAttention",
    "StackingFusion",
    "SumFusion",
    "TabularChannelsFusion",
    "TensorFusion",
    "TransformerFusion",
    "UnimodalModel",
    "WeightedVoteFusion",
    "masked_mean",
    "masked_softmax",
]
