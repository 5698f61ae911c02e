"""Small helpers every other module uses: seeding, devices, quick mode, option checks, atomic writes.

Imports nothing from the rest of fusion_kit; every other module may import it.
"""
from __future__ import annotations

import difflib
import os
import random
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "Settings", "settings", "seed_everything", "get_device", "quick_mode", "look_up_option", "cache_dir",
    "atomic_save", "check_output_folder", "versions",
]


def seed_everything(seed: int = 0) -> int:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run can be repeated exactly on CPU."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return seed


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def get_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``"auto"`` to ``FUSION_KIT_DEVICE`` if set, else CUDA, then MPS, then CPU; check the choice exists."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {type(device).__name__}")
    name = device.strip().lower()
    if name == "auto" and settings().device.lower() != "auto":
        device = settings().device  # FUSION_KIT_DEVICE, e.g. set by `fusion-kit lab --device cuda`
        name = device.lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    valid = ("auto", "cpu", "cuda", "mps")
    if kind not in valid:
        raise ValueError(f"unknown device {device!r}; use one of {', '.join(valid)} (or 'cuda:1' for a second GPU)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} asked for, but this torch has no CUDA GPU; use device='auto' or 'cpu'")
    if kind == "mps" and not _mps_available():
        raise RuntimeError(f"device {device!r} asked for, but MPS is not available; use device='auto' or 'cpu'")
    return torch.device(name)


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}
CHECKOUT = Path(__file__).resolve().parent.parent  # the course checkout, for an editable install


@dataclass(frozen=True)
class Settings:
    """The course's settings, read from the environment in one place with one meaning.

    quick: ``FUSION_KIT_QUICK`` is 1 (or true/yes/on): chapters and tests run at a small size.
    device: ``FUSION_KIT_DEVICE`` ("auto" when unset): what ``device="auto"`` resolves through.
    results: ``FUSION_KIT_RESULTS``: where chapter 08 writes its tables (default ``build/results``
        in the course checkout, else ``fusion_kit_results`` in the working folder).
    """

    quick: bool
    device: str
    results: Path


def settings() -> Settings:
    """The current settings (read on every call, so a changed environment takes effect)."""
    text = os.environ.get("FUSION_KIT_QUICK", "0").strip().lower()
    if text not in _TRUE | _FALSE:
        raise ValueError(f"FUSION_KIT_QUICK={os.environ['FUSION_KIT_QUICK']!r}: set it to 1 (small sizes) or 0")
    device = os.environ.get("FUSION_KIT_DEVICE", "auto").strip() or "auto"
    default = CHECKOUT / "build" / "results" if (CHECKOUT / "chapters").is_dir() else Path("fusion_kit_results")
    results = Path(os.environ.get("FUSION_KIT_RESULTS") or default)
    return Settings(quick=text in _TRUE, device=device, results=results)


def quick_mode() -> bool:
    """True when ``FUSION_KIT_QUICK`` asks for small sizes (see ``settings``)."""
    return settings().quick


def look_up_option(value: str, options: Iterable[str], what: str = "option") -> str:
    """Return ``value`` if it is one of ``options``; otherwise raise an error that lists them."""
    options = list(options)
    if value in options:
        return value
    hint = difflib.get_close_matches(str(value), options, n=1)
    did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
    raise ValueError(f"unknown {what} {value!r}.{did_you_mean} Valid choices: {', '.join(options)}")


def cache_dir() -> Path:
    """Folder for generated data.

    ``FUSION_KIT_CACHE`` if set; else ``datasets/cache`` in the course checkout;
    else ``~/.cache/fusion_kit`` for an installed copy.
    """
    env = os.environ.get("FUSION_KIT_CACHE")
    checkout_datasets = CHECKOUT / "datasets"
    if env:
        path = Path(env)
    elif checkout_datasets.is_dir():
        path = checkout_datasets / "cache"
    else:
        path = Path.home() / ".cache" / "fusion_kit"
    path.mkdir(parents=True, exist_ok=True)
    return path


STALE_SECONDS = 24 * 3600  # a temporary file this old belongs to no save still running


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of earlier saves of ``path`` whose process is gone (or that are a day old)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            pid = int(tmp.name[len(path.name) + 2 :].split(".")[0])
        except ValueError:
            pid = -1
        try:
            old = time.time() - tmp.stat().st_mtime > STALE_SECONDS
            if old or (pid > 0 and pid != os.getpid() and not _pid_alive(pid)):
                tmp.unlink()
        except OSError:
            pass


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``: never a half-written file.

    The file gets the permissions any new file of the user gets (``0o666`` less the umask), so a cache
    on a shared machine is as readable as the user's other files; temporaries left by an interrupted
    save of the same file are removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def versions() -> dict[str, str]:
    """Versions of the packages the course rests on, and the device ``"auto"`` resolves to."""
    import sys

    import monai
    import sklearn

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "monai": monai.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "device": str(get_device("auto")),
    }


def check_output_folder(out: Path) -> Path:
    """Create ``out`` if needed and make sure files can be written there, before any chapter runs."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"cannot write to the output folder {out} ({err.strerror or err}); choose another (--out on the command line)") from None
    return out
