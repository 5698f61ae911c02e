"""Training from disk: what streaming costs in time, what it saves in memory, and 3D throughput on this CPU.

Three measurements, written to benchmarks/RESULTS.md:

1. 2D epoch time: the default cohort (1000 subjects, 64x64) exported to NIfTI, read back in memory
   (``load_manifest``) and streamed (``stream_manifest``, disk cache warm), the same ``concat`` model trained
   on each; seconds per epoch after a warm-up epoch, interleaved runs, median and range. Target: streamed at
   most 1.3x in memory.
2. 3D memory: exports of 200 and 800 subjects at 64^3; in a fresh process each, stream the manifest (building
   the disk cache), train one epoch and predict every subject; peak resident memory (ru_maxrss). Target: 800
   subjects at most 1.2x the peak of 200. The same with the whole set loaded in memory, for contrast.
3. 3D throughput: training samples per second at 32^3 and 64^3, in memory and streamed (200 subjects).

    python benchmarks/from_disk.py [--runs 5] [--epochs 3] [--sizes 200 800] [--folder build/from_disk]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from fusion_kit import seed_everything
from fusion_kit.data import export_cohort, load_manifest, make_brain_cohort
from fusion_kit.data.streaming import stream_manifest
from fusion_kit.models import build_model
from fusion_kit.train import fit, predict


def exported(folder: Path, n: int, dims: int, size: int) -> Path:
    """The cohort written to ``folder`` once (regenerated only when missing)."""
    csv = folder / "participants.csv"
    if not csv.exists():
        cohort = make_brain_cohort(n, seed=0, cache=False, spatial_dims=dims, image_size=size)
        export_cohort(cohort, folder, overwrite=True)
    return csv


def epoch_seconds(data, epochs: int, workers: int, channels=None) -> float:
    """Seconds per epoch of ``concat`` on ``data`` (after one warm-up epoch)."""
    seed_everything(0)
    options = {"channels": channels} if channels else {}
    model = build_model("concat", data, **options)
    fit(model, data, epochs=1, progress=False, workers=workers, batch_size=32)
    start = time.perf_counter()
    fit(model, data, epochs=epochs, progress=False, workers=workers, batch_size=32)
    return (time.perf_counter() - start) / epochs


def two_d(folder: Path, runs: int, epochs: int) -> dict:
    csv = exported(folder / "2d_1000", 1000, 2, 64)
    memory, streamed = load_manifest(csv), stream_manifest(csv)
    times: dict[str, list[float]] = {"in memory": [], "streamed, 0 workers": [], "streamed, 1 worker": []}
    for _ in range(runs):  # interleaved: a drift in machine load hits every variant alike
        times["in memory"].append(epoch_seconds(memory, epochs, 0))
        times["streamed, 0 workers"].append(epoch_seconds(streamed, epochs, 0))
        times["streamed, 1 worker"].append(epoch_seconds(streamed, epochs, 1))
    return times


def child_memory(csv: str, mode: str) -> dict:
    """In a fresh process: read the set (streamed or in memory), train one epoch, predict all; peak RSS."""
    start = time.perf_counter()
    data = stream_manifest(csv) if mode == "streamed" else load_manifest(csv)
    seed_everything(0)
    model = build_model("concat", data, channels=(4, 8))
    fit(model, data, epochs=1, batch_size=16, progress=False, workers=0)
    predict(model, data, batch_size=16, workers=0)
    return {"peak_mib": peak_resident_mib(), "seconds": time.perf_counter() - start}


def peak_resident_mib() -> float:
    """This process's peak resident memory: VmHWM of /proc (ru_maxrss would count the parent's high-water mark,
    which a child inherits across fork and exec), or ru_maxrss where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(folder: Path, sizes: list[int]) -> dict:
    out = {}
    for n in sizes:
        csv = exported(folder / f"3d64_{n}", n, 3, 64)
        for mode in ("streamed", "in memory"):
            shutil.rmtree(folder / "cache" / "streamed", ignore_errors=True)  # the streamed peak includes caching
            cmd = [sys.executable, __file__, "--child-memory", str(csv), mode]
            env = dict(os.environ, FUSION_KIT_CACHE=str(folder / "cache"), FUSION_KIT_QUICK="1")
            out[(n, mode)] = json.loads(subprocess.check_output(cmd, text=True, env=env).strip().splitlines()[-1])
    return out


def throughput(folder: Path, epochs: int) -> dict:
    out = {}
    for size in (32, 64):
        csv = exported(folder / f"3d{size}_200", 200, 3, size)
        for mode, data in (("in memory", load_manifest(csv)), ("streamed", stream_manifest(csv))):
            out[(size, mode)] = len(data) / epoch_seconds(data, epochs, 0)
    return out


def report(times: dict, peaks: dict, rates: dict, args) -> str:
    from results import machine

    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["streamed, 0 workers"] / med["in memory"]
    small, large = min(args.sizes), max(args.sizes)
    growth = {m: peaks[(large, m)]["peak_mib"] / peaks[(small, m)]["peak_mib"] for m in ("streamed", "in memory")}
    lines = [
        "## Training from disk (benchmarks/from_disk.py)",
        "",
        f"{machine()}; concat, batch 32, {args.epochs} epochs per run after a warm-up epoch, {args.runs} interleaved runs.",
        "",
        "**2D default cohort (1000 subjects, 64x64) exported to NIfTI**: seconds per epoch, median (range).",
        "",
        "| data | seconds / epoch | x in memory |",
        "|---|---:|---:|",
        *(f"| {k} | {med[k]:.3f} ({min(v):.3f}-{max(v):.3f}) | {med[k] / med['in memory']:.2f} |" for k, v in times.items()),
        "",
        f"Streamed (disk cache warm) / in memory = **{ratio:.2f}** (target: at most 1.3). A worker process on this "
        "2-core machine competes with training for the cores, hence `default_workers()` is 0 here.",
        "",
        f"**3D, 64^3, peak resident memory** of a fresh process that reads the set, trains one epoch and predicts "
        "every subject (concat with channels (4, 8), batch 16):",
        "",
        "| subjects | streamed: peak MiB | seconds | in memory: peak MiB | seconds |",
        "|---:|---:|---:|---:|---:|",
        *(f"| {n} | {peaks[(n, 'streamed')]['peak_mib']:.0f} | {peaks[(n, 'streamed')]['seconds']:.0f} | "
          f"{peaks[(n, 'in memory')]['peak_mib']:.0f} | {peaks[(n, 'in memory')]['seconds']:.0f} |" for n in args.sizes),
        "",
        f"From {small} to {large} subjects the streamed peak grows **{growth['streamed']:.2f}x** (target: at most "
        f"1.2x); in memory it grows {growth['in memory']:.2f}x. (The streamed run includes building its disk cache: every image read once through MONAI.)",
        "",
        "**3D training throughput** (samples / s, 200 subjects, concat with default encoders, batch 32):",
        "",
        "| volume | in memory | streamed |",
        "|---|---:|---:|",
        *(f"| {s}^3 | {rates[(s, 'in memory')]:.1f} | {rates[(s, 'streamed')]:.1f} |" for s in (32, 64)),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs=2, default=[200, 800])
    parser.add_argument("--folder", default="build/from_disk")
    parser.add_argument("--child-memory", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        print(json.dumps(child_memory(*args.child_memory)))
        return
    folder = Path(args.folder)
    os.environ.setdefault("FUSION_KIT_CACHE", str(folder / "cache"))
    os.environ["FUSION_KIT_QUICK"] = "1"  # no progress bars
    peaks = memory(folder, args.sizes)
    times = two_d(folder, args.runs, args.epochs)
    rates = throughput(folder, max(1, args.epochs - 1))
    body = report(times, peaks, rates, args)
    print(body)
    from results import update_section

    update_section("from_disk", body)


if __name__ == "__main__":
    main()
