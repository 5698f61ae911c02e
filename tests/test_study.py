"""`fusion-kit train`: a tiny 3D study from disk, one process and two (torchrun, Gloo on CPU)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from fusion_kit.course.cli import main
from fusion_kit.data import export_cohort, make_brain_cohort
from fusion_kit.study import train_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    cohort = make_brain_cohort(48, seed=5, cache=False, spatial_dims=3, image_size=16)
    return export_cohort(cohort, tmp_path_factory.mktemp("study3d"))


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSION_KIT_CACHE", str(tmp_path / "cache"))


def _history_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_writes_a_model_per_fold_metrics_and_history(study, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", str(study), "--strategy", "concat", "--epochs", "2", "--folds", "2", "--augment",
                 "--out", str(out)])
    assert code == 0
    assert (out / "fold_1" / "model.pt").is_file() and (out / "fold_2" / "model.pt").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert [f["fold"] for f in metrics["folds"]] == [1, 2]
    assert sum(f["n_test"] for f in metrics["folds"]) == 48  # every subject tested once
    assert 0 <= metrics["summary"]["balanced_accuracy"]["mean"] <= 1 and metrics["processes"] == 1
    rows = _history_rows(out / "history.csv")
    assert {r["fold"] for r in rows} == {"1", "2"} and all(float(r["train_loss"]) > 0 for r in rows)
    printed = capsys.readouterr().out
    assert "balanced acc" in printed and "mean" in printed and "sd" in printed


def test_one_split_from_python(study, tmp_path):
    result = train_study(study, "average", epochs=1, out=tmp_path / "one", progress=False)
    assert len(result.folds) == 1 and (tmp_path / "one" / "model.pt").is_file()
    assert result.summary()["auc"]["sd"] == 0.0


@pytest.mark.parametrize(("argv", "message"), [
    (["--strategy", "atention"], "unknown fusion strategy 'atention'"),
    (["--strategy", "stacking"], "stacking fits a rule on the whole training set"),
    (["--strategy", "concat", "--folds", "30"], "too few for 30-fold cross-validation"),
    (["--strategy", "concat", "--epochs", "0"], "epochs must be a whole number of at least 1"),
    (["--strategy", "concat", "--images", "mri,ct"], "has no column 'ct'"),
])
def test_a_users_mistake_is_one_line_before_training(study, tmp_path, capsys, argv, message):
    assert main(["train", str(study), *argv, "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad" / "metrics.json").exists()


def test_torchrun_two_cpu_processes_train_together(study, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", FUSION_KIT_QUICK="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "fusion_kit.course", "train", str(study), "--strategy", "concat", "--epochs", "2",
               "--out", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["folds"][0]["n_test"] > 0
    assert (out / "model.pt").is_file() and len(_history_rows(out / "history.csv")) == 2
    assert done.stdout.count("balanced acc") == 1  # the table printed by rank 0 only
