"""Data: the batch contract, the synthetic brain cohort, on-disk datasets and splits."""
from .cohort import CLASS_NAMES, CLINICAL_FEATURES, make_brain_cohort
from .dataset import ModalitySpec, MultimodalDataset, Splits, check_batch, split_dataset, standardize
from .io import export_cohort, load_dataset, load_manifest, save_dataset, write_demo_cohort

__all__ = [
    "CLASS_NAMES",
    "CLINICAL_FEATURES",
    "ModalitySpec",
    "MultimodalDataset",
    "Splits",
    "check_batch",
    "export_cohort",
    "load_dataset",
    "load_manifest",
    "make_brain_cohort",
    "save_dataset",
    "split_dataset",
    "standardize",
    "write_demo_cohort",
]
