"""The "when to use which family" tables: generated from per-seed scores, paired by seed, honest about the noise."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusion_kit import report
from fusion_kit.core import CHECKOUT
from fusion_kit.models import STRATEGIES


def scores_table() -> pd.DataFrame:
    """Two regimes, three seeds: in "plain" concat and film tie; in "aged" film leads concat by 4 points every seed."""
    rows = []
    values = {
        "plain": {"unimodal (pet)": [0.60, 0.62, 0.61], "concat (a+b)": [0.70, 0.72, 0.71], "film (a+b)": [0.71, 0.70, 0.72],
                  "average (a+b)": [0.66, 0.65, 0.67], "exchange (a+b)": [0.69, 0.73, 0.70]},
        "aged": {"unimodal (pet)": [0.55, 0.56, 0.54], "concat (a+b)": [0.60, 0.61, 0.62], "film (a+b)": [0.64, 0.65, 0.66],
                 "average (a+b)": [0.55, 0.56, 0.55], "exchange (a+b)": [0.60, 0.60, 0.61]},
    }
    family = {"unimodal": "unimodal", "concat": "single_level", "film": "single_level", "average": "output",
              "exchange": "hierarchical"}
    for regime, models in values.items():
        for model, accs in models.items():
            for seed, acc in enumerate(accs):
                rows.append({"regime": regime, "model": model, "family": family[model.split(" (")[0]], "seed": seed,
                             "balanced_accuracy": acc, "seconds": 2.0 if "film" in model else 1.0,
                             "parameters": 200 if "film" in model else 100})
    return pd.DataFrame(rows)


def test_family_guide_names_the_winner_and_calls_a_tie_a_tie():
    guide = report.family_guide(scores_table())
    assert guide.loc["aged", "winner"] == "film" and guide.loc["aged", "verdict"] == "lead"
    assert guide.loc["aged", "vs concat"] == pytest.approx(0.04)
    assert guide.loc["aged", "seconds x"] == pytest.approx(2.0) and guide.loc["aged", "parameters x"] == pytest.approx(2.0)
    assert guide.loc["plain", "verdict"].startswith("tie")  # film's 0.7 point lead varies in sign over seeds


def test_review_claim_reads_both_ways_in_points_and_per_cent():
    claim = report.review_claim(scores_table())
    aged = claim.loc["aged"]
    assert aged["best single"] == "unimodal (pet)" and aged["best fusion"] == "film"
    assert aged["fusion gain (points)"] == pytest.approx(10.0)
    assert aged["fusion gain (%)"] == pytest.approx(100 * 0.10 / 0.55)
    assert aged["best deep"] == "exchange" and aged["best simple"] == "concat"  # film is neither deep nor simple
    assert aged["deep - simple (points)"] == pytest.approx(100 * (np.mean([0.60, 0.60, 0.61]) - 0.61))


def test_best_of_family_and_reading_a_scores_file(tmp_path):
    best, spread = report.best_of_family(scores_table())
    assert best.loc["aged", "single_level"] == pytest.approx(0.65) and best.loc["plain", "output"] == pytest.approx(0.66)
    assert np.isfinite(spread.to_numpy()).all()
    path = tmp_path / "scores.csv"
    scores_table().to_csv(path, index=False)
    assert len(report.read_scores(path)) == 30
    with pytest.raises(FileNotFoundError, match="benchmarks/regimes.py"):
        report.read_scores(tmp_path / "none.csv")
    scores_table().drop(columns="seconds").to_csv(path, index=False)
    with pytest.raises(ValueError, match="seconds"):
        report.read_scores(path)


def test_the_kept_benchmark_scores_cover_every_registered_strategy():
    scores = report.read_scores(CHECKOUT / "benchmarks" / "regimes_scores.csv")
    assert set(STRATEGIES) <= {m.split(" (")[0] for m in scores["model"]}, "re-run python benchmarks/regimes.py"
    assert set(scores["regime"]) == {"default", "interaction", "conditioning", "reliability"}
