"""How long the course takes: every chapter at default and at quick size, with peak memory.

Runs ``fusion-kit course`` (default size, into build/course) and ``fusion-kit course --quick`` (into
build/quick), reads the timings each writes, times the generation of the default cohort, and writes
the "course" section of benchmarks/RESULTS.md with the targets each number must meet.

    python benchmarks/course_timings.py            # both runs: about 20 minutes on two cores
    python benchmarks/course_timings.py --reuse    # read the timings of runs made before
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = {"default": ROOT / "build" / "course", "quick": ROOT / "build" / "quick"}
CHAPTER_S = {"default": 180, "quick": 45}  # seconds per chapter
TOTAL_S = {"default": 20 * 60, "quick": 5 * 60}
PEAK_MIB = 3 * 1024


def run_course(size: str) -> None:
    command = [sys.executable, "-m", "fusion_kit.course", "course", "--out", str(RUNS[size])]
    subprocess.run(command + (["--quick"] if size == "quick" else []), check=True, cwd=ROOT)


def read_timings(size: str) -> dict[str, tuple[float, float, str]]:
    """chapter -> (seconds, peak MiB, result) from the table ``fusion-kit course`` wrote."""
    path = RUNS[size] / "timings.md"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run `fusion-kit course{' --quick' if size == 'quick' else ''}` first")
    rows = {}
    for line in path.read_text().splitlines()[2:]:
        name, seconds, peak, result = (cell.strip() for cell in line.strip("|").split("|"))
        if not name.startswith("**"):
            rows[name] = (float(seconds), float(peak), result)
    return rows


def cohort_seconds() -> float:
    from fusion_kit.data import make_brain_cohort

    start = time.perf_counter()
    make_brain_cohort(1000, seed=0, cache=False)
    return time.perf_counter() - start


def section(timings: dict[str, dict], generation: float) -> str:
    from results import machine

    lines = [
        "## The whole course, chapter by chapter (benchmarks/course_timings.py)",
        "",
        f"Measured on {machine()}, one chapter at a time; each chapter's time includes its kernel start, "
        "imports and the first generation of the cohorts it uses. Peak memory is the largest resident set of any "
        "kernel up to that chapter.",
        "",
        "| chapter | default s | quick s | peak MiB so far (default) | result |",
        "|---|---:|---:|---:|---|",
    ]
    default, quick = timings["default"], timings["quick"]
    for name, (seconds, peak_mib, result) in default.items():
        quick_seconds, _, quick_result = quick.get(name, (float("nan"), 0.0, "missing"))
        ok = "ok" if result == quick_result == "ok" else "failed"
        lines.append(f"| {name} | {seconds:.0f} | {quick_seconds:.0f} | {peak_mib:.0f} | {ok} |")
    totals = {size: sum(row[0] for row in rows.values()) for size, rows in timings.items()}
    peak = max(row[1] for rows in timings.values() for row in rows.values())
    lines.append(f"| **total** | {totals['default']:.0f} | {totals['quick']:.0f} | {peak:.0f} | |")
    checks = [
        (f"every chapter under {CHAPTER_S['default']} s at default size",
         max(r[0] for r in default.values()) < CHAPTER_S["default"]),
        (f"every chapter under {CHAPTER_S['quick']} s at quick size",
         max(r[0] for r in quick.values()) < CHAPTER_S["quick"]),
        (f"whole course under {TOTAL_S['default'] // 60} min at default size", totals["default"] < TOTAL_S["default"]),
        (f"whole course under {TOTAL_S['quick'] // 60} min at quick size", totals["quick"] < TOTAL_S["quick"]),
        (f"peak kernel memory under {PEAK_MIB // 1024} GB", peak < PEAK_MIB),
    ]
    lines += ["", "| target | met |", "|---|---|"] + [f"| {text} | {'yes' if ok else 'no'} |" for text, ok in checks]
    lines += ["", f"Generating the default cohort (1000 subjects, 2D 64x64) from the MNI152 template: "
                  f"{generation:.1f} s."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from results import update_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="read build/course and build/quick instead of running")
    args = parser.parse_args(argv)
    if not args.reuse:
        for size in RUNS:
            run_course(size)
    timings = {size: read_timings(size) for size in RUNS}
    body = section(timings, cohort_seconds())
    print(body)
    print(f"\nwritten to {update_section('course', body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
