"""Data: the batch contract, the synthetic brain cohort, splits and folds, on-disk datasets.

Imports from fusion_kit: core only. Inside: dataset <- splits, store, missingness <- io <- cohort (with
anatomy); streaming (with transforms) <- io.
"""
from .cohort import CLASS_NAMES, CLINICAL_FEATURES, DEMO_COHORT, latent_ceiling, make_brain_cohort, write_demo_cohort
from .dataset import ModalitySpec, MultimodalDataset, batch_modalities, check_batch, encode_labels, presence
from .io import export_cohort, load_manifest
from .store import load_dataset, save_dataset
from .splits import Splits, kfold, split_by, split_dataset, standardize, subsample
from .streaming import StreamingDataset, augment, stream_manifest

__all__ = [
    "CLASS_NAMES",
    "CLINICAL_FEATURES",
    "DEMO_COHORT",
    "ModalitySpec",
    "MultimodalDataset",
    "Splits",
    "StreamingDataset",
    "augment",
    "batch_modalities",
    "check_batch",
    "encode_labels",
    "export_cohort",
    "kfold",
    "latent_ceiling",
    "load_dataset",
    "load_manifest",
    "make_brain_cohort",
    "presence",
    "save_dataset",
    "split_by",
    "split_dataset",
    "stream_manifest",
    "standardize",
    "subsample",
    "write_demo_cohort",
]
