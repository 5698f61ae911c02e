"""The ``fusion-kit`` command line: check the set-up, run a demo, execute the course.

    fusion-kit info                    versions and the device that will be used
    fusion-kit demo [--quick]          generate the cohort, train unimodal and fused models, print metrics
    fusion-kit course [--quick] [--only 03,05] [--device cpu] [--out build/course]
                                       execute every chapter headless with papermill
    fusion-kit book | student | lab    the course as a static site, student copies, JupyterLab
                                       (see fusion_kit.delivery)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["main", "chapter_paths", "run_chapters", "ChapterRun", "versions"]

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"


def versions() -> dict[str, str]:
    """Versions of the packages the course rests on, and the device ``"auto"`` resolves to."""
    import monai
    import numpy
    import sklearn
    import torch

    from .core import get_device

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "monai": monai.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "device": str(get_device("auto")),
    }


# -------------------------------------------------------------------- demo
def run_demo(quick: bool, device: str) -> int:
    """Generate the cohort, train each single modality and one fusion model, print a table."""
    from . import seed_everything
    from .data import make_brain_cohort, split_dataset
    from .models import build_model
    from .train import evaluate, fit

    n, epochs = (400, 8) if quick else (1000, 30)
    start = time.perf_counter()
    cohort = make_brain_cohort(n_subjects=n, seed=0)
    print(f"cohort: {cohort.summary()}\n(generated or loaded in {time.perf_counter() - start:.1f}s)")
    splits = split_dataset(cohort, seed=0)
    runs = [("unimodal", [m]) for m in cohort.modalities] + [("concat", list(cohort.modalities))]
    print(f"\n{'model':<28} {'balanced acc':>12} {'macro AUC':>10} {'seconds':>8}")
    for strategy, modalities in runs:
        seed_everything(0)
        model = build_model(strategy, cohort, modalities=modalities)
        train, val, test = (s.select(modalities) for s in splits)
        history = fit(model, train, val, epochs=epochs, device=device, progress=not quick)
        scores = evaluate(model, test)
        name = f"{strategy} ({'+'.join(modalities)})"
        print(f"{name:<28} {scores.balanced_accuracy:>12.3f} {scores.auc:>10.3f} {history.seconds:>8.1f}")
    return 0


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
    if only:
        wanted = {o.strip().zfill(2) for o in only if o.strip()}
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
    out.mkdir(parents=True, exist_ok=True)
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


def _report(runs: list[ChapterRun], out: Path) -> int:
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


# -------------------------------------------------------------------- main
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusion-kit", description="The multimodal fusion course.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print versions and the device")
    demo = sub.add_parser("demo", help="generate data, train unimodal and fused models, print metrics")
    course = sub.add_parser("course", help="execute every chapter headless (papermill)")
    for p in (demo, course):
        p.add_argument("--quick", action="store_true", help="small sizes (sets FUSION_KIT_QUICK=1)")
        p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    course.add_argument("--only", default=None, help="comma-separated chapter numbers, e.g. 03,05")
    course.add_argument("--out", default="build/course", help="folder for executed notebooks (default build/course)")
    from . import delivery

    delivery.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "info":
        for key, value in versions().items():
            print(f"{key:<13} {value}")
        return 0
    from . import delivery

    if args.command in delivery.COMMANDS:
        return delivery.run_command(args)
    from .core import get_device

    get_device(args.device)  # fail now, with the list of devices, not inside a chapter
    if args.command == "demo":
        return run_demo(args.quick, args.device)
    paths = chapter_paths(args.only.split(",") if args.only else None)
    out = Path(args.out)
    return _report(run_chapters(paths, out, quick=args.quick, device=args.device), out)


if __name__ == "__main__":
    sys.exit(main())
