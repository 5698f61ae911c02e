"""Figures: pure functions of data (arrays, predictions, result objects) that return a Figure.

A figure function never trains or predicts, and importing this package changes nothing: each figure
is a ``CourseFigure`` that shows itself in a notebook. One module per kind of picture:

- ``style``: the figure class, colours and shared helpers;
- ``diagrams``: architecture diagrams and the taxonomy;
- ``data``: subjects, images, the clinical table, registration;
- ``training``: learning curves, confusion matrices, comparisons with their noise, sweeps, costs;
- ``attention``: attention weights per class, per subject and per place;
- ``calibration``: reliability diagrams and evidential uncertainty;
- ``explanations``: Grad-CAM heat maps.

A new figure goes in the module of its kind, and in ``__all__`` here.

Imports from fusion_kit: metrics (calibration bins); never train, models or widgets.
"""
from .attention import (
    plot_attention_by_class,
    plot_attention_by_severity,
    plot_modality_weights,
    plot_patch_attention,
    plot_spatial_attention,
    plot_weights_when_degraded,
)
from .calibration import plot_reliability, plot_uncertainty
from .data import (
    plot_augmentations, plot_clinical, plot_foci, plot_pet_overlay, plot_registration, plot_registration_result,
    plot_samples,
)
from .diagrams import draw_architecture, draw_taxonomy
from .explanations import plot_heatmaps, plot_stage_maps
from .style import FAMILY_COLORS, MODALITY_COLORS, CourseFigure, new_figure
from .training import (
    plot_comparison,
    plot_confusions,
    plot_cost,
    plot_differences,
    plot_grouped_bars,
    plot_history,
    plot_panel_history,
    plot_regimes,
    plot_result,
    plot_robustness,
    plot_sweep,
)

__all__ = [
    "plot_augmentations",
    "plot_panel_history",
    "FAMILY_COLORS",
    "MODALITY_COLORS",
    "CourseFigure",
    "draw_architecture",
    "draw_taxonomy",
    "new_figure",
    "plot_attention_by_class",
    "plot_attention_by_severity",
    "plot_clinical",
    "plot_comparison",
    "plot_confusions",
    "plot_cost",
    "plot_differences",
    "plot_foci",
    "plot_grouped_bars",
    "plot_heatmaps",
    "plot_stage_maps",
    "plot_history",
    "plot_modality_weights",
    "plot_patch_attention",
    "plot_pet_overlay",
    "plot_regimes",
    "plot_registration",
    "plot_registration_result",
    "plot_reliability",
    "plot_result",
    "plot_robustness",
    "plot_samples",
    "plot_spatial_attention",
    "plot_sweep",
    "plot_uncertainty",
    "plot_weights_when_degraded",
]
