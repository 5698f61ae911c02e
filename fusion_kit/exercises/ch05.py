"""Exercise checks for chapter 05 (attention-based fusion)."""
from __future__ import annotations

from collections.abc import Mapping

from .feedback import Feedback, not_yet, unsolved

__all__ = ["ATTENTION_QUIZ", "check_attention_pool", "check_attention_quiz", "check_attention_shift", "check_masked_softmax", "largest_shift"]


def check_masked_softmax(fn) -> Feedback:
    """Chapter 05: ``fn(scores (B, M), present (B, M)) -> (B, M)``, softmax over the present modalities only."""
    import torch

    from ..fusion import masked_softmax

    g = torch.Generator().manual_seed(0)
    scores = torch.randn(5, 3, generator=g)
    present = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    scores_absent_changed = torch.where(present, scores, torch.full_like(scores, 50.0))  # absent scores must not count
    expected = masked_softmax(scores, present, dim=1)
    try:
        out = fn(scores_absent_changed.clone(), present.clone())
    except Exception as err:  # the learner's code: report, do not crash the notebook
        return Feedback(False, f"Your function raised {type(err).__name__}: {err}")
    if out is None:
        return not_yet("give absent modalities a score of -inf (or a very low number) before the softmax over dim 1.")
    if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return Feedback(False, f"Expected a tensor of shape {tuple(expected.shape)} (B, M), got {shape}.")
    out = out.float()
    if torch.isnan(out).any():
        return Feedback(False, "Your weights contain NaN: use a very low finite score (torch.finfo(x.dtype).min) rather than -inf where a row could be empty, or fill NaN with 0.")
    if torch.allclose(out, scores_absent_changed.softmax(1), atol=1e-5):
        return Feedback(False, "That is a plain softmax: absent modalities (here with a large score) took most of the weight.")
    if torch.allclose(out, torch.where(present, scores_absent_changed, torch.zeros_like(scores)).softmax(1), atol=1e-5):
        return Feedback(False, "A score of 0 is not 'no weight': exp(0) = 1. Give absent modalities -inf (or a very low number) instead.")
    zeroed = torch.where(present, scores_absent_changed.softmax(1), torch.zeros_like(scores))
    if torch.allclose(out, zeroed, atol=1e-5):
        return Feedback(False, "Close: you zeroed the absent weights after the softmax, so the present ones no longer sum to 1. Mask before the softmax (or renormalise).")
    if (out[~present].abs() > 1e-6).any():
        return Feedback(False, "Absent modalities still get some weight; their weights must be exactly 0.")
    if not torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-5):
        return Feedback(False, "The weights of each subject (each row) must sum to 1.")
    if torch.allclose(out, expected, atol=1e-5):
        return Feedback(True, "Correct: absent modalities get weight 0 and the present ones share 1. fusion_kit.fusion.masked_softmax does the same.")
    return Feedback(False, "The rows sum to 1 and skip absent modalities, but the values differ from a softmax of the present scores; check one row by hand.")


def largest_shift(table, low: str = "CN", high: str = "AD") -> str:
    """The column (modality) whose mean weight grows most from class ``low`` to class ``high``."""
    return str((table.loc[high] - table.loc[low]).idxmax())


def check_attention_shift(answer: str | None, table) -> Feedback:
    """Chapter 05: which modality gains the most attention weight from CN to AD in ``table`` (classes x modalities)?"""
    if unsolved(answer):
        return not_yet("subtract the CN row from the AD row (table.loc['AD'] - table.loc['CN']) and take idxmax().")
    columns = [str(c) for c in table.columns]
    if answer not in columns:
        return Feedback(False, f"{answer!r} is not a column of the table; the columns are {', '.join(columns)}.")
    best = largest_shift(table)
    shift = table.loc["AD"] - table.loc["CN"]
    if answer == best:
        return Feedback(True, f"Correct: {best} gains {shift[best]:+.3f} of weight from CN to AD subjects in this run.")
    if answer == str(table.loc["AD"].idxmax()):
        return Feedback(False, "That modality has the largest weight for AD, but the question asks for the largest *change* from CN to AD.")
    return Feedback(False, f"{answer} changes by {shift[answer]:+.3f}; another modality changes more. Compute AD minus CN for every column.")


ATTENTION_QUIZ: dict[str, bool] = {
    "With a masked softmax, an absent modality gets exactly zero weight.": True,
    "The weights are computed for each subject from that subject's own data.": True,
    "If a modality has the larger attention weight, removing it must cost the most accuracy.": False,
    "Attention weights that barely vary between subjects show that the model ignores the modalities.": False,
    "Two models with the same accuracy can put very different weights on the same modalities.": True,
}

_QUIZ_HINTS = {
    "With a masked softmax, an absent modality gets exactly zero weight.": "Look at what masked_softmax does to an absent entry.",
    "The weights are computed for each subject from that subject's own data.": "Where does the score v^T tanh(W h_m) come from?",
    "If a modality has the larger attention weight, removing it must cost the most accuracy.": (
        "A weight scales h_m, but h_m can be large or small and the head can read it strongly or weakly: "
        "weights and ablation need not agree, even when they happen to rank the modalities alike."
    ),
    "Attention weights that barely vary between subjects show that the model ignores the modalities.": (
        "Constant weights can still be non-zero: z = Σ α_m h_m then behaves like a fixed weighted sum, which uses every modality."
    ),
    "Two models with the same accuracy can put very different weights on the same modalities.": (
        "Compare the modality-attention and transformer panels: do they give way to the same image modality?"
    ),
}


def check_attention_quiz(answers: Mapping[str, bool] | None) -> Feedback:
    """Chapter 05: true or false for each statement in ``ATTENTION_QUIZ``."""
    if unsolved(answers) or any(unsolved(v) for v in dict(answers).values()):
        return not_yet("answer True or False for each statement.")
    unknown = [v for v in answers.values() if not isinstance(v, bool)]
    if unknown:
        return Feedback(False, f"{unknown[0]!r} is not True or False.")
    wrong = [s for s, truth in ATTENTION_QUIZ.items() if answers.get(s) is not truth]
    if not wrong:
        return Feedback(True, "Correct: attention weights tell you how a model mixes its inputs, not why it decides; check them against ablations.")
    return Feedback(False, f"{len(wrong)} to revisit. '{wrong[0]}' {_QUIZ_HINTS[wrong[0]]}")


# ---------------------------------------------------------------- build: attention over modalities (core)
def _pooled(module, h, present, weights):
    scores = module.score(h).squeeze(-1)  # (B, M): v^T tanh(W h_m)
    return (weights(scores, present).unsqueeze(-1) * h).sum(1)


def _attention_pool_check():
    import torch

    from ..fusion import masked_softmax
    from .build import softmax_answers, vector_check

    right, usual = softmax_answers(_pooled)
    return vector_check(
        "AttentionPool",
        hint="scores = self.score(h).squeeze(-1) gives (B, M); alpha = a softmax over dim 1 with absent modalities "
             "masked (exercise 1); z = (alpha.unsqueeze(-1) * h).sum(1).",
        reference=right,
        wrong={
            **usual,
            "The softmax runs over the subjects of the batch (dim 0); it must run over each subject's modalities (dim 1).":
                lambda module, h, present: _pooled(module, h, present,
                                                   lambda s, p: torch.where(p, masked_softmax(s, p, dim=0), 0.0)),
            "That is the weights alpha (B, M); return the weighted sum z = sum_m alpha_m h_m (B, D).":
                lambda module, h, present: masked_softmax(module.score(h).squeeze(-1), present, dim=1),
        },
        success="Correct: z = sum_m alpha_m h_m with weights the subject's own representations set and absent "
                "modalities at exactly 0, the 'modality_attention' strategy's fusion.",
    )


def check_attention_pool(cls, trained=None) -> Feedback:
    """Chapter 05 (build, core): attention pooling ``cls(modalities, dim)`` with a ``score`` network
    (h_m -> one score); ``forward(h (B, M, D), present (B, M)) -> (B, D)``. ``trained``: its ``run`` result."""
    return _attention_pool_check()(cls, trained)
