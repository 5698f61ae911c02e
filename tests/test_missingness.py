import numpy as np
import pytest
import torch

from fusion_kit.data.missingness import MECHANISMS, complete_cases, mask_modality, missing_by_class, missingness_scores

from conftest import make_toy_dataset

OBSERVED = ("clinical", "a")  # the toy table's first column drives "mar"


@pytest.fixture
def cohort():
    data = make_toy_dataset(300)
    data.meta["severity"] = data.labels.numpy() + 0.3 * np.random.default_rng(0).standard_normal(len(data))
    return data


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_exact_rate_nested_and_reproducible(cohort, mechanism):
    mask = lambda rate, seed=1: mask_modality(cohort, "mri", rate, mechanism, seed=seed, mar_variable=OBSERVED).mask  # noqa: E731
    masks = [mask(rate)[:, 0] for rate in (0.0, 0.25, 0.5, 0.75)]
    assert [int((~m).sum()) for m in masks] == [0, 75, 150, 225]
    for smaller, larger in zip(masks, masks[1:]):  # a subject absent at a lower rate stays absent
        assert bool((~smaller <= ~larger).all())
    assert torch.equal(mask(0.5), mask(0.5)) and not torch.equal(mask(0.5), mask(0.5, seed=2))


def test_absent_content_is_zeroed_and_other_masks_kept(cohort):
    first = mask_modality(cohort, "clinical", 0.2, seed=0)
    both = mask_modality(first, "mri", 0.3, seed=5)
    assert int((~both.mask[:, 1]).sum()) == 60  # the clinical absences survive the second mask
    absent = ~both.mask[:, 0]
    assert both.tensors["mri"][absent].abs().sum() == 0
    assert torch.equal(both.labels, cohort.labels) and both.subject_ids == cohort.subject_ids


def test_severity_mechanism_follows_disease_and_mcar_does_not(cohort):
    mcar = missing_by_class(mask_modality(cohort, "mri", 0.5, "mcar", seed=0), "mri")
    sev = missing_by_class(mask_modality(cohort, "mri", 0.5, "severity", seed=0), "mri")
    assert set(sev) == {"CN", "MCI", "AD"}
    assert sev["AD"] > sev["MCI"] > sev["CN"] and sev["AD"] - sev["CN"] > 0.5
    assert max(mcar.values()) - min(mcar.values()) < 0.2
    weak = missing_by_class(mask_modality(cohort, "mri", 0.5, "severity", seed=0, strength=0.2), "mri")
    assert weak["AD"] - weak["CN"] < sev["AD"] - sev["CN"]


def test_mar_follows_the_observed_column_only(cohort):
    observed = cohort.tensors["clinical"][:, 0].numpy()
    absent = ~mask_modality(cohort, "mri", 0.5, "mar", seed=0, mar_variable=OBSERVED).mask[:, 0].numpy()
    low, high = observed < np.quantile(observed, 1 / 3), observed > np.quantile(observed, 2 / 3)
    assert absent[high].mean() - absent[low].mean() > 0.5  # the larger the observed value, the likelier absent
    shuffled = cohort.with_mask(cohort.mask)
    shuffled.meta["severity"] = np.random.default_rng(1).permutation(cohort.meta["severity"])  # not used by "mar"
    again = mask_modality(shuffled, "mri", 0.5, "mar", seed=0, mar_variable=OBSERVED)
    assert np.array_equal(~again.mask[:, 0].numpy(), absent)


def test_mar_refuses_what_would_not_be_missing_at_random(cohort):
    with pytest.raises(ValueError, match="its own column"):
        mask_modality(cohort, "clinical", 0.5, "mar", mar_variable=OBSERVED)
    with pytest.raises(ValueError, match="observed for every subject"):
        mask_modality(mask_modality(cohort, "clinical", 0.2), "mri", 0.5, "mar", mar_variable=OBSERVED)
    with pytest.raises(ValueError, match="clinical.a, clinical.b"):
        mask_modality(cohort, "mri", 0.5, "mar")  # the default column, age, is not in this table


def test_cohort_mar_older_subjects_miss_pet_more_often():
    from fusion_kit.data import make_brain_cohort

    data = make_brain_cohort(300, image_size=32, missing={"pet": 0.5}, missing_mechanism="mar", cache=False)
    age, absent = data.meta["clinical_raw"][:, 0], ~data.mask[:, 1].numpy()
    assert absent[age > np.median(age)].mean() > absent[age <= np.median(age)].mean() + 0.3
    with pytest.raises(ValueError, match="set missing\\['clinical'\\] to 0"):
        make_brain_cohort(40, image_size=32, missing={"clinical": 0.2}, missing_mechanism="mar", cache=False)


def test_complete_cases(cohort):
    masked = mask_modality(mask_modality(cohort, "mri", 0.5, seed=0), "clinical", 0.5, seed=1)
    complete = complete_cases(masked)
    assert bool(complete.mask.all()) and 0 < len(complete) < len(masked)
    assert len(complete_cases(masked, ["mri"])) == 150
    assert len(complete.meta["severity"]) == len(complete)  # per-subject meta follows the subset


def test_errors_say_what_to_do(cohort):
    with pytest.raises(KeyError, match="no modality 'pet'"):
        mask_modality(cohort, "pet", 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        mask_modality(cohort, "mri", 1.5)
    with pytest.raises(ValueError, match="Did you mean 'mcar'"):
        mask_modality(cohort, "mri", 0.5, "mcra")
    plain = make_toy_dataset(30)
    with pytest.raises(ValueError, match="meta\\['severity'\\]"):
        missingness_scores(plain, "severity")
    with pytest.raises(ValueError, match="no subject has all"):
        complete_cases(mask_modality(plain, "mri", 1.0))
