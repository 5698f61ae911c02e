import numpy as np
import pandas as pd
import pytest
import torch

from fusion_kit.data import split_dataset
from fusion_kit.data.missingness import mask_modality
from fusion_kit.experiment import MISSING_STRATEGIES, CompleteCases, Setup, compare, missing_strategy, run
from fusion_kit.fusion import FallbackModel
from fusion_kit.report import markdown_table, paired_comparison, write_table
from fusion_kit.train import predict

from conftest import make_toy_dataset

SMALL = {"channels": (4, 8), "out_dim": 8}


@pytest.fixture(scope="module")
def masked_splits():
    return split_dataset(mask_modality(make_toy_dataset(240), "mri", 0.5, seed=0), seed=0)


def test_every_missing_strategy_builds_a_setup():
    for name in MISSING_STRATEGIES:
        item = missing_strategy(name, ("mri", "clinical"), incomplete="mri")
        assert item.label == name
    cc = missing_strategy("complete cases", ("mri", "clinical"), incomplete="mri")
    assert isinstance(cc, CompleteCases) and cc.fallback.strategy == "unimodal" and cc.fallback.modalities == ("clinical",)
    assert missing_strategy("modality dropout", ("mri", "clinical"), dropout=0.2).options == {"modality_dropout": 0.2}
    assert missing_strategy("masked attention", ("mri", "clinical")).strategy == "transformer"
    with pytest.raises(ValueError, match="Did you mean 'mean imputation'"):
        missing_strategy("mean imputaton", ("mri", "clinical"))
    with pytest.raises(ValueError, match="needs a fallback"):
        missing_strategy("complete cases", ("mri",), incomplete="mri")


def test_complete_cases_scores_every_test_subject(masked_splits):
    item = CompleteCases(Setup("concat", ("mri", "clinical"), SMALL), Setup("unimodal", ("clinical",), SMALL))
    result = run(masked_splits, item, epochs=3, progress=False)
    assert result.metrics.n == len(masked_splits.test) and result.family == "missing"
    assert result.setup.label == "concat (mri+clinical), complete cases"
    model = result.model
    assert isinstance(model, FallbackModel)
    # complete subjects get the primary model's probabilities, the others the fallback's
    test = masked_splits.test
    mixed = predict(model, test).probs
    main = predict(model.primary, test).probs
    backup = predict(model.fallback, test.select(["clinical"])).probs
    complete = test.mask.all(1).numpy()
    assert 0 < complete.sum() < len(test)
    assert np.allclose(mixed[complete], main[complete], atol=1e-5)
    assert np.allclose(mixed[~complete], backup[~complete], atol=1e-5)
    # a trained fallback is reused, not retrained
    again = run(masked_splits, CompleteCases(item.setup, run(masked_splits, item.fallback, epochs=2, progress=False)),
                    epochs=3, progress=False)
    assert again.seconds < result.seconds + 5


def test_distilled_fallback_learns_from_the_complete_case_model(masked_splits):
    item = CompleteCases(Setup("concat", ("mri", "clinical"), SMALL), Setup("unimodal", ("clinical",), SMALL),
                         distilled=True)
    result = run(masked_splits, item, epochs=3, progress=False)
    plain = run(masked_splits, CompleteCases(item.setup, item.fallback), epochs=3, progress=False)
    assert result.metrics.n == len(masked_splits.test) and isinstance(result.model, FallbackModel)
    for (name, a), b in zip(result.model.primary.state_dict().items(), plain.model.primary.state_dict().values()):
        assert torch.equal(a, b), name  # the same complete-case model: only the fallback's training differs
    assert not all(torch.equal(a, b) for a, b in zip(result.model.fallback.state_dict().values(),
                                                     plain.model.fallback.state_dict().values()))
    chosen = missing_strategy("distillation", ("mri", "clinical"), incomplete="mri", fallback=plain)
    assert chosen.distilled and isinstance(chosen.fallback, Setup)  # a trained fallback cannot be distilled again
    with pytest.raises(ValueError, match="give it as a Setup"):
        run(masked_splits, CompleteCases(item.setup, plain, distilled=True), epochs=1, progress=False)


def test_fallback_must_use_a_subset(masked_splits):
    a = run(masked_splits, Setup("unimodal", ("clinical",), SMALL), epochs=1, progress=False).model
    b = run(masked_splits, Setup("unimodal", ("mri",), SMALL), epochs=1, progress=False).model
    with pytest.raises(ValueError, match="does not see"):
        FallbackModel(a, b)


def test_compare_mixes_setups_and_complete_cases(masked_splits):
    items = [CompleteCases(Setup("concat", ("mri", "clinical"), SMALL), Setup("unimodal", ("clinical",), SMALL), "cc"),
             Setup("average", ("mri", "clinical"), SMALL, name="avg")]
    table = compare(masked_splits, items, seeds=(0, 1), epochs=2, progress=False).table()
    assert list(table.index) == ["cc", "avg"] and (table["seeds"] == 2).all()
    assert table.loc["cc", "family"] == "missing"


def test_paired_comparison(masked_splits):
    splits = split_dataset(make_toy_dataset(240), seed=0)
    setups = [Setup("unimodal", ("mri",), SMALL), Setup("concat", ("mri", "clinical"), SMALL),
              Setup("unimodal", ("clinical",), SMALL)]
    comparison = compare(splits, setups, seeds=(0, 1, 2), epochs=3, progress=False)
    stats = paired_comparison(comparison, "unimodal (mri)", n_boot=300)
    assert list(stats.index) == ["concat (mri+clinical)", "unimodal (clinical)"]
    assert {"diff", "wins", "seed_low", "seed_high", "boot_low", "boot_high", "p_boot"} <= set(stats.columns)
    table = comparison.table()
    for label, row in stats.iterrows():  # the mean paired difference is the difference of the means
        expected = table.loc[label, "balanced_accuracy"] - table.loc["unimodal (mri)", "balanced_accuracy"]
        assert row["diff"] == pytest.approx(expected, abs=1e-9)
        assert row["seed_low"] <= row["diff"] <= row["seed_high"]
        assert row["boot_low"] <= row["boot_high"] and 0 <= row["p_boot"] <= 1
    same = paired_comparison(comparison, "unimodal (mri)", n_boot=300)
    pd.testing.assert_frame_equal(stats, same)  # seeded resampling
    one_seed = compare(splits, setups[:2], seeds=(0,), epochs=1, progress=False)
    assert np.isnan(paired_comparison(one_seed, "unimodal (mri)", n_boot=50)["seed_low"]).all()
    with pytest.raises(KeyError, match="no runs named"):
        paired_comparison(comparison, "nope")


def test_markdown_and_files(tmp_path):
    table = pd.DataFrame({"family": ["a", "b"], "balanced_accuracy": [0.51234, float("nan")], "parameters": [1200, 5]},
                         index=pd.Index(["x", "y"], name="model"))
    text = markdown_table(table)
    assert text.splitlines()[0] == "| model | family | balanced_accuracy | parameters |"
    assert text.splitlines()[1] == "|---|---|---:|---:|"
    assert "| x | a | 0.512 | 1,200 |" in text and "| y | b |  | 5 |" in text  # NaN left blank
    from fusion_kit.viz import new_figure

    fig, _ = new_figure(2, 2)
    paths = write_table(table, tmp_path / "new" / "folder", "bench", figure=fig)
    assert set(paths) == {"csv", "md", "png"} and all(p.exists() for p in paths.values())
    back = pd.read_csv(paths["csv"], index_col=0)
    assert list(back.index) == ["x", "y"] and back.loc["x", "parameters"] == 1200
