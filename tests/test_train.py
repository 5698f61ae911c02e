import pytest
import torch

from fusion_kit.data import split_dataset
from fusion_kit.train import default_batch_size, evaluate, fit, load_checkpoint, predict, save_checkpoint

from conftest import TwoBranch, make_toy_dataset


@pytest.fixture
def splits(toy):
    return split_dataset(toy, seed=0)


def test_fit_learns_and_keeps_the_best_epoch(splits):
    torch.manual_seed(0)
    model = TwoBranch(splits.train.specs)
    history = fit(model, splits.train, splits.val, epochs=20, progress=False)
    assert history.epochs_run >= 1 and 1 <= history.best_epoch <= history.epochs_run
    assert history.train_loss[-1] < history.train_loss[0]
    assert len(history.val_loss) == history.epochs_run
    scores = evaluate(model, splits.test)
    assert scores.balanced_accuracy > 0.6 and scores.auc > 0.9  # chance: 0.33 and 0.5
    assert "epochs" in str(history) and history.device == "cpu"


def test_default_batch_size_gives_small_sets_enough_steps():
    assert default_batch_size(600) == 64 and default_batch_size(10_000) == 64  # full-size cohorts
    assert default_batch_size(240) == 30  # a quick-mode training split: 8 steps, not 4
    assert default_batch_size(3) == 2  # batch norm needs two samples
    for n in range(16, 513):
        size = default_batch_size(n)
        assert size == 64 or -(-n // size) >= 8, n


def test_fit_without_batch_size_takes_the_default(splits, monkeypatch):
    seen = []
    monkeypatch.setattr("fusion_kit.train.epoch_batches", lambda n, size, perm: seen.append(size) or [perm])
    fit(TwoBranch(splits.train.specs), splits.train, epochs=1, progress=False)
    assert seen == [default_batch_size(len(splits.train))]


def test_same_seed_gives_identical_metrics(splits):
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = TwoBranch(splits.train.specs)
        fit(model, splits.train, splits.val, epochs=3, progress=False, seed=5)
        results.append((evaluate(model, splits.test).as_dict(), predict(model, splits.test).probs))
    assert results[0][0] == results[1][0]
    assert (results[0][1] == results[1][1]).all()


def test_early_stopping_stops(splits):
    torch.manual_seed(0)
    model = TwoBranch(splits.train.specs)
    history = fit(model, splits.train, splits.val, epochs=200, lr=0.05, patience=2, progress=False)
    assert history.stopped_early and history.epochs_run < 200


def test_custom_loss_and_after_fit_hooks_are_used(splits):
    calls = {}

    class Hooked(TwoBranch):
        def loss(self, output, label):
            calls["loss"] = calls.get("loss", 0) + 1
            return torch.nn.functional.cross_entropy(output, label)

        def after_fit(self, train):
            calls["after_fit"] = len(train)

    torch.manual_seed(0)
    fit(Hooked(splits.train.specs), splits.train, epochs=1, progress=False)
    assert calls["loss"] >= 1 and calls["after_fit"] == len(splits.train)


def test_output_object_with_logits_field(splits):
    class Wrapped(TwoBranch):
        def forward(self, batch):
            class Out:
                logits = super(Wrapped, self).forward(batch)
                attention = torch.ones(len(batch["label"]), 2)

            return Out()

    torch.manual_seed(0)
    model = Wrapped(splits.train.specs)
    fit(model, splits.train, epochs=1, progress=False)
    pred = predict(model, splits.test)
    assert pred.probs.shape == (len(splits.test), 3) and pred.attention.shape == (len(splits.test), 2)


def test_checkpoint_round_trip_and_refusal(tmp_path, splits):
    torch.manual_seed(0)
    model = TwoBranch(splits.train.specs)
    fit(model, splits.train, epochs=2, progress=False, checkpoint=tmp_path / "m.pt")
    assert (tmp_path / "m.pt").is_file() and not list(tmp_path.glob("*.tmp"))
    fresh = TwoBranch(splits.train.specs)
    load_checkpoint(fresh, tmp_path / "m.pt")
    assert (predict(fresh, splits.test).probs == predict(model, splits.test).probs).all()
    other = TwoBranch(splits.train.specs, strategy="something_else")
    with pytest.raises(ValueError, match="different model configuration.*strategy"):
        load_checkpoint(other, tmp_path / "m.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(fresh, tmp_path / "absent.pt")
    assert save_checkpoint(model, tmp_path / "sub" / "again.pt").is_file()


# ---------------------------------------------------------------- bad input
def test_bad_arguments_fail_before_training(toy, toy_model):
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        fit(toy_model, toy, epochs=0)
    with pytest.raises(ValueError, match="batch_size must be an integer of at least 2"):
        fit(toy_model, toy, batch_size=1)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        fit(toy_model, toy, device="tpu", epochs=1)
    with pytest.raises(TypeError, match="training must be a MultimodalDataset"):
        fit(toy_model, [1, 2, 3], epochs=1)


def test_dataset_without_a_modality_the_model_needs(toy, toy_model):
    with pytest.raises(KeyError, match="training set does not fit the model.*missing modality 'mri'"):
        fit(toy_model, toy.select(["clinical"]), epochs=1)


def test_dataset_with_wrong_image_size(toy_model):
    small = make_toy_dataset(size=8)
    with pytest.raises(ValueError, match=r"training set does not fit the model.*\(1, 8, 8\)"):
        fit(toy_model, small, epochs=1)


def test_dataset_with_more_classes_than_the_model(toy):
    model = TwoBranch(toy.specs, num_classes=2)
    with pytest.raises(ValueError, match="training set has 3 classes but the model predicts 2"):
        fit(model, toy, epochs=1)
