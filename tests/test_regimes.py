"""The cohort's regime knobs: each adds the evidence it promises, changes nothing else, and calls for its family."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion_kit.data import MultimodalDataset, make_brain_cohort, split_dataset
from fusion_kit.data.cohort import CohortConfig, cohort_cache_path, scale_clinical
from fusion_kit.data.regimes import ageing_weight, image_loads
from fusion_kit.experiment import compare


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSION_KIT_CACHE", str(tmp_path / "cache"))


def test_knobs_at_zero_leave_the_cohort_and_its_cache_key_as_they_were():
    plain = make_brain_cohort(24, image_size=32, cache=False)
    zero = make_brain_cohort(24, image_size=32, interaction=0.0, conditioning=0.0, reliability=0.0, cache=False)
    for key in plain.modalities:
        assert torch.equal(plain.tensors[key], zero.tensors[key])
    assert torch.equal(plain.labels, zero.labels) and set(plain.meta) == set(zero.meta)
    assert cohort_cache_path(CohortConfig(24, image_size=32)) == cohort_cache_path(CohortConfig(24, image_size=32, interaction=0.0))
    assert cohort_cache_path(CohortConfig(24, image_size=32)) != cohort_cache_path(CohortConfig(24, image_size=32, interaction=0.5))
    with pytest.raises(ValueError, match="interaction must lie between 0 and 1"):
        make_brain_cohort(24, interaction=1.5)


def test_interaction_puts_one_focus_in_each_image_and_shifts_the_diagnosis_with_their_coincidence():
    plain = make_brain_cohort(60, image_size=32, cache=False)
    data = make_brain_cohort(60, image_size=32, interaction=1.0, cache=False)
    together, foci = data.meta["lesions_coincide"], data.meta["lesion_voxels"]  # (N, 2, 2): MRI and PET focus
    assert 0.3 < together.mean() < 0.7
    assert (foci[together, 0] == foci[together, 1]).all() and (foci[~together, 0] != foci[~together, 1]).any(1).all()
    assert torch.equal(plain.tensors["clinical"], data.tensors["clinical"])  # the table is untouched
    for m, at in (("mri", 0), ("pet", 1)):  # each image is brighter at its focus than the plain cohort
        rows = np.arange(60)
        y, x = foci[:, at, 0], foci[:, at, 1]
        gain = data.tensors[m][rows, 0, y, x] - plain.tensors[m][rows, 0, y, x]
        assert (gain > 0).float().mean() > 0.9, m
    assert data.labels[torch.as_tensor(together)].float().mean() > data.labels[torch.as_tensor(~together)].float().mean()
    assert np.allclose(data.meta["diagnosis"], data.meta["severity"] + 0.6 * np.where(together, 1, -1))


def test_conditioning_scales_the_image_evidence_with_age():
    load, ageing = torch.ones(3), torch.zeros(3)
    ages = np.array([55.0, 72.0, 90.0])
    assert torch.equal(image_loads(load, ageing, ages, 0.0), load)  # off: the default loads
    shown = image_loads(load, ageing, ages, 1.0)
    assert shown[0] < 0.2 and shown[2] > 2.3  # the same disease: a small change at 55, a large one at 90
    assert ageing_weight(np.array([60.0]))[0] < 0.01 < 0.99 < ageing_weight(np.array([85.0]))[0]
    plain = make_brain_cohort(40, image_size=32, cache=False)
    data = make_brain_cohort(40, image_size=32, conditioning=1.0, cache=False)
    assert torch.equal(plain.labels, data.labels) and torch.equal(plain.tensors["clinical"], data.tensors["clinical"])
    assert not torch.equal(plain.tensors["mri"], data.tensors["mri"])


def test_reliability_degrades_half_of_each_modality_and_the_record_tells_which():
    plain = make_brain_cohort(200, image_size=32, cache=False)
    data = make_brain_cohort(200, image_size=32, reliability=1.0, cache=False)
    degraded = data.meta["degraded"]
    assert not degraded.all(1).any() and (np.abs(degraded.mean(0) - 0.45) < 0.12).all()
    assert torch.equal(plain.labels, data.labels)
    names = data.specs["clinical"].feature_names
    assert names == plain.specs["clinical"].feature_names + ("motion_mm", "glucose_mg_dl")
    raw = data.meta["clinical_raw"]
    assert raw.shape == (200, 7) and set(data.meta["clinical_units"]) == set(names)
    assert np.allclose(data.tensors["clinical"].numpy(), scale_clinical(raw, names), atol=1e-5)
    assert (raw[degraded[:, 2], 0] < 10).all() and (raw[~degraded[:, 2], 0] > 50).all()  # age typed in decades
    motion, glucose = raw[:, 5], raw[:, 6]
    assert (motion[degraded[:, 0]] >= 1.5).all() and (motion[~degraded[:, 0]] < 1.5).all()
    assert (glucose[degraded[:, 1]] >= 170).all() and (glucose[~degraded[:, 1]] <= 150).all()
    for j, m in enumerate(("mri", "pet")):  # an intact image is the default one; a degraded one differs
        assert torch.equal(data.tensors[m][~degraded[:, j]], plain.tensors[m][~degraded[:, j]])
        assert not torch.equal(data.tensors[m][degraded[:, j]], plain.tensors[m][degraded[:, j]])

    def roughness(images):  # mean squared difference of neighbouring pixels: no artefact tells a degraded image
        return (images[..., 1:] - images[..., :-1]).pow(2).flatten(1).mean(1).numpy()

    for j, m in enumerate(("mri", "pet")):
        rough = roughness(data.tensors[m])
        assert abs(rough[degraded[:, j]].mean() / rough[~degraded[:, j]].mean() - 1) < 0.15, m


@pytest.mark.slow
def test_interaction_only_fusion_of_the_maps_reads_whether_the_foci_coincide():
    """A probe trained to tell "together" from "apart": input fusion of the images reads it, a model that
    concatenates pooled per-image vectors cannot (AUC 0.90 to 0.98 against 0.37 to 0.58 over three seeds)."""
    data = make_brain_cohort(600, interaction=1.0, seed=0)
    probe = MultimodalDataset({"mri": data.tensors["mri"], "pet": data.tensors["pet"]},
                              data.meta["lesions_coincide"].astype(int), class_names=["apart", "together"])
    table = compare(split_dataset(probe, seed=0), [("channel_stack", ["mri", "pet"]), ("concat", ["mri", "pet"])],
                    epochs=25, progress=False).table()
    stacked, pooled = table.loc["channel_stack (mri+pet)", "auc"], table.loc["concat (mri+pet)", "auc"]
    assert stacked > 0.8 and stacked > pooled + 0.25, (stacked, pooled)


@pytest.mark.slow
def test_conditioning_multiplicative_fusion_is_ahead_of_late_fusion():
    data = make_brain_cohort(800, conditioning=1.0, seed=0)
    table = compare(split_dataset(data, seed=0), ["film", "average"], epochs=30, progress=False).table()
    assert table.loc["film (mri+pet+clinical)", "balanced_accuracy"] > table.loc["average (mri+pet+clinical)", "balanced_accuracy"]


@pytest.mark.slow
def test_reliability_weights_set_from_the_record_beat_a_sum_of_evidence():
    """The images' reliability is written in the table: the gated unit (gates from every modality) is ahead
    of concatenation and of late fusion (over seeds 0-2 of the benchmark: +5.5 and +9.0 points)."""
    data = make_brain_cohort(800, reliability=1.0, seed=0)
    table = compare(split_dataset(data, seed=0), ["gmu", "concat", "average"], epochs=30, progress=False).table()
    score = {name.split(" ")[0]: table.loc[name, "balanced_accuracy"] for name in table.index}
    assert score["gmu"] > score["concat"] and score["gmu"] > score["average"], score


def test_patch_attention_figure_marks_the_foci():
    from fusion_kit import viz
    from fusion_kit.models import build_model
    from fusion_kit.train import predict

    data = make_brain_cohort(12, image_size=32, interaction=1.0, seed=0)
    model = build_model("image_cross_attention", data, channels=(4, 8), out_dim=8, dim=8, heads=2).eval()
    attention = predict(model, data).attention
    assert attention.shape == (12, 64, 65)  # 8 x 8 patches of one image, "nothing" and the other's patches
    fig = viz.plot_patch_attention(data, attention, [0, 1], model.grid)
    assert len(fig.axes) == 5 and "foci" in fig.axes[0].get_ylabel()


def test_compare_regimes_trains_the_same_setups_in_each_regime_and_draws_them():
    from fusion_kit import viz
    from fusion_kit.experiment import REGIMES, compare_regimes

    by_regime = compare_regimes(["concat", "average"], {"default": {}, "half": {"interaction": 0.5}}, n_subjects=60,
                                seeds=(0, 1), epochs=1, cohort_options={"image_size": 32})
    assert by_regime.regimes == ["default", "half"]
    table = by_regime.table()
    assert list(table.columns) == ["default", "half"] and list(table.index) == ["concat (mri+pet+clinical)",
                                                                                 "average (mri+pet+clinical)"]
    assert by_regime.splits["half"].train.meta["params"]["interaction"] == 0.5
    assert by_regime["half"].scores("average (mri+pet+clinical)").shape == (2,)
    margin = by_regime.margin("concat (mri+pet+clinical)", "average (mri+pet+clinical)")
    expected = table.loc["concat (mri+pet+clinical)"] - table.loc["average (mri+pet+clinical)"]
    assert np.allclose(margin.to_numpy(), expected.to_numpy())
    legend = [t.get_text() for t in viz.plot_regimes(by_regime).axes[0].get_legend().get_texts()]
    assert "± 1 sd over 2 seeds" in legend
    with pytest.raises(ValueError, match="regime"):
        compare_regimes(["concat"], ["interactoin"], n_subjects=60, epochs=1)
    assert set(REGIMES) == {"default", "interaction", "conditioning", "reliability"}


def test_latent_ceiling_bounds_the_models_and_is_known_for_the_default_regime_only():
    from fusion_kit.data.cohort import latent_ceiling

    data = make_brain_cohort(300, image_size=32)
    one, three = latent_ceiling(data, ["pet"]), latent_ceiling(data)
    assert 0.45 < one < three < 0.95  # three views of the latent beat one
    with pytest.raises(ValueError, match="default regime"):
        latent_ceiling(make_brain_cohort(60, image_size=32, conditioning=1.0))
    with pytest.raises(ValueError, match="no latent for 'ct'"):
        latent_ceiling(data, ["ct"])


def test_score_interval_holds_the_score_with_the_test_sets_noise():
    data = make_brain_cohort(300, image_size=32)
    comparison = compare(split_dataset(data, seed=0), ["concat"], epochs=1)
    score = comparison.table().loc["concat (mri+pet+clinical)", "balanced_accuracy"]
    low, high = comparison.score_interval("concat (mri+pet+clinical)")
    assert low < score < high and high - low > 0.05  # 45 test subjects: a wide interval
