"""Exercise checks for chapter 02 (input fusion)."""
from __future__ import annotations

from collections.abc import Mapping

from .feedback import Feedback, not_yet, unsolved

__all__ = ["check_input_channels", "check_most_robust"]

def check_input_channels(answer: int | None) -> Feedback:
    """Chapter 02: channels seen by the first convolution of ``tabular_channels`` on MRI + PET + 5 clinical values."""
    if unsolved(answer):
        return not_yet("each image brings its channels; each clinical variable becomes one constant channel.")
    if answer == 7:
        return Feedback(True, "Correct: 1 (MRI) + 1 (PET) + 5 broadcast clinical channels = 7.")
    if answer == 3:
        return Feedback(False, "The table is not one channel: every variable is broadcast to its own channel.")
    return Feedback(False, "Count 1 channel per image and 1 per clinical variable (age, sex, education, MMSE, APOE4).")


def check_most_robust(answer: str | None, drop: Mapping[str, float]) -> Feedback:
    """Chapter 02: the fusion whose balanced accuracy dropped least under misregistration."""
    if unsolved(answer):
        return not_yet("min(drop, key=drop.get) gives the key with the smallest value.")
    if answer not in drop:
        return Feedback(False, f"{answer!r} is not in drop; its keys are {', '.join(drop)}.")
    best = min(drop, key=drop.get)
    if answer == best:
        others = ", ".join(f"{k} {v:.3f}" for k, v in drop.items() if k != best)
        return Feedback(True, f"Correct: {best} lost {drop[best]:.3f} (against {others}). One seed and 150 test "
                              "subjects move each value by a few points: is the difference larger than that?")
    return Feedback(False, f"{answer} lost {drop[answer]:.3f}; another one lost less. Smaller drop = more robust.")
