"""Practice with feedback: generated exercises, marked answers, worked solutions.

>>> from chainrule import practice
>>> exercise = practice.generate("chain-rule", seed=3)
>>> print(exercise.prompt)                      # doctest: +SKIP
>>> exercise.check("-2xy sin(x^2 y)").correct   # doctest: +SKIP
>>> print(exercise.solution())                  # doctest: +SKIP

Answers are read by :func:`read_answer` (implicit products, ``^``, ``σ``, ``√``; then
chainrule's own parser, never Python's ``eval``) and marked against chainrule's
backprop at random points and against :func:`chainrule.symbolic` as a formula. See
docs/practice.md.
"""

from __future__ import annotations

from .answers import AnswerError as AnswerError
from .answers import read_answer as read_answer
from .exercise import Exercise as Exercise
from .exercise import Feedback as Feedback
from .exercise import Solution as Solution
from .topics import TOPICS as TOPICS
from .topics import exercise_for as exercise_for
from .topics import generate as generate

__all__ = [
    "TOPICS",
    "AnswerError",
    "Exercise",
    "Feedback",
    "Solution",
    "exercise_for",
    "generate",
    "read_answer",
]
