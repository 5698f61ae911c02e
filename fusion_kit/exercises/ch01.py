"""Exercise checks for chapter 01 (multimodal data)."""
from __future__ import annotations

import math

import numpy as np

from .feedback import Feedback, not_yet, unsolved

__all__ = ["check_always_cn", "check_best_modality", "check_seed_lead", "paired_difference", "paired_verdict"]

def check_best_modality(answer: str | None, comparison) -> Feedback:
    """Chapter 01: the modality whose unimodal baseline has the highest balanced accuracy."""
    table = comparison.table()
    best_label = str(table["balanced_accuracy"].idxmax())
    best = next(r.setup.modalities[0] for r in comparison.runs if r.setup.label == best_label)
    if unsolved(answer):
        return not_yet("comparison.table() is a pandas DataFrame; idxmax() on a column gives the row label.")
    names = sorted({m for r in comparison.runs for m in r.setup.modalities})
    if answer not in names:
        return Feedback(False, f"{answer!r} is not one of the modalities {', '.join(names)}.")
    if answer == best:
        return Feedback(True, f"Correct: {best} alone reaches {table.loc[best_label, 'balanced_accuracy']:.3f}.")
    return Feedback(False, f"Not the highest: look at the 'balanced_accuracy' column of {answer}'s row and the others.")


def check_always_cn(answer) -> Feedback:
    """Chapter 01: accuracy and balanced accuracy of always answering CN on 60 CN / 30 MCI / 10 AD."""
    if unsolved(answer):
        return not_yet("accuracy counts correct answers over all subjects; balanced accuracy averages the recall of each class.")
    try:
        acc, bacc = (float(v) for v in answer)
    except (TypeError, ValueError):
        return Feedback(False, "Give a tuple of two numbers: (accuracy, balanced_accuracy).")
    ok_acc, ok_bacc = abs(acc - 0.6) < 1e-3, abs(bacc - 1 / 3) < 1e-3
    if ok_acc and ok_bacc:
        return Feedback(True, "Correct: 0.60 accuracy looks respectable, but balanced accuracy shows it is chance (1/3).")
    if not ok_acc:
        return Feedback(False, "Accuracy: 60 of the 100 subjects are CN, and the model is right on exactly those.")
    return Feedback(False, "Balanced accuracy: the recall is 1 for CN and 0 for MCI and AD; average the three.")


# ---------------------------------------------------------------- experiment: a lead over seeds (core)
def paired_difference(a, b) -> tuple[float, float]:
    """Mean and standard error of the paired differences a - b (same seeds or folds, in the same order)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("compare two runs over the same seeds or folds (at least 2)")
    d = a - b
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def paired_verdict(a, b, words: tuple[str, str, str] = ("ahead", "behind", "noise")) -> str:
    """``words[0]`` / ``words[1]`` when the mean paired difference a - b lies more than two standard errors
    above / below 0, else ``words[2]``: a difference that the repeats' own scatter explains."""
    mean, se = paired_difference(a, b)
    if abs(mean) <= 2 * se or abs(mean) < 1e-9:
        return words[2]
    return words[0] if mean > 0 else words[1]


def check_seed_lead(difference, verdict, comparison, first: str = "unimodal (pet)",
                    second: str = "unimodal (mri)") -> Feedback:
    """Chapter 01: the mean paired difference ``first`` - ``second`` over the seeds of ``comparison``, and
    whether ``first`` is "ahead", "behind" or within the noise ("noise")."""
    if unsolved(difference) or unsolved(verdict):
        return not_yet("comparison.scores(label) gives one balanced accuracy per seed; subtract seed by seed, average, "
                       "and compare the mean with twice its standard error, d.std(ddof=1) / sqrt(len(d)).")
    a, b = comparison.scores(first), comparison.scores(second)
    mean, se = paired_difference(a, b)
    if isinstance(difference, bool) or not isinstance(difference, (int, float, np.floating)):
        return Feedback(False, "difference is one number: the mean over seeds of first minus second.")
    if abs(difference + mean) < 1e-6 < abs(mean):
        return Feedback(False, f"The sign is reversed: take {first} minus {second}.")
    if abs(difference - (a.mean() - b.mean())) > 1e-6:
        return Feedback(False, f"{difference:.4f} is not the mean difference of these runs ({mean:.4f}); pair the seeds.")
    words = ("ahead", "behind", "noise")
    if verdict not in words:
        return Feedback(False, f"verdict is one of {', '.join(map(repr, words))}.")
    expected = paired_verdict(a, b, words)
    spread = ", ".join(f"{x:+.3f}" for x in a - b)
    if verdict == expected:
        return Feedback(True, f"Right for your runs, {expected!r}: the differences seed by seed are {spread}; mean "
                              f"{mean:+.3f}, two standard errors {2 * se:.3f}. Three seeds give a rough error bar, "
                              "not a proof.")
    if expected == "noise":
        return Feedback(False, f"The differences are {spread}: their mean {mean:+.3f} is within two standard errors "
                               f"({2 * se:.3f}) of 0, so the seeds' own scatter explains it.")
    return Feedback(False, f"The mean {mean:+.3f} lies more than two standard errors ({2 * se:.3f}) from 0: look at its sign.")
