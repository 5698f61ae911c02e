from fusion_kit import exercises


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
    assert exercises.check_tensor_head_weights(33**3 * 3)
    assert "per class" in repr(exercises.check_tensor_head_weights(33**3))


def test_chapter_04_checks(toy):
    from fusion_kit.models import build_model

    images = toy.with_tensors()  # one image and one table are enough for the hierarchy
    assert exercises.check_two_fusion_points(build_model("hierarchical", images, depths=(1, 2), channels=(4, 8, 8)))
    assert "asks for two" in repr(exercises.check_two_fusion_points(build_model("hierarchical", images, depths=(2,), channels=(4, 8, 8))))
    assert exercises.check_own_stages(1) and not exercises.check_own_stages(0)
