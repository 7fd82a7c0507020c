"""Datum sets: number, size_bytes, the per-worker default, the max_sets cap, bad values."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_datum_provider.core.datum import Datum, DatumInput
from airflow_datum_provider.core.errors import SpecError
from airflow_datum_provider.core.sets import cut_sets, set_size
from airflow_datum_provider.core.spec import parse_spec


def _datums(*sizes: int) -> list[Datum]:
    return [
        Datum(str(i), "h", (DatumInput("in", "r", "master", "c", f"/{i}", "h", size),))
        for i, size in enumerate(sizes)
    ]


def _shape(sets: list[list[Datum]]) -> list[int]:
    return [len(s) for s in sets]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"number": 3}, [3, 3, 3, 1]),
        ({"number": 1}, [1] * 10),
        ({"number": 50}, [10]),
        ({}, [2, 2, 2, 2, 2]),  # 10 / (1 * 4) = 2
        ({"parallelism": 2}, [1] * 10),  # 10 / 8 = 1
        ({"parallelism": 4}, [1] * 10),  # 10 / 16 = 0 -> at least 1
        ({"parallelism": 0}, [2, 2, 2, 2, 2]),  # 0 workers means 1, as in Pachyderm
        ({"per_worker": 1}, [10]),
        ({"per_worker": 2, "parallelism": 1}, [5, 5]),
        ({"number": 1, "max_sets": 4}, [3, 3, 3, 1]),
        ({"number": 5, "max_sets": 4}, [5, 5]),
    ],
    ids=[
        "number-3",
        "number-1",
        "number-larger-than-total",
        "default-per-worker-4",
        "default-parallelism-2",
        "default-at-least-1",
        "parallelism-0-is-1",
        "per-worker-1",
        "per-worker-2",
        "max-sets-grows-sets",
        "max-sets-not-reached",
    ],
)
def test_cut_by_count(kwargs: dict[str, int], expected: list[int]) -> None:
    datums = _datums(*[1] * 10)
    sets = list(cut_sets(datums, total=len(datums), **kwargs))
    assert _shape(sets) == expected
    assert [d for s in sets for d in s] == datums


def test_default_formula() -> None:
    assert set_size(100, parallelism=2) == 12  # 100 / (2 * 4)
    assert set_size(100, parallelism=2, per_worker=5) == 10
    assert set_size(3, parallelism=4) == 1
    assert set_size(0) == 1
    assert set_size(1_000, number=7) == 7
    assert set_size(1_000, number=1, max_sets=10) == 100


@pytest.mark.parametrize(
    ("sizes", "size_bytes", "expected"),
    [
        ((2, 2, 2, 2, 2), 4, [2, 2, 1]),
        ((2, 2, 2, 2, 2), 5, [3, 2]),
        ((10, 1, 1), 5, [1, 2]),
        ((1, 1, 1), 100, [3]),
        ((0, 0, 5, 0), 1, [3, 1]),
        ((), 4, []),
    ],
    ids=["exact", "crosses-threshold", "big-first-datum", "never-reached", "zero-sizes", "empty"],
)
def test_cut_by_size(sizes: tuple[int, ...], size_bytes: int, expected: list[int]) -> None:
    """A new set starts at the first datum after the running total reached ``size_bytes``."""
    datums = _datums(*sizes)
    assert _shape(list(cut_sets(datums, total=len(datums), size_bytes=size_bytes))) == expected


def test_cut_by_size_respects_max_sets() -> None:
    datums = _datums(*[10] * 12)
    sets = list(cut_sets(datums, total=12, size_bytes=1, max_sets=3))
    assert _shape(sets) == [4, 4, 4]


def test_number_wins_over_size_bytes() -> None:
    datums = _datums(*[10] * 6)
    assert _shape(list(cut_sets(datums, total=6, number=2, size_bytes=1))) == [2, 2, 2]


def test_cutting_streams() -> None:
    def source() -> Iterator[Datum]:
        yield from _datums(1, 1, 1)
        raise AssertionError("read past the first set")

    sets = cut_sets(source(), total=1_000, number=2)
    assert _shape([next(sets)]) == [2]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"number": -1}, "datum_set_spec.number"),
        ({"size_bytes": -1}, "datum_set_spec.size_bytes"),
        ({"per_worker": -1}, "datum_set_spec.per_worker"),
        ({"size_bytes": 5, "per_worker": -1}, "datum_set_spec.per_worker"),
        ({"parallelism": -1}, "parallelism_spec.constant"),
        ({"max_sets": -1}, "max_sets"),
    ],
    ids=["number", "size-bytes", "per-worker", "per-worker-with-size", "parallelism", "max-sets"],
)
def test_negative_values_are_spec_errors(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(SpecError) as info:
        list(cut_sets(_datums(1), total=1, **kwargs))
    assert str(info.value).startswith(f"{field}: ")


def test_set_size_negative_is_spec_error() -> None:
    with pytest.raises(SpecError):
        set_size(10, number=-2)


_SPEC = {"pipeline": {"name": "p"}, "input": {"pfs": {"repo": "r", "glob": "/*"}}}


@pytest.mark.parametrize(
    "set_spec",
    [{}, {"number": 0}, {"number": 0, "size_bytes": 0, "per_worker": 0}],
    ids=["empty-object", "number-0", "all-zero"],
)
def test_all_zero_set_spec_rejected_by_parser(set_spec: dict[str, int]) -> None:
    spec = {**_SPEC, "transform": {"cmd": ["true"]}, "datum_set_spec": set_spec}
    with pytest.raises(SpecError, match="at least one of number, size_bytes, per_worker") as info:
        parse_spec(spec)
    assert str(info.value).startswith("datum_set_spec: ")


def test_valid_set_spec_parses() -> None:
    spec = parse_spec({**_SPEC, "transform": {"cmd": ["true"]}, "datum_set_spec": {"number": 3}})
    assert spec.datum_set_spec is not None
    assert spec.datum_set_spec.number == 3
