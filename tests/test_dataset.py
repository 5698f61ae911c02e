import numpy as np
import pytest
import torch

from fusion_kit.data import MultimodalDataset, check_batch, split_dataset, standardize

from conftest import make_toy_dataset


def test_specs_are_inferred_from_tensor_ranks(toy):
    assert toy.modalities == ("mri", "clinical")
    assert toy.specs["mri"].kind == "image" and toy.specs["mri"].spatial_dims == 2
    assert toy.specs["clinical"].kind == "tabular" and toy.specs["clinical"].channels == 4
    vol = MultimodalDataset({"pet": torch.zeros(4, 1, 8, 8, 8)}, [0, 1, 0, 1])
    assert vol.specs["pet"].spatial_dims == 3


def test_batch_follows_the_contract(toy):
    batch = toy.batch([0, 5, 7])
    assert set(batch) == {"mri", "clinical", "mask", "label"}
    assert batch["mask"].dtype == torch.bool and batch["mask"].shape == (3, 2)
    assert batch["label"].dtype == torch.long
    check_batch(batch, toy.specs, toy.num_classes)
    sample = toy[0]
    assert sample["mri"].shape == (1, 16, 16) and sample["mask"].shape == (2,)


def test_absent_modalities_hold_zeros(toy):
    mask = torch.ones(len(toy), 2, dtype=torch.bool)
    mask[:10, 1] = False
    masked = toy.with_mask(mask)
    assert masked.tensors["clinical"][:10].abs().sum() == 0
    assert torch.equal(masked.tensors["clinical"][10:], toy.tensors["clinical"][10:])


def test_split_is_stratified_and_reproducible(toy):
    a, b = split_dataset(toy, seed=1), split_dataset(toy, seed=1)
    assert [len(s) for s in a] == [len(s) for s in b]
    assert a.test.subject_ids == b.test.subject_ids
    ids = [set(s.subject_ids) for s in a]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert sum(len(s) for s in a) == len(toy)
    for part in a:
        counts = np.array(list(part.class_counts().values()))
        assert counts.max() - counts.min() <= 2  # balanced classes stay balanced
    assert split_dataset(toy, seed=2).test.subject_ids != a.test.subject_ids


def test_select_and_subset_keep_meta_aligned():
    ds = make_toy_dataset(30)
    ds.meta["severity"] = np.arange(30.0)
    sub = ds.subset([3, 1]).select(["clinical"])
    assert sub.modalities == ("clinical",) and sub.mask.shape == (2, 1)
    assert list(sub.meta["severity"]) == [3.0, 1.0]
    with pytest.raises(KeyError, match="no modality 'pet'; this dataset has mri, clinical"):
        ds.select(["pet"])
    with pytest.raises(ValueError, match="select at least one modality"):
        ds.select([])


def test_standardize_uses_training_statistics_only(toy):
    s = split_dataset(toy)
    train, test = standardize(s.train, s.test)
    values = train.tensors["clinical"]
    assert torch.allclose(values.mean(0), torch.zeros(4), atol=1e-5)
    assert not torch.allclose(test.tensors["clinical"].mean(0), torch.zeros(4), atol=1e-3)
    assert torch.equal(train.tensors["mri"], s.train.tensors["mri"])


# ---------------------------------------------------------------- bad input
def test_nan_in_table_names_subject_and_column():
    tab = torch.zeros(3, 2)
    tab[1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite value in 'clinical' in column mmse for subject sub-0001"):
        MultimodalDataset({"clinical": tab}, [0, 1, 0], feature_names={"clinical": ("age", "mmse")})


def test_nan_in_absent_modality_is_allowed():
    tab = torch.zeros(3, 2)
    tab[1] = float("nan")
    ds = MultimodalDataset({"clinical": tab}, [0, 1, 0], mask=[[True], [False], [True]])
    assert torch.isfinite(ds.tensors["clinical"]).all()


def test_labels_out_of_range():
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
        MultimodalDataset({"clinical": torch.zeros(2, 2)}, [0, 3], class_names=("CN", "MCI", "AD"))


def test_wrong_mask_shape():
    with pytest.raises(ValueError, match=r"mask must have shape \(subjects, modalities\) = \(2, 1\)"):
        MultimodalDataset({"clinical": torch.zeros(2, 2)}, [0, 1], mask=torch.ones(2, 3, dtype=torch.bool))


def test_mismatched_subject_counts():
    with pytest.raises(ValueError, match="modality 'pet' has 3 subjects but there are 2 labels"):
        MultimodalDataset({"pet": torch.zeros(3, 1, 4, 4)}, [0, 1])


def test_unsupported_rank():
    with pytest.raises(ValueError, match=r"expected \(N, F\) for a table"):
        MultimodalDataset({"x": torch.zeros(3)}, [0, 1, 0])


def test_reserved_key():
    with pytest.raises(ValueError, match="'mask' is reserved"):
        MultimodalDataset({"mask": torch.zeros(2, 2)}, [0, 1])


def test_check_batch_messages(toy):
    batch = toy.batch([0, 1, 2])
    missing = {k: v for k, v in batch.items() if k != "mri"}
    with pytest.raises(KeyError, match="batch is missing modality 'mri'"):
        check_batch(missing, toy.specs)
    with pytest.raises(ValueError, match=r"mask has shape \(3, 1\); expected \(batch, modalities\) = \(3, 2\)"):
        check_batch({**batch, "mask": batch["mask"][:, :1]}, toy.specs)
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        check_batch({**batch, "label": torch.tensor([0, 1, 5])}, toy.specs, 3)
    with pytest.raises(ValueError, match=r"per-subject shape \(1, 8, 8\)"):
        check_batch({**batch, "mri": torch.zeros(3, 1, 8, 8)}, toy.specs)
    with pytest.raises(KeyError, match="batch has no 'mask'"):
        check_batch({k: v for k, v in batch.items() if k != "mask"}, toy.specs)


def test_subsample_is_stratified_and_checked(toy):
    from fusion_kit.data import subsample

    half = subsample(toy, 0.5, seed=0)
    assert len(half) == 120 and set(half.class_counts().values()) == {40}
    assert subsample(toy, 30, seed=1).subject_ids == subsample(toy, 30, seed=1).subject_ids
    assert subsample(toy, len(toy)) is toy
    with pytest.raises(ValueError, match="size must give between 1 and 240 subjects"):
        subsample(toy, 0)
