"""Spec text to plain data, bounded: JSON (one value, a list, or concatenated objects) or YAML.

What ``pachctl create pipeline -f`` reads, with limits so that bad input fails in one line and
in bounded time and memory:

* YAML anchors and aliases are allowed, but the document as expanded (every alias counted
  again) may hold at most :data:`MAX_VALUES` values (a string counts one per 64 characters, so
  about 12 MiB of text), and may not refer to itself: a "billion laughs" spec is refused before
  anything walks it.
* At most :data:`MAX_DEPTH` levels of nesting (a 5,000-deep value is refused, never a
  ``RecursionError``).
* A key given twice in one mapping is an error naming the key (YAML and JSON; YAML merge keys
  ``<<`` may still be overridden).
* A tab between a value and the end of the line or a ``#`` comment is accepted (Go's YAML
  parser does; PyYAML does not).
* Error texts hold at most a short, truncated rendering of a value (:func:`show`).
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

import yaml

from airflow_datum_provider.core.errors import SpecError

__all__ = ["MAX_DEPTH", "MAX_VALUES", "check_bounds", "load_documents", "show"]

MAX_DEPTH = 100
MAX_VALUES = 200_000

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 5


def show(value: object) -> str:
    """A short rendering of any value for an error message (bounded, one line)."""
    return _REPR.repr(value).replace("\n", "\\n")


def _key(value: object) -> str:
    text = value if isinstance(value, str) else show(value)
    return text if len(text) <= 80 else text[:79] + "…"


class _Loader(yaml.SafeLoader):
    """``SafeLoader`` that refuses duplicate keys and turns deep nesting into an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=False)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: the constructor reports it
            if duplicate:
                line = key_node.start_mark.line + 1
                raise SpecError(
                    f"key `{_key(key)}` is given twice in one mapping (line {line}); keep one",
                    field="spec",
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_TAB_BEFORE_END = re.compile(r"(?<=\S)[ \t]*\t[ \t]*(?=#|$)", re.MULTILINE)


def _yaml_error(exc: yaml.YAMLError) -> SpecError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return SpecError(f"not valid JSON or YAML: {problem}{where}", field="spec")


def _yaml_documents(text: str) -> list[object]:
    try:
        return list(yaml.load_all(text, Loader=_Loader))
    except RecursionError:
        raise _too_deep() from None
    except yaml.YAMLError as exc:
        if "'\\t'" not in str(exc):
            raise _yaml_error(exc) from None
        error = exc
    # Go's YAML accepts a tab after a value; retry once with such tabs made spaces.
    try:
        return list(yaml.load_all(_TAB_BEFORE_END.sub(" ", text), Loader=_Loader))
    except RecursionError:
        raise _too_deep() from None
    except yaml.YAMLError:
        raise _yaml_error(error) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SpecError(
                f"key `{_key(key)}` is given twice in one object; keep one", field="spec"
            )
        out[key] = value
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates)
_SPACE = re.compile(r"\s*")


def _json_documents(text: str) -> list[object] | None:
    """Concatenated JSON values (one is the common case), or ``None`` if this is not JSON."""
    out: list[object] = []
    end = _SPACE.match(text, 0).end()  # type: ignore[union-attr]
    try:
        while end < len(text):
            value, end = _DECODER.raw_decode(text, end)
            out.append(value)
            end = _SPACE.match(text, end).end()  # type: ignore[union-attr]
    except RecursionError:
        raise _too_deep() from None
    except SpecError:
        raise
    except ValueError:
        return None
    return out


def _too_deep() -> SpecError:
    return SpecError(f"values nest more than {MAX_DEPTH} levels deep", field="spec")


def check_bounds(value: object, where: str = "spec") -> None:
    """Refuse a value nested too deeply, expanding to too many values, or containing itself.

    Walks the value as a graph (each shared object once), so an alias bomb costs what its text
    costs, not what it expands to.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    # (object, depth, children iterator or None)
    stack: list[tuple[object, int, Iterator[object] | None]] = [(value, 1, None)]
    while stack:
        obj, depth, children = stack.pop()
        if children is None:
            if not isinstance(obj, Mapping | list | tuple):
                continue
            key = id(obj)
            if key in sizes:
                continue
            if key in on_path:
                raise SpecError("a YAML alias refers to the value that contains it", field=where)
            if depth > MAX_DEPTH:
                raise _too_deep()
            on_path.add(key)
            items = iter(obj.values()) if isinstance(obj, Mapping) else iter(obj)
            stack.append((obj, depth, items))
            continue
        child = next(children, _DONE)
        if child is _DONE:
            key = id(obj)
            on_path.discard(key)
            members: Iterable[object] = (
                obj.values() if isinstance(obj, Mapping) else cast("Iterable[object]", obj)
            )
            total = 1 + sum(sizes.get(id(m)) or _weight(m) for m in members)
            if total > MAX_VALUES:
                raise SpecError(
                    f"expands to more than {MAX_VALUES} values (YAML aliases?); refused",
                    field=where,
                )
            sizes[key] = total
            continue
        stack.append((obj, depth, children))
        stack.append((child, depth + 1, None))


_DONE = object()


def _weight(value: object) -> int:
    """A scalar's share of :data:`MAX_VALUES`: 1, plus one per 64 characters of a string."""
    return 1 + len(value) // 64 if isinstance(value, str | bytes) else 1


def load_documents(text: str) -> list[object]:
    """Every document of a spec text: JSON values (concatenated or one) or a YAML stream.

    A JSON list at the top is returned as one document (the caller decides whether a list of
    specs is allowed). Empty YAML documents are dropped.
    """
    stripped = text.lstrip()
    documents: list[object] | None = None
    if stripped.startswith(("{", "[")):
        documents = _json_documents(text)
    if documents is None:
        # YAML flow style is a superset of JSON; let it report the error.
        documents = [d for d in _yaml_documents(text) if d is not None]
    for document in documents:
        check_bounds(document)
    return documents
