"""The error tree: documented exactly, every class pickles with its attributes."""

from __future__ import annotations

import builtins
import inspect
import pickle
import re
import typing

import pytest

from airflow_datum_provider.core import errors
from airflow_datum_provider.core.errors import DatumError

CLASSES = sorted(
    (obj for obj in vars(errors).values() if inspect.isclass(obj) and issubclass(obj, DatumError)),
    key=lambda cls: cls.__name__,
)


def _documented_tree() -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """``name -> (parent, documented built-in mixins)`` from the module docstring's tree."""
    assert errors.__doc__ is not None
    tree: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    stack: list[tuple[int, str]] = []
    for line in errors.__doc__.splitlines():
        found = re.match(r"^(\s{4}[│ ]*(?:[├└]── )?)(\w+)(?: \(([\w, ]+)\))?", line)
        if not found or not found.group(2)[0].isupper():
            continue
        depth, name = len(found.group(1)), found.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        mixins = tuple(m.strip() for m in (found.group(3) or "").split(",") if m.strip())
        tree[name] = (stack[-1][1] if stack else None, mixins)
        stack.append((depth, name))
    return tree


def test_the_documented_tree_is_the_class_set() -> None:
    tree = _documented_tree()
    assert set(tree) == {cls.__name__ for cls in CLASSES}
    assert set(errors.__all__) == set(tree)
    for name, (parent, mixins) in tree.items():
        cls = getattr(errors, name)
        if parent is not None:
            assert cls.__bases__[0] is getattr(errors, parent), name
        for mixin in mixins:
            assert issubclass(cls, getattr(builtins, mixin)), name


def _sample(kind: object) -> object:
    text = str(kind)
    if "int" in text:
        return 7
    if "float" in text:
        return 1.5
    return "value"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_class_pickles_with_its_declared_attributes(cls: type[DatumError]) -> None:
    hints = {
        name: hint
        for klass in reversed(cls.__mro__)
        if issubclass(klass, DatumError) and klass is not DatumError
        for name, hint in typing.get_type_hints(klass).items()
        if name not in ("transient",)
    }
    attrs = {name: _sample(hint) for name, hint in hints.items()}
    error = cls("something went wrong", **attrs)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is cls
    assert str(again) == str(error)
    for name, value in attrs.items():
        assert getattr(again, name) == value
    assert again.transient is cls.transient


def test_undeclared_attributes_read_as_their_default() -> None:
    error = errors.CommitNotFound("commit x not found", repo="r")
    assert (error.repo, error.commit, error.path) == ("r", "", "")
