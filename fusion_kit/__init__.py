"""fusion_kit: the compact library behind the multimodal fusion course."""
from .core import cache_dir, get_device, look_up_option, quick_mode, seed_everything, settings, versions
from .data import MultimodalDataset, split_dataset

__version__ = "0.1.0"

__all__ = [
    "MultimodalDataset",
    "cache_dir",
    "get_device",
    "look_up_option",
    "quick_mode",
    "seed_everything",
    "settings",
    "split_dataset",
    "versions",
]
