"""Exercise checks for chapter 00 (welcome)."""
from __future__ import annotations

from collections.abc import Mapping

from .feedback import Feedback, not_yet, unsolved

__all__ = ["FAMILIES", "TAXONOMY_QUIZ", "check_concat_unit", "check_taxonomy", "check_tensor_fusion_size", "tensor_fusion_size"]

FAMILIES = ("input", "single_level", "hierarchical", "attention", "output")

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
    if unsolved(answers) or any(unsolved(v) for v in dict(answers).values()):
        return not_yet(f"use one of {', '.join(FAMILIES)} for each description.")
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
    if unsolved(answer):
        return not_yet("append a constant 1 to each h_m before taking the outer product.")
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


# ---------------------------------------------------------------- build: concatenation as a module (warm-up)
def _concat_check():
    from .build import vector_check, zeroed as _zeroed

    return vector_check(
        "ConcatUnit",
        hint="torch.where(present.unsqueeze(-1), h, 0) zeroes the absent rows; .flatten(1) lays the M rows side by side.",
        reference=lambda module, h, present: _zeroed(h, present).flatten(1),
        wrong={
            "Absent modalities pass through: zero their rows first, torch.where(present.unsqueeze(-1), h, 0).":
                lambda module, h, present: h.flatten(1),
            "That is a sum (D entries); concatenation keeps every modality's entries side by side (M·D entries).":
                lambda module, h, present: _zeroed(h, present).sum(1),
            "That stacks the modalities one under another (B·M rows); lay them side by side: one row per subject.":
                lambda module, h, present: _zeroed(h, present).reshape(-1, h.shape[-1]),
        },
        success="Correct: z = [h_1; ...; h_M] with absent rows at 0, the 'concat' strategy's fusion.",
    )


def check_concat_unit(cls, trained=None) -> Feedback:
    """Chapter 00 (build, warm-up): ``cls(modalities, dim)``; ``forward(h (B, M, D), present (B, M)) -> (B, M*D)``."""
    return _concat_check()(cls, trained)
