"""Write one benchmark's section of benchmarks/RESULTS.md, leaving the other sections alone."""
from __future__ import annotations

import platform
import re
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nEach section is written by the script named in it; rerun the script to refresh it.\n"


def machine() -> str:
    """One line naming the machine the numbers were measured on."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, {device}, torch {torch.__version__}"


def update_section(name: str, body: str, path: Path = RESULTS) -> Path:
    """Replace (or append) the section between the markers for ``name``."""
    text = path.read_text() if path.exists() else HEADER
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    return path


def protocol_arguments(doc: str, quick_help: str, flags: dict[str, str] | None = None):
    """The command line every training benchmark shares: --quick (400 subjects, 8 epochs, seeds 0 1) and
    --reuse (redraw from the raw file of the last run), and a benchmark's own on/off ``flags`` (name -> help);
    returns the parser and the parsed arguments, with ``subjects``, ``epochs`` and ``seeds`` set for the
    chosen size."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--reuse", action="store_true", help="redraw from the last run's raw file without training")
    for name, help_text in (flags or {}).items():
        parser.add_argument(f"--{name}", action="store_true", help=help_text)
    args = parser.parse_args()
    args.subjects, args.epochs = (400, 8) if args.quick else (1000, 30)
    args.seeds = [0, 1] if args.quick else [0, 1, 2]
    return parser, args


def raw_runs(name: str, args, run):
    """The raw runs in ``build/NAME.csv`` (``NAME_quick.csv`` in quick mode): read with --reuse, else made by
    ``run(args)`` and written there."""
    import pandas as pd

    raw = Path(__file__).resolve().parent.parent / "build" / f"{name}{'_quick' if args.quick else ''}.csv"
    if args.reuse:
        return pd.read_csv(raw)
    frame = run(args)
    raw.parent.mkdir(exist_ok=True)
    frame.to_csv(raw, index=False)
    return frame
