import numpy as np
import pytest
import torch

from fusion_kit.data.missingness import MECHANISMS, complete_cases, mask_modality, missing_by_class, missingness_scores

from conftest import make_toy_dataset


@pytest.fixture
def cohort():
    data = make_toy_dataset(300)
    data.meta["severity"] = data.labels.numpy() + 0.3 * np.random.default_rng(0).standard_normal(len(data))
    return data


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_exact_rate_nested_and_reproducible(cohort, mechanism):
    masks = [mask_modality(cohort, "mri", rate, mechanism, seed=1).mask[:, 0] for rate in (0.0, 0.25, 0.5, 0.75)]
    assert [int((~m).sum()) for m in masks] == [0, 75, 150, 225]
    for smaller, larger in zip(masks, masks[1:]):  # a subject absent at a lower rate stays absent
        assert bool((~smaller <= ~larger).all())
    again = mask_modality(cohort, "mri", 0.5, mechanism, seed=1)
    assert torch.equal(again.mask, mask_modality(cohort, "mri", 0.5, mechanism, seed=1).mask)
    assert not torch.equal(again.mask, mask_modality(cohort, "mri", 0.5, mechanism, seed=2).mask)


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
