"""Exercise checks for chapter 01 (multimodal data)."""
from __future__ import annotations

from .feedback import Feedback, not_yet, unsolved

__all__ = ["check_always_cn", "check_best_modality"]

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
