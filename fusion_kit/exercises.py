"""Checks for the chapters' exercises: each says what is right, and gives a hint when it is not.

Every ``check_*`` function takes the learner's answer, prints feedback and returns
True or False. An answer left as ``...`` or ``None`` is "not yet solved", never an
error, so a student copy of a chapter runs top to bottom before any exercise is done.
"""
from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "Feedback",
    "TAXONOMY_QUIZ",
    "check_always_cn",
    "check_best_modality",
    "check_input_channels",
    "check_mean_fusion",
    "check_most_robust",
    "check_own_stages",
    "check_taxonomy",
    "check_two_fusion_points",
    "check_tensor_fusion_size",
    "check_tensor_head_weights",
    "tensor_fusion_size",
]

FAMILIES = ("input", "single_level", "hierarchical", "attention", "output")


class Feedback:
    """The result of a check: printable, and truthy when the answer is right."""

    def __init__(self, solved: bool, message: str) -> None:
        self.solved, self.message = solved, message

    def __bool__(self) -> bool:
        return self.solved

    def __repr__(self) -> str:
        return self.message


def _unsolved(answer) -> bool:
    return answer is None or answer is Ellipsis


def _not_yet(hint: str) -> Feedback:
    return Feedback(False, f"Not yet solved: replace ... with your answer. Hint: {hint}")


# ----------------------------------------------------------------- chapter 00
TAXONOMY_QUIZ: dict[str, str] = {
    "MRI and PET volumes stacked as two channels of one 3D CNN": "input",
    "an MRI CNN and a clinical MLP whose feature vectors are concatenated before one classifier": "single_level",
    "MRI and PET encoders that exchange feature maps after each of their four stages": "hierarchical",
    "a network that learns, per patient, how much weight to give MRI, PET and clinical features": "attention",
    "three separately trained classifiers whose predicted probabilities are averaged": "output",
}

_FAMILY_HINTS = {
    "input": "Does anything happen to the modalities *before* the first encoder?",
    "single_level": "Count the places where information from different modalities meets: exactly one, between encoders and head?",
    "hierarchical": "Do the modalities meet at more than one depth of the network?",
    "attention": "Are the weights that combine modalities computed from the data itself, per sample?",
    "output": "Is each modality classified on its own, and only the decisions combined?",
}


def check_taxonomy(answers: Mapping[str, str] | None) -> Feedback:
    """Chapter 00: name the family of each method in ``TAXONOMY_QUIZ``."""
    if _unsolved(answers) or any(_unsolved(v) for v in dict(answers).values()):
        return _not_yet(f"use one of {', '.join(FAMILIES)} for each description.")
    unknown = [v for v in answers.values() if v not in FAMILIES]
    if unknown:
        return Feedback(False, f"{unknown[0]!r} is not a family name; use one of {', '.join(FAMILIES)}.")
    wrong = [desc for desc, family in TAXONOMY_QUIZ.items() if answers.get(desc) != family]
    if not wrong:
        return Feedback(True, "Correct: all five families placed.")
    desc = wrong[0]
    return Feedback(False, f"{len(wrong)} to revisit. For '{desc}': {_FAMILY_HINTS[TAXONOMY_QUIZ[desc]]}")


def tensor_fusion_size(*dims: int) -> int:
    """Length of the tensor-fusion vector for marginal representations of sizes ``dims``: prod(d_m + 1)."""
    size = 1
    for d in dims:
        size *= d + 1
    return size


def check_tensor_fusion_size(answer: int | None, dims: tuple[int, ...] = (32, 32, 16)) -> Feedback:
    """Chapter 00: how long is the tensor-fusion vector for representations of sizes ``dims``?"""
    if _unsolved(answer):
        return _not_yet("append a constant 1 to each h_m before taking the outer product.")
    expected = tensor_fusion_size(*dims)
    if answer == expected:
        return Feedback(True, f"Correct: {' x '.join(str(d + 1) for d in dims)} = {expected}.")
    product = 1
    for d in dims:
        product *= d
    if answer == product:
        return Feedback(False, "Close: you forgot the constant 1 appended to each representation (it keeps the unimodal terms).")
    if answer == sum(dims):
        return Feedback(False, "That is the size of concatenation; tensor fusion multiplies, it does not add.")
    return Feedback(False, "Not quite: the outer product of vectors of lengths a, b, c has a*b*c entries; each h_m has d_m + 1 entries here.")


# ----------------------------------------------------------------- chapter 01
def check_best_modality(answer: str | None, comparison) -> Feedback:
    """Chapter 01: the modality whose unimodal baseline has the highest balanced accuracy."""
    table = comparison.table()
    best_label = str(table["balanced_accuracy"].idxmax())
    best = next(r.setup.modalities[0] for r in comparison.runs if r.setup.label == best_label)
    if _unsolved(answer):
        return _not_yet("comparison.table() is a pandas DataFrame; idxmax() on a column gives the row label.")
    names = sorted({m for r in comparison.runs for m in r.setup.modalities})
    if answer not in names:
        return Feedback(False, f"{answer!r} is not one of the modalities {', '.join(names)}.")
    if answer == best:
        return Feedback(True, f"Correct: {best} alone reaches {table.loc[best_label, 'balanced_accuracy']:.3f}.")
    return Feedback(False, f"Not the highest: look at the 'balanced_accuracy' column of {answer}'s row and the others.")


def check_always_cn(answer) -> Feedback:
    """Chapter 01: accuracy and balanced accuracy of always answering CN on 60 CN / 30 MCI / 10 AD."""
    if _unsolved(answer):
        return _not_yet("accuracy counts correct answers over all subjects; balanced accuracy averages the recall of each class.")
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


# ----------------------------------------------------------------- chapter 03
def check_mean_fusion(fn) -> Feedback:
    """Chapter 03: ``fn(h (B, M, D), present (B, M)) -> (B, D)``, the mean over present modalities."""
    import torch

    from .fusion import masked_mean

    g = torch.Generator().manual_seed(0)
    h = torch.randn(6, 3, 4, generator=g)
    present = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.bool)
    h_absent_changed = torch.where(present.unsqueeze(-1), h, torch.full_like(h, 1e3))
    expected = masked_mean(h, present, dim=1)
    try:
        out = fn(h_absent_changed, present)
    except Exception as err:  # the learner's code: report, do not crash the notebook
        return Feedback(False, f"Your function raised {type(err).__name__}: {err}")
    if out is None:
        return _not_yet("keep only present rows with torch.where(present.unsqueeze(-1), h, 0), sum over dim 1, divide by the count.")
    if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return Feedback(False, f"Expected a tensor of shape {tuple(expected.shape)} (B, D), got {shape}: average over dim 1.")
    if torch.allclose(out, h_absent_changed.mean(1)):
        return Feedback(False, "That averages absent modalities too: their content (here 1000) must not count.")
    if torch.allclose(out, torch.where(present.unsqueeze(-1), h, torch.zeros_like(h)).mean(1)):
        return Feedback(False, "Close: you zeroed absent modalities but divided by M; divide by the number present.")
    if torch.allclose(out, expected, atol=1e-5):
        return Feedback(True, "Correct: absent modalities neither count nor leak. fusion_kit.fusion.masked_mean does the same.")
    return Feedback(False, "Not equal to the mean of the present rows; check one subject by hand.")


def check_tensor_head_weights(answer: int | None, dims: tuple[int, ...] = (32, 32, 32), classes: int = 3) -> Feedback:
    """Chapter 03: weights of the linear head on a tensor-fusion vector."""
    if _unsolved(answer):
        return _not_yet("the head maps the tensor-fusion vector (length prod(d_m + 1)) to the classes.")
    expected = tensor_fusion_size(*dims) * classes
    if answer == expected:
        return Feedback(True, f"Correct: {tensor_fusion_size(*dims):,} inputs x {classes} classes = {expected:,} weights.")
    if answer == tensor_fusion_size(*dims):
        return Feedback(False, "That is the length of z; the head has one weight per entry of z *per class*.")
    return Feedback(False, "The head is a (classes x len(z)) matrix, and len(z) = prod(d_m + 1).")


# ----------------------------------------------------------------- chapter 04
def check_two_fusion_points(model) -> Feedback:
    """Chapter 04: a hierarchical model that fuses at the middle and the last stage."""
    if _unsolved(model):
        return _not_yet("build_model('hierarchical', cohort, depths=(...)) with two stage indices; stages count from 0.")
    depths = getattr(model, "depths", None)
    if getattr(model, "strategy", None) != "hierarchical" or depths is None:
        return Feedback(False, "Build it with build_model('hierarchical', cohort, depths=...).")
    if tuple(depths) == (1, 2):
        return Feedback(True, "Correct: stages 1 and 2 are the middle and the last of three (0, 1, 2).")
    if len(depths) != 2:
        return Feedback(False, f"This model fuses at {len(depths)} depth(s) {tuple(depths)}; the exercise asks for two.")
    return Feedback(False, f"Two fusion points, but at {tuple(depths)}: with three stages numbered from 0, which are the middle and the last?")


def check_own_stages(answer: int | None) -> Feedback:
    """Chapter 04: stages an image modality keeps to itself when fusing at depth 0."""
    if _unsolved(answer):
        return _not_yet("the image encoders stop at the first fusion depth; count the stages up to and including it.")
    if answer == 1:
        return Feedback(True, "Correct: stage 0 is the modality's own; stages 1 and 2 belong to the shared branch.")
    if answer == 0:
        return Feedback(False, "Fusion at depth 0 mixes the *output* of stage 0, so that stage is still the modality's own.")
    return Feedback(False, "Fusing at depth 0 means the modalities meet right after their first stage.")


# ----------------------------------------------------------------- chapter 02
def check_input_channels(answer: int | None) -> Feedback:
    """Chapter 02: channels seen by the first convolution of ``tabular_channels`` on MRI + PET + 5 clinical values."""
    if _unsolved(answer):
        return _not_yet("each image brings its channels; each clinical variable becomes one constant channel.")
    if answer == 7:
        return Feedback(True, "Correct: 1 (MRI) + 1 (PET) + 5 broadcast clinical channels = 7.")
    if answer == 3:
        return Feedback(False, "The table is not one channel: every variable is broadcast to its own channel.")
    return Feedback(False, "Count 1 channel per image and 1 per clinical variable (age, sex, education, MMSE, APOE4).")


def check_most_robust(answer: str | None, drop: Mapping[str, float]) -> Feedback:
    """Chapter 02: the fusion whose balanced accuracy dropped least under misregistration."""
    if _unsolved(answer):
        return _not_yet("min(drop, key=drop.get) gives the key with the smallest value.")
    if answer not in drop:
        return Feedback(False, f"{answer!r} is not in drop; its keys are {', '.join(drop)}.")
    best = min(drop, key=drop.get)
    if answer == best:
        return Feedback(True, f"Correct: {best} lost {drop[best]:.3f}; fusing summaries rather than voxels makes it robust to misalignment.")
    return Feedback(False, f"{answer} lost {drop[answer]:.3f}; another one lost less. Smaller drop = more robust.")
