"""Feedback for exercise checks: printable, truthy when solved, never an error for "not yet"."""
from __future__ import annotations


class Feedback:
    """The result of a check: printable, and truthy when the answer is right."""

    def __init__(self, solved: bool, message: str) -> None:
        self.solved, self.message = solved, message

    def __bool__(self) -> bool:
        return self.solved

    def __repr__(self) -> str:
        return self.message


def unsolved(answer) -> bool:
    """An answer still left as ``...`` or ``None``."""
    return answer is None or answer is Ellipsis


def not_yet(hint: str) -> Feedback:
    return Feedback(False, f"Not yet solved: replace ... with your answer. Hint: {hint}")
