"""How long importing the library takes, against importing torch alone.

Each measurement is a fresh Python process (``python -c "import ..."``), so nothing is cached in
memory; the operating system's file cache is warmed by one untimed run first. Reports the median and
the spread (min to max) of several interleaved runs and writes the ``import_time`` section of
``benchmarks/RESULTS.md``. MONAI, which loads every submodule when first imported, is only imported
where the library first needs it (building an image encoder, reading an image file), so the
training path imports quickly.

    python benchmarks/import_time.py            # 7 runs of each
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from results import machine, update_section  # noqa: E402

TARGETS = {
    "torch": "import torch",
    "fusion_kit.models, fusion_kit.train": "import fusion_kit.models, fusion_kit.train",
    "fusion_kit (everything a chapter imports)": "import fusion_kit, fusion_kit.viz, fusion_kit.widgets, "
                                                 "fusion_kit.experiment, fusion_kit.report, fusion_kit.explain",
    "monai (for comparison)": "import monai",
}
ROOT = Path(__file__).resolve().parent.parent


def seconds(statement: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for statement in TARGETS.values():  # warm the file cache
        seconds(statement)
    times = {name: [] for name in TARGETS}
    for _ in range(args.runs):  # interleaved, so a slow moment of the machine hits every target alike
        for name, statement in TARGETS.items():
            times[name].append(seconds(statement))
    torch_median = statistics.median(times["torch"])
    lines = ["| import | median seconds | min - max | × import torch |", "|---|---:|---:|---:|"]
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"| `{name}` | {median:.2f} | {min(values):.2f} - {max(values):.2f} | {median / torch_median:.2f} |")
        print(lines[-1])
    ratio = statistics.median(times["fusion_kit.models, fusion_kit.train"]) / torch_median
    body = "\n".join([
        "## Importing the library (benchmarks/import_time.py)",
        "",
        f"Fresh processes, {args.runs} interleaved runs each after one untimed warm-up; machine: {machine()}. "
        f"Target: `import fusion_kit.models, fusion_kit.train` at most 1.5x `import torch`; measured {ratio:.2f}x.",
        "",
        *lines,
    ])
    update_section("import_time", body)
    print(f"models + train: {ratio:.2f}x import torch; wrote the import_time section of benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
