"""The synthetic brain cohort: contract, determinism, caching, knobs, and the three things it must teach.

The training tests at the end check, at a quick size, what the cohort is built to show:
fusion of complementary modalities beats the best single one; redundant modalities gain nothing;
misregistration hurts channel stacking more than late fusion. Models are trained on one cohort and
scored on a larger, independently generated test cohort (same knobs, other seed), which keeps the
test noise small enough for fixed margins (checked with several seed pairs, see the dataset card).
Training runs on one CPU thread so results repeat exactly.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fusion_kit.data import CLASS_NAMES, MultimodalDataset, make_brain_cohort
from fusion_kit.data.cohort import CLINICAL_FEATURES, CohortConfig, cohort_cache_path, scale_clinical
from fusion_kit.encoders import ImageEncoder, TabularEncoder


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSION_KIT_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def cohort() -> MultimodalDataset:
    return make_brain_cohort(300, cache=False)


# ----------------------------------------------------------------------------- contract
def test_modalities_shapes_and_names(cohort):
    assert cohort.modalities == ("mri", "pet", "clinical")
    assert cohort.specs["mri"].shape == cohort.specs["pet"].shape == (1, 64, 64)
    assert cohort.specs["clinical"].kind == "tabular" and cohort.specs["clinical"].feature_names == CLINICAL_FEATURES
    assert cohort.class_names == CLASS_NAMES == ("CN", "MCI", "AD")
    assert cohort.subject_ids[:2] == ("sub-0001", "sub-0002")
    assert cohort.mask.all()
    for key in cohort.modalities:
        assert cohort.tensors[key].dtype == torch.float32 and torch.isfinite(cohort.tensors[key]).all()
    assert 0.0 <= float(cohort.tensors["mri"].amin()) and float(cohort.tensors["mri"].amax()) < 3.0


def test_three_dimensional_volumes():
    vol = make_brain_cohort(6, spatial_dims=3, image_size=20, cache=False)
    assert vol.specs["mri"].shape == vol.specs["pet"].shape == (1, 20, 20, 20)
    assert vol.specs["mri"].spatial_dims == 3
    assert make_brain_cohort(3, spatial_dims=3, cache=False).specs["mri"].shape == (1, 32, 32, 32)


def test_class_counts_follow_the_balance_exactly(cohort):
    assert cohort.class_counts() == {"CN": 120, "MCI": 105, "AD": 75}
    odd = make_brain_cohort(10, class_balance=(1, 1, 2), cache=False)
    assert odd.class_counts() == {"CN": 3, "MCI": 2, "AD": 5}  # largest remainders, ties to the first class
    # labels follow severity: every AD subject is sicker than every CN subject
    sev, y = cohort.meta["severity"], cohort.labels.numpy()
    assert sev[y == 2].min() > sev[y == 1].max() > sev[y == 1].min() > sev[y == 0].max()


def test_meta_holds_latents_raw_clinical_and_params(cohort):
    n = len(cohort)
    for key in ("severity", "latent_mri", "latent_pet", "latent_clinical", "label_clean", "head_scale"):
        assert isinstance(cohort.meta[key], np.ndarray) and len(cohort.meta[key]) == n
    assert cohort.meta["clinical_raw"].shape == (n, 5)
    assert set(cohort.meta["clinical_units"]) == set(CLINICAL_FEATURES)
    assert cohort.meta["params"]["n_subjects"] == n and cohort.meta["params"]["complementarity"] == 0.75
    # the stored table is the raw one scaled with fixed constants, not with the cohort's statistics
    assert np.allclose(cohort.tensors["clinical"].numpy(), scale_clinical(cohort.meta["clinical_raw"]), atol=1e-6)
    small = make_brain_cohort(20, cache=False)
    assert np.allclose(small.tensors["clinical"][:5].numpy(), scale_clinical(small.meta["clinical_raw"][:5]), atol=1e-6)


def test_clinical_relations_are_plausible(cohort):
    raw, y, sev = cohort.meta["clinical_raw"], cohort.labels.numpy(), cohort.meta["severity"]
    age, sex, education, mmse, apoe4 = raw.T
    assert np.corrcoef(mmse, sev)[0, 1] < -0.5
    resid = mmse - np.polyval(np.polyfit(cohort.meta["latent_clinical"], mmse, 1), cohort.meta["latent_clinical"])
    assert np.corrcoef(resid, education)[0, 1] > 0.1  # education raises MMSE at equal disease
    assert age[y == 2].mean() > age[y == 0].mean()
    assert (apoe4[y == 2] > 0).mean() > (apoe4[y == 0] > 0).mean() + 0.15
    assert set(np.unique(sex)) <= {0.0, 1.0} and set(np.unique(apoe4)) <= {0.0, 1.0, 2.0}
    assert mmse.min() >= 0 and mmse.max() <= 30 and 55 <= age.min() and age.max() <= 92


def test_disease_shows_in_both_images(cohort):
    y = cohort.labels
    mri, pet = cohort.tensors["mri"][:, 0], cohort.tensors["pet"][:, 0]
    brain = mri.mean(0) > 0.3
    assert mri[y == 2][:, brain].mean() < mri[y == 0][:, brain].mean() - 0.02  # atrophy: more dark CSF
    # hypometabolism: the lateral thirds (temporal lobes) lose uptake relative to the middle
    side = torch.zeros(64, 64, dtype=torch.bool)
    side[:, :20] = side[:, 44:] = True
    ratio = pet[:, side & brain].mean(1) / pet[:, ~side & brain].mean(1)
    assert ratio[y == 2].mean() < ratio[y == 0].mean() - 0.05


# ----------------------------------------------------------------------------- determinism and knobs
def test_same_seed_gives_bit_identical_data_and_other_seeds_differ():
    a, b = make_brain_cohort(24, cache=False), make_brain_cohort(24, cache=False)
    for key in a.modalities:
        assert torch.equal(a.tensors[key], b.tensors[key])
    assert torch.equal(a.labels, b.labels)
    c = make_brain_cohort(24, seed=1, cache=False)
    assert not torch.equal(a.tensors["mri"], c.tensors["mri"])


def test_each_knob_changes_only_its_part_of_the_story():
    base = make_brain_cohort(24, cache=False)
    moved = make_brain_cohort(24, misregistration=6.0, cache=False)
    assert torch.equal(base.tensors["mri"], moved.tensors["mri"]) and not torch.equal(base.tensors["pet"], moved.tensors["pet"])
    assert np.abs(moved.meta["pet_shift_mm"]).mean() > 2.0 and not base.meta["pet_shift_mm"].any()
    noisy = make_brain_cohort(24, label_noise=0.25, cache=False)
    assert torch.equal(base.tensors["pet"], noisy.tensors["pet"]) and torch.equal(base.tensors["clinical"], noisy.tensors["clinical"])


def test_label_noise_flips_exactly_that_share(cohort):
    noisy = make_brain_cohort(300, label_noise=0.2, cache=False)
    flipped = noisy.meta["label_flipped"]
    assert flipped.sum() == 60
    assert np.array_equal(noisy.meta["label_clean"], cohort.labels.numpy())
    assert (noisy.labels.numpy()[flipped] != cohort.labels.numpy()[flipped]).all()
    assert np.array_equal(noisy.labels.numpy()[~flipped], cohort.labels.numpy()[~flipped])


def test_complementarity_moves_from_shared_to_independent_to_opposed_noise():
    n = 2000
    noise = lambda meta, m: meta[f"latent_{m}"] - meta["severity"]  # noqa: E731
    metas = {c: make_brain_cohort(n, image_size=16, complementarity=c, cache=False).meta for c in (0.0, 0.5, 1.0)}
    assert np.allclose(noise(metas[0.0], "mri"), noise(metas[0.0], "pet"))  # equal signals: one shared nuisance
    assert abs(np.corrcoef(noise(metas[0.5], "mri"), noise(metas[0.5], "pet"))[0, 1]) < 0.1
    assert np.corrcoef(noise(metas[1.0], "mri"), noise(metas[1.0], "pet"))[0, 1] == pytest.approx(-0.5, abs=0.05)
    total = sum(noise(metas[1.0], m) for m in ("mri", "pet", "clinical"))
    assert np.allclose(total, 0, atol=1e-9)  # complementary: the three errors cancel in the sum
    for meta in metas.values():  # each modality alone is equally informative at every setting
        assert np.std(noise(meta, "clinical")) == pytest.approx(0.8, rel=0.1)


def test_redundant_weaker_modality_is_the_stronger_one_plus_noise():
    meta = make_brain_cohort(2000, image_size=16, complementarity=0.0, modality_signal={"pet": 0.5}, cache=False).meta
    pet, mri = meta["latent_pet"] - meta["severity"], meta["latent_mri"] - meta["severity"]
    assert np.std(pet) == pytest.approx(1.6, rel=0.1)
    assert abs(np.corrcoef(pet - mri, mri)[0, 1]) < 0.1  # nothing in PET that MRI does not already have


def test_zero_signal_removes_class_information():
    meta = make_brain_cohort(2000, image_size=16, modality_signal={"clinical": 0.0}, cache=False).meta
    assert abs(np.corrcoef(meta["latent_clinical"], meta["severity"])[0, 1]) < 0.1
    assert np.corrcoef(meta["latent_mri"], meta["severity"])[0, 1] > 0.7


@pytest.mark.parametrize("mechanism", ["mcar", "severity"])
def test_missing_rates_are_exact_and_absent_content_is_zero(mechanism):
    data = make_brain_cohort(400, image_size=16, missing={"pet": 0.3, "clinical": 0.1}, missing_mechanism=mechanism, cache=False)
    assert int((~data.mask[:, 1]).sum()) == 120 and int((~data.mask[:, 2]).sum()) == 40
    assert data.mask[:, 0].all() and data.mask.any(1).all()
    assert data.tensors["pet"][~data.mask[:, 1]].abs().sum() == 0
    assert data.meta["clinical_raw"].shape == (400, 5)  # raw values stay for inspection


def test_severity_mechanism_hides_sick_subjects_more_often():
    def missing_by_class(mechanism):
        data = make_brain_cohort(600, image_size=16, missing={"pet": 0.3}, missing_mechanism=mechanism, cache=False)
        absent, y = ~data.mask[:, 1].numpy(), data.labels.numpy()
        return [absent[y == k].mean() for k in range(3)]

    mcar, sev = missing_by_class("mcar"), missing_by_class("severity")
    assert max(mcar) - min(mcar) < 0.12
    assert sev[2] > sev[1] > sev[0] and sev[2] - sev[0] > 0.4


def test_no_subject_loses_every_modality():
    data = make_brain_cohort(200, image_size=16, missing=0.6, missing_mechanism="severity", cache=False)
    assert data.mask.any(1).all()


def test_knobs_are_checked_with_helpful_messages():
    with pytest.raises(ValueError, match="Did you mean 'pet'"):
        make_brain_cohort(10, missing={"pte": 0.3}, cache=False)
    with pytest.raises(ValueError, match="mcar, mar, severity"):
        make_brain_cohort(10, missing_mechanism="random", cache=False)
    with pytest.raises(ValueError, match="complementarity must lie between 0 and 1"):
        make_brain_cohort(10, complementarity=1.5, cache=False)
    with pytest.raises(ValueError, match="3 positive shares"):
        make_brain_cohort(10, class_balance=(0.5, 0.5), cache=False)
    with pytest.raises(ValueError, match="spatial_dims must be 2"):
        make_brain_cohort(10, spatial_dims=4, cache=False)
    with pytest.raises(ValueError, match="missing rate of 'pet'"):
        make_brain_cohort(10, missing={"pet": 1.0}, cache=False)
    with pytest.raises(TypeError, match="modality_signal"):
        make_brain_cohort(10, modality_signal=[1, 2, 3], cache=False)


# ----------------------------------------------------------------------------- caching
def test_the_knobs_are_one_frozen_self_checking_config():
    config = CohortConfig(30, image_size=32, missing={"pet": 0.2})
    assert config.missing == {"mri": 0.0, "pet": 0.2, "clinical": 0.0} and config.class_balance == (0.4, 0.35, 0.25)
    assert config == CohortConfig.from_knobs(30, image_size=32, missing={"pet": 0.2})
    assert CohortConfig.from_knobs(config, seed=4).seed == 4 and config.seed == 0
    with pytest.raises(Exception):
        config.seed = 1  # frozen
    with pytest.raises(ValueError, match="unknown cohort knob 'complementarty'.*Did you mean 'complementarity'"):
        make_brain_cohort(10, complementarty=0.5)
    assert cohort_cache_path(config) == cohort_cache_path(CohortConfig.from_knobs(30, image_size=32, missing={"pet": 0.2}))


def test_cache_writes_once_and_reloads_identically(tmp_path):
    first = make_brain_cohort(30, image_size=32, missing={"pet": 0.2}, seed=5)
    files = list((tmp_path / "cache").glob("brain_cohort_*.pt"))
    assert len(files) == 1 and not list((tmp_path / "cache").glob(".*.tmp"))
    again = make_brain_cohort(30, image_size=32, missing={"pet": 0.2}, seed=5)
    for key in first.modalities:
        assert torch.equal(first.tensors[key], again.tensors[key])
    assert torch.equal(first.mask, again.mask) and first.subject_ids == again.subject_ids
    assert np.array_equal(first.meta["severity"], again.meta["severity"]) and first.meta["params"] == again.meta["params"]
    make_brain_cohort(30, image_size=32, missing={"pet": 0.2}, seed=6)
    assert len(list((tmp_path / "cache").glob("brain_cohort_*.pt"))) == 2  # the key covers every knob


def test_a_broken_cache_file_is_regenerated(tmp_path):
    path = cohort_cache_path(CohortConfig(12, image_size=16))
    path.write_bytes(b"not a torch file")
    data = make_brain_cohort(12, image_size=16)
    assert len(data) == 12 and path.stat().st_size > 1000


# ----------------------------------------------------------------------------- what the cohort teaches
EPOCHS = 20
TRAIN = dict(n_subjects=600, seed=0)
TEST = dict(n_subjects=1500, seed=100)


class LateConcat(nn.Module):
    """h_m = f_m(x_m) per modality, logits = W [h_1; ...; h_M]."""

    def __init__(self, data: MultimodalDataset) -> None:
        super().__init__()
        self.specs, self.num_classes = dict(data.specs), data.num_classes
        self.encoders = nn.ModuleDict(
            {k: ImageEncoder(1, s.spatial_dims) if s.kind == "image" else TabularEncoder(s.channels) for k, s in self.specs.items()}
        )
        self.head = nn.Linear(32 * len(self.specs), self.num_classes)

    def forward(self, batch):
        return self.head(torch.cat([enc(batch[k]) for k, enc in self.encoders.items()], 1))


class ChannelStack(nn.Module):
    """Input fusion: one encoder over the 2-channel image [x_mri; x_pet]."""

    def __init__(self, data: MultimodalDataset) -> None:
        super().__init__()
        self.specs, self.num_classes = dict(data.specs), data.num_classes
        self.encoder = ImageEncoder(2, 2)
        self.head = nn.Linear(32, self.num_classes)

    def forward(self, batch):
        return self.head(self.encoder(torch.cat([batch["mri"], batch["pet"]], 1)))


def trained(model_cls, cohort: MultimodalDataset, modalities) -> nn.Module:
    """Train on 80% of ``cohort`` with early stopping on the rest; one CPU thread and a fixed seed."""
    from fusion_kit.train import fit

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        order = np.random.default_rng(0).permutation(len(cohort))
        cut = int(0.8 * len(cohort))
        train, val = (cohort.subset(np.sort(i)).select(modalities) for i in (order[:cut], order[cut:]))
        torch.manual_seed(0)
        model = model_cls(train)
        fit(model, train, val, epochs=EPOCHS, seed=0, device="cpu", progress=False, patience=None)
        return model
    finally:
        torch.set_num_threads(threads)


def balanced_accuracy(model: nn.Module, test: MultimodalDataset) -> float:
    from fusion_kit.train import evaluate

    return evaluate(model, test.select(list(model.specs))).balanced_accuracy


def single_and_fused(**knobs) -> tuple[dict[str, float], float]:
    """Balanced accuracy of each modality alone and of late fusion of all three, on a fresh test cohort."""
    train = make_brain_cohort(**TRAIN, cache=False, **knobs)
    test = make_brain_cohort(**TEST, cache=False, **knobs)
    singles = {m: balanced_accuracy(trained(LateConcat, train, [m]), test) for m in ("mri", "pet", "clinical")}
    return singles, balanced_accuracy(trained(LateConcat, train, ["mri", "pet", "clinical"]), test)


@pytest.mark.slow
def test_fusion_of_complementary_modalities_beats_the_best_single_one():
    singles, fused = single_and_fused()
    assert min(singles.values()) > 0.45, singles  # every modality is informative (chance is 0.33) ...
    assert max(singles.values()) < 0.72, singles  # ... and none is near-perfect
    assert fused > max(singles.values()) + 0.07, (singles, fused)


@pytest.mark.slow
def test_redundant_modalities_leave_nothing_for_fusion():
    singles, fused = single_and_fused(complementarity=0.0)
    assert fused < max(singles.values()) + 0.03, (singles, fused)


@pytest.mark.slow
def test_misregistration_hurts_channel_stacking_more_than_late_fusion():
    """Trained on registered MRI and PET, scored on the same test subjects with their PET moved by ~8 mm."""
    train = make_brain_cohort(**TRAIN, cache=False)
    aligned = make_brain_cohort(**TEST, cache=False)
    moved = make_brain_cohort(**TEST, misregistration=8.0, cache=False)
    assert torch.equal(aligned.tensors["mri"], moved.tensors["mri"])  # only PET differs
    drop = {}
    for name, cls in (("stack", ChannelStack), ("late", LateConcat)):
        model = trained(cls, train, ["mri", "pet"])
        drop[name] = balanced_accuracy(model, aligned) - balanced_accuracy(model, moved)
    assert drop["stack"] > 0.05 and drop["stack"] > drop["late"] + 0.04, drop
