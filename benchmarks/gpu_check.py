"""The GPU check: one short script for a machine with one GPU (under 5 minutes), results to RESULTS.md.

1. 3D training throughput (samples / s) of concat with the default encoders at 64^3 and 96^3, batch 16,
   with and without mixed precision (``fit(amp=...)``), on random volumes held on the GPU;
2. streaming: a 3D export (128 subjects, 64^3) read through ``stream_manifest`` with 0, 4 and 8 DataLoader
   workers (pinned memory), samples / s of a training epoch;
3. the course's quick run on CUDA (``fusion-kit course --quick --device cuda``), seconds per chapter.

    python benchmarks/gpu_check.py                 # on the GPU machine: writes the GPU section
    python benchmarks/gpu_check.py --dry-run       # anywhere: tiny sizes on the CPU, prints, writes nothing
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fusion_kit import MultimodalDataset, get_device, seed_everything
from fusion_kit.models import build_model
from fusion_kit.train import fit

ROOT = Path(__file__).resolve().parents[1]


def random_volumes(n: int, size: int) -> MultimodalDataset:
    g = torch.Generator().manual_seed(0)
    shape = (n, 1, size, size, size)
    return MultimodalDataset({"mri": torch.randn(shape, generator=g), "pet": torch.randn(shape, generator=g)},
                             torch.arange(n) % 3)


def samples_per_second(data, device, amp: bool, epochs: int, workers: int = 0) -> float:
    seed_everything(0)
    model = build_model("concat", data)
    fit(model, data, epochs=1, batch_size=16, device=device, amp=amp, progress=False, workers=workers)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fit(model, data, epochs=epochs, batch_size=16, device=device, amp=amp, progress=False, workers=workers)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return epochs * len(data) / (time.perf_counter() - start)


def write_export(folder: Path, n: int, size: int) -> Path:
    """Random 3D volumes as NIfTI with a participants.csv (quick to write; the content does not matter here)."""
    import nibabel as nib
    import pandas as pd

    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        row = {"subject_id": f"sub-{i:04d}", "label": ("CN", "MCI", "AD")[i % 3]}
        for m in ("mri", "pet"):
            rel = f"images/sub-{i:04d}_{m}.nii.gz"
            nib.save(nib.Nifti1Image(rng.standard_normal((size,) * 3).astype(np.float32), np.eye(4)), folder / rel)
            row[m] = rel
        row["age"] = float(rng.normal(72, 6))
        rows.append(row)
    pd.DataFrame(rows).to_csv(folder / "participants.csv", index=False)
    return folder / "participants.csv"


def course_run(device: str, out: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "fusion_kit.course", "course", "--quick", "--device", device,
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    return time.perf_counter() - start, (done.stdout + done.stderr).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU; print, write nothing")
    args = parser.parse_args()
    dry = args.dry_run
    device = torch.device("cpu") if dry else get_device("cuda")
    name = "CPU (dry run)" if dry else torch.cuda.get_device_name(device)
    sizes, n, epochs = ((16, 24), 32, 1) if dry else ((64, 96), 256, 3)
    lines = [f"## GPU check (benchmarks/gpu_check.py)", "", f"{name}, torch {torch.__version__}.", "",
             "**3D training throughput**, concat, default encoders, batch 16, random volumes on the device:", "",
             "| volume | samples / s, fp32 | samples / s, mixed precision |", "|---|---:|---:|"]
    for size in sizes:
        data = random_volumes(n, size)
        rates = [samples_per_second(data, device, amp, epochs) for amp in (False, True)]
        lines.append(f"| {size}^3 | {rates[0]:.0f} | {rates[1]:.0f} |")
        print(lines[-1], flush=True)
    folder = ROOT / "build" / "gpu_check"
    os.environ["FUSION_KIT_CACHE"] = str(folder / "cache")
    from fusion_kit.data.streaming import stream_manifest

    csv = write_export(folder / "export", 24 if dry else 128, 16 if dry else 64)
    streamed = stream_manifest(csv)
    lines += ["", f"**Streaming** a 3D export ({len(streamed)} subjects, {streamed.specs['mri'].shape[1]}^3, disk "
              "cache warm), one training epoch, mixed precision, pinned memory:", "",
              "| DataLoader workers | samples / s |", "|---:|---:|"]
    for workers in ((0, 2) if dry else (0, 4, 8)):
        lines.append(f"| {workers} | {samples_per_second(streamed, device, True, epochs, workers):.0f} |")
        print(lines[-1], flush=True)
    if not dry:
        seconds, text = course_run("cuda", folder / "course")
        lines += ["", f"**The course, quick mode, on CUDA**: {seconds:.0f} s in all.", "", "```",
                  *text.splitlines()[-14:], "```"]
    body = "\n".join(lines)
    print(body)
    if not dry:
        sys.path.insert(0, str(Path(__file__).parent))
        from results import update_section

        update_section("gpu_check", body)


if __name__ == "__main__":
    main()
