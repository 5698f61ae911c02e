"""fusion_kit: the compact library behind the multimodal fusion course.

The library in layers, each importing only those above it in this list: core -> data -> encoders -> fusion ->
models -> train -> metrics / explain / experiment / report -> viz -> widgets -> course (and exercises, which
check the chapters' answers).
"""
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
