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
