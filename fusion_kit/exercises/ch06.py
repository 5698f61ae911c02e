"""Exercise checks for chapter 06 (output fusion)."""
from __future__ import annotations

from .feedback import Feedback, not_yet, unsolved

__all__ = ["VOTE_EXAMPLE", "check_dempster", "check_vote_module", "check_weighted_vote", "dempster_rule", "weighted_vote_shares"]

# Three unimodal classifiers on one subject: their probabilities over (CN, MCI, AD), and each
# classifier's weight (its balanced accuracy on the training set).
VOTE_EXAMPLE = {
    "classes": ("CN", "MCI", "AD"),
    "probs": {"mri": (0.15, 0.30, 0.55), "pet": (0.10, 0.60, 0.30), "clinical": (0.45, 0.35, 0.20)},
    "weights": {"mri": 0.80, "pet": 0.60, "clinical": 0.55},
}


def weighted_vote_shares(probs, weights, num_classes: int) -> tuple[float, ...]:
    """Σ_m w_m [argmax p_m = k] / Σ_m w_m for every class k."""
    shares = [0.0] * num_classes
    for name, p in probs.items():
        shares[max(range(num_classes), key=lambda k: p[k])] += weights[name]
    total = sum(weights[name] for name in probs)
    return tuple(s / total for s in shares)


def check_weighted_vote(answer) -> Feedback:
    """Chapter 06: the weighted-vote share of each class in ``VOTE_EXAMPLE`` (a tuple of three numbers)."""
    if unsolved(answer):
        return not_yet("each classifier votes for its most probable class with its weight; add the weights per class, then divide by the total weight.")
    try:
        values = tuple(float(v) for v in answer)
    except (TypeError, ValueError):
        return Feedback(False, "Give three numbers, one share per class (CN, MCI, AD).")
    if len(values) != 3:
        return Feedback(False, f"Give one share per class (CN, MCI, AD): 3 numbers, not {len(values)}.")
    ex = VOTE_EXAMPLE
    expected = weighted_vote_shares(ex["probs"], ex["weights"], 3)

    def close(a, b):
        return all(abs(x - y) < 2e-3 for x, y in zip(a, b))

    if close(values, expected):
        winner = ex["classes"][max(range(3), key=lambda k: expected[k])]
        return Feedback(True, f"Correct: shares {tuple(round(v, 3) for v in expected)}, so the weighted vote says {winner}. "
                              "A plain majority is a three-way tie here, and averaging the probabilities says MCI: "
                              "three reasonable rules, three different answers.")
    unnormalised = tuple(s * sum(ex["weights"].values()) for s in expected)
    if close(values, unnormalised):
        return Feedback(False, "Right weights per class, but divide by the total weight so the shares sum to 1.")
    average = tuple(sum(p[k] for p in ex["probs"].values()) / 3 for k in range(3))
    if close(values, average):
        return Feedback(False, "That averages the probabilities; a vote only counts each classifier's most probable class.")
    majority = weighted_vote_shares(ex["probs"], {m: 1.0 for m in ex["probs"]}, 3)
    if close(values, majority):
        return Feedback(False, "That is the plain majority vote (every vote counts 1); weight each vote by its classifier's weight.")
    return Feedback(False, "Find each classifier's most probable class first (MRI: AD, PET: MCI, clinical: CN), then add the weights per class.")


def dempster_rule(b1, u1, b2, u2):
    """Reduced Dempster's rule for two subjective-logic opinions (b: (..., K), u: (..., 1))."""
    conflict = b1.sum(-1, keepdims=True) * b2.sum(-1, keepdims=True) - (b1 * b2).sum(-1, keepdims=True)
    scale = 1.0 / (1.0 - conflict)
    return (b1 * b2 + b1 * u2 + b2 * u1) * scale, u1 * u2 * scale


def _opinion(evidence):
    import torch

    evidence = torch.as_tensor(evidence, dtype=torch.float64)
    s = evidence.sum(-1, keepdim=True) + evidence.shape[-1]
    return evidence / s, evidence.shape[-1] / s


def check_dempster(fn) -> Feedback:
    """Chapter 06: ``fn(b1, u1, b2, u2) -> (b, u)`` combines two opinions by Dempster's rule (Han et al. 2021)."""
    import torch

    b1, u1 = _opinion([[6.0, 1.0, 0.0], [0.0, 2.0, 9.0], [1.0, 1.0, 1.0], [12.0, 0.0, 0.0]])
    b2, u2 = _opinion([[3.0, 0.5, 0.0], [8.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 15.0]])
    expected_b, expected_u = dempster_rule(b1, u1, b2, u2)
    try:
        out = fn(b1.clone(), u1.clone(), b2.clone(), u2.clone())
    except Exception as err:  # the learner's code: report, do not crash the notebook
        return Feedback(False, f"Your function raised {type(err).__name__}: {err}")
    if out is None:
        return not_yet("compute the conflict C = Σ_{i≠j} b1_i b2_j first; then b = (b1 b2 + b1 u2 + b2 u1) / (1 - C) and u = u1 u2 / (1 - C).")
    try:
        b, u = (torch.as_tensor(v, dtype=torch.float64) for v in out)
    except (TypeError, ValueError):
        return Feedback(False, "Return a pair (b, u): the fused beliefs (B, K) and the fused uncertainty (B, 1).")
    if b.shape != expected_b.shape or u.reshape(-1).shape != expected_u.reshape(-1).shape:
        return Feedback(False, f"Expected b of shape {tuple(expected_b.shape)} and u of shape {tuple(expected_u.shape)}; "
                               f"got {tuple(b.shape)} and {tuple(u.shape)}.")
    u = u.reshape(expected_u.shape)
    if torch.allclose(b, expected_b, atol=1e-6) and torch.allclose(u, expected_u, atol=1e-6):
        return Feedback(True, "Correct: agreeing opinions reinforce each other (u shrinks), conflicting ones are renormalised by 1 - C, "
                              "and a vacuous opinion (b = 0, u = 1) leaves the other unchanged.")
    raw_b, raw_u = b1 * b2 + b1 * u2 + b2 * u1, u1 * u2
    if torch.allclose(b, raw_b, atol=1e-6) and torch.allclose(u, raw_u, atol=1e-6):
        return Feedback(False, "Close: you forgot to divide by 1 - C, so b and u no longer sum to 1 where the opinions conflict.")
    total = b.sum(-1, keepdim=True) + u
    if not torch.allclose(total, torch.ones_like(total), atol=1e-5):
        return Feedback(False, "A fused opinion must satisfy Σ_k b_k + u = 1; check the normalisation by 1 - C "
                               "(C sums b1_i b2_j over i ≠ j only).")
    if not torch.allclose(b[2], b1[2], atol=1e-6):
        return Feedback(False, "Combining with a vacuous opinion (row 3: the second opinion has b = 0, u = 1) must return the first opinion unchanged.")
    return Feedback(False, "b and u sum to 1 but do not match Dempster's rule; check the conflict term on the second row, where MRI says AD and PET says CN.")


# ---------------------------------------------------------------- build: a learned vote as a module (core)
def _vote_inputs(num_modalities: int = 3, classes: int = 3):
    import torch

    from .build import every_subset

    present = every_subset(num_modalities)
    g = torch.Generator().manual_seed(2)
    return 2.0 * torch.randn(len(present), num_modalities, classes, generator=g), present


def _vote(module, logits, present, *, renormalise: bool = True, of: str = "probabilities"):
    import torch

    from ..fusion import masked_softmax

    scores = module.a.expand(len(logits), -1)  # (B, M)
    w = masked_softmax(scores, present, dim=1) if renormalise else torch.where(present, scores.softmax(1), 0.0)
    w = w.unsqueeze(-1)
    if of == "logits":
        return (w * torch.where(present.unsqueeze(-1), logits, 0.0)).sum(1)
    p = (w * torch.where(present.unsqueeze(-1), logits.softmax(-1), 0.0)).sum(1)
    return p if of == "p" else torch.log(p)


def _vote_check():
    from .build import BuildCheck, jittered

    return BuildCheck(
        name="LearnedVote",
        hint="w = softmax of self.a over the present modalities (mask, then softmax over dim 1); p = sum_m w_m "
             "softmax(logits_m); return torch.log(p).",
        build=lambda cls: jittered(cls(("mri", "pet", "clinical"), 3)),
        inputs=_vote_inputs,
        reference=_vote,
        absent=lambda inputs: (0, ~inputs[1].unsqueeze(-1)),
        wrong={
            "You weighted the logits; output fusion combines the modalities' probabilities softmax(l_m), then takes "
            "the log.": lambda module, *inputs: _vote(module, *inputs, of="logits"),
            "Those are the probabilities p; return log p, which fit's cross-entropy reads as logits.":
                lambda module, *inputs: _vote(module, *inputs, of="p"),
            "The weights of the present modalities must sum to 1: softmax over the present ones only (mask before "
            "the softmax), or a subject missing PET gets probabilities that sum to less than 1.":
                lambda module, *inputs: _vote(module, *inputs, renormalise=False),
        },
        success="Correct: one learned weight per modality, shared by every subject, renormalised over the modalities "
                "each subject has: the 'learned_weights' strategy's rule.",
    )


def check_vote_module(cls) -> Feedback:
    """Chapter 06 (build, core): ``cls(modalities, num_classes)`` with one learned score ``a`` (M,) per
    modality; ``forward(logits (B, M, K), present (B, M)) -> (B, K)`` log-probabilities."""
    return _vote_check()(cls)
