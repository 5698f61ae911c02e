"""Exercise checks for chapter 03 (single-level fusion)."""
from __future__ import annotations

from .feedback import Feedback, not_yet, unsolved

__all__ = ["check_gated_unit", "check_mean_fusion"]

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


# ---------------------------------------------------------------- build: a gated multimodal unit (core)
def _gmu_parts(module, h, present, *, zero_first: bool = True):
    """tanh(V_m h_m) (B, M, D') and the gate scores W_g [h_1; ...; h_M] (B, M, D') with the learner's weights."""
    import torch

    from .build import zeroed

    x = zeroed(h, present) if zero_first else h
    v = torch.stack([torch.tanh(V(x[:, j])) for j, V in enumerate(module.values)], 1)
    return v, module.gate(x.flatten(1)).view(len(h), len(module.values), -1)


def _gmu(module, h, present, gates):
    v, scores = _gmu_parts(module, h, present)
    return (gates(scores, present.unsqueeze(-1)) * v).sum(1)


def _gmu_check():
    import torch

    from ..fusion import masked_softmax
    from .build import softmax_answers, vector_check

    def unmasked_gate_input(module, h, present):
        v, scores = _gmu_parts(module, h, present, zero_first=False)
        return (masked_softmax(scores, present.unsqueeze(-1), dim=1) * v).sum(1)

    right, usual = softmax_answers(_gmu, "gate weight")
    return vector_check(
        "GatedUnit",
        hint="v = tanh(V_m h_m) for each m; scores = gate([h_1; ...; h_M]).view(B, M, -1); g = softmax over dim 1 "
             "with absent modalities masked out (your masked softmax, or fusion_kit.fusion.masked_softmax); z = (g * v).sum(1).",
        reference=right,
        wrong={
            **usual,
            "Sigmoid gates open each modality on its own; here the gates compete: a softmax over the present "
            "modalities, so they sum to 1 in every feature.":
                lambda module, h, present: _gmu(module, h, present, lambda s, p: torch.where(p, s.sigmoid(), 0.0)),
            "The softmax runs over the modalities (dim 1), not over the features (dim -1).":
                lambda module, h, present: _gmu(module, h, present,
                                                lambda s, p: torch.where(p, masked_softmax(s, p.expand_as(s), dim=-1), 0.0)),
            "The gate reads [h_1; ...; h_M] including absent rows: zero them before the gate, or their content "
            "steers the gates.": unmasked_gate_input,
        },
        success="Correct: every feature of z is a mix of the present modalities, in proportions the subject's own "
                "data set, the 'gmu' strategy's fusion.",
    )


def check_gated_unit(cls, trained=None) -> Feedback:
    """Chapter 03 (build, core): a gated multimodal unit ``cls(modalities, dim)`` with ``values`` (V_m) and
    ``gate`` (W_g); ``forward(h (B, M, D), present (B, M)) -> (B, D)``. ``trained``: its ``run`` result."""
    return _gmu_check()(cls, trained)
