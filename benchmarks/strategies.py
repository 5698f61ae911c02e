"""Every registered fusion strategy on the same data, splits, budget and seeds: a markdown table.

Trains each strategy in ``fusion_kit.models.STRATEGIES`` (the unimodal baseline once per modality)
on the synthetic brain cohort, with the largest modality selection the strategy accepts, for several
seeds, and prints balanced accuracy and macro AUC on the test split (mean ± std over seeds), training
seconds and parameter count.

    python benchmarks/strategies.py                 # 1000 subjects, 3 seeds, 30 epochs; writes benchmarks/RESULTS.md
    python benchmarks/strategies.py --quick         # a smoke run of every strategy in about a minute
    python benchmarks/strategies.py --strategies concat transformer --seeds 0 1 --device cpu
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field

import torch

from fusion_kit import get_device, seed_everything
from fusion_kit.data import MultimodalDataset, Splits, split_dataset, standardize
from fusion_kit.encoders import count_parameters
from fusion_kit.models import STRATEGIES, build_model, compatible_modalities
from fusion_kit.train import evaluate, fit


@dataclass
class Row:
    """One strategy on one modality selection, over seeds."""

    strategy: str
    family: str
    modalities: tuple[str, ...]
    parameters: int = 0
    bacc: list[float] = field(default_factory=list)
    auc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def load_cohort(subjects: int) -> MultimodalDataset:
    """The course's synthetic brain cohort (MRI, PET, clinical; CN/MCI/AD) with its default settings."""
    try:
        from fusion_kit.data import make_brain_cohort
    except ImportError:  # the generator is not in this checkout yet: a simple stand-in of the same shape
        print("note: fusion_kit.data.make_brain_cohort not found; using a simple stand-in cohort", file=sys.stderr)
        return _stand_in_cohort(subjects, seed=0)
    return make_brain_cohort(subjects)


def _stand_in_cohort(n: int, seed: int) -> MultimodalDataset:
    g = torch.Generator().manual_seed(seed)
    y = (torch.arange(n) % 3)[torch.randperm(n, generator=g)]
    mri = 0.5 * torch.randn(n, 1, 64, 64, generator=g)
    pet = 0.5 * torch.randn(n, 1, 64, 64, generator=g)
    mri[..., 16:48, 16:48] -= 0.1 * y.view(-1, 1, 1, 1)  # atrophy grows CN -> MCI -> AD
    pet[..., 8:40, 8:40] -= 0.15 * (y == 2).float().view(-1, 1, 1, 1)  # hypometabolism in AD
    clinical = torch.randn(n, 5, generator=g)
    clinical[:, 0] += 0.6 * y
    return MultimodalDataset({"mri": mri, "pet": pet, "clinical": clinical}, y, class_names=("CN", "MCI", "AD"))


def setups(data: MultimodalDataset, names: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    """(strategy, modalities) pairs: unimodal once per modality, the others on all they accept."""
    out = []
    for name in names:
        if name == "unimodal":
            out += [(name, (m,)) for m in data.modalities]
        else:
            out.append((name, compatible_modalities(name, data)))
    return out


def run_one(splits: Splits, name: str, modalities: tuple[str, ...], seed: int, args) -> tuple[float, float, float, int]:
    parts = [s.select(list(modalities)) for s in splits]
    seed_everything(seed)
    model = build_model(name, parts[0])
    start = time.perf_counter()
    fit(model, parts[0], parts[1], epochs=args.epochs, batch_size=args.batch_size, device=args.device,
        progress=False, seed=seed)
    seconds = time.perf_counter() - start
    scores = evaluate(model, parts[2])
    return scores.balanced_accuracy, scores.auc, seconds, count_parameters(model)


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(rows: list[Row], header: str) -> str:
    lines = [
        header,
        "",
        "| strategy | family | modalities | balanced accuracy | macro AUC | train s | parameters |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.strategy} | {r.family} | {'+'.join(r.modalities)} | {mean_std(r.bacc)} | {mean_std(r.auc)} "
            f"| {statistics.mean(r.seconds):.1f} | {r.parameters:,} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), help="registry names (default: all)")
    parser.add_argument("--quick", action="store_true", help="120 subjects, 2 seeds, 2 epochs: checks that everything runs")
    parser.add_argument("--output", help="also write the markdown table to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.subjects, args.seeds, args.epochs = 120, [0, 1], 2
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")

    data = load_cohort(args.subjects)
    splits = Splits(*standardize(*split_dataset(data, seed=0)))  # one split for every model and seed
    rows = []
    for name, modalities in setups(data, args.strategies):
        row = Row(name, STRATEGIES[name].family, modalities)
        for seed in args.seeds:
            bacc, auc, seconds, row.parameters = run_one(splits, name, modalities, seed, args)
            row.bacc.append(bacc)
            row.auc.append(auc)
            row.seconds.append(seconds)
        print(f"{name:<20} {'+'.join(modalities):<22} bacc {mean_std(row.bacc)}", file=sys.stderr, flush=True)
        rows.append(row)
    device = get_device(args.device)
    header = (
        f"{len(data)} subjects (train {len(splits.train)} / val {len(splits.val)} / test {len(splits.test)}), "
        f"seeds {', '.join(map(str, args.seeds))}, up to {args.epochs} epochs (early stopping on validation loss), "
        f"batch {args.batch_size}, device {device}; test-set scores, mean ± std over seeds."
    )
    text = table(rows, header)
    print(text)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text + "\n")
    if not args.quick:
        from results import machine, update_section

        title = "## Every strategy, same data, budget and seeds (benchmarks/strategies.py)"
        update_section("strategies", f"{title}\n\nMeasured on {machine()}.\n\n{text}")


if __name__ == "__main__":
    main()
