"""How much does ``fusion_kit.train.fit`` cost beyond the model's own compute?

Trains the same two-branch 2D model (MRI + PET encoders, concatenation, linear head)
at batch 64 two ways, each in a fresh subprocess so peak memory is its own:

- bare: a plain loop over pre-batched tensors (forward, cross-entropy, backward, step): the floor;
- fit:  ``fusion_kit.train.fit`` on a MultimodalDataset (shuffling, batching, checks, bookkeeping).

Runs come in interleaved pairs (bare, then fit, each a fresh process), each run long enough
(12 epochs after a warm-up epoch) that machine noise averages out; the ratio is taken per pair
and the median over pairs reported with its range, with samples/s and peak memory, in
benchmarks/RESULTS.md. (Runs of 3 epochs of 0.16 s gave ratios from 1.01 to 1.14 between
three runs of the script: too short to be stable.)

    python benchmarks/fit_overhead.py [--subjects 640] [--epochs 12] [--runs 7] [--device auto]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from fusion_kit import MultimodalDataset, get_device, seed_everything
from fusion_kit.encoders import ImageEncoder
from fusion_kit.train import fit


class TwoBranch(nn.Module):
    """logits = W [f_mri(x_mri); f_pet(x_pet)]"""

    def __init__(self, specs):
        super().__init__()
        self.specs, self.num_classes = specs, 3
        self.mri, self.pet = ImageEncoder(1, 2), ImageEncoder(1, 2)
        self.head = nn.Linear(self.mri.out_dim + self.pet.out_dim, 3)

    def forward(self, batch):
        return self.head(torch.cat([self.mri(batch["mri"]), self.pet(batch["pet"])], 1))


def make_data(n: int) -> MultimodalDataset:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 3
    return MultimodalDataset(
        {"mri": torch.randn(n, 1, 64, 64, generator=g), "pet": torch.randn(n, 1, 64, 64, generator=g)}, labels
    )


def bare_epochs(model, data: MultimodalDataset, epochs: int, dev: torch.device) -> None:
    batches = [data.to(dev).batch(slice(i, i + 64)) for i in range(0, len(data), 64)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    model.train()
    for _ in range(epochs):
        for batch in batches:
            loss = nn.functional.cross_entropy(model(batch), batch["label"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()


def measure(mode: str, n: int, epochs: int, device: str) -> dict:
    """Seconds per epoch of one run (after a one-epoch warm-up), in this process."""
    dev = get_device(device)
    data = make_data(n)
    seed_everything(0)
    model = TwoBranch(data.specs).to(dev)
    run = (lambda e: bare_epochs(model, data, e, dev)) if mode == "bare" else (
        lambda e: fit(model, data, epochs=e, batch_size=64, device=dev, progress=False)
    )
    run(1)
    start = time.perf_counter()
    run(epochs)
    seconds = (time.perf_counter() - start) / epochs
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds_per_epoch": seconds, "peak_mib": peak, "device": str(dev)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=640)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--child", choices=["bare", "fit"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.subjects, args.epochs, args.device)))
        return
    results: dict[str, list[dict]] = {"bare": [], "fit": []}
    for _ in range(args.runs):
        for mode in ("bare", "fit"):  # interleaved, so drift in machine load hits both alike
            cmd = [sys.executable, __file__, "--child", mode, "--subjects", str(args.subjects),
                   "--epochs", str(args.epochs), "--device", args.device]
            results[mode].append(json.loads(subprocess.check_output(cmd, text=True).strip().splitlines()[-1]))
    med = {m: statistics.median(r["seconds_per_epoch"] for r in rs) for m, rs in results.items()}
    peak = {m: max(r["peak_mib"] for r in rs) for m, rs in results.items()}
    ratios = [f["seconds_per_epoch"] / b["seconds_per_epoch"] for b, f in zip(results["bare"], results["fit"])]
    ratio = statistics.median(ratios)
    device = results["fit"][0]["device"]
    from results import machine, update_section

    body = "\n".join([
        "## fit() against a bare loop (benchmarks/fit_overhead.py)",
        "",
        f"Two-branch 2D model (MRI + PET, 64x64, batch 64), {args.subjects} subjects, "
        f"{args.runs} interleaved pairs of runs of {args.epochs} epochs each, medians; device {device}; {machine()}.",
        "",
        "| loop | seconds / epoch | samples / s | peak memory (MiB) |",
        "|---|---:|---:|---:|",
        *(f"| {m} | {med[m]:.3f} | {args.subjects / med[m]:.0f} | {peak[m]:.0f} |" for m in ("bare", "fit")),
        "",
        f"**fit / bare = {ratio:.3f}**, median of the per-pair ratios (range {min(ratios):.3f}-{max(ratios):.3f}; "
        "target: at most 1.15).",
    ])
    print(body)
    update_section("fit_overhead", body)


if __name__ == "__main__":
    main()
