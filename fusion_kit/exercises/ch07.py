"""Exercise checks for chapter 07 (missing modalities)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .feedback import Feedback, not_yet, unsolved

__all__ = [
    "check_expert_product",
    "check_moments_unit",
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


# ---------------------------------------------------------------- build: fusion for any subset (core, stretch)
def _moments(h, present, *, over_all: bool = False, unbiased: bool = False):
    import torch

    from .build import zeroed

    keep = present.unsqueeze(-1)
    count = torch.full((len(h), 1, 1), float(h.shape[1])) if over_all else keep.sum(1, keepdim=True).to(h.dtype)
    mean = zeroed(h, present).sum(1, keepdim=True) / count
    spread = zeroed((h - mean) ** 2, present) if not over_all else (zeroed(h, present) - mean) ** 2
    var = spread.sum(1, keepdim=True) / (count - 1 if unbiased else count)
    return torch.cat([mean.squeeze(1), var.squeeze(1)], 1)


def _moments_check():
    from .build import vector_check

    return vector_check(
        "MomentsUnit",
        hint="n = present.sum(1, keepdim=True) per subject; mean = sum of the present h_m / n; var = sum of the present "
             "(h_m - mean)^2 / n; return torch.cat([mean, var], 1).",
        reference=lambda module, h, present: _moments(h, present),
        wrong={
            "You divided by M, the number of modalities; divide by the number *present* for each subject "
            "(present.sum(1)), or a subject with one modality gets a third of its mean.":
                lambda module, h, present: _moments(h, present, over_all=True),
            "That is the unbiased variance (divide by n - 1): with a single modality present it divides by 0; "
            "HeMIS uses the plain variance over the present modalities (0 with one).":
                lambda module, h, present: _moments(h, present, unbiased=True),
        },
        success="Correct: z has the same size for any subset, and a subject with one modality gets its h_m and a "
                "variance of 0, the 'hemis' strategy's fusion.",
    )


def check_moments_unit(cls, trained=None) -> Feedback:
    """Chapter 07 (build, core): HeMIS moments ``cls(modalities, dim)``, no parameters;
    ``forward(h (B, M, D), present (B, M)) -> (B, 2D)``, [mean; variance] over the present modalities."""
    return _moments_check()(cls, trained)


def _experts(module, h, present, *, prior: float = 1.0, weighted: bool = True, sign: float = -1.0):
    import torch

    stats = torch.stack([expert(h[:, j]) for j, expert in enumerate(module.experts)], 1)  # (B, M, 2d)
    mu, log_var = stats.chunk(2, dim=-1)
    keep = present.unsqueeze(-1)
    precision = torch.where(keep, torch.exp(sign * log_var), torch.zeros_like(log_var))
    if not weighted:
        precision = keep.to(mu.dtype).expand_as(mu)
    total = prior + precision.sum(1)
    mean = torch.where(keep, precision * mu, torch.zeros_like(mu)).sum(1) / total
    return torch.cat([mean, -torch.log(total)], 1)


def _experts_check():
    from .build import vector_check

    return vector_check(
        "ExpertProduct",
        hint="[mu_m; log var_m] = self.experts[m](h_m), split with .chunk(2, -1); precision = exp(-log var_m), 0 where "
             "absent; T = 1 + sum of precisions; mu = sum(precision * mu_m) / T; return torch.cat([mu, -log T], 1).",
        reference=lambda module, h, present: _experts(module, h, present),
        wrong={
            "The prior expert N(0, I) is missing: its precision 1 starts the total, T = 1 + sum_m 1/var_m. Without "
            "it a subject's z has no defined value when no expert is sure, and weak evidence is not shrunk to 0.":
                lambda module, h, present: _experts(module, h, present, prior=0.0),
            "The precision is 1/var = exp(-log var), not exp(log var): a sure expert (small variance) must weigh more.":
                lambda module, h, present: _experts(module, h, present, sign=1.0),
            "That averages the experts' means with equal weights; a product of Gaussians weights each mean by its "
            "precision 1/var_m.": lambda module, h, present: _experts(module, h, present, weighted=False),
        },
        success="Correct: each present expert votes with its precision, the prior keeps any subset defined, the "
                "'poe' strategy's fusion.",
    )


def check_expert_product(cls, trained=None) -> Feedback:
    """Chapter 07 (build, stretch): a product of Gaussian experts ``cls(modalities, dim)`` with one linear
    ``experts[m]`` (D -> 2D) per modality; ``forward(h (B, M, D), present (B, M)) -> (B, 2D)``."""
    return _experts_check()(cls, trained)
