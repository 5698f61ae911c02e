"""Exercise checks for chapter 09 (from the course to your study)."""
from __future__ import annotations

import numpy as np

from .ch01 import paired_difference, paired_verdict
from .feedback import Feedback, not_yet, unsolved

__all__ = ["augmentation_verdict", "check_augmentation_verdict", "check_subjects_per_step", "paired_fold_difference"]

VERDICTS = ("helps", "hurts", "noise")


def check_subjects_per_step(answer, processes: int = 4, batch_size: int = 16) -> Feedback:
    """Chapter 09: subjects behind one optimizer step under torchrun with ``processes`` and ``--batch-size``."""
    if unsolved(answer):
        return not_yet("each process takes its own batch of --batch-size subjects, and DDP averages the gradients of all.")
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer, float)):
        return Feedback(False, "Give one number: subjects per optimizer step.")
    expected = processes * batch_size
    if answer == expected:
        return Feedback(True, f"Correct: {processes} x {batch_size} = {expected}. The gradient averaged over processes is "
                              "that of one batch this size, so with more processes you may need a larger learning rate "
                              "or fewer subjects per process to train as before.")
    if answer == batch_size:
        return Feedback(False, "That is one process's batch. DDP averages the gradients of every process before the step.")
    if answer == batch_size / processes:
        return Feedback(False, "--batch-size is per process, not divided among them.")
    return Feedback(False, "Not quite: count the subjects of every process's batch that one averaged step has seen.")


def _fold_scores(run) -> np.ndarray:
    return np.array([f["balanced_accuracy"] for f in run.folds])


def paired_fold_difference(with_augmentation, without) -> tuple[float, float]:
    """Mean and standard error of the per-fold difference in balanced accuracy (same folds, same seeds)."""
    return paired_difference(_fold_scores(with_augmentation), _fold_scores(without))


def augmentation_verdict(with_augmentation, without) -> str:
    """"helps" / "hurts" when the mean paired difference is more than two standard errors from 0, else "noise"."""
    return paired_verdict(_fold_scores(with_augmentation), _fold_scores(without), VERDICTS)


def check_augmentation_verdict(difference, verdict, with_augmentation, without) -> Feedback:
    """Chapter 09: the mean per-fold gain of augmentation, and whether it is outside two standard errors."""
    if unsolved(difference) or unsolved(verdict):
        return not_yet("subtract the two runs' balanced accuracies fold by fold (the folds are the same), average, and "
                       "compare that mean with twice the standard error of the differences.")
    mean, se = paired_fold_difference(with_augmentation, without)
    if not isinstance(difference, (int, float, np.floating)) or isinstance(difference, bool):
        return Feedback(False, "difference is one number: the mean of augmented minus plain, fold by fold.")
    if abs(difference + mean) < 1e-6 and abs(mean) > 1e-6:
        return Feedback(False, "The sign is reversed: take the augmented run minus the plain one.")
    if abs(difference - mean) > 1e-6:
        return Feedback(False, f"Your mean difference {difference:.4f} is not the one of these runs; pair the folds: "
                               "[a['balanced_accuracy'] - b['balanced_accuracy'] for a, b in zip(...folds)].")
    if verdict not in VERDICTS:
        return Feedback(False, f"verdict is one of {', '.join(map(repr, VERDICTS))}.")
    expected = augmentation_verdict(with_augmentation, without)
    if verdict == expected:
        why = ("the mean lies within two standard errors of 0: with this few folds a difference this size is what "
               "fold-to-fold noise gives" if expected == "noise" else
               f"the mean ({mean:+.3f}) lies more than two standard errors ({2 * se:.3f}) from 0")
        return Feedback(True, f"Right for your run: {why}. Another seed could say otherwise; more folds or repeats narrow it.")
    if expected == "noise":
        return Feedback(False, f"The mean is {mean:+.3f} but two standard errors are {2 * se:.3f}: a sign alone is not a finding.")
    return Feedback(False, f"The mean {mean:+.3f} is more than two standard errors ({2 * se:.3f}) from 0: look at its sign.")
