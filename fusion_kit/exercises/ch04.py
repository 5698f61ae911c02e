"""Exercise checks for chapter 04 (hierarchical fusion)."""
from __future__ import annotations

from .feedback import Feedback, not_yet, unsolved

__all__ = ["check_film_block", "check_own_stages", "check_two_fusion_points"]

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


# ---------------------------------------------------------------- build: a FiLM block at one depth (core)
def _film_inputs(channels: int = 4, table_dim: int = 5):
    import torch

    g = torch.Generator().manual_seed(1)
    maps = torch.randn(6, channels, 4, 4, generator=g)
    table = torch.randn(6, table_dim, generator=g)
    return maps, table, torch.tensor([True, False, True, True, False, True])


def _film(module, maps, table, present, *, one: float = 1.0, swap: bool = False, identity: bool = True):
    import torch

    gamma, beta = module.film(table).chunk(2, dim=-1)  # (B, C) each
    if swap:
        gamma, beta = beta, gamma
    shape = (*gamma.shape, *([1] * (maps.ndim - 2)))  # (B, C, 1, 1): one value per channel, every position
    modulated = (one + gamma.view(shape)) * maps + beta.view(shape)
    if not identity:
        return modulated
    return torch.where(present.view(-1, *([1] * (maps.ndim - 1))), modulated, maps)


def _film_check():
    from .build import BuildCheck

    return BuildCheck(
        name="FiLMBlock",
        hint="gamma, beta = self.film(table).chunk(2, dim=-1); reshape each to (B, C, 1, 1); F' = (1 + gamma) * maps "
             "+ beta; then torch.where(present.view(-1, 1, 1, 1), F', maps).",
        build=lambda cls: cls(4, 5),
        inputs=_film_inputs,
        reference=_film,
        absent=lambda inputs: (1, ~inputs[2].unsqueeze(-1)),
        wrong={
            "F' = gamma * F + beta: with small gamma at the start this erases the image's maps; FiLM scales by "
            "(1 + gamma), so an untrained block is close to the identity.":
                lambda module, *inputs: _film(module, *inputs, one=0.0),
            "gamma and beta are swapped: the first C outputs of self.film are gamma (the scale), the next C beta.":
                lambda module, *inputs: _film(module, *inputs, swap=True),
            "Where the table is absent the maps must pass unchanged: a table of zeros still gives gamma and beta "
            "equal to the layer's biases. Keep maps where present is False.":
                lambda module, maps, table, present: _film(
                    module, maps, table.masked_fill(~present.unsqueeze(-1), 0.0), present, identity=False),
        },
        success="Correct: the table scales and shifts every channel of the image's maps, and an absent table "
                "leaves them as they are. Placed at several depths, this is how a table conditions a hierarchy.",
    )


def check_film_block(cls) -> Feedback:
    """Chapter 04 (build, core): ``cls(channels, table_dim)`` with ``film`` (T -> 2C);
    ``forward(maps (B, C, H, W), table (B, T), present (B,)) -> (B, C, H, W)``."""
    return _film_check()(cls)
