import numpy as np
import pytest
import torch

import fusion_kit as fk
from fusion_kit.core import look_up_option


def test_seed_everything_repeats_random_streams():
    fk.seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))
    fk.seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("bad", [-1, 1.5, "7"])
def test_seed_rejects_non_integers(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        fk.seed_everything(bad)


def test_auto_device_falls_back_to_cpu_without_gpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert fk.get_device("auto").type == expected
    assert fk.get_device("cpu") == torch.device("cpu")


def test_unknown_device_names_the_choices():
    with pytest.raises(ValueError, match="unknown device 'gpu'.*auto, cpu, cuda, mps"):
        fk.get_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_says_what_to_do():
    with pytest.raises(RuntimeError, match="use device='auto' or 'cpu'"):
        fk.get_device("cuda")


def test_quick_mode_reads_environment(monkeypatch):
    monkeypatch.setenv("FUSION_KIT_QUICK", "1")
    assert fk.quick_mode()
    monkeypatch.setenv("FUSION_KIT_QUICK", "0")
    assert not fk.quick_mode()


def test_look_up_option_suggests_the_closest_name():
    assert look_up_option("gated", ["concat", "gated"]) == "gated"
    with pytest.raises(ValueError, match="Did you mean 'attention'.*Valid choices: attention, concat"):
        look_up_option("atention", ["attention", "concat"], "strategy")


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSION_KIT_CACHE", str(tmp_path / "c"))
    assert fk.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


def test_network_is_refused_inside_tests():
    import socket

    with pytest.raises(RuntimeError, match="must work offline"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_settings_read_the_environment_with_one_meaning(monkeypatch, tmp_path):
    for value, quick in (("1", True), ("true", True), ("on", True), ("0", False), ("", False), ("no", False)):
        monkeypatch.setenv("FUSION_KIT_QUICK", value)
        assert fk.settings().quick is quick and fk.quick_mode() is quick
    monkeypatch.setenv("FUSION_KIT_QUICK", "maybe")
    with pytest.raises(ValueError, match="FUSION_KIT_QUICK='maybe'.*1.*or 0"):
        fk.settings()
    monkeypatch.setenv("FUSION_KIT_QUICK", "1")
    monkeypatch.setenv("FUSION_KIT_DEVICE", "cpu")
    monkeypatch.setenv("FUSION_KIT_RESULTS", str(tmp_path / "r"))
    assert fk.settings().device == "cpu" and fk.settings().results == tmp_path / "r"
    assert fk.get_device("auto") == torch.device("cpu")  # "auto" follows FUSION_KIT_DEVICE
    monkeypatch.setenv("FUSION_KIT_DEVICE", "gpu")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        fk.get_device("auto")


def test_saved_files_follow_the_umask_and_stale_temporaries_go(tmp_path):
    import os
    import time

    from fusion_kit.core import atomic_save

    old = os.umask(0o022)
    try:
        atomic_save({"x": 1}, tmp_path / "a.pt")
        assert (tmp_path / "a.pt").stat().st_mode & 0o777 == 0o644  # readable by others, like any new file
        os.umask(0o077)
        atomic_save({"x": 1}, tmp_path / "b.pt")
        assert (tmp_path / "b.pt").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    dead = tmp_path / ".a.pt.999999999.abc.tmp"  # left by a process that is gone
    dead.write_bytes(b"half")
    ancient = tmp_path / ".a.pt.1.abc.tmp"
    ancient.write_bytes(b"half")
    os.utime(ancient, (time.time() - 3 * 86400,) * 2)
    mine = tmp_path / f".a.pt.{os.getpid()}.xyz.tmp"  # a save of this very process may still be writing it
    mine.write_bytes(b"busy")
    other = tmp_path / ".b.pt.999999999.abc.tmp"  # another file's temporary: not ours to remove
    other.write_bytes(b"half")
    atomic_save({"x": 2}, tmp_path / "a.pt")
    assert not dead.exists() and not ancient.exists() and mine.exists() and other.exists()
