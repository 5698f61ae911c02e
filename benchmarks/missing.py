"""Missing modalities: every method of chapter 07 against the floor, over seeds, as PET goes missing.

The protocol is chapter 07's: one cohort (``make_brain_cohort(1000, seed=0)``) and one stratified split,
PET hidden for a share of the subjects (train, validation and test alike) by ``mask_modality(cohort,
"pet", rate, mechanism, seed=0)``; every method of ``experiment.MISSING_STRATEGIES`` and the floor (concat
of MRI and the table, which never reads PET) trained by ``compare`` with ``fit``'s defaults (30 epochs,
early stopping), once per training seed. Differences are paired against the floor (the same test
subjects and seeds): a t interval over seeds and a bootstrap interval over test subjects.

Three questions:
1. **curves**: balanced accuracy against the share of subjects without PET (0 to 90 %), missing completely
   at random, with ± 1 sd over seeds; the 75 % point is the headline table (new methods against the best
   of the others, paired seed by seed), trained with ten seeds instead of three, since there every
   method lies within a seed's spread of the others;
2. **mechanisms**: at 50 %, PET missing completely at random, at random given the age (``"mar"``, older
   subjects skip PET) and by severity (not at random), and the same models tested with PET missing
   completely at random (what a model learned from *why* PET is missing, it loses there);
3. **mismatch**: each model trained at one rate and tested at every other (the same test subjects, PET
   hidden at the test rate), for the methods meant to be robust to it (modality dropout, HeMIS, the
   product of experts) and zero-fill as their reference.

With ``--more``, two further questions, added to the last run's raw file:
4. **curves by mechanism**: the curves of question 1 with PET missing at random given the age and by severity;
5. **the clinical table**: the curves with the clinical table missing completely at random instead of PET,
   against the floor of MRI and PET.

With ``--mixed``, a sixth, added the same way:
6. **two modalities missing**: PET and the clinical table each hidden completely at random for half of the
   subjects, independently (about a quarter of subjects in each of the four patterns), against the floor of
   MRI alone, over ten seeds: where subjects miss different *sets* of modalities, which is what the methods
   that never impute were built for.

With ``--footing``, a seventh:
7. **the same footing**: masked attention is a transformer, which scores less than concatenation even with
   nothing missing; so the transformer is also trained with each of concatenation's other handlings (mean
   and learned imputation, modality dropout) at 50 % (3 seeds) and 75 % (10 seeds), to tell what the
   architecture does from what the handling of the absent modality does.

With ``--unseen``, an eighth:
8. **a combination never seen in training**: every method trained with PET missing completely at random for
   half of the subjects (the table always there), then tested on the same subjects with the clinical table
   also hidden for half of them, so that MRI alone and MRI + PET, which no model met in training, appear at
   test time; the methods that never impute are meant to serve any subset.

Writes the ``missing`` section of ``benchmarks/RESULTS.md`` and ``benchmarks/missing.png`` (with ``--more``
also ``missing_by_mechanism.png`` and ``missing_clinical.png``); the raw runs go to ``build/missing.csv``
(``--reuse`` redraws from it).

    python benchmarks/missing.py            # full size, seeds 0 1 2, 0-9 at 75 % (about 25 minutes on 2 cores)
    python benchmarks/missing.py --more     # then questions 4 and 5 (about 20 minutes more)
    python benchmarks/missing.py --mixed    # then question 6 (about 7 minutes more)
    python benchmarks/missing.py --footing  # then question 7 (about 3 minutes more)
    python benchmarks/missing.py --unseen   # then question 8 (about 3 minutes more)
    python benchmarks/missing.py --quick    # 400 subjects, 8 epochs, seeds 0 1, rates 0 0.5 0.9
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fusion_kit.data import make_brain_cohort, split_dataset  # noqa: E402
from fusion_kit.data.missingness import mask_modality  # noqa: E402
from fusion_kit.experiment import MISSING_STRATEGIES, Setup, compare, missing_strategy  # noqa: E402
from fusion_kit.report import markdown_table, paired_comparison  # noqa: E402
from fusion_kit.train import evaluate  # noqa: E402
from fusion_kit.viz import plot_robustness  # noqa: E402

from results import machine, protocol_arguments, raw_runs, update_section  # noqa: E402

FLOOR = "floor (MRI + clinical)"
FLOORS = {"pet": FLOOR, "clinical": "floor (MRI + PET)", "pet+clinical": "floor (MRI alone)"}  # never reads them
MIXED = "pet+clinical"  # question 6: both hidden, independently, for half of the subjects each
MORE = [("pet", m, r) for m in ("mar", "severity") for r in (0.25, 0.75, 0.9)] + [
    ("clinical", "mcar", r) for r in (0.25, 0.5, 0.75, 0.9)]  # with the 0 and 50 % points of the first run
NEW = ("hemis", "product of experts", "shared-specific", "distillation")
HEAD_RATE = 0.75  # the headline: PET missing completely at random for 75 % of subjects
HEAD_SEEDS = list(range(10))
ROBUST = ("zero-fill", "modality dropout", "hemis", "product of experts", "shared-specific")  # the mismatch question
MECHANISM_NAMES = {"mcar": "completely at random", "mar": "at random given age", "severity": "by severity"}


def lineup(cohort, incomplete: str = "pet") -> list:
    others = tuple(m for m in cohort.modalities if m != incomplete)
    return [Setup("concat", others, name=FLOORS[incomplete])] + [
        missing_strategy(name, cohort.modalities, incomplete=incomplete) for name in MISSING_STRATEGIES]


def splits_for(cohort, rate: float, mechanism: str, incomplete: str = "pet"):
    return split_dataset(mask_modality(cohort, incomplete, rate, mechanism, seed=0), seed=0)


def mixed_splits(cohort, rate: float = 0.5):
    """PET and the clinical table each hidden completely at random for ``rate`` of the subjects, independently."""
    both = mask_modality(mask_modality(cohort, "pet", rate, "mcar", seed=0), "clinical", rate, "mcar", seed=1)
    return split_dataset(both, seed=0)


def train_case(cohort, incomplete: str, mechanism: str, rate: float, args, seeds=None):
    """Every method and the floor at one missing rate and mechanism: the Comparison and its rows."""
    start = time.perf_counter()
    if incomplete == MIXED:  # complete cases and distillation fall back on MRI + table (the table zero-filled)
        splits = mixed_splits(cohort, rate)
        items = [Setup("unimodal", ("mri",), name=FLOORS[MIXED])] + lineup(cohort)[1:]
    else:
        splits, items = splits_for(cohort, rate, mechanism, incomplete), lineup(cohort, incomplete)
    comparison = compare(splits, items, seeds=seeds or args.seeds, epochs=args.epochs, progress=False)
    where = {"modality": incomplete, "mechanism": mechanism, "rate": rate}
    rows = [{"question": "trained", **where, "test_rate": rate, "model": r.setup.label, "seed": r.seed,
             "balanced_accuracy": r.metrics.balanced_accuracy, "seconds": r.seconds} for r in comparison.runs]
    stats = paired_comparison(comparison, FLOORS[incomplete], n_boot=2000, seed=0)
    rows += [{"question": "vs floor", **where, "model": label, **s.to_dict()} for label, s in stats.iterrows()]
    print(f"{incomplete} {mechanism} {rate:.0%}: {len(comparison.runs)} runs in {time.perf_counter() - start:.0f} s",
          flush=True)
    return comparison, rows


def run(args) -> pd.DataFrame:
    cohort = make_brain_cohort(args.subjects, seed=0)
    rows = []
    comparisons = {}
    cases = [("mcar", r) for r in args.rates] + [(m, 0.5) for m in ("mar", "severity")]
    for mechanism, rate in cases:
        seeds = args.head_seeds if (mechanism, rate) == ("mcar", HEAD_RATE) else None
        comparisons[mechanism, rate], found = train_case(cohort, "pet", mechanism, rate, args, seeds)
        rows += found
    rows += shifted(cohort, comparisons, args)
    return pd.DataFrame(rows)


def run_more(args) -> pd.DataFrame:
    """Questions 4 and 5 (``MORE``), trained as in ``run``."""
    cohort = make_brain_cohort(args.subjects, seed=0)
    return pd.DataFrame([row for case in MORE for row in train_case(cohort, *case, args)[1]])


HANDLINGS = {  # concatenation's name for each handling, and the transformer's options for it
    "zero-fill": ("masked attention", {}),
    "mean imputation": ("transformer, mean imputation", {"impute": "mean"}),
    "learned imputation": ("transformer, learned imputation", {"impute": "learned"}),
    "modality dropout": ("transformer, modality dropout", {"modality_dropout": 0.3}),
}


def run_footing(args) -> pd.DataFrame:
    """Question 7: the transformer with each handling but masking (its own), at 50 % and at the headline rate."""
    cohort = make_brain_cohort(args.subjects, seed=0)
    items = [Setup("transformer", cohort.modalities, opts, name=name) for name, opts in list(HANDLINGS.values())[1:]]
    rows = []
    for rate, seeds in ((0.5, args.seeds), (HEAD_RATE, args.head_seeds)):
        comparison = compare(splits_for(cohort, rate, "mcar"), items, seeds=seeds, epochs=args.epochs, progress=False)
        rows += [{"question": "footing", "modality": "pet", "mechanism": "mcar", "rate": rate, "test_rate": rate,
                  "model": r.setup.label, "seed": r.seed, "balanced_accuracy": r.metrics.balanced_accuracy,
                  "seconds": r.seconds} for r in comparison.runs]
    return pd.DataFrame(rows)


def footing(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows: the handling of an absent PET; columns: each architecture at each rate (mean over seeds)."""
    out = {}
    for rate in (0.5, HEAD_RATE):
        runs = pd.concat([_runs_at(frame, rate), _runs_at(frame, rate, question="footing")])
        mean = runs.groupby("model")["balanced_accuracy"].mean()
        concat = [mean.get(name, np.nan) for name in HANDLINGS]
        transformer = [mean.get(name, np.nan) for name, _ in HANDLINGS.values()]
        out[f"concatenation, {rate:.0%}"], out[f"transformer, {rate:.0%}"] = concat, transformer
        out[f"transformer minus concatenation, {rate:.0%}"] = np.subtract(transformer, concat)
    return pd.DataFrame(out, index=["left out (zero-fill; masked out of attention)", *list(HANDLINGS)[1:]])


UNSEEN_FLOOR = "MRI alone (never reads what may vanish)"


def run_unseen(args) -> pd.DataFrame:
    """Question 8: trained with PET missing for half, tested as trained and with the table hidden for half too."""
    cohort = make_brain_cohort(args.subjects, seed=0)
    splits = splits_for(cohort, 0.5, "mcar")
    items = lineup(cohort)[1:] + [Setup("unimodal", ("mri",), name=UNSEEN_FLOOR)]
    comparison = compare(splits, items, seeds=args.seeds, epochs=args.epochs, progress=False)
    tests = {"as trained": splits.test,
             "the table also hidden for half": mask_modality(splits.test, "clinical", 0.5, "mcar", seed=1)}
    return pd.DataFrame([{"question": "unseen", "modality": "pet", "mechanism": "mcar", "rate": 0.5, "test": name,
                          "model": r.setup.label, "seed": r.seed,
                          "balanced_accuracy": evaluate(r.model, test.select(list(r.setup.modalities))).balanced_accuracy}
                         for r in comparison.runs for name, test in tests.items()])


def unseen(frame: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean over seeds as trained and with the table hidden for half of the test subjects too."""
    runs = frame[frame["question"] == "unseen"]
    table = runs.pivot_table(index="model", columns="test", values="balanced_accuracy", sort=False)
    table["lost"] = table["as trained"] - table["the table also hidden for half"]
    return table.sort_values("the table also hidden for half", ascending=False)


def run_mixed(args) -> pd.DataFrame:
    """Question 6, trained as in ``run`` over the headline's seeds."""
    cohort = make_brain_cohort(args.subjects, seed=0)
    return pd.DataFrame(train_case(cohort, MIXED, "mcar", 0.5, args, args.head_seeds)[1])


def shifted(cohort, comparisons, args) -> list[dict]:
    """Models tested where PET is missing otherwise than in training: at random (after mar or severity), and at
    every other rate (for ROBUST methods, all missing completely at random)."""
    rows = []
    tests = {r: splits_for(cohort, r, "mcar").test for r in args.rates}
    for (mechanism, rate), comparison in comparisons.items():
        if mechanism != "mcar":
            targets = [(0.5, tests[0.5] if 0.5 in tests else splits_for(cohort, 0.5, "mcar").test)]
            question = "mechanism shift"
        else:
            targets = list(tests.items())
            question = "rate shift"
        for r in comparison.runs:
            if question == "rate shift" and r.setup.label not in ROBUST:
                continue
            for test_rate, test in targets:
                score = evaluate(r.model, test.select(list(r.setup.modalities))).balanced_accuracy
                rows.append({"question": question, "mechanism": mechanism, "rate": rate, "test_rate": test_rate,
                             "model": r.setup.label, "seed": r.seed, "balanced_accuracy": score})
    return rows


# ------------------------------------------------------------------------------------------------ tables
def incomplete_modality(frame: pd.DataFrame) -> pd.Series:
    """Which modality each raw row hid: rows written before the column existed (and the shifted tests) hid PET."""
    return frame["modality"].fillna("pet") if "modality" in frame else pd.Series("pet", index=frame.index)


def scores(frame: pd.DataFrame, mechanism: str = "mcar", question: str = "trained", incomplete: str = "pet") -> pd.DataFrame:
    modality = incomplete_modality(frame)
    runs = frame[(frame["question"] == question) & (frame["mechanism"] == mechanism) & (modality == incomplete)]
    return runs.groupby(["model", "rate", "test_rate"], sort=False)["balanced_accuracy"].agg(["mean", "std"]).reset_index()


def _interval(s: pd.Series, kind: str) -> str:
    low, high = s[f"{kind}_low"], s[f"{kind}_high"]
    return "" if not np.isfinite(low) else f"{low * 100:+.1f} to {high * 100:+.1f}"


def headline(frame: pd.DataFrame, rate: float, incomplete: str = "pet") -> tuple[pd.DataFrame, str]:
    """Every method at ``rate`` (mcar): mean, sd, paired difference to the floor; and new against the best other."""
    trained = scores(frame, incomplete=incomplete)
    at = trained[trained["rate"] == rate].set_index("model")
    stats = _runs_at(frame, rate, incomplete, "vs floor").set_index("model")
    floor_name = FLOORS[incomplete]
    table = pd.DataFrame({"bacc": at["mean"], "sd": at["std"]})
    table["vs floor"] = stats["diff"].reindex(table.index)
    table["floor seeds 95%"] = [_interval(stats.loc[m], "seed") if m in stats.index else "" for m in table.index]
    table["floor subjects 95%"] = [_interval(stats.loc[m], "boot") if m in stats.index else "" for m in table.index]
    table = table.sort_values("bacc", ascending=False)
    methods = table.drop(index=floor_name)
    new, old = methods[methods.index.isin(NEW)], methods[~methods.index.isin(NEW)]
    best_new, best_old = new["bacc"].idxmax(), old["bacc"].idxmax()
    gap, low, high, wins = paired_gap(frame, rate, best_new, best_old, incomplete)
    above = [m for m in methods.index if methods.loc[m, "vs floor"] > 0]
    shown = [m for m in methods.index if stats.loc[m, "seed_low"] > 0] if len(stats) else []
    verdict = ("ahead" if low > 0 else "behind" if high < 0 else "tied: the interval holds 0, the order is noise")
    where = {"pet": "without PET", "clinical": "without the clinical table", MIXED: "without PET and, independently, "
             f"{rate:.0%} without the clinical table"}[incomplete]
    text = (f"At {rate:.0%} of subjects {where} (missing completely at random; {seeds_at(frame, rate, incomplete)} "
            "seeds), the "
            f"best new method is **{best_new}** ({new.loc[best_new, 'bacc']:.3f}) and the best of the others "
            f"**{best_old}** ({old.loc[best_old, 'bacc']:.3f}): {gap * 100:+.1f} points, paired seed by seed "
            f"(95% t interval {low * 100:+.1f} to {high * 100:+.1f}; ahead in {wins}): {verdict}. Target: at least as "
            f"good, {'met' if gap >= 0 else 'NOT met'} on the means. {len(above)} of {len(methods)} methods are above "
            f"the floor ({table.loc[floor_name, 'bacc']:.3f}) on average, {len(shown)} by more than the seeds' 95% interval"
            f"{' (' + ', '.join(shown) + ')' if shown else ''}; a method whose intervals against the floor hold 0 is "
            f"not shown to use {'the table' if incomplete == 'clinical' else 'PET'}"
            f"{' or the table' if incomplete == MIXED else ''} at all.")
    return table, text


def _runs_at(frame: pd.DataFrame, rate: float, incomplete: str = "pet", question: str = "trained") -> pd.DataFrame:
    modality = incomplete_modality(frame)
    return frame[(frame["question"] == question) & (frame["mechanism"] == "mcar") & (frame["rate"] == rate)
                 & (modality == incomplete)]


def seeds_at(frame: pd.DataFrame, rate: float, incomplete: str = "pet") -> int:
    return _runs_at(frame, rate, incomplete)["seed"].nunique()


def paired_gap(frame: pd.DataFrame, rate: float, a: str, b: str, incomplete: str = "pet") -> tuple[float, float, float, str]:
    """``a`` minus ``b`` at ``rate`` (mcar), seed by seed on the same test subjects: mean, 95% t interval, wins."""
    from scipy import stats

    runs = _runs_at(frame, rate, incomplete).pivot_table(index="seed", columns="model", values="balanced_accuracy")
    d = (runs[a] - runs[b]).dropna().to_numpy()
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan
    return d.mean(), d.mean() - half, d.mean() + half, f"{int((d > 0).sum())} of {len(d)} seeds"


def curves(frame: pd.DataFrame, mechanism: str = "mcar", incomplete: str = "pet") -> tuple[dict, dict, float, list[float]]:
    """Per method: mean and sd over seeds at each rate; the floor's mean over rates; the rates."""
    trained = scores(frame, mechanism, incomplete=incomplete)
    if mechanism != "mcar" or incomplete != "pet":  # 0 % missing: the same models as in the first question
        zero = scores(frame).query("rate == 0")
        trained = pd.concat([zero if incomplete == "pet" else zero[zero.model != FLOOR], trained])
    rates = sorted(trained["rate"].unique())
    floor_name = FLOORS[incomplete]
    names = [m for m in trained["model"].unique() if m != floor_name]

    def at(m, r, column):
        found = trained[(trained.model == m) & (trained.rate == r)][column]
        return float(found.iloc[0]) if len(found) else np.nan

    mean = {m: [at(m, r, "mean") for r in rates] for m in names}
    sd = {m: [at(m, r, "std") for r in rates] for m in names}
    floor = float(trained[trained.model == floor_name]["mean"].mean())
    return mean, sd, floor, rates


def mechanisms(frame: pd.DataFrame) -> pd.DataFrame:
    """At 50 %: trained and tested under each mechanism, and tested with PET missing at random instead."""
    out = {}
    for mechanism, name in MECHANISM_NAMES.items():
        trained = scores(frame, mechanism)
        out[name] = trained[trained["rate"] == 0.5].set_index("model")["mean"]
        if mechanism != "mcar":
            moved = scores(frame, mechanism, "mechanism shift").set_index("model")["mean"]
            out[f"{name}, tested at random"] = moved
    return pd.DataFrame(out)


def mismatch(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows: method and training rate; columns: test rate (mean over seeds)."""
    moved = scores(frame, "mcar", "rate shift")
    table = moved.pivot_table(index=["model", "rate"], columns="test_rate", values="mean")
    table.columns = [f"tested at {c:.0%}" for c in table.columns]
    table.index = [f"{m}, trained at {r:.0%}" for m, r in table.index]
    return table


# ------------------------------------------------------------------------------------------------ output
def write(frame: pd.DataFrame, args) -> None:
    mean, sd, floor, rates = curves(frame)
    fig = plot_robustness(rates, mean, floor, floor_label="floor: MRI + clinical, no PET", percent=True, chance=1 / 3,
                          xlabel="subjects without PET (missing completely at random)", spread=sd,
                          spread_label=f"± 1 sd over {len(args.seeds)} seeds ({len(args.head_seeds)} at 75%)",
                          mean_label=None,
                          title="Missing PET: every method over seeds (test balanced accuracy)")
    fig.savefig(Path(__file__).resolve().parent / "missing.png", dpi=90)
    head_rate = 0.75 if 0.75 in rates else rates[-1]
    table, text = headline(frame, head_rate)
    curve_table = pd.DataFrame(mean, index=[f"{r:.0%}" for r in rates]).T.round(3)
    body = ["## Missing modalities: every method as PET goes missing (benchmarks/missing.py)", "",
            f"{args.subjects} subjects, one split (seed 0), PET hidden for a share of train, validation and test subjects "
            f"alike; every method trained with seeds {', '.join(map(str, args.seeds))} (at 75 % completely at random, seeds "
            f"{args.head_seeds[0]} to {args.head_seeds[-1]}) for up to {args.epochs} epochs "
            "(chapter 07's protocol); balanced accuracy on the 150 test subjects. Intervals (points): 95% t interval "
            f"over seeds, 95% bootstrap over test subjects, paired against the floor. Machine: {machine()}.", "",
            "![missing](missing.png)", "", f"### {head_rate:.0%} of subjects without PET", "", text, "",
            markdown_table(table), "", "### The curves (mean over seeds)", "", markdown_table(curve_table), "",
            "### Why PET is missing: three mechanisms at 50 %", "",
            "Trained and tested with PET missing completely at random, at random given the age (older subjects skip "
            "PET; the age is in the table) and by severity (the sicker, the likelier to miss it: not at random); then "
            "the models of the last two tested on the same subjects with PET missing completely at random.", "",
            markdown_table(mechanisms(frame).round(3)), "",
            "### Trained at one rate, tested at another", "",
            "Each model trained with PET missing completely at random at one rate (rows) and tested on the same test "
            "subjects with PET hidden at another (columns); mean over seeds.", "",
            markdown_table(mismatch(frame).round(3)), ""]
    if incomplete_modality(frame).eq("clinical").any():
        body += more_sections(frame, args)
    if incomplete_modality(frame).eq(MIXED).any():
        table, text = headline(frame, 0.5, MIXED)
        body += ["### Two modalities missing: PET and the clinical table", "",
                 "PET hidden completely at random for half of the subjects and the clinical table for another, "
                 "independent half: about a quarter of the subjects have all three modalities, a quarter MRI and PET, "
                 "a quarter MRI and the table, a quarter MRI alone. The floor is MRI alone; complete cases and "
                 "distillation fall back on a model of MRI and the table (the table zero-filled where absent).", "",
                 text, "", markdown_table(table), ""]
    if (frame["question"] == "footing").any():
        body += ["### The same footing: architecture and handling apart", "",
                 "Masked attention is a transformer over modality tokens. Here the transformer is trained with each "
                 "way of handling an absent PET that concatenation has (left out, mean or learned imputation, "
                 "modality dropout), on the same splits and seeds: each row compares the two architectures with one "
                 f"handling, each column one architecture across handlings (mean over seeds: 3 at 50 %, "
                 f"{seeds_at(frame, HEAD_RATE)} at 75 %).", "", markdown_table(footing(frame).round(3)), ""]
    if (frame["question"] == "unseen").any():
        body += ["### A combination never seen in training", "",
                 "Every method trained with PET missing completely at random for half of the subjects and the table "
                 "always there (as in the first question at 50 %), then tested on the same subjects as trained and "
                 "with the clinical table hidden for half of them too, so that MRI alone and MRI + PET, which no "
                 "model met in training, appear at test time. The floor is a model of MRI alone. Mean over seeds "
                 f"{', '.join(map(str, args.seeds))}.", "", markdown_table(unseen(frame).round(3)), ""]
    update_section("missing", "\n".join(body))


def more_sections(frame: pd.DataFrame, args) -> list[str]:
    """Questions 4 and 5: the curves under each mechanism, and with the clinical table missing."""
    here = Path(__file__).resolve().parent
    band = f"± 1 sd over {len(args.seeds)} seeds"
    body = ["### The curves under each mechanism", "",
            "PET missing at random given the age, and by severity (not at random), at every rate: mean over seeds "
            "(the 0 % point is the same model under every mechanism; the floor never reads PET, so its line is the "
            "mean of its scores over the rates).", ""]
    for mechanism in ("mar", "severity"):
        mean, sd, floor, rates = curves(frame, mechanism)
        fig = plot_robustness(rates, mean, floor, floor_label="floor: MRI + clinical, no PET", percent=True,
                              chance=1 / 3, xlabel=f"subjects without PET (missing {MECHANISM_NAMES[mechanism]})",
                              spread=sd, spread_label=band, mean_label=None,
                              title=f"PET missing {MECHANISM_NAMES[mechanism]}")
        name = f"missing_{mechanism}.png"
        fig.savefig(here / name, dpi=90)
        table = pd.DataFrame(mean, index=[f"{r:.0%}" for r in rates]).T.round(3)
        body += [f"**Missing {MECHANISM_NAMES[mechanism]}** (floor {floor:.3f})", "", f"![{mechanism}]({name})", "",
                 markdown_table(table), ""]
    mean, sd, floor, rates = curves(frame, "mcar", "clinical")
    fig = plot_robustness(rates, mean, floor, floor_label="floor: MRI + PET, no table", percent=True, chance=1 / 3,
                          xlabel="subjects without the clinical table (missing completely at random)", spread=sd,
                          spread_label=band, mean_label=None, title="The clinical table missing at random")
    fig.savefig(here / "missing_clinical.png", dpi=90)
    table = pd.DataFrame(mean, index=[f"{r:.0%}" for r in rates]).T.round(3)
    body += ["### The clinical table missing instead of PET", "",
             f"The same methods with the clinical table hidden completely at random, against the floor of MRI and PET "
             f"({floor:.3f}); the 0 % point is the first question's.", "", "![clinical](missing_clinical.png)", "",
             markdown_table(table), ""]
    return body


def main() -> None:
    parser, args = protocol_arguments(__doc__, "400 subjects, 8 epochs, seeds 0 1, rates 0 0.5 0.9",
                                      {"more": "add questions 4 and 5 to the last run's raw file (full size)",
                                       "mixed": "add question 6 to the last run's raw file (full size)",
                                       "footing": "add question 7 to the last run's raw file (full size)",
                                       "unseen": "add question 8 to the last run's raw file (full size)"})
    args.rates = [0.0, 0.5, 0.9] if args.quick else [0.0, 0.25, 0.5, HEAD_RATE, 0.9]
    args.head_seeds = args.seeds if args.quick else HEAD_SEEDS
    if args.more or args.mixed or args.footing or args.unseen:
        raw = Path(__file__).resolve().parent.parent / "build" / "missing.csv"
        if args.quick or not raw.exists():
            parser.error(f"--more, --mixed, --footing and --unseen add to a full-size run's {raw}: run without "
                         "them once")
        kept = pd.read_csv(raw)
        modality = incomplete_modality(kept)
        if args.more:  # questions 4 and 5, replaced below
            kept = kept[~modality.eq("clinical") & ~(modality.eq("pet") & kept["mechanism"].isin(["mar", "severity"])
                                                     & ~kept["rate"].eq(0.5))]
            kept = pd.concat([kept, run_more(args)], ignore_index=True)
        if args.mixed:
            modality = incomplete_modality(kept)
            kept = pd.concat([kept[~modality.eq(MIXED)], run_mixed(args)], ignore_index=True)
        if args.footing:
            kept = pd.concat([kept[kept["question"] != "footing"], run_footing(args)], ignore_index=True)
        if args.unseen:
            kept = pd.concat([kept[kept["question"] != "unseen"], run_unseen(args)], ignore_index=True)
        frame = kept
        frame.to_csv(raw, index=False)
    else:
        frame = raw_runs("missing", args, run)
    if args.quick:
        print(headline(frame, 0.5)[1])
        print(mechanisms(frame).round(3).to_string())
        print(mismatch(frame).round(3).to_string())
        return
    write(frame, args)
    print("wrote the missing section of benchmarks/RESULTS.md and benchmarks/missing.png")


if __name__ == "__main__":
    main()
