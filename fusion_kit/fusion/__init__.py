"""Fusion strategies, one module per family of the taxonomy (review arXiv 2404.15022).

- ``input``: merge the raw inputs before one shared encoder (channel stacking).
- ``single_level``: one fusion point between the encoders and the head (concatenation, sums, GMU, tensor, FiLM ...).
- ``hierarchical``: fusion at several depths of the encoders.
- ``attention``: learned per-subject weights over modalities, channels, places or tokens.
- ``output``: one classifier per modality, decisions combined (voting, stacking, Dempster-Shafer).
- ``masking``: modality dropout, imputation and masked attention, tools every family uses.
- ``missing``: methods for incomplete data that combine whole models (complete cases with a fallback).
- ``custom``: a fusion module of your own around the course's encoders and head (``models.register_fusion``).

``fusion_kit.models`` holds the registry; build models with ``build_model(name, data)``.

Imports from fusion_kit: core, data and encoders (never models, train, viz or widgets).
"""
from .attention import (
    ChannelAttention,
    CrossAttention,
    FeatureTokens,
    ImageCrossAttention,
    ModalityAttention,
    SpatialAttention,
    TransformerFusion,
)
from .custom import CustomFusion, custom_strategy, fused_size
from .base import FusionModel, FusionOutput, ModelConfig, RepresentationFusion, UnimodalModel, logits_of
from .hierarchical import ExchangeFusion, HierarchicalFusion
from .input import ChannelStackFusion, TabularChannelsFusion
from .masking import IMPUTE_KINDS, Imputer, ModalityDropout, masked_mean, masked_softmax
from .missing import FallbackModel, HeMISFusion, MeanFusion, ProductOfExperts, SharedSpecific
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
    "CustomFusion",
    "custom_strategy",
    "fused_size",
    "AverageFusion",
    "ChannelAttention",
    "ChannelStackFusion",
    "ConcatFusion",
    "CrossAttention",
    "DAFTFusion",
    "EvidentialFusion",
    "ExchangeFusion",
    "FallbackModel",
    "HeMISFusion",
    "MeanFusion",
    "ProductOfExperts",
    "SharedSpecific",
    "FeatureTokens",
    "FiLMFusion",
    "FusionModel",
    "FusionOutput",
    "GatedFusion",
    "HierarchicalFusion",
    "IMPUTE_KINDS",
    "ImageCrossAttention",
    "Imputer",
    "LearnedWeightFusion",
    "LowRankFusion",
    "MajorityVoteFusion",
    "MaxFusion",
    "ModelConfig",
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
    "logits_of",
    "masked_mean",
    "masked_softmax",
]
