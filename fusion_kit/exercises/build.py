"""What every *build* exercise checks: a learner's ``nn.Module`` built, called, compared and trained.

A build exercise gives a class to complete. Its check builds the class, calls it on random inputs in which
every subset of the modalities is present (one alone included), and then, in this order:
- a crash, ``None`` (the body still ``...``), a wrong type or shape, NaN: each its own message;
- the module's output against the reference equation computed **with the learner's own parameters**, and
  against the typical wrong answers, each with the hint that fixes it;
- absent content: changing what absent modalities hold must not change the output;
- gradients: every parameter gets one;
- optionally the trained model (``trained=``, a ``RunResult`` of ``run``): a score above chance.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .feedback import Feedback, not_yet, unsolved

__all__ = ["BuildCheck", "every_subset", "module_properties", "softmax_answers", "jittered", "probe_vectors", "vector_check", "zeroed"]

MODALITIES = ("mri", "pet", "clinical")


def every_subset(num_modalities: int, repeat: int = 2):
    """(B, M) presence rows: every non-empty subset of the modalities, ``repeat`` times (single ones included)."""
    import torch

    rows = [r for r in itertools.product([True, False], repeat=num_modalities) if any(r)]
    return torch.tensor(rows * repeat, dtype=torch.bool)


def probe_vectors(num_modalities: int = 3, dim: int = 8, seed: int = 0):
    """Random h (B, M, D) at a moderate scale and a presence mask with every subset."""
    import torch

    present = every_subset(num_modalities)
    g = torch.Generator().manual_seed(seed)
    return 0.7 * torch.randn(len(present), num_modalities, dim, generator=g), present


def _described(value) -> str:
    import torch

    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


@dataclass
class BuildCheck:
    """One build exercise.

    ``build(cls)`` makes the module; ``inputs()`` gives the forward arguments; ``absent(inputs)`` says which
    argument holds the modalities' content and which of its entries are absent (``(position, mask)``, the mask
    broadcastable to it): changing them must not matter; ``reference(module,
    *inputs)`` is the right output with the module's parameters; ``wrong`` maps a hint to a function computing a
    typical wrong answer the same way.
    """

    name: str  # the class the learner completes
    hint: str  # for an unsolved answer
    build: Callable
    inputs: Callable[[], tuple]
    reference: Callable | None  # None: any output of shape (B, F) passes the comparison (a module of your design)
    absent: Callable[[tuple], tuple]
    wrong: Mapping[str, Callable] = field(default_factory=dict)
    success: str = "Correct."
    atol: float = 1e-4

    def __call__(self, cls, trained=None, *, chance: float | None = None) -> Feedback:
        import torch

        if unsolved(cls):
            return not_yet(self.hint)
        if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
            return Feedback(False, f"Give the class itself ({self.name}, a subclass of nn.Module), not {cls!r}.")
        torch.manual_seed(0)
        try:
            module = self.build(cls)
        except Exception as err:  # the learner's code: report it, never crash the notebook
            return Feedback(False, f"Building {cls.__name__} raised {type(err).__name__}: {err}")
        inputs = self.inputs()
        out = self._call(module, inputs)
        if isinstance(out, Feedback):
            return out
        verdict = self._compare(module, inputs, out)
        if verdict is not None:
            return verdict
        problem = self._absent_leaks(module, inputs, out) or self._gradient_gaps(module, inputs)
        if problem:
            return Feedback(False, problem)
        if trained is not None:
            return _trained_feedback(trained, cls, self.success, chance)
        return Feedback(True, self.success)

    # ------------------------------------------------------------------ the steps
    def _call(self, module, inputs: tuple):
        import torch

        try:
            out = module(*inputs)
        except Exception as err:
            return Feedback(False, f"{type(module).__name__}.forward raised {type(err).__name__}: {err}")
        if out is None:
            return not_yet(self.hint)
        if not isinstance(out, torch.Tensor):
            return Feedback(False, f"forward must return a tensor, not a {type(out).__name__}.")
        return out

    def _compare(self, module, inputs: tuple, out) -> Feedback | None:
        """None when ``out`` is the reference; else what is wrong, the most specific message first."""
        import torch

        def same(a, b) -> bool:
            return a.shape == b.shape and torch.allclose(a.detach(), b, atol=self.atol, equal_nan=True)

        if self.reference is None:
            if out.ndim != 2 or len(out) != len(inputs[0]):
                return Feedback(False, f"forward must return z of shape (B, F), one row per subject; got {_described(out)}.")
            if not torch.isfinite(out).all():
                return Feedback(False, "The output contains NaN or inf for some subsets of modalities (one alone "
                                       "included): look for a division by a count that can be 0.")
            return None
        with torch.no_grad():
            expected = self.reference(module, *inputs)
            if same(out, expected):
                return None
            for hint, wrong in self.wrong.items():
                try:
                    candidate = wrong(module, *inputs)
                except Exception:  # a wrong answer the learner's parameters cannot express
                    continue
                if same(out, candidate):
                    return Feedback(False, hint)
        if out.shape != expected.shape:
            return Feedback(False, f"Expected an output of shape {tuple(expected.shape)} for these inputs, got "
                                   f"{_described(out)}.")
        if not torch.isfinite(out).all():
            return Feedback(False, "The output contains NaN or inf: look for a division by a count that can be 0, "
                                   "or a log or softmax of -inf everywhere.")
        leak = self._absent_leaks(module, inputs, out)
        return Feedback(False, leak or "The shape is right but the values differ from the equation; compute one "
                                       "subject by hand and compare.")

    def _absent_leaks(self, module, inputs: tuple, out) -> str:
        import torch

        position, absent = self.absent(inputs)
        changed = list(inputs)
        changed[position] = torch.where(absent, torch.full_like(inputs[position], 5.0), inputs[position])
        with torch.no_grad():
            again = module(*changed)
        if not torch.allclose(again, out.detach(), atol=self.atol):
            return "Changing what an absent modality holds changed the output: absent content must never pass."
        return ""

    def _gradient_gaps(self, module, inputs: tuple) -> str:
        module.zero_grad()
        first, *rest = inputs
        first = first.detach().clone().requires_grad_(True)  # what the encoders would receive
        try:
            module(first, *rest).float().square().sum().backward()
        except RuntimeError as err:
            return f"No gradient flows back through forward ({err}): avoid .detach(), .item() and NumPy in forward."
        missing = [n for n, p in module.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
        if missing:
            return f"The parameter {missing[0]} gets no gradient: it is declared but never used in forward."
        if first.grad is None or not first.grad.any():
            return "No gradient reaches the input: the encoders before your module could not learn."
        return ""


def _trained_feedback(trained, cls, success: str, chance: float | None) -> Feedback:
    """A ``RunResult`` of the learner's registered strategy: the right class inside, a score above chance."""
    model = getattr(trained, "model", None)
    fusion = getattr(model, "fusion", None)
    if fusion is None or type(fusion).__name__ != cls.__name__:
        return Feedback(False, f"trained= should be the result of run(splits, NAME) for the strategy you registered "
                               f"with register_fusion(NAME, {cls.__name__}); register again after changing the class.")
    k = getattr(model, "num_classes", 3)
    floor = (1.0 / k if chance is None else chance) + 0.1
    score = float(trained.metrics.balanced_accuracy)
    if score < floor:
        return Feedback(False, f"It is correct but trained to a balanced accuracy of only {score:.3f} (chance "
                               f"{1 / k:.2f}): train longer, or look at the learning curve of trained.history.")
    return Feedback(True, f"{success} Trained on the cohort: balanced accuracy {score:.3f}.")


def jittered(module):
    """The module with noise added to every parameter, so that a zero initialisation hides no mistake."""
    import torch

    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return module


def softmax_answers(combine: Callable, weight: str = "weight") -> tuple[Callable, dict[str, Callable]]:
    """The right answer of a module that mixes its inputs with a softmax over the present modalities, and the two
    usual mistakes with their hints. ``combine(module, h, present, weights)`` computes the module's output with
    ``weights(scores, mask)``, a softmax over dim 1."""
    import torch

    from ..fusion import masked_softmax

    def right(module, h, present):
        return combine(module, h, present, lambda s, mask: masked_softmax(s, mask, dim=1))

    wrong = {
        f"Absent modalities still get {weight}: mask their scores before the softmax over the modalities (dim 1).":
            lambda module, h, present: combine(module, h, present, lambda s, mask: s.softmax(1)),
        f"Close: you zeroed the absent {weight} after the softmax, so the present ones no longer sum to 1; mask first.":
            lambda module, h, present: combine(module, h, present,
                                               lambda s, mask: torch.where(mask, s.softmax(1), 0.0)),
    }
    return right, wrong


def zeroed(h, present):
    """h (B, M, D) with the rows of absent modalities set to 0."""
    import torch

    return torch.where(present.unsqueeze(-1), h, torch.zeros_like(h))


def vector_check(name: str, hint: str, reference: Callable | None, wrong: Mapping[str, Callable], success: str,
                 dim: int = 8, modalities: Sequence[str] = MODALITIES) -> BuildCheck:
    """A build check for a fusion module of ``models.register_fusion``'s form: ``cls(modalities, dim)``, called
    on h (B, M, D) and present (B, M)."""
    return BuildCheck(
        name=name, hint=hint, build=lambda cls: cls(tuple(modalities), dim),
        inputs=lambda: probe_vectors(len(modalities), dim),
        reference=reference, wrong=wrong, success=success,
        absent=lambda inputs: (0, ~inputs[1].unsqueeze(-1)),
    )


def module_properties(cls, modalities: Sequence[str] = MODALITIES) -> Feedback:
    """A fusion module of the learner's own design (``register_fusion``'s form): it builds, returns z (B, F) for
    every subset of the modalities, never lets absent content through, and passes gradients to every parameter."""
    return vector_check(getattr(cls, "__name__", "your module"), "write forward(h, present) -> z (B, F).", None, {},
                        "Your module returns z (B, F) for every subset, ignores absent content and trains.",
                        modalities=modalities)(cls)
