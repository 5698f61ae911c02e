"""On-disk datasets: the cache format, NIfTI + CSV export, the manifest loader and its error messages."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from fusion_kit.data import (
    MultimodalDataset,
    export_cohort,
    load_dataset,
    load_manifest,
    make_brain_cohort,
    save_dataset,
    write_demo_cohort,
)
from fusion_kit.data import DEMO_COHORT


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test caches into its own folder, so nothing leaks between tests or into datasets/cache."""
    monkeypatch.setenv("FUSION_KIT_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def small() -> MultimodalDataset:
    return make_brain_cohort(9, image_size=24, missing={"pet": 0.25}, seed=3, cache=False)


@pytest.fixture
def exported(small, tmp_path) -> Path:
    """A fresh on-disk copy of the small cohort that a test may damage."""
    return export_cohort(small, tmp_path / "study")


def edit_csv(csv: Path, change) -> Path:
    frame = pd.read_csv(csv, dtype={"mri": str, "pet": str})
    change(frame)
    frame.to_csv(csv, index=False)
    return csv


# ----------------------------------------------------------------------------- cache format
def test_save_and_load_dataset_round_trip(small, tmp_path):
    path = save_dataset(small, tmp_path / "cohort.pt")
    back = load_dataset(path)
    assert back.modalities == small.modalities and back.class_names == small.class_names
    assert back.subject_ids == small.subject_ids
    for key in small.modalities:
        assert torch.equal(back.tensors[key], small.tensors[key])
    assert torch.equal(back.mask, small.mask) and torch.equal(back.labels, small.labels)
    assert back.specs["clinical"].feature_names == small.specs["clinical"].feature_names
    assert np.array_equal(back.meta["severity"], small.meta["severity"])
    assert back.meta["params"] == small.meta["params"] and back.meta["clinical_units"] == small.meta["clinical_units"]
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file behind


def test_save_dataset_refuses_meta_it_cannot_reload(small, tmp_path):
    bad = small.subset(range(3))
    bad.meta["notes"] = object()
    with pytest.raises(TypeError, match="JSON"):
        save_dataset(bad, tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()


# ----------------------------------------------------------------------------- export and reload
def test_export_writes_nifti_and_participants(small, exported):
    frame = pd.read_csv(exported, dtype={"mri": str, "pet": str}, keep_default_na=False)
    assert list(frame.columns) == ["subject_id", "label", "mri", "pet", "age", "sex", "education", "mmse", "apoe4"]
    assert frame["label"].tolist() == [small.class_names[k] for k in small.labels.tolist()]
    absent = ~small.mask[:, 1].numpy()
    assert (frame["pet"][absent] == "").all() and (frame["pet"][~absent] != "").all()
    image = nib.load(exported.parent / frame["mri"][0])
    assert image.shape == (24, 24)
    assert np.allclose(image.affine, np.asarray(small.meta["affine"]))  # voxels sit at their MNI position
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_cohort(small, exported.parent)


def test_load_manifest_gives_back_the_exported_cohort(small, exported):
    back = load_manifest(exported)
    assert back.modalities == small.modalities and back.class_names == small.class_names
    assert {k: (s.kind, s.shape) for k, s in back.specs.items()} == {k: (s.kind, s.shape) for k, s in small.specs.items()}
    assert back.subject_ids == small.subject_ids and torch.equal(back.labels, small.labels)
    assert torch.equal(back.mask, small.mask)
    for key in ("mri", "pet"):
        assert torch.equal(back.tensors[key], small.tensors[key])  # float32 NIfTI: exact
    assert np.allclose(back.tensors["clinical"].numpy(), small.meta["clinical_raw"], atol=1e-3)  # raw units in the CSV


def test_resize_and_scale_intensity_through_monai(exported):
    data = load_manifest(exported, image_size=16, scale_intensity=True)
    assert data.specs["mri"].shape == (1, 16, 16)
    present = data.mask[:, 0]
    assert float(data.tensors["mri"][present].amax()) == pytest.approx(1.0)
    assert float(data.tensors["mri"][present].amin()) == pytest.approx(0.0)


def test_a_slice_stored_as_x_y_1_is_read_as_2d(exported):
    frame = pd.read_csv(exported, dtype={"mri": str, "pet": str}, keep_default_na=False)
    path = exported.parent / frame["mri"][0]
    image = nib.load(path)
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[..., None], image.affine), path)
    data = load_manifest(exported)
    assert data.specs["mri"].shape == (1, 24, 24)


def test_columns_can_be_chosen_and_non_numeric_ones_are_skipped(exported):
    edit_csv(exported, lambda f: f.insert(2, "site", "A"))
    data = load_manifest(exported, image_columns=("mri",))
    assert data.modalities == ("mri", "clinical") and data.meta["skipped_columns"] == ["site", "pet"]
    only = load_manifest(exported, image_columns=(), tabular_columns=["mmse", "age"])
    assert only.modalities == ("clinical",) and only.specs["clinical"].feature_names == ("mmse", "age")


def test_labels_outside_the_course_classes_are_sorted(exported):
    edit_csv(exported, lambda f: f.__setitem__("label", ["yes" if i % 2 else "no" for i in range(len(f))]))
    assert load_manifest(exported).class_names == ("no", "yes")


# ----------------------------------------------------------------------------- errors, each naming the problem
def test_missing_image_file_names_line_and_subject(exported):
    (exported.parent / "images" / "sub-0004_mri.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"line 5 \(subject sub-0004\).*mri image.*not found"):
        load_manifest(exported)


def test_corrupt_image_names_line_and_subject(exported):
    (exported.parent / "images" / "sub-0002_mri.nii.gz").write_bytes(gzip.compress(b"this is not a NIfTI file"))
    with pytest.raises(ValueError, match=r"line 3 \(subject sub-0002\).*could not read mri image"):
        load_manifest(exported)


def test_missing_column_lists_the_columns(exported):
    edit_csv(exported, lambda f: f.drop(columns="pet", inplace=True))
    with pytest.raises(ValueError, match=r"no column 'pet'.*image_columns="):
        load_manifest(exported)
    with pytest.raises(ValueError, match="no column 'weight'"):
        load_manifest(exported, image_columns=("mri",), tabular_columns=["age", "weight"])


def test_duplicate_subject_ids(exported):
    edit_csv(exported, lambda f: f.__setitem__("subject_id", ["sub-0001"] * 2 + list(f["subject_id"][2:])))
    with pytest.raises(ValueError, match=r"'sub-0001' appears on lines \[2, 3\]"):
        load_manifest(exported)


def test_unknown_and_empty_labels(exported):
    edit_csv(exported, lambda f: f.__setitem__("label", ["CN", "MCI", "Alzheimer"] + list(f["label"][3:])))
    with pytest.raises(ValueError, match=r"line 4 \(subject sub-0003\) has label 'Alzheimer'.*CN, MCI, AD"):
        load_manifest(exported, class_names=("CN", "MCI", "AD"))
    edit_csv(exported, lambda f: f.__setitem__("label", [None] + list(f["label"][1:])))
    with pytest.raises(ValueError, match=r"line 2 \(subject sub-0001\) has no 'label'"):
        load_manifest(exported)


def test_images_of_mismatched_shapes(exported):
    path = exported.parent / "images" / "sub-0006_mri.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((20, 20), np.float32), np.eye(4)), path)
    with pytest.raises(ValueError, match=r"line 7 \(subject sub-0006\): mri image has shape \(1, 20, 20\).*image_size="):
        load_manifest(exported)
    assert load_manifest(exported, image_size=24).specs["mri"].shape == (1, 24, 24)


def test_missing_clinical_value_raises_or_marks_the_table_absent(exported):
    edit_csv(exported, lambda f: f.__setitem__("mmse", [np.nan] + list(f["mmse"][1:])))
    with pytest.raises(ValueError, match=r"line 2 \(subject sub-0001\) has no value in column 'mmse': impute"):
        load_manifest(exported)
    data = load_manifest(exported, nan_policy="absent")
    j = data.modalities.index("clinical")
    assert not data.mask[0, j] and data.mask[1:, j].all()
    assert torch.count_nonzero(data.tensors["clinical"][0]) == 0
    with pytest.raises(ValueError, match="Valid choices: raise, absent"):
        load_manifest(exported, nan_policy="impute")


def test_non_numeric_feature_value(exported):
    edit_csv(exported, lambda f: f.__setitem__("age", ["seventy"] + list(f["age"][1:].astype(str))))
    with pytest.raises(ValueError, match=r"line 2 \(subject sub-0001\): column 'age' holds 'seventy', not a number"):
        load_manifest(exported, tabular_columns=["age", "mmse"])


def test_missing_manifest_and_empty_image_column(exported, tmp_path):
    with pytest.raises(FileNotFoundError, match="participants CSV"):
        load_manifest(tmp_path / "nowhere.csv")
    edit_csv(exported, lambda f: f.__setitem__("pet", ""))
    with pytest.raises(ValueError, match="no subject has a 'pet' image"):
        load_manifest(exported)


def test_cache_is_written_only_after_a_successful_load(exported, tmp_path):
    cache = tmp_path / "cache"
    (exported.parent / "images" / "sub-0003_pet.nii.gz").write_bytes(b"garbage")
    if pd.read_csv(exported, dtype={"pet": str}, keep_default_na=False)["pet"][2]:
        with pytest.raises(ValueError, match="could not read pet image"):
            load_manifest(exported, cache=True)
    (exported.parent / "images" / "sub-0004_mri.nii.gz").unlink()
    with pytest.raises(FileNotFoundError):
        load_manifest(exported, cache=True)
    assert not list(cache.glob("manifest_*"))


def test_cache_reloads_the_same_dataset(exported, tmp_path):
    first = load_manifest(exported, cache=True)
    files = list((tmp_path / "cache").glob("manifest_*.pt"))
    assert len(files) == 1
    again = load_manifest(exported, cache=True)
    assert torch.equal(first.tensors["mri"], again.tensors["mri"]) and first.subject_ids == again.subject_ids


# ----------------------------------------------------------------------------- the committed demo folder
def test_demo_cohort_has_the_cohort_contract():
    demo = load_manifest(DEMO_COHORT / "participants.csv")
    cohort = make_brain_cohort(12, cache=False)
    assert demo.modalities == cohort.modalities == ("mri", "pet", "clinical")
    assert {k: (s.kind, s.shape, s.feature_names) for k, s in demo.specs.items()} == {
        k: (s.kind, s.shape, s.feature_names) for k, s in cohort.specs.items()
    }
    assert demo.class_names == cohort.class_names == ("CN", "MCI", "AD")
    assert len(demo) == 12 and int((~demo.mask[:, 1]).sum()) == 2  # two subjects without PET
    size = sum(p.stat().st_size for p in DEMO_COHORT.rglob("*") if p.is_file())
    assert size < 1_000_000


def test_demo_cohort_can_be_regenerated_identically(tmp_path):
    csv = write_demo_cohort(tmp_path / "demo")
    assert csv.read_text() == (DEMO_COHORT / "participants.csv").read_text()
    fresh, committed = load_manifest(csv), load_manifest(DEMO_COHORT / "participants.csv")
    for key in fresh.modalities:  # the same to float32 rounding: other CPUs and library versions differ in the last bits
        torch.testing.assert_close(fresh.tensors[key], committed.tensors[key], rtol=0, atol=1e-4)
    # rewriting over an existing export replaces it cleanly
    shutil.copy(csv, tmp_path / "demo" / "notes.txt")
    write_demo_cohort(tmp_path / "demo")
    assert (tmp_path / "demo" / "notes.txt").exists() and len(list((tmp_path / "demo" / "images").glob("*.nii.gz"))) == 22
