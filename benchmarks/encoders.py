"""Modality-specific encoders: does fitting each encoder to its modality, sharing one between the images, or
pretraining each on its own modality change what concatenation reaches?

The protocol is the chapters': one cohort and split per regime (``make_brain_cohort(1000, seed=0, **knob)``),
``concat`` of MRI, PET and the table trained by ``compare`` with ``fit``'s defaults (30 epochs, early
stopping), once per training seed; each variant is paired with the identical-encoder model on the same test
subjects and seeds (t interval over seeds, bootstrap over test subjects). Variants:

- **identical**: every image gets the same small CNN (channels 8, 16, 32, kernel 3), the table an MLP (32);
- **matched**: PET, smooth and low-resolution, gets a shallower encoder with larger kernels (channels 8, 16,
  kernel 5); the MRI, with fine structure, one residual unit per stage more; the table a deeper MLP (32, 16);
  and each of the three changes alone (**matched pet only**, ...), to see which one does what;
- **shared images**: one encoder for MRI and PET (co-registered, one grid), a learned embedding per modality;
- **pretrained, frozen** and **pretrained, fine-tuned**: each encoder first trained alone on its modality
  (a unimodal model), then the fusion trained with the encoders fixed or updated (the time includes both).

Cases: the default cohort, ``interaction`` (where the images' fine detail matters), and the default cohort with
200 subjects (140 to train: small data, where pretraining each encoder alone is expected to help most).

Writes the ``encoders`` section of ``benchmarks/RESULTS.md``; the raw runs go to ``build/encoders.csv``.

    python benchmarks/encoders.py           # full size, seeds 0 1 2 (about 5 minutes on 2 cores)
    python benchmarks/encoders.py --quick   # 400 subjects, 8 epochs, seeds 0 1
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fusion_kit.experiment import Setup, compare_regimes  # noqa: E402
from fusion_kit.report import markdown_table, paired_comparison  # noqa: E402

from results import machine, protocol_arguments, raw_runs, update_section  # noqa: E402

MODALITIES = ("mri", "pet", "clinical")
IDENTICAL = "identical"
MATCHED = {"pet": {"channels": (8, 16), "kernel_size": 5}, "mri": {"res_units": 1}, "clinical": {"hidden": (32, 16)}}
VARIANTS = {
    IDENTICAL: {},
    "matched": {"encoders": MATCHED},
    **{f"matched {m} only": {"encoders": {m: MATCHED[m]}} for m in MODALITIES},  # which change does what
    "shared images": {"shared_images": True},
    "pretrained, frozen": {"pretrain": "frozen"},
    "pretrained, fine-tuned": {"pretrain": "fine-tuned"},
}
# (name, subjects at full size, knobs): the two regimes, and the default cohort with few subjects (small data)
CASES = (("default", 1000, {}), ("interaction", 1000, {"interaction": 1.0}), ("default, 200 subjects", 200, {}))


def run(args) -> pd.DataFrame:
    setups = [Setup("concat", MODALITIES, options, name=name) for name, options in VARIANTS.items()]
    rows = []
    for regime, subjects, knobs in CASES:
        n = subjects if not args.quick else max(subjects * 2 // 5, 120)
        comparison = compare_regimes(setups, {regime: knobs}, n_subjects=n, seed=0, seeds=args.seeds,
                                     epochs=args.epochs, progress=False)[regime]
        stats = paired_comparison(comparison, IDENTICAL, n_boot=2000, seed=0)
        for r in comparison.runs:
            rows.append({"regime": regime, "variant": r.setup.label, "seed": r.seed,
                         "balanced_accuracy": r.metrics.balanced_accuracy, "seconds": r.seconds,
                         "parameters": r.parameters})
        for label, s in stats.iterrows():
            rows.append({"regime": regime, "variant": label, "reference": IDENTICAL, **s.to_dict()})
    return pd.DataFrame(rows)


def _interval(s: pd.Series, kind: str) -> str:
    low, high = s[f"{kind}_low"], s[f"{kind}_high"]
    return "" if not np.isfinite(low) else f"{low * 100:+.1f} to {high * 100:+.1f}"


def table(frame: pd.DataFrame, regime: str) -> pd.DataFrame:
    runs = frame[(frame["regime"] == regime) & frame["seed"].notna()]
    out = runs.groupby("variant", sort=False).agg(bacc=("balanced_accuracy", "mean"), sd=("balanced_accuracy", "std"),
                                                  parameters=("parameters", "first"), seconds=("seconds", "mean"))
    stats = frame[(frame["regime"] == regime) & frame["reference"].notna()].set_index("variant")
    out["vs identical"] = stats["diff"].reindex(out.index)
    out["seeds 95%"] = [_interval(stats.loc[v], "seed") if v in stats.index else "" for v in out.index]
    out["subjects 95%"] = [_interval(stats.loc[v], "boot") if v in stats.index else "" for v in out.index]
    return out.astype({"parameters": int})


def verdict(t: pd.DataFrame) -> str:
    """Which variants differ from identical encoders beyond the noise (both intervals excluding 0)."""
    clear = []
    for v in t.index[1:]:
        ends = [t.loc[v, c] for c in ("seeds 95%", "subjects 95%")]
        if all(e and not float(e.split(" to ")[0]) <= 0 <= float(e.split(" to ")[1]) for e in ends):
            clear.append(f"{v} ({t.loc[v, 'vs identical'] * 100:+.1f} points)")
    if not clear:
        return "No variant differs from identical encoders beyond the noise: every paired interval holds 0."
    return "Beyond the noise (both intervals exclude 0): " + ", ".join(clear) + "; the others are ties."


def figure(frame: pd.DataFrame, path: Path) -> None:
    """Every variant in every case: mean balanced accuracy over seeds, ± 1 sd."""
    from fusion_kit.viz import plot_grouped_bars

    tables = {regime: table(frame, regime) for regime, _, _ in CASES}
    means = pd.DataFrame({regime: t["bacc"] for regime, t in tables.items()})
    spread = pd.DataFrame({regime: t["sd"] for regime, t in tables.items()})
    fig = plot_grouped_bars(means, spread, error_label=f"± 1 sd over {frame['seed'].nunique()} seeds", chance=1 / 3,
                            ylim=(0, 1), legend_title="case",
                            title="concat with each choice of encoders (test balanced accuracy)")
    fig.savefig(path, dpi=90)


def write(frame: pd.DataFrame, args) -> None:
    body = ["## Encoders fitted to each modality (benchmarks/encoders.py)", "",
            "`concat` of MRI, PET and the table, 1000 subjects (and 200 for small data), one split (seed 0) per case, seeds "
            f"{', '.join(map(str, args.seeds))}, up to {args.epochs} epochs; balanced accuracy on the 150 test subjects; "
            "`vs identical`: mean paired difference over seeds, intervals (points) 95% over seeds (t) and over test "
            "subjects (bootstrap); parameters: trainable ones (a frozen encoder has none); seconds include "
            "pretraining. Matched encoders: PET channels (8, 16) with kernel 5, MRI one residual unit per stage, "
            "table MLP (32, 16). Machine: " + machine() + ".", "", "![encoders](encoders.png)", ""]
    for regime, _, _ in CASES:
        t = table(frame, regime)
        body += [f"### {regime}", "", verdict(t), "", markdown_table(t.round(3)), ""]
    update_section("encoders", "\n".join(body))


def main() -> None:
    _, args = protocol_arguments(__doc__, "400 subjects (80 for small data), 8 epochs, seeds 0 1")
    frame = raw_runs("encoders", args, run)
    if args.quick:
        for regime, _, _ in CASES:
            print(regime, verdict(table(frame, regime)))
            print(table(frame, regime).round(3).to_string())
        return
    figure(frame, Path(__file__).resolve().parent / "encoders.png")
    write(frame, args)
    print("wrote the encoders section of benchmarks/RESULTS.md and benchmarks/encoders.png")


if __name__ == "__main__":
    main()
