"""Execute the chapters headless with papermill: in course order, stopping at the first failure.

    >>> runs = run_chapters(chapter_paths(["03", "05"]), Path("build/course"), quick=True)
    >>> report(runs, Path("build/course"))      # timings.md, summary.md; 1 if a chapter failed

The command line (``fusion_kit.course.cli``) and the delivery tools (``fusion_kit.course.delivery``)
build on this module; it imports neither.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core import check_output_folder

__all__ = ["ROOT", "CHAPTERS", "ChapterRun", "chapter_paths", "check_output_folder", "run_chapters", "report"]

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = ROOT / "chapters"


# ------------------------------------------------------------------ course
@dataclass
class ChapterRun:
    """One executed chapter: where its output went, how long it took, and the error if it failed."""

    name: str
    output: Path
    seconds: float
    error: str | None = None
    peak_mib: float = float("nan")  # largest resident memory of any kernel so far (ended kernels only)


def _peak_child_mib() -> float:
    """Peak resident memory of the largest finished child process (the chapters' kernels), in MiB."""
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux, bytes on macOS
    return kib / 1024 / (1024 if sys.platform == "darwin" else 1)


def chapter_paths(only: Sequence[str] | None = None, folder: Path = CHAPTERS) -> list[Path]:
    """The chapter notebooks in course order, optionally only those whose number is in ``only``."""
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no chapters found in {folder}")
    if only is not None:
        wanted = {o.strip().zfill(2) for o in only if o.strip()}
        if not wanted or not all(w.isdigit() for w in wanted):
            raise ValueError(f"give chapter numbers such as 03,05 (got {','.join(only)!r})")
        known = {p.name[:2] for p in paths}
        unknown = sorted(wanted - known)
        if unknown:
            raise ValueError(f"no chapter numbered {', '.join(unknown)}; chapters are {', '.join(sorted(known))}")
        paths = [p for p in paths if p.name[:2] in wanted]
    return paths


def _describe_failure(err: Exception) -> str:
    cell = getattr(err, "exec_count", None) or getattr(err, "cell_index", None)
    ename, evalue = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
    where = f"cell {cell}" if cell is not None else "set-up"
    return f"{where}: {ename}: {str(evalue).splitlines()[0] if evalue else ''}"


def run_chapters(
    paths: Sequence[Path], out: Path, *, quick: bool = False, device: str = "auto", progress: bool = True
) -> list[ChapterRun]:
    """Execute each notebook with papermill into ``out``; stop at the first failure."""
    check_output_folder(out)
    settings = {
        "FUSION_KIT_QUICK": "1" if quick else "0",
        "FUSION_KIT_DEVICE": device,
        "FUSION_KIT_RESULTS": str((out / "results").resolve()),  # chapter 08 writes its tables here
    }
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)  # the kernels inherit them
    try:
        return _run_each(paths, out, progress)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run_each(paths: Sequence[Path], out: Path, progress: bool) -> list[ChapterRun]:
    import papermill as pm
    from tqdm.auto import tqdm

    runs: list[ChapterRun] = []
    bar = tqdm(paths, desc="course", unit="chapter", disable=not progress)
    for path in bar:
        bar.set_postfix_str(path.stem)
        target = out / path.name
        start = time.perf_counter()
        try:
            pm.execute_notebook(
                str(path), str(target), cwd=str(path.parent), kernel_name="python3", progress_bar=False
            )
            runs.append(ChapterRun(path.stem, target, time.perf_counter() - start, peak_mib=_peak_child_mib()))
        except Exception as err:  # papermill raises its own error type with the failing cell
            runs.append(ChapterRun(path.stem, target, time.perf_counter() - start, _describe_failure(err), _peak_child_mib()))
            break
    bar.close()
    return runs


def report(runs: list[ChapterRun], out: Path) -> int:
    """Print and write the timings (``timings.md``) and the course summary (``summary.md``); 1 if a chapter failed."""
    lines = ["| chapter | seconds | peak memory so far (MiB) | result |", "|---|---:|---:|---|"]
    lines += [f"| {r.name} | {r.seconds:.1f} | {r.peak_mib:.0f} | {r.error or 'ok'} |" for r in runs]
    lines.append(f"| **total** | {sum(r.seconds for r in runs):.1f} | {max(r.peak_mib for r in runs):.0f} | |")
    timings = "\n".join(lines)
    (out / "timings.md").write_text(timings + "\n")
    print(timings)
    (out / "summary.md").write_text(_summary(timings, out))
    failed = [r for r in runs if r.error]
    if failed:
        r = failed[0]
        print(f"\nchapter {r.name} failed at {r.error}\nopen {r.output} to see the cell and its traceback", file=sys.stderr)
        return 1
    print(f"\nall {len(runs)} chapters ran; executed notebooks are in {out}, the summary in {out / 'summary.md'}")
    return 0


def _summary(timings: str, out: Path) -> str:
    """The course results in one page: the benchmark table and figure of chapter 08, if it ran, and the timings."""
    parts = ["# Course results\n"]
    results = out / "results"
    if (results / "benchmark.md").is_file():
        parts += ["## Benchmark (chapter 08)\n", (results / "benchmark.md").read_text()]
        if (results / "benchmark.png").is_file():
            parts.append("![benchmark](results/benchmark.png)\n")
    if (results / "capstone.md").is_file():
        parts += ["## Capstone entry (chapter 08)\n", (results / "capstone.md").read_text()]
    parts += ["## Chapters\n", timings + "\n"]
    return "\n".join(parts)
