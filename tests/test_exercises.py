from fusion_kit import exercises
import numpy as np


def test_taxonomy_quiz_solution_and_hints():
    assert exercises.check_taxonomy(dict(exercises.TAXONOMY_QUIZ))
    unsolved = exercises.check_taxonomy({d: ... for d in exercises.TAXONOMY_QUIZ})
    assert not unsolved and "Not yet solved" in repr(unsolved)
    wrong = dict(exercises.TAXONOMY_QUIZ)
    first = next(iter(wrong))
    wrong[first] = "output"
    feedback = exercises.check_taxonomy(wrong)
    assert not feedback and "1 to revisit" in repr(feedback) and "before* the first encoder" in repr(feedback)
    assert "not a family name" in repr(exercises.check_taxonomy({d: "early" for d in exercises.TAXONOMY_QUIZ}))


def test_tensor_fusion_size_feedback():
    assert exercises.tensor_fusion_size(2, 3) == 12
    assert exercises.check_tensor_fusion_size(33 * 33 * 17)
    assert "Not yet solved" in repr(exercises.check_tensor_fusion_size(...))
    assert "forgot the constant 1" in repr(exercises.check_tensor_fusion_size(32 * 32 * 16))
    assert "size of concatenation" in repr(exercises.check_tensor_fusion_size(80))
    assert "Not quite" in repr(exercises.check_tensor_fusion_size(7))


def test_chapter_01_checks():
    assert exercises.check_always_cn((0.6, 1 / 3))
    assert "Balanced accuracy" in repr(exercises.check_always_cn((0.6, 0.6)))
    assert "Accuracy" in repr(exercises.check_always_cn((1.0, 1 / 3)))
    assert "tuple of two numbers" in repr(exercises.check_always_cn("0.6"))


def test_chapter_02_checks():
    assert exercises.check_input_channels(7) and not exercises.check_input_channels(3)
    drop = {"a": 0.2, "b": 0.05}
    assert exercises.check_most_robust("b", drop) and "a 0.200" in repr(exercises.check_most_robust("b", drop))
    assert "another one lost less" in repr(exercises.check_most_robust("a", drop))
    assert "not in drop" in repr(exercises.check_most_robust("c", drop))


def test_chapter_03_checks():
    import torch

    from fusion_kit.fusion import masked_mean

    assert exercises.check_mean_fusion(lambda h, p: masked_mean(h, p, dim=1))
    assert "absent modalities too" in repr(exercises.check_mean_fusion(lambda h, p: h.mean(1)))
    assert "divided by M" in repr(
        exercises.check_mean_fusion(lambda h, p: torch.where(p.unsqueeze(-1), h, torch.zeros_like(h)).mean(1))
    )
    assert "raised ZeroDivisionError" in repr(exercises.check_mean_fusion(lambda h, p: 1 / 0))
    assert "Not yet solved" in repr(exercises.check_mean_fusion(lambda h, p: None))


def test_chapter_04_checks(toy):
    from fusion_kit.models import build_model

    images = toy.with_tensors()  # one image and one table are enough for the hierarchy
    assert exercises.check_two_fusion_points(build_model("hierarchical", images, depths=(1, 2), channels=(4, 8, 8)))
    assert "asks for two" in repr(exercises.check_two_fusion_points(build_model("hierarchical", images, depths=(2,), channels=(4, 8, 8))))
    assert exercises.check_own_stages(1) and not exercises.check_own_stages(0)


class _Seeds:
    """A comparison's per-seed scores, as Comparison.scores gives them."""

    def __init__(self, **scores):
        self._scores = {label.replace("_", " "): np.array(v) for label, v in scores.items()}

    def scores(self, label):
        return self._scores[label]


def test_seed_lead_is_judged_against_the_learners_own_seeds():
    clear = _Seeds(a=[0.70, 0.72, 0.71], b=[0.60, 0.61, 0.62])
    noisy = _Seeds(a=[0.70, 0.60, 0.66], b=[0.62, 0.66, 0.64])
    check = exercises.check_seed_lead
    assert "Not yet solved" in repr(check(..., "ahead", clear, "a", "b"))
    assert check(0.1, "ahead", clear, "a", "b")
    assert "reversed" in repr(check(-0.1, "ahead", clear, "a", "b"))
    assert "pair the seeds" in repr(check(0.3, "ahead", clear, "a", "b"))
    assert "look at its sign" in repr(check(0.1, "behind", clear, "a", "b"))
    mean = float(np.mean(np.array([0.70, 0.60, 0.66]) - np.array([0.62, 0.66, 0.64])))
    assert check(mean, "noise", noisy, "a", "b")
    wrong = check(mean, "ahead", noisy, "a", "b")
    assert not wrong and "scatter explains it" in repr(wrong)
    assert "one of" in repr(check(mean, "maybe", noisy, "a", "b"))


def test_every_chapter_teaches_by_doing_and_asks_what_was_learned():
    """Each chapter: a build or experiment exercise, every exercise graded with a time, a "What you learned"
    section whose answers only the solutions hold; the course: at least 8 build exercises."""
    import re

    import nbformat

    from fusion_kit.course import delivery
    from fusion_kit.course.runner import chapter_paths

    builds = 0
    for path in chapter_paths():
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        titles = re.findall(r"\*\*\d+\. [^*]+\*\* \*\(([^)]*)\)\*", text)
        assert titles and len(titles) == len(re.findall(r"\*\*\d+\. [^*]+\*\*", text)), path.name
        assert all(re.search(r"(warm-up|core|stretch) · \d+ minutes", t) for t in titles), (path.name, titles)
        assert any(t.startswith(("build", "experiment")) for t in titles), path.name
        builds += sum(t.startswith("build") for t in titles)
        assert "### What you learned" in text, path.name
        answers = [c for c in nb.cells if delivery.is_solution(c) and c.cell_type == "markdown" and "Answers" in c.source]
        assert answers, path.name
        student = delivery.student_notebook(nb)
        assert not any("Answers to" in c.source for c in student.cells if c.cell_type == "markdown"), path.name
    assert builds >= 8
