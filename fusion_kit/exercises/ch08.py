"""Exercise checks for chapter 08 (benchmark and capstone)."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .feedback import Feedback, not_yet, unsolved

__all__ = ["check_capstone", "check_clear_winners"]


def check_clear_winners(answer: Iterable[str] | None, stats) -> Feedback:
    """Chapter 08: the models whose bootstrap interval against the best single modality lies entirely above 0."""
    if unsolved(answer):
        return not_yet("stats is a DataFrame; stats.index[stats['boot_low'] > 0] lists the rows whose interval is above 0.")
    if isinstance(answer, str):
        answer = [answer]
    chosen = set(answer)
    unknown = chosen - set(stats.index)
    if unknown:
        return Feedback(False, f"{sorted(unknown)[0]!r} is not a row of stats; copy the names from stats.index.")
    expected = set(stats.index[stats["boot_low"] > 0])
    if chosen == expected:
        return Feedback(True, f"Correct: {len(expected)} of {len(stats)} models. For them, resampling the test subjects "
                              "never (or very rarely) erases the gain; the others are within test-set noise.")
    extra = chosen - expected
    if extra:
        name = sorted(extra)[0]
        return Feedback(False, f"{name}: its interval starts at {stats.loc[name, 'boot_low']:+.3f}, so 0 (no gain) is inside it.")
    if any(stats.loc[n, "diff"] > 0 for n in expected - chosen) and chosen <= set(stats.index[stats["diff"] > 0]):
        return Feedback(False, "Some models you left out have their whole interval above 0; use boot_low, not only diff.")
    return Feedback(False, "Not that set: keep exactly the rows with boot_low > 0.")


def _shown(path: Path) -> str:
    """The path relative to the working folder where it is short, so a printed path does not name the machine."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def check_capstone(setup, splits, benchmark, results_dir, *, seeds=(0,), epochs: int = 30, device: str = "auto",
                   name: str = "capstone", chance_margin: float = 0.1, **fit_kwargs) -> Feedback:
    """Chapter 08: build, train and enter your own fusion module in the capstone table.

    ``setup`` names a strategy registered with ``models.register_fusion``; its module must return z (B, F)
    for every subset of the modalities, never pass absent content, and give every parameter a gradient.
    Then the check trains ``setup`` with the benchmark's seeds and budget (``fit_kwargs`` such as ``patience`` go to
    ``fit``), adds it to the benchmark's table, writes
    ``name.csv`` and ``name.md`` to ``results_dir``, and checks that it beats chance by
    ``chance_margin`` and appears in the written table. On success the feedback carries ``.table``.
    """
    from ..experiment import Comparison, Setup, compare
    from ..report import write_table
    from ..models import build_model

    if unsolved(setup):
        return not_yet("write a fusion module, register_fusion('capstone', YourModule), then "
                       "Setup('capstone', name='my fusion').")
    if not isinstance(setup, Setup):
        return Feedback(False, f"Give a fusion_kit.experiment.Setup, not a {type(setup).__name__}: "
                               "Setup(strategy, modalities, options, name).")
    from ..fusion import CustomFusion
    from ..models import STRATEGIES
    from .build import module_properties

    strategy = STRATEGIES.get(setup.strategy)
    if strategy is None or not issubclass(strategy, CustomFusion):
        return Feedback(False, f"{setup.strategy!r} is not a module of your own: write a class "
                               "(modalities, dim) -> forward(h, present), register_fusion('capstone', YourClass), "
                               "then Setup('capstone', ...).")
    if not setup.name:
        return Feedback(False, "Give your entry a name (Setup(..., name='...')) so it stands out in the table.")
    properties = module_properties(strategy.fusion_class, tuple(setup.modalities) or tuple(splits.train.modalities))
    if not properties:
        return properties
    existing = set(benchmark.table().index)
    if setup.name in existing:
        return Feedback(False, f"{setup.name!r} is already a row of the benchmark; choose a new name.")
    modalities = list(setup.modalities) or list(splits.train.modalities)
    try:
        build_model(setup.strategy, splits.train, modalities=modalities, **dict(setup.options))
    except (ValueError, KeyError, TypeError) as err:
        return Feedback(False, f"It does not build yet: {err}")
    mine = compare(splits, [setup], seeds=seeds, epochs=epochs, device=device, **fit_kwargs)
    table = Comparison(benchmark.runs + mine.runs).table().sort_values("balanced_accuracy", ascending=False)
    paths = write_table(table, results_dir, name)
    import pandas as pd

    written = pd.read_csv(paths["csv"], index_col=0)
    if setup.name not in written.index:
        return Feedback(False, f"{setup.name!r} did not reach {paths['csv']}; check that the folder is writable.")
    score, spread = written.loc[setup.name, "balanced_accuracy"], written.loc[setup.name, "bacc_std"]
    chance = 1.0 / splits.train.num_classes
    if score < chance + chance_margin:
        return Feedback(False, f"{setup.name} trains but reaches only {score:.3f} (chance {chance:.3f}); "
                               "check its options: a very high modality_dropout, for instance, starves it.")
    rank = list(written.index).index(setup.name) + 1
    feedback = Feedback(True, f"Entered: {setup.name} reaches {score:.3f} ± {spread:.3f}, rank {rank} of {len(written)}; "
                              f"the table is in {_shown(Path(paths['md']))}.")
    feedback.table = written
    return feedback
