"""ipywidgets panels that wire controls to plain, testable functions.

A panel never trains or plots by itself: it reads its controls and calls a
function ``run(modalities=[...], strategy="...", **knobs) -> PanelResult``.
Chapters call that same function once in a normal cell, so the stored notebook
shows a real figure even where widgets do not render, and tests drive the
panel through ``panel.train()`` exactly as the Train button does.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PanelResult",
    "TrainingPanel",
    "training_panel",
    "train_and_show",
    "run_and_show",
    "attention_and_show",
    "depths_and_show",
    "misregistration_and_show",
]


@dataclass
class PanelResult:
    """What a panel shows after a run: a figure and a line of text (plus any data for tests)."""

    figure: Any
    text: str
    data: Any = field(default=None, repr=False)


class TrainingPanel:
    """Modality checkboxes, a strategy dropdown, knob sliders, a Train button, a status line and a figure."""

    def __init__(
        self,
        run: Callable[..., PanelResult],
        *,
        modalities: Sequence[str],
        strategies: Sequence[str],
        knobs: Mapping[str, tuple] | None = None,
        selected: Sequence[str] | None = None,
        strategy: str | None = None,
        title: str = "",
    ) -> None:
        import ipywidgets as w

        if not strategies:
            raise ValueError("a training panel needs at least one strategy to choose from")
        self.run = run
        chosen = set(selected if selected is not None else modalities)
        self.checkboxes = {m: w.Checkbox(value=m in chosen, description=m, indent=False) for m in modalities}
        self.strategy = w.Dropdown(options=list(strategies), value=strategy or strategies[0], description="strategy")
        self.knobs = {name: _slider(name, spec) for name, spec in (knobs or {}).items()}
        self.button = w.Button(description="Train", button_style="primary", icon="play")
        self.status = w.HTML(value="Choose modalities and a strategy, then press <b>Train</b>.")
        self.output = w.Output()
        self.result: PanelResult | None = None
        self.button.on_click(lambda _: self.train())
        header = [w.HTML(f"<b>{title}</b>")] if title else []
        self.widget = w.VBox([
            *header,
            w.HBox(list(self.checkboxes.values())),
            self.strategy,
            *self.knobs.values(),
            self.button,
            self.status,
            self.output,
        ])

    @property
    def selected_modalities(self) -> list[str]:
        return [m for m, box in self.checkboxes.items() if box.value]

    def values(self) -> dict[str, Any]:
        """The arguments the next run will get."""
        return {
            "modalities": self.selected_modalities,
            "strategy": self.strategy.value,
            **{name: s.value for name, s in self.knobs.items()},
        }

    def train(self) -> PanelResult | None:
        """Run with the current controls (what the Train button does); show the figure and the text."""
        args = self.values()
        if not args["modalities"]:
            self.status.value = "No modality selected: tick at least one modality, then press Train."
            return None
        self.button.disabled = True
        self.status.value = f"Training <b>{args['strategy']}</b> on {' + '.join(args['modalities'])} ..."
        error = None
        try:
            with self.output:  # the progress bar and the figure appear under the controls
                self.output.clear_output(wait=True)
                try:  # caught here: inside a kernel, Output would swallow it and print a traceback
                    result = self.run(**args)
                except (ValueError, KeyError) as err:  # a learner's choice that cannot work
                    error = err
                else:
                    _show(result.figure)
        finally:
            self.button.disabled = False
        if error is not None:
            self.status.value = f"Cannot train this combination: {error}"
            return None
        self.result = result
        self.status.value = result.text
        return result

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _slider(name: str, spec: tuple):
    """(min, max, step, value) -> an int or float slider; (options, value) with a list -> a dropdown."""
    import ipywidgets as w

    if isinstance(spec[0], (list, tuple)):
        return w.Dropdown(options=list(spec[0]), value=spec[1], description=name)
    lo, hi, step, value = spec
    cls = w.IntSlider if all(isinstance(v, int) for v in spec) else w.FloatSlider
    return cls(min=lo, max=hi, step=step, value=value, description=name, continuous_update=False)


def _show(figure) -> None:
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(figure)
    plt.close(figure)


def training_panel(run: Callable[..., PanelResult], **kwargs) -> TrainingPanel:
    """Build a :class:`TrainingPanel` around ``run``; display it by leaving it last in a cell."""
    return TrainingPanel(run, **kwargs)


# ------------------------------------------------------------ plain functions behind the panels
def _status(result, name: str | None = None, note: str = "") -> str:
    """The panel's status line: model, scores, size and training time."""
    name = name or result.setup.label
    return f"<b>{name}</b>{note}: {result.metrics} ({result.parameters:,} parameters, {result.seconds:.1f}s)"


def train_and_show(splits, modalities, strategy, *, epochs: int = 30, seed: int = 0, device: str = "auto", **options) -> PanelResult:
    """Train ``strategy`` on ``modalities`` and show its learning curves and confusion matrix."""
    from . import viz
    from .experiment import Setup, run

    result = run(splits, Setup(strategy, tuple(modalities), options), epochs=epochs, seed=seed, device=device, progress=True)
    return PanelResult(viz.plot_result(result), _status(result), result)


def run_and_show(splits, item, *, epochs: int = 30, seed: int = 0, device: str = "auto", **fit_kwargs) -> PanelResult:
    """Train a Setup, or a ``CompleteCases`` protocol (chapter 07), and show its learning curves and confusion matrix."""
    from . import viz
    from .experiment import run

    result = run(splits, item, epochs=epochs, seed=seed, device=device, progress=True, **fit_kwargs)
    text = _status(result)
    return PanelResult(viz.plot_result(result), text, result)



def attention_and_show(splits, modalities, strategy, *, epochs: int = 30, seed: int = 0, device: str = "auto",
                       **options) -> PanelResult:
    """Train an attention-based ``strategy`` on ``modalities`` and show its mean attention per class on the test set."""
    from . import viz
    from .experiment import Setup, run

    result = run(splits, Setup(strategy, tuple(modalities), options), epochs=epochs, seed=seed, device=device, progress=True)
    name = result.setup.label
    figure = viz.plot_attention_by_class({name: result.model}, splits.test, ncols=1, title="Mean weight per true class (test set)")
    text = _status(result, name)
    return PanelResult(figure, text, result)



def depths_and_show(splits, modalities, strategy: str = "hierarchical", depths=(0, 1, 2), *, epochs: int = 30,
                    seed: int = 0, device: str = "auto", **options) -> PanelResult:
    """Train ``strategy`` on ``modalities`` and show it as ``train_and_show`` does; ``depths`` (the encoder stages
    to fuse at) goes to hierarchical fusion and is ignored, as the text says, by strategies without depths.
    """
    from . import viz
    from .experiment import Setup, run
    from .models import strategy_options

    depths = (depths,) if isinstance(depths, int) else tuple(depths)
    takes_depths = "depths" in strategy_options(strategy)
    if takes_depths:
        options = {**options, "depths": depths}
    name = f"{strategy} ({'+'.join(modalities)})"
    if takes_depths:
        name += f", fused at depths {', '.join(str(d) for d in depths)}"
    result = run(splits, Setup(strategy, tuple(modalities), options, name=name), epochs=epochs, seed=seed,
                 device=device, progress=True)
    text = _status(result, name)
    if not takes_depths:
        text += f"; {strategy} fuses once, so the depths setting is not used"
    return PanelResult(viz.plot_result(result), text, result)



def misregistration_and_show(n_subjects, modalities, strategy, misregistration, *, epochs: int = 30, seed: int = 0,
                             device: str = "auto", **options) -> PanelResult:
    """Make the cohort with PET moved by ``misregistration`` mm against MRI, split it, train ``strategy``, show it.

    The cohort is cached per level, so a level seen before costs no generation. A selection the strategy
    cannot take (e.g. ``channel_stack`` on the table alone) raises ValueError before any training.
    """
    from . import viz
    from .data import make_brain_cohort, split_dataset
    from .experiment import Setup, run

    modalities = tuple(modalities)
    if not modalities:
        raise ValueError("no modality selected: tick at least one modality to train a model")
    cohort = make_brain_cohort(n_subjects, misregistration=float(misregistration), seed=seed)
    splits = split_dataset(cohort, seed=seed)
    result = run(splits, Setup(strategy, modalities, options), epochs=epochs, seed=seed, device=device, progress=True)
    figure = viz.plot_registration_result(result, splits.test)
    text = _status(result, note=f", PET moved by {float(misregistration):g} mm")
    return PanelResult(figure, text, result)

