"""Chapter 09's checks: right answers pass, typical mistakes get their hint, odd answers do not crash."""
from __future__ import annotations

from types import SimpleNamespace

from fusion_kit import exercises


def _run(scores):
    return SimpleNamespace(folds=[{"balanced_accuracy": s} for s in scores])


def test_subjects_per_step():
    assert exercises.check_subjects_per_step(64)
    assert "not yet" in repr(exercises.check_subjects_per_step(...)).lower()
    one = exercises.check_subjects_per_step(16)
    assert not one and "one process's batch" in repr(one)
    split = exercises.check_subjects_per_step(4)
    assert not split and "per process" in repr(split)
    assert not exercises.check_subjects_per_step("sixty-four")


def test_augmentation_verdict_follows_the_learners_own_runs():
    plain, clear, noisy = _run([0.50, 0.52, 0.51]), _run([0.60, 0.62, 0.60]), _run([0.58, 0.45, 0.53])
    assert exercises.augmentation_verdict(clear, plain) == "helps"
    assert exercises.augmentation_verdict(plain, clear) == "hurts"
    assert exercises.augmentation_verdict(noisy, plain) == "noise"
    gain = (0.10 + 0.10 + 0.09) / 3
    assert exercises.check_augmentation_verdict(gain, "helps", clear, plain)
    reversed_sign = exercises.check_augmentation_verdict(-gain, "helps", clear, plain)
    assert not reversed_sign and "reversed" in repr(reversed_sign)
    sign_only = exercises.check_augmentation_verdict((0.08 - 0.07 + 0.02) / 3, "helps", noisy, plain)
    assert not sign_only and "a sign alone is not a finding" in repr(sign_only)
    assert not exercises.check_augmentation_verdict(gain, "maybe", clear, plain)
    assert not exercises.check_augmentation_verdict("0.1", "helps", clear, plain)
    assert "not yet" in repr(exercises.check_augmentation_verdict(..., ..., clear, plain)).lower()
