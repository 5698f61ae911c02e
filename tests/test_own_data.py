"""A user's own data: a right answer or a clear refusal, never a quietly wrong one.

Data here is made by hand (plain arrays, pandas tables, CSV files), not by the course's generator.
"""
from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from fusion_kit.data import (
    MultimodalDataset,
    Splits,
    export_cohort,
    kfold,
    load_manifest,
    split_by,
    split_dataset,
    standardize,
)
from fusion_kit.experiment import compare
from fusion_kit.models import STRATEGIES, build_model, compatible_modalities, describe
from fusion_kit.report import paired_comparison
from fusion_kit.train import evaluate, fit, load_checkpoint, predict, save_checkpoint

SMALL = {"channels": (4, 8, 8), "out_dim": 8}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSION_KIT_CACHE", str(tmp_path / "cache"))


def study(n: int = 150, seed: int = 0, counts=None) -> MultimodalDataset:
    """Two co-registered images and a raw table whose columns differ by orders of magnitude."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3 if counts is None else torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    n = len(labels)
    a = 0.5 * torch.randn(n, 1, 8, 8, generator=g)
    a[:, :, 2:6, 2:6] += 0.8 * labels.view(-1, 1, 1, 1)
    b = 0.5 * torch.randn(n, 1, 8, 8, generator=g) - 0.4 * labels.view(-1, 1, 1, 1)
    table = torch.stack([
        0.1 * (labels + 0.7 * torch.randn(n, generator=g)),  # tenths
        1000 + 300 * (labels + 0.7 * torch.randn(n, generator=g)),  # thousands
        torch.randn(n, generator=g),  # noise
    ], 1)
    return MultimodalDataset({"mri": a, "pet": b, "clinical": table}, labels, class_names=("CN", "MCI", "AD"),
                             feature_names={"clinical": ("ratio", "volume", "noise")})


# ----------------------------------------------------------------------------- modalities matched by name
def reordered(data: MultimodalDataset, order) -> MultimodalDataset:
    return MultimodalDataset({m: data.tensors[m] for m in order}, data.labels, class_names=data.class_names,
                             mask=data.mask[:, [data.modalities.index(m) for m in order]],
                             feature_names={"clinical": data.specs["clinical"].feature_names})


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_the_order_a_dataset_lists_its_modalities_never_changes_a_prediction(strategy):
    data = study(60)
    mask = data.mask.clone()
    mask[::4, 1] = False  # some subjects without PET, so the mask columns matter
    data = data.with_mask(mask)
    modalities = compatible_modalities(strategy, data)
    torch.manual_seed(0)
    model = build_model(strategy, data, modalities=list(modalities), **SMALL)
    model.before_fit(data)
    model.eval()
    expected = predict(model, data).probs
    for order in itertools.permutations(data.modalities):
        assert np.array_equal(predict(model, reordered(data, order)).probs, expected), order


def test_a_hand_made_batch_in_another_order_reads_the_right_mask_column():
    data = study(40)
    model = build_model("concat", data, modalities=["mri", "clinical"], **SMALL).eval()
    batch = data.select(["mri", "clinical"]).batch(slice(0, 8))
    batch["mask"] = batch["mask"].clone()
    batch["mask"][:4, 0] = False  # no MRI for the first four
    swapped = {"clinical": batch["clinical"], "mri": batch["mri"], "mask": batch["mask"][:, [1, 0]]}
    with torch.no_grad():
        assert torch.equal(model(batch).logits, model(swapped).logits)
        extra = {"pet": data.tensors["pet"][:8], **swapped, "mask": torch.cat([torch.ones(8, 1, dtype=torch.bool),
                                                                             swapped["mask"]], 1)}
        assert torch.equal(model(extra).logits, model(batch).logits)  # a modality the model does not use


def test_a_dataset_with_more_modalities_is_narrowed_to_the_model():
    data = study(90)
    train, val, test = split_dataset(data, seed=0)
    model = build_model("concat", data, modalities=["clinical", "mri"], **SMALL)
    fit(model, train, val, epochs=2, progress=False)  # no .select needed
    assert evaluate(model, test).n == len(test)


# ----------------------------------------------------------------------------- raw tables
def test_raw_tables_are_scaled_with_training_statistics_inside_the_model(tmp_path):
    data = study(240).select(["clinical"])
    splits = split_dataset(data, seed=0)
    scores = {}
    for scale in (True, False):
        torch.manual_seed(0)
        model = build_model("unimodal", data, scale_tables=scale)
        fit(model, splits.train, splits.val, epochs=15, progress=False)
        scores[scale] = evaluate(model, splits.test).balanced_accuracy
    assert scores[True] > 0.8 and scores[True] > scores[False] + 0.15, scores
    torch.manual_seed(0)
    model = build_model("unimodal", data)
    fit(model, splits.train, splits.val, epochs=15, progress=False)
    present = splits.train.tensors["clinical"]
    mean, scale = model.scaling.statistics("clinical")
    assert torch.allclose(mean, present.mean(0), rtol=1e-4) and torch.allclose(scale, present.std(0, unbiased=False), rtol=1e-4)
    text = str(describe(model))
    assert "clinical scaled by training mean±sd" in text and "volume" in text
    save_checkpoint(model, tmp_path / "m.pt")  # the statistics travel with the model
    fresh = load_checkpoint(build_model("unimodal", data), tmp_path / "m.pt")
    assert np.array_equal(predict(fresh, splits.test).probs, predict(model, splits.test).probs)


def test_constant_columns_get_scale_one_and_standardize_keeps_the_type():
    data = study(90)
    table = data.tensors["clinical"].clone()
    table[:, 2] = 7.0
    data = data.with_tensors(clinical=table)
    splits = split_dataset(data, seed=0)
    scaled = standardize(splits)
    assert isinstance(scaled, Splits)
    assert torch.allclose(scaled.test.tensors["clinical"][:, 2], torch.zeros(len(splits.test)))
    assert isinstance(standardize(splits.train, splits.test), tuple)
    model = build_model("unimodal", data, modalities=["clinical"])
    model.before_fit(splits.train)
    assert model.scaling.statistics("clinical")[1][2] == 1.0


# ----------------------------------------------------------------------------- splits
def test_a_class_too_small_to_split_is_named():
    data = study(counts=(30, 8, 2))
    with pytest.raises(ValueError, match="class 'AD' has only 2 subject.*allow_small_classes=True"):
        split_dataset(data)
    train, val, test = split_dataset(data, allow_small_classes=True)
    assert train.class_counts()["AD"] == 1 and test.class_counts()["AD"] == 1 and val.class_counts()["AD"] == 0


def test_every_class_reaches_every_part():
    for seed in range(5):
        for part in split_dataset(study(counts=(30, 8, 3)), seed=seed):
            assert min(part.class_counts().values()) >= 1


def test_a_split_of_your_own_by_index_or_id():
    data = study(60)
    splits = split_by(data, train=range(40), test=range(40, 60))
    assert len(splits.test) == 20 and len(splits.train) + len(splits.val) == 40
    assert min(splits.val.class_counts().values()) >= 1
    ids = split_by(data, train=data.subject_ids[:30], val=data.subject_ids[30:40], test=data.subject_ids[40:])
    assert ids.val.subject_ids == data.subject_ids[30:40]
    with pytest.raises(ValueError, match="is in both train and test"):
        split_by(data, train=range(40), test=range(30, 60))
    with pytest.raises(ValueError, match="subject id 'sub-9999' is not in the dataset"):
        split_by(data, train=["sub-9999"], test=[0])
    with pytest.raises(ValueError, match="index 60 is out of range"):
        split_by(data, train=[0, 60], test=[1])


def test_kfold_tests_every_subject_once_and_compare_reports_the_folds():
    data = study(90)
    folds = kfold(data, k=3, seed=0)
    tested = sorted(sid for f in folds for sid in f.test.subject_ids)
    assert tested == sorted(data.subject_ids)
    for f in folds:
        assert not set(f.train.subject_ids) & (set(f.val.subject_ids) | set(f.test.subject_ids))
        assert min(f.val.class_counts().values()) >= 1
    assert [f.test.subject_ids for f in kfold(data, k=3, seed=0)] == [f.test.subject_ids for f in folds]
    with pytest.raises(ValueError, match="class 'AD' has only 2 subject.*5-fold"):
        kfold(study(counts=(20, 10, 2)), k=5)
    comparison = compare(folds, [("unimodal", ["clinical"], SMALL), ("concat", ["mri", "clinical"], SMALL)],
                         epochs=2, progress=False)
    table = comparison.table()
    assert (table["folds"] == 3).all() and (table["seeds"] == 1).all()
    stats = paired_comparison(comparison, "unimodal (clinical)", n_boot=50)
    assert stats.loc["concat (mri+clinical)", "wins"] == "0/1" or stats.loc["concat (mri+clinical)", "wins"] == "1/1"


# ----------------------------------------------------------------------------- labels
def test_labels_as_names_with_or_without_class_names():
    x = {"clinical": np.zeros((4, 2))}
    data = MultimodalDataset(x, ["b", "a", "b", "c"])
    assert data.class_names == ("a", "b", "c") and data.labels.tolist() == [1, 0, 1, 2]
    data = MultimodalDataset(x, ["CN", "AD", "CN", "MCI"], class_names=("CN", "MCI", "AD"))
    assert data.labels.tolist() == [0, 2, 0, 1]
    assert MultimodalDataset(x, ["1", "10", "2", "1"]).class_names == ("1", "2", "10")
    with pytest.raises(ValueError, match="label 'Alzheimer' of subject 1 is not one of the classes CN, MCI, AD"):
        MultimodalDataset(x, ["CN", "Alzheimer", "CN", "MCI"], class_names=("CN", "MCI", "AD"))


def test_labels_that_would_make_an_empty_class_or_lose_information_are_refused():
    x = {"clinical": np.zeros((4, 2))}
    with pytest.raises(ValueError, match="labels run from 1 to 3.*class 0 would be empty.*labels - 1"):
        MultimodalDataset(x, [1, 2, 3, 1])
    with pytest.raises(ValueError, match=r"leave class\(es\) \[1\] without subjects"):
        MultimodalDataset(x, [0, 2, 2, 0])
    with pytest.raises(ValueError, match="label 0.5 of subject 1 is not a whole number.*np.digitize"):
        MultimodalDataset(x, [0.0, 0.5, 1.0, 1.0])
    assert MultimodalDataset(x, np.array([0.0, 1.0, 1.0, 0.0])).labels.tolist() == [0, 1, 1, 0]
    assert MultimodalDataset(x, [1, 2, 3, 1], class_names=("a", "b", "c", "d")).num_classes == 4  # on purpose
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes.*subtract 1"):
        MultimodalDataset(x, [1, 2, 3, 1], class_names=("a", "b", "c"))


def _manifest(tmp_path, rows, header="subject_id,label,age,mmse") -> str:
    path = tmp_path / "participants.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_a_single_subject_label_is_a_likely_typo(tmp_path):
    rows = [f"s{i},{c},{70 + i},{28 - i % 5}" for i, c in enumerate(["CN", "AD", "MCI"] * 4)]
    rows[4] = "s4,Alzheimer,74,26"
    with pytest.raises(ValueError, match=r"line 6 \(subject s4\) has label 'Alzheimer' \(did you mean 'AD'\?\)"):
        load_manifest(_manifest(tmp_path, rows), image_columns=())
    rows[4] = "s4,ad,74,26"
    with pytest.raises(ValueError, match="did you mean 'AD'"):
        load_manifest(_manifest(tmp_path, rows), image_columns=())
    data = load_manifest(_manifest(tmp_path, rows), image_columns=(), allow_rare_classes=True)
    assert "ad" in data.class_names
    numbers = [f"s{i},{c},{70 + i},{28 - i % 5}" for i, c in enumerate(["1", "2", "10"] * 4)]
    assert load_manifest(_manifest(tmp_path, numbers), image_columns=()).class_names == ("1", "2", "10")


def test_one_non_numeric_cell_is_an_error_not_a_dropped_column(tmp_path):
    rows = [f"s{i},{c},{70 + i},{28 - i % 5}" for i, c in enumerate(["CN", "AD", "MCI"] * 4)]
    rows[2] = "s2,MCI,72,unknown"
    with pytest.raises(ValueError, match=r"line 4 \(subject s2\): column 'mmse' holds 'unknown'.*na_values=\['unknown'\]"):
        load_manifest(_manifest(tmp_path, rows), image_columns=())
    data = load_manifest(_manifest(tmp_path, rows), image_columns=(), na_values=["unknown"], nan_policy="absent")
    assert data.specs["clinical"].feature_names == ("age", "mmse") and int((~data.mask[:, 0]).sum()) == 1
    text = [r + ",site-" + "AB"[i % 2] for i, r in enumerate(rows)]
    text[2] = "s2,MCI,72,27,site-A"
    data = load_manifest(_manifest(tmp_path, text, "subject_id,label,age,mmse,site"), image_columns=())
    assert data.meta["skipped_columns"] == ["site"] and "columns left out (text, not numbers): site" in data.summary()


# ----------------------------------------------------------------------------- exports
def test_an_export_deletes_only_what_it_wrote(tmp_path):
    data = study(9).select(["mri", "clinical"])
    folder = tmp_path / "study"
    export_cohort(data, folder)
    bids = folder / "images" / "sub-01_T1w.nii.gz"
    bids.write_bytes(b"someone else's scan")
    assert json.loads((folder / ".fusion_kit_export.json").read_text())[0] == "images/sub-0000_mri.nii.gz"
    export_cohort(data.subset(range(3)), folder, overwrite=True)
    assert bids.exists() and len(list((folder / "images").glob("sub-00*_mri.nii.gz"))) == 3


def test_an_unsafe_subject_id_is_refused(tmp_path):
    bad = MultimodalDataset({"clinical": np.zeros((2, 2))}, [0, 1], subject_ids=["ok", "../../x"])
    with pytest.raises(ValueError, match=r"subject id '\.\./\.\./x' is not a safe file name"):
        export_cohort(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "x_clinical.nii.gz").exists()


# ----------------------------------------------------------------------------- training guards
def test_a_diverging_loss_stops_fit_naming_the_epoch():
    data = study(60)
    model = build_model("concat", data, **SMALL)
    with pytest.raises(FloatingPointError, match="training loss became nan in epoch 1.*lower the learning rate"):
        fit(model, data, epochs=3, lr=1e8, progress=False)


def test_bad_training_options_fail_before_any_training(tmp_path):
    data = study(60)
    model = build_model("concat", data, **SMALL)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for kwargs, error, message in [
        ({"patience": 0}, ValueError, "patience must be a positive integer"),
        ({"lr": "3e-3"}, TypeError, "lr must be a number, got '3e-3'"),
        ({"weight_decay": -1.0}, ValueError, "weight_decay must be at least 0"),
        ({"checkpoint": blocker / "m.pt"}, PermissionError, "is not a folder you can write to"),
        ({"checkpoint": tmp_path}, IsADirectoryError, "is a folder; give a file name"),
    ]:
        with pytest.raises(error, match=message):
            fit(model, data, epochs=1, progress=False, **kwargs)
    assert not model.scaling.fitted  # nothing ran
    with pytest.raises(TypeError, match="option rank must be an integer, got '4'"):
        build_model("low_rank", data, rank="4")
    with pytest.raises(TypeError, match="option dropout must be a number"):
        build_model("concat", data, dropout="0.1")
    with pytest.raises(TypeError, match="option scale_tables must be True or False"):
        build_model("concat", data, scale_tables=1)


def test_a_modality_absent_for_every_training_subject_is_refused():
    data = study(30)
    mask = data.mask.clone()
    mask[:, 1] = False
    with pytest.raises(ValueError, match="modality 'pet' is absent for every subject of the training set"):
        fit(build_model("concat", data, **SMALL), data.with_mask(mask), epochs=1)


def test_checkpoints_that_are_empty_or_truncated_name_the_file(tmp_path):
    data = study(30)
    model = build_model("concat", data, **SMALL)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.pt is empty"):
        load_checkpoint(model, empty)
    path = save_checkpoint(model, tmp_path / "full.pt")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="full.pt cannot be read.*truncated"):
        load_checkpoint(model, path)


# ----------------------------------------------------------------------------- inputs at the door
def test_plain_arrays_dataframes_and_half_precision_are_accepted():
    frame = pd.DataFrame({"age": [70.0, 80.0, 75.0], "apoe4": [0, 1, 2]})
    images = np.zeros((3, 1, 8, 8), dtype=np.float16)
    data = MultimodalDataset({"mri": images, "clinical": frame}, ["CN", "AD", "CN"])
    assert data.tensors["mri"].dtype == torch.float32 and data.specs["clinical"].feature_names == ("age", "apoe4")
    with pytest.raises(TypeError, match="column\\(s\\) site of the DataFrame are not numeric"):
        MultimodalDataset({"clinical": frame.assign(site=["a", "b", "a"])}, [0, 1, 0])
    with pytest.raises(TypeError, match="holds <U1 values, not numbers"):
        MultimodalDataset({"clinical": np.array([["a"], ["b"]])}, [0, 1])


def test_a_mask_must_be_boolean_or_zero_one():
    x = {"clinical": np.zeros((2, 2))}
    assert MultimodalDataset(x, [0, 1], mask=[[1], [0]]).mask.tolist() == [[True], [False]]
    with pytest.raises(ValueError, match="mask must be boolean \\(or exactly 0/1\\).*got 0.3 for subject 1"):
        MultimodalDataset(x, [0, 1], mask=np.array([[1.0], [0.3]]))
    data = study(10)
    model = build_model("concat", data, **SMALL)
    batch = data.batch()
    batch["mask"] = batch["mask"].float() * 0.5
    with pytest.raises(ValueError, match="mask must be boolean"):
        model(batch)


def test_images_too_small_for_the_encoder_get_a_hint_that_works():
    data = MultimodalDataset({"mri": np.zeros((6, 1, 1, 1)), "pet": np.zeros((6, 1, 1, 1))}, [0, 1, 2] * 2)
    with pytest.raises(ValueError, match=r"pass at most 1, e.g. channels=\(8,\)"):
        build_model("concat", data)
    build_model("concat", data, channels=(8,))
