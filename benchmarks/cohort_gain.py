"""How much fusion gains on the synthetic brain cohort, at full size, and what the knobs do to it.

Trains the course's models (``build_model``: "unimodal", "concat", "channel_stack", default encoders,
``fit`` keeping the weights of the best validation epoch) and reports balanced accuracy on the held-out
test split, mean and standard deviation over seeds (a new cohort and split per seed):

- default knobs: each single modality, and late fusion of all three (concatenated encoder vectors,
  then a linear head);
- ``complementarity=0`` (redundant modalities): the same models; the fusion gain should vanish;
- ``misregistration``: MRI+PET by channel stacking (input fusion) and by late fusion, aligned and
  misregistered; stacking should lose more.

It also times generation of the default cohort and its reload from the cache. Prints a markdown table.

    python benchmarks/cohort_gain.py                      # 1000 subjects, 25 epochs, seeds 0 1 2
    python benchmarks/cohort_gain.py --subjects 600 --epochs 15 --seeds 0
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fusion_kit import seed_everything  # noqa: E402
from fusion_kit.data import make_brain_cohort, split_dataset  # noqa: E402
from fusion_kit.models import build_model  # noqa: E402
from fusion_kit.train import evaluate, fit  # noqa: E402


def score(strategy: str, splits, modalities, epochs: int, seed: int) -> float:
    """Balanced accuracy on the test split of a model trained on the train split (early stopping on val)."""
    train, val, test = (s.select(modalities) for s in splits)
    seed_everything(seed)
    model = build_model(strategy, train)
    fit(model, train, val, epochs=epochs, seed=seed, device="cpu", progress=False, patience=None)
    return evaluate(model, test).balanced_accuracy


def run_seed(args, seed: int) -> dict[tuple[str, str], float]:
    results = {}
    settings = {"default": {}, "redundant": {"complementarity": 0.0}}
    for name, knobs in settings.items():
        splits = split_dataset(make_brain_cohort(args.subjects, seed=seed, **knobs), seed=seed)
        for m in ("mri", "pet", "clinical"):
            results[(name, m)] = score("unimodal", splits, [m], args.epochs, seed)
        results[(name, "late fusion (all three)")] = score("concat", splits, ["mri", "pet", "clinical"], args.epochs, seed)
    for name, spread in (("aligned", 0.0), (f"misregistered {args.misregistration:g} mm", args.misregistration)):
        splits = split_dataset(make_brain_cohort(args.subjects, seed=seed, misregistration=spread), seed=seed)
        results[(name, "channel stack (mri+pet)")] = score("channel_stack", splits, ["mri", "pet"], args.epochs, seed)
        results[(name, "late fusion (mri+pet)")] = score("concat", splits, ["mri", "pet"], args.epochs, seed)
    return results


def timings(subjects: int) -> tuple[float, float]:
    """Seconds to generate the default cohort (fresh cache folder) and to reload it from the cache."""
    previous = os.environ.get("FUSION_KIT_CACHE")
    with tempfile.TemporaryDirectory() as folder:
        os.environ["FUSION_KIT_CACHE"] = folder
        try:
            start = time.perf_counter()
            make_brain_cohort(subjects, seed=12345)
            generate = time.perf_counter() - start
            start = time.perf_counter()
            make_brain_cohort(subjects, seed=12345)
            reload = time.perf_counter() - start
        finally:
            if previous is None:
                os.environ.pop("FUSION_KIT_CACHE")
            else:
                os.environ["FUSION_KIT_CACHE"] = previous
    return generate, reload


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def report(per_seed: list[dict], args) -> str:
    keys = list(per_seed[0])
    lines = [
        f"Balanced accuracy on the test split ({args.subjects} subjects, 70/15/15 split, {args.epochs} epochs max, "
        f"seeds {', '.join(map(str, args.seeds))}); chance is 0.333.",
        "",
        "| setting | model | balanced accuracy | per seed |",
        "|---|---|---|---|",
    ]
    for key in keys:
        values = [r[key] for r in per_seed]
        lines.append(f"| {key[0]} | {key[1]} | {mean_sd(values)} | {' '.join(f'{v:.3f}' for v in values)} |")

    def gain(setting: str) -> list[float]:
        return [r[(setting, "late fusion (all three)")] - max(r[(setting, m)] for m in ("mri", "pet", "clinical")) for r in per_seed]

    mis = f"misregistered {args.misregistration:g} mm"
    drop = {m: [r[("aligned", m)] - r[(mis, m)] for r in per_seed] for m in ("channel stack (mri+pet)", "late fusion (mri+pet)")}
    lines += [
        "",
        "| effect | value (mean ± sd over seeds) |",
        "|---|---|",
        f"| fusion gain, default (late fusion - best single modality) | {mean_sd(gain('default'))} |",
        f"| fusion gain, redundant (complementarity=0) | {mean_sd(gain('redundant'))} |",
        *(f"| accuracy lost to misregistration, {m} | {mean_sd(v)} |" for m, v in drop.items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--misregistration", type=float, default=8.0, help="spread in mm for the misregistered cohort")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 gives repeatable runs)")
    parser.add_argument("--no-write", dest="write", action="store_false", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    generate, reload = timings(args.subjects)
    per_seed = []
    for seed in args.seeds:
        start = time.perf_counter()
        per_seed.append(run_seed(args, seed))
        print(f"seed {seed} done in {time.perf_counter() - start:.0f}s", file=sys.stderr, flush=True)
    text = (
        f"Default cohort ({args.subjects} subjects, 2D 64x64): generated in {generate:.1f}s, "
        f"reloaded from the cache in {reload:.2f}s.\n\n{report(per_seed, args)}"
    )
    print(text)
    if args.write:
        from results import machine, update_section

        title = "## How much fusion gains on the cohort, and what the knobs do (benchmarks/cohort_gain.py)"
        update_section("cohort_gain", f"{title}\n\nMeasured on {machine()}.\n\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
