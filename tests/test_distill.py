"""Knowledge distillation: a student of the modalities available at test time learns from a full-modality teacher."""
import copy

import numpy as np
import pytest
import torch

from fusion_kit.data import split_dataset
from fusion_kit.models import build_model
from fusion_kit.train import distill, fit, predict

from conftest import make_toy_dataset

SMALL = {"out_dim": 8, "channels": (4, 8)}


@pytest.fixture(scope="module")
def setting():
    data = make_toy_dataset(240)
    splits = split_dataset(data, seed=0)
    teacher = build_model("concat", data, **SMALL)
    fit(teacher, splits.train, splits.val, epochs=6, progress=False)
    return data, splits, teacher


def _student(data, seed=0):
    torch.manual_seed(seed)
    return build_model("unimodal", data, modalities=["mri"], **SMALL)


def test_without_the_teacher_term_distillation_is_plain_training(setting):
    data, splits, teacher = setting
    before = copy.deepcopy(teacher.state_dict())
    plain, taught = _student(data), _student(data)
    fit(plain, splits.train, splits.val, epochs=4, progress=False)
    distill(teacher, taught, splits.train, splits.val, weight=0.0, representation=0.0, epochs=4, progress=False)
    for (name, a), b in zip(plain.state_dict().items(), taught.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    for name, value in teacher.state_dict().items():  # the teacher never changes
        assert torch.equal(value, before[name]), name


class Opinionated(torch.nn.Module):
    """A teacher of MRI and table that always answers class 0 with confidence (whatever the data)."""

    def __init__(self, data):
        super().__init__()
        self.specs, self.modalities, self.num_classes = dict(data.specs), data.modalities, 3
        self.bias = torch.nn.Parameter(torch.tensor([4.0, 0.0, 0.0]))

    def forward(self, batch):
        return self.bias.expand(len(batch["label"]), 3)


def test_the_student_moves_towards_the_teacher(setting):
    data, splits, _ = setting
    plain, taught = _student(data), _student(data)
    fit(plain, splits.train, splits.val, epochs=6, progress=False, patience=None)
    distill(Opinionated(data), taught, splits.train, splits.val, weight=0.9, representation=0.0, epochs=6,
            progress=False, patience=None)
    class_0 = [float(predict(m, splits.test).probs[:, 0].mean()) for m in (plain, taught)]
    assert class_0[1] > class_0[0] + 0.2, class_0  # the teacher's opinion reached the student


def test_the_teacher_term_counts_only_where_the_teacher_has_its_modalities(setting):
    import torch.nn.functional as F

    from fusion_kit.train import _Distillation

    data, splits, _ = setting
    pair = _Distillation(Opinionated(data), _student(data), temperature=2.0, weight=0.5).train()
    complete = splits.train.batch(slice(0, 16))
    without = dict(complete, mask=complete["mask"].clone())
    without["mask"][:, 1] = False  # no subject has the teacher's table
    for batch, teacher_counts in ((complete, True), (without, False)):
        output = pair(batch)
        hard = F.cross_entropy(output.logits, batch["label"])
        loss = pair.loss(output, batch["label"])
        if teacher_counts:
            assert loss > 0.5 * hard + 1e-3
        else:
            torch.testing.assert_close(loss, 0.5 * hard)


def test_the_representation_term_matches_the_teachers_fused_vector_where_it_has_its_modalities(setting):
    import torch.nn.functional as F

    from fusion_kit.train import _Distillation

    data, splits, teacher = setting
    student = _student(data)
    pair = _Distillation(teacher, student, temperature=2.0, weight=0.0, representation=0.7).train()
    complete = splits.train.batch(slice(0, 16))
    seen = {}
    hooks = [m.head.register_forward_hook(lambda module, inputs, out, key=key: seen.update({key: inputs[0]}))
             for key, m in (("t", teacher), ("s", student))]
    output = pair(complete)
    for hook in hooks:
        hook.remove()
    z_t, z_s = seen["t"].detach(), seen["s"]
    gap = (pair.project(z_s) - z_t).pow(2).mean(-1).mean() / z_t.pow(2).mean()
    loss = pair.loss(output, complete["label"])
    torch.testing.assert_close(loss, F.cross_entropy(output.logits, complete["label"]) + 0.7 * gap)
    loss.backward()
    assert pair.project.weight.grad.abs().sum() > 0 and student.encoders["mri"].parameters().__next__().grad is not None
    assert all(p.grad is None for p in teacher.parameters())  # the teacher stays frozen
    without = dict(complete, mask=complete["mask"].clone())
    without["mask"][:, 1] = False  # no subject has the teacher's table: only the labels count
    output = pair(without)
    torch.testing.assert_close(pair.loss(output, without["label"]), F.cross_entropy(output.logits, without["label"]))


def test_distillation_leaves_the_student_as_it_was_built(setting):
    data, splits, teacher = setting
    student = _student(data)
    keys = set(student.state_dict())
    distill(teacher, student, splits.train, splits.val, epochs=2, progress=False)
    assert set(student.state_dict()) == keys  # the map W is dropped with the pair
    assert not student.head._forward_hooks and not teacher.head._forward_hooks


def test_bad_distillation_requests_say_what_to_do(setting):
    data, splits, teacher = setting
    with pytest.raises(ValueError, match="between 0 and 1"):
        distill(teacher, _student(data), splits.train, weight=1.5)
    with pytest.raises(ValueError, match="representation=0"):
        distill(Opinionated(data), _student(data), splits.train)  # a teacher without a fused vector
    with pytest.raises(ValueError, match="representation=0"):
        distill(teacher, build_model("average", data, **SMALL), splits.train)
    with pytest.raises(ValueError, match="representation"):
        distill(teacher, _student(data), splits.train, representation=-1)
    with pytest.raises(ValueError, match="same classes"):
        distill(teacher, build_model("concat", data, num_classes=4, **SMALL), splits.train)
    with pytest.raises(ValueError, match="out-of-fold"):
        distill(teacher, build_model("stacking", data, **SMALL), splits.train)
    with pytest.raises(KeyError, match="missing modality 'clinical'"):
        distill(teacher, _student(data), splits.train.select(["mri"]))
