"""Exercise checks for chapter 04 (hierarchical fusion)."""
from __future__ import annotations

from .feedback import Feedback, not_yet, unsolved

__all__ = ["check_own_stages", "check_two_fusion_points"]

def check_two_fusion_points(model) -> Feedback:
    """Chapter 04: a hierarchical model that fuses at the middle and the last stage."""
    if unsolved(model):
        return not_yet("build_model('hierarchical', cohort, depths=(...)) with two stage indices; stages count from 0.")
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
    if unsolved(answer):
        return not_yet("each image encoder runs up to the deepest fusion depth, here 0; count its stages up to and including it.")
    if answer == 1:
        return Feedback(True, "Correct: stage 0 is the modality's own; stages 1 and 2 belong to the shared branch.")
    if answer == 0:
        return Feedback(False, "Fusion at depth 0 mixes the *output* of stage 0, so that stage is still the modality's own.")
    return Feedback(False, "Fusing at depth 0 means the modalities meet right after their first stage.")
