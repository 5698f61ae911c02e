"""Properties every fusion strategy must have, and unit tests of the pieces of fusion_kit.fusion.

Property tests draw the modalities (1-3 images, 0-1 table, 2D or 3D, 1-2 channels) and the batch size,
build every registered strategy that accepts them, and check output shapes, that gradients reach every
encoder, and that an absent modality's content (even NaN) cannot change the output.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fusion_kit.data import ModalitySpec, MultimodalDataset
from fusion_kit.fusion import (
    EvidentialFusion,
    FusionOutput,
    Imputer,
    ModalityDropout,
    masked_mean,
    masked_softmax,
)
from fusion_kit.models import STRATEGIES, build_model
from fusion_kit.train import _with_head_input, fit

PROPERTY = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
SMALL = {"out_dim": 16, "channels": (4, 8, 8)}  # keeps the property tests fast; defaults are tested elsewhere
FUSION = [name for name in STRATEGIES if name != "unimodal"]


# ------------------------------------------------------------------------------------------ helpers
@st.composite
def modality_sets(draw, single: bool = False) -> dict[str, ModalitySpec]:
    """1-3 co-registered images (2D 16^2 or 3D 8^3) and 0-1 table; one modality only if ``single``."""
    dims = draw(st.sampled_from([2, 3]))
    grid = (16, 16) if dims == 2 else (8, 8, 8)
    if single:
        n_images, n_tables = draw(st.sampled_from([(1, 0), (0, 1)]))
    else:
        n_images, n_tables = draw(st.integers(1, 3)), draw(st.integers(0, 1))
        assume(n_images + n_tables >= 2)
    specs = {}
    for i in range(n_images):
        specs[f"img{i}"] = ModalitySpec(f"img{i}", "image", (draw(st.integers(1, 2)), *grid))
    for _ in range(n_tables):
        specs["tab"] = ModalitySpec("tab", "tabular", (draw(st.integers(1, 6)),))
    return specs


def random_batch(specs: dict[str, ModalitySpec], b: int, seed: int = 0, mask: torch.Tensor | None = None) -> dict:
    g = torch.Generator().manual_seed(seed)
    batch = {m: torch.randn(b, *s.shape, generator=g) for m, s in specs.items()}
    batch["mask"] = torch.ones(b, len(specs), dtype=torch.bool) if mask is None else mask
    batch["label"] = torch.randint(0, 3, (b,), generator=g)
    return batch


def build_or_skip(name: str, specs: dict[str, ModalitySpec], **options):
    """Build ``name`` for these modalities, or tell hypothesis this draw does not apply to it."""
    try:
        return build_model(name, specs, num_classes=3, **{**SMALL, **options})
    except ValueError:
        assume(False)


def loss_of(model, output: FusionOutput, label: torch.Tensor) -> torch.Tensor:
    custom = getattr(model, "loss", None)
    return custom(output, label) if callable(custom) else F.cross_entropy(output.logits, label)


def tiny_dataset(n: int = 90, seed: int = 0, num_classes: int = 3) -> MultimodalDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    mri = 0.5 * torch.randn(n, 1, 16, 16, generator=g) + y.view(-1, 1, 1, 1)
    pet = 0.5 * torch.randn(n, 1, 16, 16, generator=g) - y.view(-1, 1, 1, 1)
    tab = torch.randn(n, 3, generator=g)
    tab[:, 0] += y
    return MultimodalDataset({"mri": mri, "pet": pet, "clinical": tab}, y)


# ------------------------------------------------------------------------------- property tests
def _check_shapes_and_gradients(name: str, specs: dict[str, ModalitySpec], b: int) -> None:
    torch.manual_seed(0)
    model = build_or_skip(name, specs)
    model.train()
    batch = random_batch(specs, b)
    out = model(batch)
    assert isinstance(out, FusionOutput)
    assert out.logits.shape == (b, 3) and torch.isfinite(out.logits).all()
    if out.modality_logits is not None:
        assert set(out.modality_logits) == set(specs)
        assert all(v.shape == (b, 3) for v in out.modality_logits.values())
    loss_of(model, out, batch["label"]).backward()
    for m, encoder in model.encoders.items():
        grads = [p.grad for p in encoder.parameters()]
        assert all(g is not None for g in grads), f"{name}: some parameters of encoder {m!r} are unused"
        assert any(g.abs().sum() > 0 for g in grads), f"{name}: no gradient reaches encoder {m!r}"


@pytest.mark.parametrize("name", FUSION)
@PROPERTY
@given(specs=modality_sets(), b=st.integers(2, 5))
def test_shapes_and_gradients_reach_every_encoder(name, specs, b):
    _check_shapes_and_gradients(name, specs, b)


@PROPERTY
@given(specs=modality_sets(single=True), b=st.integers(2, 5))
def test_unimodal_shapes_and_gradients(specs, b):
    _check_shapes_and_gradients("unimodal", specs, b)


def _check_absent_content_ignored(name: str, specs: dict[str, ModalitySpec], b: int, drop: int, **options) -> None:
    assume(drop < len(specs))
    torch.manual_seed(0)
    model = build_or_skip(name, specs, **options)
    model.eval()
    mask = torch.ones(b, len(specs), dtype=torch.bool)
    mask[::2, drop] = False  # absent for every other subject; the others keep it
    batch = random_batch(specs, b, mask=mask)
    key = list(specs)[drop]
    changed = dict(batch)
    noise = 100 * torch.randn_like(batch[key])
    noise[0] = float("nan")  # subject 0 is one of the absent ones
    changed[key] = torch.where(mask[:, drop].view(-1, *[1] * (noise.ndim - 1)), batch[key], noise)
    with torch.no_grad():
        before, after = model(batch), model(changed)
    assert torch.isfinite(after.logits).all(), f"{name}: absent content leaked NaN into the output"
    torch.testing.assert_close(before.logits, after.logits, atol=1e-5, rtol=1e-5)
    if isinstance(before.attention, torch.Tensor):
        torch.testing.assert_close(before.attention, after.attention, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", FUSION)
@PROPERTY
@given(specs=modality_sets(), b=st.integers(2, 5), drop=st.integers(0, 3))
def test_absent_modality_content_cannot_change_the_output(name, specs, b, drop):
    _check_absent_content_ignored(name, specs, b, drop)


@pytest.mark.parametrize("name", ["concat", "gmu", "transformer", "film"])
@pytest.mark.parametrize("impute", ["mean", "learned"])
@PROPERTY
@given(specs=modality_sets(), b=st.integers(2, 4), drop=st.integers(0, 3))
def test_imputed_modalities_ignore_content_too(name, impute, specs, b, drop):
    _check_absent_content_ignored(name, specs, b, drop, impute=impute)


def test_mixed_2d_and_3d_images_fuse_as_vectors():
    specs = {
        "slice": ModalitySpec("slice", "image", (1, 16, 16)),
        "volume": ModalitySpec("volume", "image", (1, 8, 8, 8)),
        "tab": ModalitySpec("tab", "tabular", (4,)),
    }
    for name in ("concat", "transformer", "average", "gmu"):
        model = build_model(name, specs, num_classes=3, **SMALL)
        assert model(random_batch(specs, 3)).logits.shape == (3, 3)
    with pytest.raises(ValueError, match="same grid"):
        build_model("spatial_attention", specs, num_classes=3)


# ----------------------------------------------------------------------------- missing modalities
def test_modality_dropout_only_hides_present_modalities_and_keeps_one():
    torch.manual_seed(0)
    drop = ModalityDropout(0.7).train()
    mask = torch.rand(500, 3) > 0.3
    mask[:, 1] |= ~mask.any(1)
    out = drop(mask)
    assert not (out & ~mask).any(), "dropout must never turn an absent modality on"
    assert out.any(1).all(), "every subject keeps at least one modality"
    assert out.sum() < mask.sum()
    assert torch.equal(drop.eval()(mask), mask), "no dropout at evaluation"
    with pytest.raises(ValueError, match="probability"):
        ModalityDropout(1.0)


def test_modality_dropout_option_works_with_any_strategy():
    specs = {"a": ModalitySpec("a", "image", (1, 16, 16)), "t": ModalitySpec("t", "tabular", (3,))}
    model = build_model("average", specs, num_classes=3, modality_dropout=0.5, **SMALL).train()
    torch.manual_seed(1)
    out = model(random_batch(specs, 64))
    assert out.mask.sum() < 128 and out.mask.any(1).all()


def test_mean_imputer_learns_the_mean_of_present_representations():
    imputer = Imputer("mean", 2, 4).train()
    h = torch.arange(8, dtype=torch.float32).view(1, 2, 4).repeat(6, 1, 1)  # (6, 2, 4)
    h[:3, 0] += 6.0
    present = torch.ones(6, 2, dtype=torch.bool)
    present[3:, 0] = False  # modality 0 present for the first three only
    imputer(h, present)
    torch.testing.assert_close(imputer.running_mean[0], torch.arange(4.0) + 6.0)
    filled, now_present = imputer.eval()(torch.zeros(2, 2, 4), torch.tensor([[False, True], [True, True]]))
    torch.testing.assert_close(filled[0, 0], torch.arange(4.0) + 6.0)
    assert now_present.all()


def test_learned_token_gets_gradient_only_through_absent_entries():
    imputer = Imputer("learned", 2, 3)
    h = torch.randn(4, 2, 3)
    present = torch.tensor([[True, False]] * 4)
    filled, _ = imputer(h, present)
    filled.sum().backward()
    assert imputer.token.grad[0].abs().sum() == 0 and imputer.token.grad[1].abs().sum() > 0
    with pytest.raises(ValueError, match="neutral, mean, learned"):
        Imputer("median", 2, 3)


def test_masked_softmax_and_mean_are_safe_for_empty_rows():
    scores = torch.randn(3, 4, requires_grad=True)
    present = torch.tensor([[True, False, True, False], [False] * 4, [True] * 4])
    w = masked_softmax(scores, present, dim=1)
    torch.testing.assert_close(w.sum(1), torch.tensor([1.0, 0.0, 1.0]))
    assert (w[~present] == 0).all()
    w.pow(2).sum().backward()
    assert torch.isfinite(scores.grad).all()
    x = torch.randn(3, 4, 2)
    x[1] = float("nan")  # an empty row's content is never read
    assert torch.isfinite(masked_mean(x, present, 1)).all()


# ------------------------------------------------------------------------------ attention outputs
@pytest.mark.parametrize("name", ["modality_attention", "transformer", "gmu", "learned_weights"])
def test_modality_weights_sum_to_one_over_present_modalities(name):
    ds = tiny_dataset(12)
    torch.manual_seed(0)
    model = build_model(name, ds, **SMALL).eval()
    batch = ds.batch()
    batch["mask"][::3, 1] = False
    with torch.no_grad():
        att = model(batch).attention  # (B, M)
    assert att.shape == (12, 3)
    torch.testing.assert_close(att.sum(1), torch.ones(12), atol=1e-5, rtol=0)
    assert (att[::3, 1] == 0).all()


def test_attention_maps_have_the_documented_shapes():
    ds = tiny_dataset(5)
    out = build_model("spatial_attention", ds, **SMALL).eval()(ds.batch())
    assert out.attention.shape == (5, 2, 2, 2)  # (B, images, *deepest grid)
    torch.testing.assert_close(out.attention.sum(1), torch.ones(5, 2, 2))
    out = build_model("channel_attention", ds, **SMALL).eval()(ds.batch())
    assert out.attention.shape == (5, 3, 16)  # (B, M, D)
    for queries, shape in (("image", (5, 8, 4)), ("table", (5, 3, 9))):
        out = build_model("cross_attention", ds, queries=queries, **SMALL).eval()(ds.batch())
        assert out.attention.shape == shape  # (B, queries, 1 + keys): column 0 is the "nothing" key
        torch.testing.assert_close(out.attention.sum(-1), torch.ones(shape[:2]))


# --------------------------------------------------------------------------------- output fusion
def test_dempster_rule_with_a_vacuous_opinion_changes_nothing():
    b = torch.tensor([[0.5, 0.2, 0.1]])
    u = torch.tensor([[0.2]])
    b2, u2 = EvidentialFusion.dempster(b, u, torch.zeros_like(b), torch.ones_like(u))
    torch.testing.assert_close(b2, b)
    torch.testing.assert_close(u2, u)
    bc, uc = EvidentialFusion.dempster(b, u, b, u)  # agreeing opinions: less uncertainty
    assert uc < u and torch.isclose(bc.sum() + uc.sum(), torch.tensor(1.0))


def test_evidential_uncertainty_is_one_for_absent_modalities():
    ds = tiny_dataset(6)
    model = build_model("evidential", ds, **SMALL).eval()
    batch = ds.batch()
    batch["mask"][0, :2] = False
    out = model(batch)
    assert out.uncertainty.shape == (6, 4)  # per modality, then fused
    assert (out.uncertainty[0, :2] == 1).all() and (out.uncertainty[:, :3] <= 1).all()
    assert (out.uncertainty[:, 3] <= out.uncertainty[:, :3].min(1).values + 1e-6).all()
    loss = model.train().loss(model(batch), batch["label"])
    assert torch.isfinite(loss) and loss > 0


@pytest.mark.parametrize("num_classes", [2, 3])
def test_stacking_fits_its_meta_learner_after_training(num_classes):
    ds = tiny_dataset(60, num_classes=num_classes)
    torch.manual_seed(0)
    model = build_model("stacking", ds, cross_fit=1, **SMALL)  # in-sample, so the features below are the ones it saw
    assert not model.fitted
    fit(model, ds, epochs=2, batch_size=32, progress=False)
    assert model.fitted and model.meta_weight.abs().sum() > 0
    with torch.no_grad():
        out = model.eval()(ds.batch())
    assert out.logits.shape == (60, num_classes)
    # the torch copy of the meta-learner predicts what scikit-learn's does
    from sklearn.linear_model import LogisticRegression

    probs, mask = model.unimodal_probabilities(ds)
    features = model.features(probs, mask).numpy()
    reference = LogisticRegression(C=model.C, max_iter=1000).fit(features, ds.labels.numpy()).predict_proba(features)
    assert abs(out.logits.softmax(-1).numpy() - reference).max() < 1e-4


def test_weighted_vote_weights_are_the_training_balanced_accuracies():
    ds = tiny_dataset(60)
    torch.manual_seed(0)
    model = build_model("weighted_vote", ds, **SMALL)
    fit(model, ds, epochs=2, batch_size=32, progress=False)
    assert model.weights.shape == (3,) and ((model.weights > 0) & (model.weights <= 1)).all()
    assert not torch.equal(model.weights, torch.ones(3))


def test_output_fusion_loss_trains_only_present_unimodal_heads():
    ds = tiny_dataset(8)
    model = build_model("average", ds, **SMALL).train()
    batch = ds.batch()
    batch["mask"][:, 2] = False  # the table is absent for everyone
    model.loss(model(batch), batch["label"]).backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.heads["clinical"].parameters())
    assert any(p.grad.abs().sum() > 0 for p in model.heads["mri"].parameters())


# ----------------------------------------------------------------------------- other methods
def test_hierarchical_depths_sweep_early_to_late():
    ds = tiny_dataset(6)
    sizes = {}
    for depths in [(0,), (1,), (2,), (0, 1, 2), (-1,)]:
        model = build_model("hierarchical", ds, depths=depths, **SMALL)
        assert model(ds.batch()).logits.shape == (6, 3)
        sizes[depths] = sum(p.numel() for p in model.encoders.parameters())
    assert sizes[(0,)] < sizes[(1,)] < sizes[(2,)] == sizes[(0, 1, 2)] == sizes[(-1,)]
    assert "stages 0, 1, 2 (3 fusion points)" in build_model("hierarchical", ds, **SMALL).where


@pytest.mark.parametrize("name", ["film", "daft"])
def test_film_conditions_the_chosen_stage(name):
    ds = tiny_dataset(6)
    for stage in (0, 1, -1):
        model = build_model(name, ds, stage=stage, **SMALL)
        assert model(ds.batch()).logits.shape == (6, 3)
        assert f"stage-{stage % 3}" in model.where
    with pytest.raises(ValueError, match="stage must index"):
        build_model(name, ds, stage=3, **SMALL)


def test_tensor_fusion_size_grows_as_the_product_of_dims_plus_one():
    ds = tiny_dataset(4)
    model = build_model("tensor", ds, dim=4, **SMALL)
    assert model.head.in_features == 5**3
    assert model(ds.batch()).logits.shape == (4, 3)


# ------------------------------------------------------------------- fusion of whichever modalities are present
ANY_SUBSET = ["mean", "hemis", "poe", "shared_specific"]


@pytest.mark.parametrize("name", ANY_SUBSET)
@PROPERTY
@given(specs=modality_sets(), seed=st.integers(0, 3))
def test_every_subset_of_present_modalities_gives_one_output_per_subject(name, specs, seed):
    """One subject per non-empty subset of the modalities (singletons included): finite logits, the same for a
    subject alone as in the batch, and gradients to the parameters of every modality that is present."""
    import itertools

    names = list(specs)
    subsets = [s for k in range(1, len(names) + 1) for s in itertools.combinations(range(len(names)), k)]
    mask = torch.zeros(len(subsets), len(names), dtype=torch.bool)
    for i, subset in enumerate(subsets):
        mask[i, list(subset)] = True
    torch.manual_seed(seed)
    model = build_or_skip(name, specs).eval()
    batch = random_batch(specs, len(subsets), seed=seed, mask=mask)
    out = model(batch)
    assert out.logits.shape == (len(subsets), 3) and torch.isfinite(out.logits).all()
    for i in (0, len(subsets) - 1):  # a single modality, and all of them
        alone = {k: v[i : i + 1] for k, v in batch.items()}
        torch.testing.assert_close(model(alone).logits, out.logits[i : i + 1], atol=1e-5, rtol=1e-5)
    model.train()
    loss_of(model, model(batch), batch["label"]).backward()
    for m in names:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoders[m].parameters()), (name, m)


def test_product_of_experts_is_the_precision_weighted_mean_with_the_prior():
    specs = {"a": ModalitySpec("a", "tabular", (3,)), "b": ModalitySpec("b", "tabular", (3,))}
    model = build_model("poe", specs, num_classes=3, out_dim=4, dim=2)
    h = torch.randn(5, 2, 4)
    stats = torch.stack([model.experts[m](h[:, j]) for j, m in enumerate(model.modalities)], 1)
    mu, precision = stats[..., :2], torch.exp(-stats[..., 2:])
    only_a = torch.tensor([[True, False]] * 5)
    joint_mu, joint_log_var = model.posterior(h, only_a)
    torch.testing.assert_close(joint_mu, precision[:, 0] * mu[:, 0] / (1 + precision[:, 0]))  # one expert and the prior
    both_mu, both_log_var = model.posterior(h, torch.ones(5, 2, dtype=torch.bool))
    total = 1 + precision.sum(1)
    torch.testing.assert_close(both_mu, (precision * mu).sum(1) / total)
    torch.testing.assert_close(both_log_var, -torch.log(total))
    assert (both_log_var < joint_log_var).all()  # a second expert can only make the posterior surer


def test_hemis_variance_is_zero_for_one_modality_and_the_spread_of_several():
    specs = {"a": ModalitySpec("a", "tabular", (3,)), "b": ModalitySpec("b", "tabular", (3,))}
    model = build_model("hemis", specs, num_classes=3, out_dim=4).eval()
    z, h = _head_input_and_h(model, random_batch(specs, 2, mask=torch.tensor([[True, False], [True, True]])))
    torch.testing.assert_close(z[0], torch.cat([h[0, 0], torch.zeros(4)]))
    torch.testing.assert_close(z[1], torch.cat([h[1].mean(0), h[1].var(0, unbiased=False)]))


def _head_input_and_h(model, batch):
    """What the head of ``model`` reads for ``batch`` (z), and the marginal representations h (B, M, D)."""
    _, z = _with_head_input(model, batch, capture=True)
    return z, torch.stack([model.encoders[m](model.scaling(batch)[m]) for m in model.modalities], 1)


def test_shared_specific_fills_an_absent_slot_with_the_shared_mean_and_trains_every_part():
    specs = {m: ModalitySpec(m, "tabular", (3,)) for m in ("a", "b", "c")}
    torch.manual_seed(0)
    model = build_model("shared_specific", specs, num_classes=3, out_dim=4, dim=3)
    batch = random_batch(specs, 2, mask=torch.tensor([[True, False, True], [True, True, True]]))
    model.eval()
    assert model(batch).auxiliary is None  # the shared and specific terms are a training loss only
    z, h = _head_input_and_h(model, batch)
    s, p = model.shared(h), torch.stack([model.specific[m](h[:, j]) for j, m in enumerate(model.modalities)], 1)
    c = z.view(2, 3, 3)
    torch.testing.assert_close(c[0, 1], (s[0, 0] + s[0, 2]) / 2)  # b absent: what a and c share
    torch.testing.assert_close(c[0, 0], s[0, 0] + p[0, 0])
    torch.testing.assert_close(c[1], s[1] + p[1])
    model.train()
    output = model(batch)
    assert output.auxiliary is not None and output.auxiliary > 0
    loss_of(model, output, batch["label"]).backward()
    unused = [n for n, q in model.named_parameters() if q.grad is None or not q.grad.abs().sum() > 0]
    assert unused == [], unused  # the modality classifier learns through the auxiliary term
    assert build_model("shared_specific", specs, num_classes=3, weight=0.0).train()(batch).auxiliary is None
    with pytest.raises(ValueError, match="weight"):
        build_model("shared_specific", specs, num_classes=3, weight=-1.0)


def test_mean_fusion_is_the_mean_of_the_present_representations():
    specs = {m: ModalitySpec(m, "tabular", (3,)) for m in ("a", "b")}
    model = build_model("mean", specs, num_classes=3, out_dim=4).eval()
    z, h = _head_input_and_h(model, random_batch(specs, 2, mask=torch.tensor([[False, True], [True, True]])))
    torch.testing.assert_close(z, torch.stack([h[0, 1], h[1].mean(0)]))
