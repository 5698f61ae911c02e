"""Exercise checks for chapter 07 (missing modalities)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .feedback import Feedback, not_yet, unsolved

__all__ = [
    "check_beats_floor",
    "check_complete_share",
    "check_mask_only_score",
    "complete_share",
    "mask_only_score",
]


def complete_share(rates: Mapping[str, float]) -> float:
    """Share of subjects with every modality when each one is missing independently at ``rates``: prod(1 - r)."""
    share = 1.0
    for r in rates.values():
        share *= 1.0 - r
    return share


def check_complete_share(answer: float | None, rates: Mapping[str, float] = {"pet": 0.5, "clinical": 0.2}) -> Feedback:
    """Chapter 07: share of complete subjects when modalities go missing independently at ``rates``."""
    if unsolved(answer):
        return not_yet("a subject is complete if it keeps PET *and* keeps the table; for independent events, multiply.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return Feedback(False, "Give one number between 0 and 1 (a share, not a percentage).")
    expected = complete_share(rates)
    if abs(value - expected) < 1e-3:
        return Feedback(True, f"Correct: {' x '.join(f'{1 - r:g}' for r in rates.values())} = {expected:g}. "
                              "Complete-case analysis shrinks multiplicatively with every incomplete modality.")
    if abs(value - (1 - sum(rates.values()))) < 1e-3:
        return Feedback(False, "That assumes no subject misses both. Missing independently, some miss both: multiply the shares that are kept.")
    if abs(value - float(np.prod(list(rates.values())))) < 1e-3:
        return Feedback(False, "That is the share missing *both*; the question asks for the share that has both.")
    if value > 1:
        return Feedback(False, "Give a share between 0 and 1, not a percentage.")
    return Feedback(False, "Not quite: the share that keeps a modality missing at rate r is 1 - r; a complete subject keeps all of them.")


def mask_only_score(shares: Mapping[str, float]) -> float:
    """Best balanced accuracy of a rule that sees only whether the modality is present.

    ``shares[k]`` is the share of class k missing the modality. A rule answers c1 when present and c2
    when absent; its recall is 1 - shares[c1] for c1, shares[c2] for c2 and 0 for the others
    (or 1 for c1 alone if c1 == c2).
    """
    names = list(shares)
    k = len(names)
    best = 1.0 / k  # the rules that ignore the mask
    for c1 in names:
        for c2 in names:
            if c1 != c2:
                best = max(best, ((1.0 - shares[c1]) + shares[c2]) / k)
    return best


def check_mask_only_score(answer: float | None, shares: Mapping[str, float]) -> Feedback:
    """Chapter 07: the best balanced accuracy reachable from the presence of PET alone, given the per-class missing shares."""
    if unsolved(answer):
        return not_yet("try every rule 'present -> class a, absent -> class b'; its balanced accuracy is "
                       "((1 - share[a]) + share[b]) / 3. Keep the best.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return Feedback(False, "Give one number: a balanced accuracy between 0 and 1.")
    expected = mask_only_score(shares)
    chance = 1.0 / len(shares)
    if abs(value - expected) < 2e-3:
        leak = expected - chance
        verdict = ("the mask alone beats chance by {:.2f}: it leaks the label".format(leak) if leak > 0.05
                   else "hardly above chance: this mask says little about the label")
        return Feedback(True, f"Correct: {expected:.3f}; {verdict}.")
    if abs(value - chance) < 2e-3:
        return Feedback(False, "1/3 is a rule that ignores the mask. Can 'absent -> the class that misses PET most' do better?")
    if value > expected:
        return Feedback(False, "Too high: a rule that sees one yes/no answer can predict at most two classes, so one recall is 0.")
    return Feedback(False, "Not the best rule yet: pair the class that most often *has* the modality with the one that most often lacks it.")


def check_beats_floor(answer: Iterable[str] | None, curves: Mapping[str, np.ndarray], floor: float) -> Feedback:
    """Chapter 07: the strategies that, at the highest missing rate, still beat the model that never uses PET."""
    if unsolved(answer):
        return not_yet("compare the last value of each curve, curves[name][-1], with floor.")
    if isinstance(answer, str):
        answer = [answer]
    chosen = set(answer)
    unknown = chosen - set(curves)
    if unknown:
        return Feedback(False, f"{sorted(unknown)[0]!r} is not a curve; names are {', '.join(curves)}.")
    expected = {name for name, values in curves.items() if float(np.asarray(values)[-1]) > floor}
    if chosen == expected:
        if not expected:
            return Feedback(True, "Correct: none of them. At this rate, the little PET left does not pay for itself.")
        return Feedback(True, f"Correct: {', '.join(sorted(expected))}. The others would do better by ignoring PET altogether.")
    extra, lacking = chosen - expected, expected - chosen
    if extra:
        name = sorted(extra)[0]
        return Feedback(False, f"{name} ends at {float(np.asarray(curves[name])[-1]):.3f}, not above the floor {floor:.3f}.")
    return Feedback(False, f"{len(lacking)} more strateg{'y' if len(lacking) == 1 else 'ies'} end above the floor {floor:.3f}; check every curve.")
