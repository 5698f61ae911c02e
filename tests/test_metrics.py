import numpy as np
import pytest

from fusion_kit.metrics import classification_metrics


def test_perfect_and_chance_predictions():
    labels = np.array([0, 1, 2, 0, 1, 2])
    perfect = classification_metrics(labels, np.eye(3)[labels])
    assert perfect.accuracy == perfect.balanced_accuracy == perfect.auc == 1.0
    assert perfect.confusion.trace() == 6
    constant = classification_metrics(labels, np.tile([1.0, 0, 0], (6, 1)))
    assert constant.balanced_accuracy == pytest.approx(1 / 3)
    assert constant.auc == pytest.approx(0.5)


def test_balanced_accuracy_differs_from_accuracy_on_imbalance():
    labels = np.array([0] * 8 + [1] * 2)
    probs = np.tile([0.9, 0.1], (10, 1))
    m = classification_metrics(labels, probs, ("a", "b"))
    assert m.accuracy == pytest.approx(0.8) and m.balanced_accuracy == pytest.approx(0.5)
    assert "balanced accuracy 0.500" in str(m)


def test_auc_is_nan_when_a_class_is_missing():
    m = classification_metrics([0, 0, 1], np.array([[0.6, 0.3, 0.1]] * 3))
    assert np.isnan(m.auc)


def test_shape_errors():
    with pytest.raises(ValueError, match=r"probs must have shape \(N, K\)"):
        classification_metrics([0, 1], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        classification_metrics([0, 2], np.zeros((2, 2)))
