"""The error tree drawn in core/errors.py's docstring is the tree in the code."""

from __future__ import annotations

import re

import pytest

from yingyun.core import errors


def _drawn_tree() -> dict[str, str]:
    """child -> parent, read from the docstring's drawing."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        m = re.match(r"^(\s*)(?:[│ ]*[├└]── )?([A-Z][A-Za-z]+)\s{2,}", line)
        if not m or not line.strip().startswith(("YingyunError", "├", "└", "│")):
            continue
        depth = len(line) - len(line.lstrip(" │├└─"))
        name = m.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_docstring_draws_every_class_with_its_parent() -> None:
    drawn = _drawn_tree()
    assert set(drawn) | {"YingyunError"} == set(errors.__all__)
    for child, parent in drawn.items():
        assert getattr(errors, child).__bases__[0] is getattr(errors, parent), child


@pytest.mark.parametrize("cls, builtin", [(errors.Invalid, ValueError), (errors.NotFound, LookupError)])
def test_errors_are_also_the_builtin_a_caller_might_catch(cls: type, builtin: type) -> None:
    assert issubclass(cls, builtin)


def test_an_error_carries_its_words_subject_and_field() -> None:
    e = errors.TooLarge("imageCnt is too large", subject="study", field="imageCnt", limit=2**31 - 1)
    assert (str(e), e.detail, e.subject, e.field, e.limit) == ("imageCnt is too large", "imageCnt is too large",
                                                              "study", "imageCnt", 2**31 - 1)
    assert errors.RateLimited("slow down", retry_after=1.5).retry_after == 1.5
