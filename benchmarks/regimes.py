"""When each family of fusion wins: every applicable strategy in the default cohort and in each regime.

The protocol is the chapters' (chapter 08's): one cohort and one stratified split per regime
(``make_brain_cohort(1000, seed=0, **knob)``, ``split_dataset(cohort, seed=0)``), every model built with
its defaults (tables scaled inside the model) and trained by ``compare`` with ``fit``'s defaults
(30 epochs, early stopping on validation), once per training seed. Differences are paired: the same
test subjects and the same seeds, against concatenation and against late fusion (``average``), with a
t interval over seeds and a bootstrap interval over test subjects (``report.paired_comparison``).

Regimes: the default cohort, and each knob of ``fusion_kit.data.regimes`` at 1 (interaction,
conditioning, reliability). Stacking and the weighted vote also run with their meta-rule fitted on
in-sample unimodal probabilities (``cross_fit=1``), to show what cross-fitting changes.

Writes the ``regimes`` section of ``benchmarks/RESULTS.md``, ``benchmarks/regimes.png`` and, at full size,
``benchmarks/regimes_scores.csv`` (one row per regime, model and seed: the file chapter 08's "when to use
which family" table is generated from); the raw scores and paired statistics go to ``build/regimes.csv`` so
``--reuse`` can redraw without training.

    python benchmarks/regimes.py                 # full size, seeds 0 1 2 (about half an hour on 2 cores)
    python benchmarks/regimes.py --quick         # 400 subjects, 8 epochs, seeds 0 1: a check that it runs
    python benchmarks/regimes.py --regime reliability   # re-run one regime (after its generator changed),
                                                        # keeping the others' rows of build/regimes.csv
    python benchmarks/regimes.py --strategy hemis poe   # add (or re-run) strategies in every regime, with
                                                        # concat and average retrained for the paired statistics
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fusion_kit.experiment import REGIMES, Setup, compare_regimes  # noqa: E402
from fusion_kit.data import make_brain_cohort  # noqa: E402
from fusion_kit.models import STRATEGIES, compatible_modalities  # noqa: E402
from fusion_kit.report import markdown_table, paired_comparison  # noqa: E402
from fusion_kit.viz import FAMILY_COLORS, new_figure  # noqa: E402
from fusion_kit.viz.style import family_handles  # noqa: E402

from results import machine, update_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCORES = ROOT / "benchmarks" / "regimes_scores.csv"
# the issue's targets: in each regime, the best of these families' methods against average and concat (points)
TARGETS = {
    "interaction": (["channel_stack", "tabular_channels", "hierarchical", "exchange", "spatial_attention",
                     "image_cross_attention"], 10, 5),
    "conditioning": (["film", "daft", "tensor", "product"], 8, 3),
    "reliability": (["modality_attention", "gmu", "evidential"], 5, 3),
}
CONCAT, AVERAGE = "concat", "average"


def lineup(data) -> list[Setup]:
    """Every registered strategy on the largest selection it accepts, each single modality, and the
    in-sample variants of the two cross-fitted rules."""
    setups = [Setup("unimodal", (m,), name=f"unimodal ({m})") for m in data.modalities]
    setups += [Setup(name, compatible_modalities(name, data), name=name) for name in STRATEGIES if name != "unimodal"]
    setups += [Setup(name, data.modalities, {"cross_fit": 1}, name=f"{name}, in-sample") for name in ("stacking", "weighted_vote")]
    return setups


def run(args) -> pd.DataFrame:
    rows = []
    cohort = make_brain_cohort(args.subjects, seed=0)  # every regime has the same modalities
    setups = lineup(cohort)
    if args.strategy:
        setups = [s for s in setups if s.label in (*args.strategy, CONCAT, AVERAGE)]
    for regime in args.regime or REGIMES:
        start = time.perf_counter()
        comparison = compare_regimes(setups, [regime], n_subjects=args.subjects, seed=0, seeds=args.seeds,
                                     epochs=args.epochs)[regime]
        print(f"{regime}: {len(comparison.runs)} runs in {time.perf_counter() - start:.0f} s", flush=True)
        for r in comparison.runs:
            rows.append({"regime": regime, "model": r.setup.label, "family": r.family, "seed": r.seed,
                         "balanced_accuracy": r.metrics.balanced_accuracy, "seconds": r.seconds,
                         "parameters": r.parameters})
        for reference in (CONCAT, AVERAGE):
            stats = paired_comparison(comparison, reference, n_boot=2000, seed=0)
            for label, s in stats.iterrows():
                rows.append({"regime": regime, "model": label, "reference": reference, **s.to_dict()})
    return pd.DataFrame(rows)


def summary(frame: pd.DataFrame, regime: str) -> pd.DataFrame:
    """One row per model: mean and spread over seeds, and the paired differences to concat and average."""
    runs = frame[(frame["regime"] == regime) & frame["seed"].notna()]
    table = runs.groupby("model", sort=False).agg(family=("family", "first"), bacc=("balanced_accuracy", "mean"),
                                                  sd=("balanced_accuracy", "std"), seconds=("seconds", "mean"))
    for reference, short in ((CONCAT, "concat"), (AVERAGE, "average")):
        stats = frame[(frame["regime"] == regime) & (frame["reference"] == reference)].set_index("model")
        table[f"vs {short}"] = stats["diff"]
        table[f"{short} seeds 95%"] = [_interval(stats, m, "seed") for m in table.index]
        table[f"{short} subjects 95%"] = [_interval(stats, m, "boot") for m in table.index]
    return table.sort_values("bacc", ascending=False)


def _interval(stats: pd.DataFrame, model: str, kind: str) -> str:
    if model not in stats.index or not np.isfinite(stats.loc[model, f"{kind}_low"]):
        return ""
    return f"{stats.loc[model, f'{kind}_low'] * 100:+.1f} to {stats.loc[model, f'{kind}_high'] * 100:+.1f}"


def _margin(table: pd.DataFrame, model: str, reference: str) -> str:
    """'+1.8 points against concat (seeds ...; subjects ...), a tie' or '..., a lead': a tie when either interval holds 0."""
    d = table.loc[model, f"vs {reference}"] * 100
    seeds, subjects = table.loc[model, f"{reference} seeds 95%"], table.loc[model, f"{reference} subjects 95%"]
    clear = [bool(text) and not float(text.split(" to ")[0]) <= 0 <= float(text.split(" to ")[1]) for text in (seeds, subjects)]
    ahead = "a lead" if d > 0 else "behind"
    word = {(True, True): f"{ahead} (both intervals exclude 0)",
            (False, True): f"{ahead} over these test subjects, not yet over seeds (the 3-seed interval holds 0)",
            (True, False): f"{ahead} over seeds, not over the test subjects' resampling",
            (False, False): "a tie, inside the noise"}[tuple(clear)]
    return f"{d:+.1f} points against {reference} (seeds {seeds or '-'}; subjects {subjects or '-'}): {word}"


def verdict(table: pd.DataFrame, regime: str) -> str:
    """The issue's target for a regime: the best of its families' methods against average and concat."""
    if regime not in TARGETS:
        best = table.index[0]
        lines = [f"Best: {best} ({table.loc[best, 'bacc']:.3f}), {_margin(table, best, 'concat')}."]
        if "cross_attention" in table.index:
            lines.append(f"cross_attention ({table.loc['cross_attention', 'bacc']:.3f}): {_margin(table, 'cross_attention', 'concat')}.")
        return " ".join(lines)
    names, over_average, over_concat = TARGETS[regime]
    pool = table[table.index.isin(names)]
    best = pool["bacc"].idxmax()
    a, c = pool.loc[best, "vs average"] * 100, pool.loc[best, "vs concat"] * 100
    met = "met" if a >= over_average and c >= over_concat else "NOT met"
    return (f"Best of {', '.join(names)}: **{best}** ({pool.loc[best, 'bacc']:.3f}): {_margin(pool, best, 'average')}; "
            f"{_margin(pool, best, 'concat')}. Target {over_average} and {over_concat} points: {met} (means).")


def cross_fitting(table: pd.DataFrame) -> str:
    """What fitting the meta-rules on out-of-fold probabilities changed, against in-sample."""
    parts = []
    for name in ("stacking", "weighted_vote"):
        d = (table.loc[name, "bacc"] - table.loc[f"{name}, in-sample", "bacc"]) * 100
        parts.append(f"{name} {d:+.1f} points (cross-fitted {table.loc[name, 'bacc']:.3f}, in-sample "
                     f"{table.loc[f'{name}, in-sample', 'bacc']:.3f}, {table.loc[name, 'seconds'] / table.loc[f'{name}, in-sample', 'seconds']:.1f}x the time)")
    return "Cross-fitting the meta-rule, against fitting it in-sample: " + "; ".join(parts) + "."


def figure(frame: pd.DataFrame, path: Path) -> None:
    """One panel per regime: balanced accuracy of every model (mean, and the seeds' range), by family colour."""
    fig, axes = new_figure(15, 9.5, ncols=len(REGIMES), sharey=False)
    for ax, regime in zip(axes[0], REGIMES):
        table = summary(frame, regime).iloc[::-1]
        runs = frame[(frame["regime"] == regime) & frame["seed"].notna()]
        lo = runs.groupby("model")["balanced_accuracy"].min().reindex(table.index)
        hi = runs.groupby("model")["balanced_accuracy"].max().reindex(table.index)
        y = np.arange(len(table))
        ax.barh(y, table["bacc"], color=[FAMILY_COLORS.get(f, "#444444") for f in table["family"]])
        ax.hlines(y, lo, hi, color="black", linewidth=1)
        ax.axvline(1 / 3, color="k", linestyle=":", linewidth=1)
        for ref, style in ((CONCAT, "--"), (AVERAGE, "-.")):
            ax.axvline(table.loc[ref, "bacc"], color="#555555", linestyle=style, linewidth=1)
        ax.set_yticks(y, table.index, fontsize=7)
        ax.set_xlim(0.3, max(0.85, float(hi.max()) + 0.02))
        ax.set_title(regime if regime == "default" else f"{regime} = 1", fontsize=10)
        ax.set_xlabel("balanced accuracy (test)")
    axes[0, -1].legend(handles=family_handles(frame["family"].dropna()), fontsize=7, loc="lower right", title="family",
                       title_fontsize=7)
    fig.suptitle("Every strategy in each regime: mean over training seeds (bar) and the seeds' range (line); "
                 "dotted: chance, dashed: concat, dash-dot: average", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def write_scores(frame: pd.DataFrame) -> None:
    """The per-seed scores of the registered strategies, small enough to keep in the repository (chapter 08
    reads them); the in-sample variants of the cross-fitted rules stay in RESULTS.md."""
    runs = frame[frame["seed"].notna() & ~frame["model"].str.endswith(", in-sample")]
    columns = ["regime", "model", "family", "seed", "balanced_accuracy", "seconds", "parameters"]
    scores = runs[columns].astype({"seed": int, "parameters": int})
    scores.to_csv(SCORES, index=False, float_format="%.5f")


def write(frame: pd.DataFrame, args) -> None:
    body = ["## When each family wins: the cohort's regimes (benchmarks/regimes.py)", "",
            f"{args.subjects} subjects per cohort, one cohort and split (seed 0) per regime, every model trained with "
            f"seeds {', '.join(map(str, args.seeds))} for up to {args.epochs} epochs (the chapters' protocol); balanced "
            "accuracy on the 150 test subjects. `vs concat` / `vs average`: mean paired difference over seeds; "
            "intervals (in points): 95% t interval over the seeds, and 95% bootstrap over the test subjects. "
            f"Machine: {machine()}.", "", "![regimes](regimes.png)", ""]
    for regime in REGIMES:
        table = summary(frame, regime)
        shown = table[["family", "bacc", "sd", "vs concat", "concat seeds 95%", "concat subjects 95%", "vs average",
                       "average seeds 95%", "seconds"]]
        body += [f"### {regime}" + ("" if regime == "default" else " = 1"), "", verdict(table, regime), "",
                 cross_fitting(table), "", markdown_table(shown), ""]
    update_section("regimes", "\n".join(body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="400 subjects, 8 epochs, seeds 0 1")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--reuse", action="store_true", help="redraw from build/regimes.csv without training")
    parser.add_argument("--regime", nargs="+", choices=list(REGIMES), default=None,
                        help="train these regimes only; the others' rows come from build/regimes.csv")
    parser.add_argument("--strategy", nargs="+", choices=[s for s in STRATEGIES if s != "unimodal"], default=None,
                        help="train these strategies only (and the references); the others' rows come from build/regimes.csv")
    args = parser.parse_args()
    args.subjects, args.epochs = (400, 8) if args.quick else (1000, 30)
    args.seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2])
    raw = ROOT / "build" / ("regimes_quick.csv" if args.quick else "regimes.csv")
    if args.reuse:
        frame = pd.read_csv(raw)
    else:
        frame = run(args)
        if args.regime or args.strategy:
            if not raw.exists():
                parser.error(f"--regime and --strategy need the other rows in {raw}: run without them once")
            kept = pd.read_csv(raw)
            replaced = pd.Series(True, index=kept.index)  # the kept rows that the new run stands for
            if args.strategy:  # new rows for these strategies; the references' rows are kept as they were
                frame = frame[frame["model"].isin(args.strategy)]
                replaced &= kept["model"].isin(args.strategy)
            if args.regime:
                replaced &= kept["regime"].isin(args.regime)
            frame = pd.concat([kept[~replaced], frame], ignore_index=True)
        raw.parent.mkdir(exist_ok=True)
        frame.to_csv(raw, index=False)
    if not args.quick:
        write_scores(frame)
    if args.quick:
        for regime in REGIMES:
            print(regime, verdict(summary(frame, regime), regime))
        return
    figure(frame, Path(__file__).resolve().parent / "regimes.png")
    write(frame, args)
    print("wrote the regimes section of benchmarks/RESULTS.md and benchmarks/regimes.png")


if __name__ == "__main__":
    main()
