"""The ``fusion-kit`` command line: check the set-up, run a demo, execute and hand out the course.

    fusion-kit info                    versions and the device that will be used
    fusion-kit demo [--quick]          generate the cohort, train unimodal and fused models, print metrics
    fusion-kit course [--quick] [--only 03,05] [--device cpu] [--out build/course]
                                       execute every chapter headless with papermill
    fusion-kit book    [--out build/book] [--only 03,05]
                                       the executed chapters as a static HTML site (Jupyter Book 1.x)
    fusion-kit student [--out build/student] [--only ...] [--run] [--quick]
                                       the chapters without their solutions, exercise outputs cleared
    fusion-kit lab     [FOLDER] [--ip 0.0.0.0] [--port 8888] [--no-browser] [--quick] [--device cuda]
                                       JupyterLab on chapters/ (or FOLDER) with this environment's kernel
    fusion-kit train MANIFEST.csv --strategy NAME [--image-size N] [--epochs N] [--batch-size N]
                     [--folds K] [--augment] [--device D] [--workers N] [--out DIR]
                                       train on your study from disk; under torchrun, on every process

A mistake in a command (an unknown chapter, a folder that cannot be written, a device this machine
lacks) is one line on stderr and exit status 2, found before any chapter runs; ``--debug`` shows the
traceback instead.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import delivery
from .runner import CHAPTERS, chapter_paths, check_output_folder, report, run_chapters

__all__ = ["main", "run_demo"]

USER_ERROR = 2


def run_demo(quick: bool, device: str) -> int:
    """Generate the cohort, train each single modality and one fusion model, print a table."""
    from ..core import seed_everything
    from ..data import make_brain_cohort, split_dataset
    from ..models import build_model
    from ..train import evaluate, fit

    n, epochs = (400, 8) if quick else (1000, 30)
    start = time.perf_counter()
    cohort = make_brain_cohort(n_subjects=n, seed=0)
    print(f"cohort: {cohort.summary()}\n(generated or loaded in {time.perf_counter() - start:.1f}s)")
    train, val, test = split_dataset(cohort, seed=0)
    runs = [("unimodal", [m]) for m in cohort.modalities] + [("concat", list(cohort.modalities))]
    print(f"\n{'model':<28} {'balanced acc':>12} {'macro AUC':>10} {'seconds':>8}")
    for strategy, modalities in runs:
        seed_everything(0)
        model = build_model(strategy, cohort, modalities=modalities)
        history = fit(model, train, val, epochs=epochs, device=device, progress=not quick)
        scores = evaluate(model, test)
        name = f"{strategy} ({'+'.join(modalities)})"
        print(f"{name:<28} {scores.balanced_accuracy:>12.3f} {scores.auc:>10.3f} {history.seconds:>8.1f}")
    return 0


# ------------------------------------------------------------------ the parser
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusion-kit", description="The multimodal fusion course.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show a full traceback when something fails")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, parents=[common])

    command("info", "print versions and the device")
    demo = command("demo", "generate data, train unimodal and fused models, print metrics")
    course = command("course", "execute every chapter headless (papermill)")
    for p in (demo, course):
        p.add_argument("--quick", action="store_true", help="small sizes (sets FUSION_KIT_QUICK=1)")
        p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    course.add_argument("--out", default="build/course", help="folder for executed notebooks (default build/course)")
    book = command("book", "build the executed chapters into a static HTML site")
    book.add_argument("--out", default="build/book", help="output folder (default build/book); the site is in OUT/_build/html")
    student = command("student", "write student copies of the chapters, without solutions")
    student.add_argument("--out", default="build/student", help="output folder (default build/student)")
    student.add_argument("--run", action="store_true", help="then execute every copy with papermill, to check it runs")
    student.add_argument("--quick", action="store_true", help="with --run: small sizes (FUSION_KIT_QUICK=1)")
    for p in (course, book, student):
        p.add_argument("--only", default=None, help="comma-separated chapter numbers, e.g. 03,05")
    lab = command("lab", "open JupyterLab on the chapters with this environment's kernel")
    lab.add_argument("folder", nargs="?", default=str(CHAPTERS),
                     help="folder to open (default: chapters/; e.g. build/student for the student copies)")
    lab.add_argument("--ip", default=None, help="address to listen on; 0.0.0.0 for a workshop room (default localhost)")
    lab.add_argument("--port", type=int, default=None, help="port (default: Jupyter's, 8888 or the next free one)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser (remote or headless machine)")
    lab.add_argument("--quick", action="store_true", help="small sizes in every chapter (FUSION_KIT_QUICK=1)")
    lab.add_argument("--device", default=None, help="device for the chapters: auto (default), cpu, cuda, mps")
    _train_arguments(command("train", "train a strategy on your study (a participants CSV), from disk"))
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {text!r}")
    return value


def _train_arguments(train: argparse.ArgumentParser) -> None:
    train.add_argument("manifest", help="participants CSV: subject_id, label, image paths, table columns")
    train.add_argument("--strategy", required=True, help="a registered strategy, e.g. concat, gmu, late_average")
    train.add_argument("--images", default="mri,pet", help="comma-separated image columns (default mri,pet)")
    train.add_argument("--image-size", type=_positive, default=None, help="resize every image to N per side")
    train.add_argument("--epochs", type=_positive, default=30, help="most epochs per run (default 30)")
    train.add_argument("--batch-size", type=_positive, default=None, help="subjects per step (default: from the set size)")
    train.add_argument("--folds", type=_positive, default=1, help="K-fold cross-validation (default 1: one split)")
    train.add_argument("--augment", action="store_true", help="MONAI random transforms on the training subjects")
    train.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    train.add_argument("--workers", type=_positive, default=None, help="DataLoader workers (default: from the cores)")
    train.add_argument("--cache", default="disk", help="disk (default), memory or none")
    train.add_argument("--seed", type=_positive, default=0, help="seed of splits, weights and batches (default 0)")
    train.add_argument("--out", default="runs/study", help="output folder (default runs/study)")


# ------------------------------------------------------------------ the commands
def _chapters(args) -> list[Path]:
    return chapter_paths(args.only.split(",") if args.only is not None else None)


def _info(args) -> int:
    from ..core import versions

    for key, value in versions().items():
        print(f"{key:<13} {value}")
    return 0


def _course(args) -> int:
    paths, out = _chapters(args), check_output_folder(Path(args.out))
    return report(run_chapters(paths, out, quick=args.quick, device=args.device), out)


def _book(args) -> int:
    paths = _chapters(args)
    index = delivery.build_book(paths, Path(args.out), quiet=False)
    print(f"the book ({len(paths)} chapters) is in {index.parent}; open {index}")
    return 0


def _student(args) -> int:
    paths, out = _chapters(args), check_output_folder(Path(args.out))
    written = delivery.write_student_copies(paths, out)
    print(f"{len(written)} student copies in {out}: solution cells removed, exercise outputs cleared")
    if not args.run:
        return 0
    executed = out / "executed"  # chapter 08 writes its tables in executed/results
    return report(run_chapters(written, executed, quick=args.quick), executed)


def _lab(args) -> int:
    argv, env = delivery.lab_command(Path(args.folder), ip=args.ip, port=args.port, open_browser=not args.no_browser,
                                     quick=args.quick, device=args.device)
    print(" ".join(argv))
    return subprocess.call(argv, env=env)


def _short(path: Path) -> str:
    """The path relative to the working folder where that is shorter (the same on every machine), else absolute."""
    relative, absolute = os.path.relpath(path), str(path.resolve())
    return relative if len(relative) < len(absolute) else absolute


def _train(args) -> int:
    from ..distributed import finish, main_process
    from ..study import train_study

    try:
        result = train_study(args.manifest, args.strategy, image_size=args.image_size,
                             image_columns=[c.strip() for c in args.images.split(",") if c.strip()], epochs=args.epochs,
                             batch_size=args.batch_size, folds=args.folds, augment=args.augment, device=args.device,
                             workers=args.workers, out=args.out, seed=args.seed, cache=args.cache)
    finally:
        finish()
    if main_process():
        print(result.table())
        print(f"written: {_short(Path(args.out) / 'metrics.json')}, history.csv and the model weights")
    return 0


COMMANDS = {"info": _info, "demo": lambda a: run_demo(a.quick, a.device), "course": _course, "book": _book,
            "student": _student, "lab": _lab, "train": _train}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a user's mistake is one line on stderr and exit status 2 (``--debug``: the traceback)."""
    args = _parser().parse_args(argv)
    try:
        if getattr(args, "device", None):
            from ..core import get_device

            get_device(args.device)  # fail now, with the list of devices, not inside a chapter
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("fusion-kit: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every failure becomes one readable line
        if args.debug:
            raise
        text = str(err).strip().splitlines()
        reason = text[0] if text else type(err).__name__
        print(f"fusion-kit {args.command}: {reason} (run with --debug for the traceback)", file=sys.stderr)
        return USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
