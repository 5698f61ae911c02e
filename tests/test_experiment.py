import numpy as np
import pytest

from fusion_kit.data import split_dataset
from fusion_kit.experiment import Setup, compare, run

from conftest import make_toy_dataset

SMALL = {"channels": (4, 8), "out_dim": 8}


@pytest.fixture(scope="module")
def splits():
    return split_dataset(make_toy_dataset(180), seed=0)


def test_run_trains_scores_and_reports(splits):
    result = run(splits, Setup("concat", ("mri", "clinical"), SMALL), epochs=4, progress=False)
    assert result.family == "single_level" and result.parameters > 0
    assert result.metrics.n == len(splits.test)
    assert result.setup.label == "concat (mri+clinical)"
    assert "concat (mri+clinical), seed 0" in str(result)


def test_compare_tables_every_setup_over_seeds(splits):
    setups = [Setup("unimodal", ("mri",), SMALL), Setup("unimodal", ("clinical",), SMALL), Setup("concat", (), SMALL, name="fused")]
    comparison = compare(splits, setups, seeds=(0, 1), epochs=3, progress=False)
    table = comparison.table()
    assert list(table.index) == ["unimodal (mri)", "unimodal (clinical)", "fused"]
    assert (table["seeds"] == 2).all() and (table["bacc_std"] >= 0).all()
    assert table.loc["fused", "family"] == "single_level"
    assert len(comparison.scores("fused")) == 2
    assert comparison.best() in table.index and comparison.best("unimodal").startswith("unimodal")
    assert "balanced_accuracy" in str(comparison)
    with pytest.raises(KeyError, match="no runs named 'nope'"):
        comparison.scores("nope")


def test_same_seed_same_result(splits):
    a = run(splits, Setup("concat", ("mri", "clinical"), SMALL), epochs=2, progress=False)
    b = run(splits, Setup("concat", ("mri", "clinical"), SMALL), epochs=2, progress=False)
    assert a.metrics.as_dict() == b.metrics.as_dict()
    assert np.array_equal(a.metrics.confusion, b.metrics.confusion)


def test_errors_say_what_to_do(splits):
    with pytest.raises(ValueError, match="no modality selected"):
        run(splits, "concat", [], epochs=1)
    with pytest.raises(ValueError, match="nothing to compare"):
        compare(splits, [])
    with pytest.raises(ValueError, match="unknown fusion strategy 'atention'"):
        run(splits, "atention", epochs=1)
