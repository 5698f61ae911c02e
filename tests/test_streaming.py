"""Streamed datasets: the same batches as in memory, caches that notice changes, errors before training,
augmentation that keeps co-registered images aligned, and the same training as in memory."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from fusion_kit.data import export_cohort, load_manifest, make_brain_cohort, split_dataset, kfold
from fusion_kit.data.missingness import mask_modality
from fusion_kit.data.streaming import StreamingDataset, augment, stream_manifest
from fusion_kit.distributed import World
from fusion_kit.models import build_model
from fusion_kit.train import evaluate, fit


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSION_KIT_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A 2D cohort of 60 with a third of the PET scans absent, written as NIfTI + participants.csv."""
    cohort = make_brain_cohort(60, seed=3, cache=False, image_size=32)
    cohort = mask_modality(cohort, "pet", 1 / 3, seed=0)
    return export_cohort(cohort, tmp_path_factory.mktemp("study"))


def test_streamed_batches_equal_the_in_memory_ones(export):
    memory, streamed = load_manifest(export, image_size=24), stream_manifest(export, image_size=24)
    assert isinstance(streamed, StreamingDataset) and streamed.specs == memory.specs
    assert streamed.subject_ids == memory.subject_ids and streamed.class_names == memory.class_names
    b1, b2 = memory.batch(np.arange(len(memory))), streamed.batch()
    assert list(b1) == list(b2)
    for key in b1:
        assert torch.equal(b1[key], b2[key]), key
    absent = ~b2["mask"][:, 1]
    assert absent.sum() == 20 and (b2["pet"][absent] == 0).all()


def test_memory_none_and_disk_caches_give_the_same_subjects(export):
    disk = stream_manifest(export).batch(np.arange(10))
    for mode in ("memory", "none"):
        other = stream_manifest(export, cache=mode).batch(np.arange(10))
        assert all(torch.equal(disk[k], other[k]) for k in disk), mode


def test_a_changed_file_or_setting_is_read_again(export, tmp_path):
    import nibabel as nib

    first = stream_manifest(export)
    row = 0
    path = export.parent / "images" / f"{first.subject_ids[row]}_mri.nii.gz"
    original = nib.load(path)
    try:
        nib.save(nib.Nifti1Image(np.asarray(original.dataobj) + 5.0, original.affine), path)
        changed = stream_manifest(export)
        assert torch.allclose(changed[row]["mri"], first[row]["mri"] + 5.0)
    finally:
        nib.save(original, path)
    assert stream_manifest(export, image_size=16)[row]["mri"].shape == (1, 16, 16)
    cached = sorted(p.name for p in (tmp_path / "cache" / "streamed").iterdir())
    assert len(cached) == 3, cached  # the original, the changed file, the other size


def test_an_unreadable_image_fails_before_training_naming_its_line(export, tmp_path):
    import shutil

    study = tmp_path / "broken"
    shutil.copytree(export.parent, study)
    victim = sorted((study / "images").glob("*_mri.nii.gz"))[5]
    victim.write_bytes(gzip.compress(b"not an image")[:20])
    with pytest.raises(ValueError, match=r"line \d+ \(subject sub-\d+\): could not read mri image"):
        stream_manifest(study / "participants.csv")
    victim.unlink()
    with pytest.raises(FileNotFoundError, match="mri image .* not found"):
        stream_manifest(study / "participants.csv", cache="none")


def test_splits_folds_and_selection_work_on_streamed_data(export):
    data = stream_manifest(export)
    train, val, test = split_dataset(data, seed=0)
    assert len(train) + len(val) + len(test) == len(data)
    assert set(train.subject_ids).isdisjoint(test.subject_ids)
    assert torch.equal(test.batch(np.arange(3))["label"], test.labels[:3])
    folds = kfold(data, 3, seed=0)
    assert sorted(s for f in folds for s in f.test.subject_ids) == sorted(data.subject_ids)
    narrow = data.select(["clinical", "mri"])
    sample = narrow[0]
    assert list(sample) == ["clinical", "mri", "mask", "label"] and sample["mask"].shape == (2,)


def test_training_on_streamed_data_repeats_training_in_memory(export):
    histories = []
    for data in (load_manifest(export), stream_manifest(export)):
        train, val, _ = split_dataset(data, seed=0)
        torch.manual_seed(0)
        model = build_model("concat", data, channels=(4, 8))
        histories.append(fit(model, train, val, epochs=2, progress=False, workers=0))
    assert histories[0].train_loss == histories[1].train_loss
    assert histories[0].val_loss == pytest.approx(histories[1].val_loss, rel=1e-6)  # validated in other batch sizes


def test_worker_processes_give_the_same_batches(export):
    data = stream_manifest(export)
    train, val, test = split_dataset(data, seed=0)
    losses = []
    for workers in (0, 1):
        torch.manual_seed(0)
        model = build_model("average", data, channels=(4, 8))
        losses.append(fit(model, train, val, epochs=1, progress=False, workers=workers).train_loss)
        assert 0 <= evaluate(model, test, workers=workers).balanced_accuracy <= 1
    assert losses[0] == losses[1]


def test_a_rule_fitted_in_memory_after_training_is_refused_for_streamed_data(export):
    data = stream_manifest(export)
    train, val, _ = split_dataset(data, seed=0)
    with pytest.raises(ValueError, match="stacking fits a rule on the whole training set.*load_manifest"):
        fit(build_model("stacking", data), train, val, epochs=1)


# ------------------------------------------------------------------ augmentation
@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """An export whose PET is a copy of its MRI, so a shared spatial transform leaves them equal."""
    cohort = make_brain_cohort(30, seed=4, cache=False, image_size=24)
    cohort = cohort.with_tensors(pet=cohort.tensors["mri"].clone())
    cohort = cohort.with_mask(cohort.mask.clone().index_put_((torch.tensor([0]), torch.tensor([1])), torch.tensor(False)))
    return export_cohort(cohort, tmp_path_factory.mktemp("twins"))


def test_one_spatial_transform_moves_every_image_of_a_subject_alike(twins):
    data = stream_manifest(twins)
    moved = augment(data, intensity=False, seed=1)
    changed = 0
    for i in range(1, 8):
        sample, original = moved[i], data[i]
        assert torch.allclose(sample["mri"], sample["pet"], atol=1e-5)
        changed += not torch.allclose(sample["mri"], original["mri"], atol=1e-4)
    assert changed >= 4  # the transforms do move images (affine with probability 0.8, flips 0.5)


def test_intensity_draws_differ_between_modalities_and_absent_images_stay_zero(twins):
    data = stream_manifest(twins)
    noisy = augment(data, spatial=False, flip=False, seed=2)
    assert not torch.allclose(noisy[3]["mri"], noisy[3]["pet"])
    assert not bool(noisy[0]["mask"][1]) and (noisy[0]["pet"] == 0).all()
    assert torch.equal(noisy[0]["clinical"], data[0]["clinical"])


def test_augment_takes_streamed_data_only():
    cohort = make_brain_cohort(30, seed=4, cache=False, image_size=24)
    with pytest.raises(TypeError, match="StreamingDataset"):
        augment(cohort)


def test_world_shards_cover_every_subject_with_equal_steps():
    indices = torch.arange(10)
    shards = [World(rank, 3).shard(indices) for rank in range(3)]
    assert {len(s) for s in shards} == {4}
    assert set(torch.cat(shards).tolist()) == set(range(10))
    assert torch.equal(World().shard(indices), indices)


def test_plot_augmentations_draws_each_read_in_two_rows(twins):
    from fusion_kit import viz

    data = stream_manifest(twins)
    reads = [data[1], augment(data, seed=3)[1]]
    fig = viz.plot_augmentations(reads, titles=["as stored", "draw"])
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "as stored"
    with pytest.raises(ValueError, match="one title per sample"):
        viz.plot_augmentations(reads, titles=["only one"])


def test_augment_refuses_images_of_different_dimensionality(twins):
    from fusion_kit.data.dataset import ModalitySpec

    data = stream_manifest(twins)
    flat = data._copy(specs={**data.specs, "pet": ModalitySpec("pet", "image", (1, 24))})
    with pytest.raises(ValueError, match="must all be 2D"):
        augment(flat)


def test_without_a_cache_headers_are_checked_before_training(export, tmp_path):
    import shutil

    import nibabel as nib

    study = tmp_path / "mixed"
    shutil.copytree(export.parent, study)
    victim = sorted((study / "images").glob("*_mri.nii.gz"))[4]
    nib.save(nib.Nifti1Image(np.zeros((20, 20), dtype=np.float32), np.eye(4)), victim)
    with pytest.raises(ValueError, match=r"line \d+ \(subject sub-\d+\): mri image has shape \(20, 20\).*image_size="):
        stream_manifest(study / "participants.csv", cache="none")
    assert stream_manifest(study / "participants.csv", cache="none", image_size=16).specs["mri"].shape == (1, 16, 16)
    victim.write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="could not read the header of mri image"):
        stream_manifest(study / "participants.csv", cache="none", image_size=16)
