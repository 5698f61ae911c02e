"""Shared fixtures: small, fast datasets and a tiny two-branch model that follow the batch contract."""
from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

# Tests run quick and never depend on a GPU or the network.
os.environ.setdefault("FUSION_KIT_QUICK", "1")

from fusion_kit.data import MultimodalDataset, check_batch  # noqa: E402
from fusion_kit.encoders import ImageEncoder, TabularEncoder  # noqa: E402

CLASSES = ("CN", "MCI", "AD")


def make_toy_dataset(n: int = 240, size: int = 16, seed: int = 0, signal: float = 2.0) -> MultimodalDataset:
    """Images with a class-dependent bright square and a table with a class-dependent column."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    labels = labels[torch.randperm(n, generator=g)]
    img = 0.5 * torch.randn(n, 1, size, size, generator=g)
    lo, hi = size // 4, 3 * size // 4
    img[:, :, lo:hi, lo:hi] += signal * 0.5 * labels.view(-1, 1, 1, 1)
    tab = torch.randn(n, 4, generator=g)
    tab[:, 0] += signal * labels
    return MultimodalDataset(
        {"mri": img, "clinical": tab},
        labels,
        class_names=CLASSES,
        feature_names={"clinical": ("a", "b", "c", "d")},
    )


class TwoBranch(nn.Module):
    """A minimal concatenation model used to test the loop independently of fusion_kit.fusion."""

    def __init__(self, specs, num_classes: int = 3, strategy: str = "toy_concat"):
        super().__init__()
        self.specs = dict(specs)
        self.num_classes = num_classes
        self.strategy = strategy
        self.image = ImageEncoder(1, 2, channels=(4, 8), out_dim=8)
        self.table = TabularEncoder(self.specs["clinical"].channels, hidden=(8,), out_dim=8)
        self.head = nn.Linear(16, num_classes)

    def forward(self, batch):
        check_batch(batch, self.specs)
        return self.head(torch.cat([self.image(batch["mri"]), self.table(batch["clinical"])], 1))


LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch, request):
    """Every test runs with outgoing connections refused: nothing in fusion_kit may reach the network.

    Unix sockets stay open; so does loopback in tests marked ``browser``, which talk to a
    JupyterLab server they start on 127.0.0.1.
    """
    loopback = LOOPBACK if request.node.get_closest_marker("browser") else set()

    def guard(real):
        def connect(self, address, *args, **kwargs):
            family = getattr(self, "family", None)
            host = address[0] if isinstance(address, tuple) and address else None
            if family == socket.AF_UNIX or host in loopback:
                return real(self, address, *args, **kwargs)
            raise RuntimeError(f"a test tried to reach the network ({address!r}); fusion_kit must work offline")

        return connect

    monkeypatch.setattr(socket.socket, "connect", guard(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard(socket.socket.connect_ex))


@pytest.fixture
def toy() -> MultimodalDataset:
    return make_toy_dataset()


@pytest.fixture
def toy_model(toy) -> TwoBranch:
    torch.manual_seed(0)
    return TwoBranch(toy.specs)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The course book, built once per test run from the chapters as stored: the path of its index.html."""
    from fusion_kit.course import delivery
    from fusion_kit.course.runner import chapter_paths

    if not (shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")):
        pytest.skip('Jupyter Book 1.x is not installed: pip install -e ".[book]"')
    return delivery.build_book(chapter_paths(), tmp_path_factory.mktemp("book"))
