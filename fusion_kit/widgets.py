"""ipywidgets panels that wire controls to plain, testable functions.

A panel never trains or plots by itself: it reads its controls and calls a
function ``run(modalities=[...], strategy="...", **knobs) -> PanelResult``,
usually a one-line lambda around ``run_and_show`` (train, then show a figure of
the result). Chapters call that same function once in a normal cell, so the
stored notebook shows a real figure even where widgets do not render, and tests
drive the panel through ``panel.train()`` exactly as the Train button does.

Where ``run`` takes a ``seed``, the panel adds a seed box and a choice of one run or three seeds, and keeps a
history of the session's runs (a table and a figure of their scores, one dot per seed), so a learner sees how
far a ranking moves with the seed.

Imports from fusion_kit: experiment, explain, models and viz.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PanelResult", "TrainingPanel", "training_panel", "run_and_show", "attention_figure", "depth_setup",
           "history_table"]


@dataclass
class PanelResult:
    """What a panel shows after a run: a figure and a line of text (plus any data for tests)."""

    figure: Any
    text: str
    data: Any = field(default=None, repr=False)


def _accepts_seed(run: Callable) -> bool:
    import inspect

    try:
        params = inspect.signature(run).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "seed" or p.kind is p.VAR_KEYWORD for p in params)


def _score(result: PanelResult) -> float | None:
    """The balanced accuracy a run reports (``result.data.metrics``), if it reports one."""
    value = getattr(getattr(result.data, "metrics", None), "balanced_accuracy", None)
    return float(value) if value is not None else None


class TrainingPanel:
    """Modality checkboxes, a strategy dropdown, knob sliders, a seed control, a Train button, a status line,
    a figure, and the history of the session's runs."""

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
        self.seeded = _accepts_seed(run)
        self.seed = w.BoundedIntText(value=0, min=0, max=10_000, description="seed")
        self.repeats = w.Dropdown(options=[("one seed", 1), ("3 seeds", 3)], value=1, description="train on")
        self.button = w.Button(description="Train", button_style="primary", icon="play")
        self.status = w.HTML(value="Choose modalities and a strategy, then press <b>Train</b>.")
        self.output = w.Output()
        self.history_view = w.Output()
        self.result: PanelResult | None = None
        self.history: list[dict[str, Any]] = []
        self.button.on_click(lambda _: self.train())
        header = [w.HTML(f"<b>{title}</b>")] if title else []
        seeds = [w.HBox([self.seed, self.repeats])] if self.seeded else []
        self.widget = w.VBox([
            *header,
            w.HBox(list(self.checkboxes.values())),
            self.strategy,
            *self.knobs.values(),
            *seeds,
            self.button,
            self.status,
            self.output,
            self.history_view,
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

    def seeds(self) -> list[int | None]:
        """The seeds the next press of Train runs: the seed box and the next ones, or None where run takes none."""
        return [self.seed.value + k for k in range(self.repeats.value)] if self.seeded else [None]

    def train(self) -> PanelResult | None:
        """Run with the current controls (what the Train button does); show the figure and the text.

        A failed run leaves no stale result: the figure is cleared and the status line says what went wrong
        (a combination that cannot work, or any other error, with its type)."""
        args = self.values()
        if not args["modalities"]:
            self.status.value = "No modality selected: tick at least one modality, then press Train."
            return None
        self.button.disabled = True
        self.result, runs, error, seeds = None, [], None, self.seeds()
        try:
            with self.output:  # the progress bar and the figure appear under the controls
                self.output.clear_output(wait=True)
                for seed in seeds:
                    self.status.value = (f"Training <b>{args['strategy']}</b> on {' + '.join(args['modalities'])}"
                                         + (f", seed {seed}" if seed is not None else "") + " ...")
                    try:  # caught here: inside a kernel, Output would swallow it and print a traceback
                        runs.append(self.run(**args, **({"seed": seed} if seed is not None else {})))
                    except (ValueError, KeyError) as err:  # a learner's choice that cannot work
                        error = f"Cannot train this combination: {err}"
                        break
                    except Exception as err:  # noqa: BLE001 - anything else still ends in a readable status
                        error = f"Training failed ({type(err).__name__}): {err}"
                        break
                if error is None:
                    _show(runs[-1].figure)
        finally:
            self.button.disabled = False
        if error is not None:
            self.status.value = error
            return None
        self.result = runs[-1]
        self._remember(args, runs, [s for s in seeds if s is not None])
        return self.result

    def _remember(self, args: dict, runs: list[PanelResult], seeds: list[int]) -> None:
        """Add the run to the history; the status line gives the mean and spread when several seeds ran."""
        import numpy as np

        scores = [s for s in (_score(r) for r in runs) if s is not None]
        knobs = ", ".join(f"{k}={v}" for k, v in args.items() if k not in ("modalities", "strategy"))
        label = f"{args['strategy']} ({'+'.join(args['modalities'])})" + (f", {knobs}" if knobs else "")
        self.history.append({"run": len(self.history) + 1, "setup": label, "seeds": seeds, "scores": scores})
        self.status.value = self.result.text
        if len(scores) > 1:
            self.status.value += (f"<br>over seeds {', '.join(map(str, seeds))}: balanced accuracy "
                                  f"{np.mean(scores):.3f} ± {np.std(scores, ddof=1):.3f} (sd)")
        if self.seeded and scores:
            from . import viz

            from IPython.display import HTML, display

            with self.history_view:
                self.history_view.clear_output(wait=True)
                display(HTML(history_table(self.history)))
                _show(viz.plot_panel_history(self.history))

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def history_table(history: list[dict[str, Any]]) -> str:
    """The session's runs as a small HTML table: setup, seeds, mean and sd of the balanced accuracy."""
    import numpy as np

    rows = []
    for h in history:
        scores = h["scores"]
        mean = f"{np.mean(scores):.3f}" if scores else "-"
        sd = f"{np.std(scores, ddof=1):.3f}" if len(scores) > 1 else "-"
        rows.append(f"<tr><td>{h['run']}</td><td>{h['setup']}</td><td>{', '.join(map(str, h['seeds']))}</td>"
                    f"<td>{mean}</td><td>{sd}</td></tr>")
    head = "<tr><th>run</th><th>setup</th><th>seeds</th><th>balanced accuracy</th><th>sd over seeds</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


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


# ------------------------------------------------------------ the plain function behind the panels
def run_and_show(splits, item, *, figure: Callable | None = None, note: str = "", epochs: int = 30, seed: int = 0,
                 device: str = "auto", **fit_kwargs) -> PanelResult:
    """Train ``item`` on ``splits`` and show ``figure(result)`` with a status line.

    ``item`` is what ``experiment.run`` takes: a ``(strategy, modalities[, options])`` tuple, a ``Setup`` or a
    ``CompleteCases`` protocol. ``figure`` defaults to the learning curves and test confusion matrix
    (``viz.plot_result``); ``note`` is added to the status line after the model's name.
    """
    from . import viz
    from .experiment import run

    result = run(splits, item, epochs=epochs, seed=seed, device=device, progress=True, **fit_kwargs)
    shown = (figure or viz.plot_result)(result)
    text = f"<b>{result.setup.label}</b>{note}: {result.metrics} ({result.parameters:,} parameters, {result.seconds:.1f}s)"
    return PanelResult(shown, text, result)


def attention_figure(class_names):
    """A ``figure`` for ``run_and_show``: the model's mean attention per true class on the test set."""
    from . import viz
    from .explain import attention_summary

    return lambda result: viz.plot_attention_by_class(
        {result.setup.label: attention_summary(result.model, result.predictions)}, class_names, ncols=1,
        title="Mean weight per true class (test set)",
    )


def depth_setup(strategy: str, modalities, depths) -> tuple:
    """The setup for the depth panel, and a note for the status line: ``depths`` (the encoder stages to fuse
    at) goes to hierarchical fusion; a strategy without depths fuses once and the note says it is not used."""
    from .experiment import Setup
    from .models import strategy_options

    depths = (depths,) if isinstance(depths, int) else tuple(depths)
    modalities = tuple(modalities)
    if "depths" not in strategy_options(strategy):
        return Setup(strategy, modalities), f"; {strategy} fuses once, so the depths setting is not used"
    name = f"{strategy} ({'+'.join(modalities)}), fused at depths {', '.join(str(d) for d in depths)}"
    return Setup(strategy, modalities, {"depths": depths}, name=name), ""
