"""Data: the batch contract, the synthetic brain cohort, on-disk datasets and splits."""
from .dataset import ModalitySpec, MultimodalDataset, Splits, check_batch, split_dataset, standardize

__all__ = ["ModalitySpec", "MultimodalDataset", "Splits", "check_batch", "split_dataset", "standardize"]
