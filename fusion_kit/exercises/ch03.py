"""Exercise checks for chapter 03 (single-level fusion)."""
from __future__ import annotations

from .feedback import Feedback, not_yet, unsolved
from .ch00 import tensor_fusion_size

__all__ = ["check_mean_fusion", "check_tensor_head_weights"]

def check_mean_fusion(fn) -> Feedback:
    """Chapter 03: ``fn(h (B, M, D), present (B, M)) -> (B, D)``, the mean over present modalities."""
    import torch

    from ..fusion import masked_mean

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
        return not_yet("keep only present rows with torch.where(present.unsqueeze(-1), h, 0), sum over dim 1, divide by the count.")
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
    if unsolved(answer):
        return not_yet("the head maps the tensor-fusion vector (length prod(d_m + 1)) to the classes.")
    expected = tensor_fusion_size(*dims) * classes
    if answer == expected:
        return Feedback(True, f"Correct: {tensor_fusion_size(*dims):,} inputs x {classes} classes = {expected:,} weights.")
    if answer == tensor_fusion_size(*dims):
        return Feedback(False, "That is the length of z; the head has one weight per entry of z *per class*.")
    return Feedback(False, "The head is a (classes x len(z)) matrix, and len(z) = prod(d_m + 1).")
