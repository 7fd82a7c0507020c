"""Datum sets: the unit of scheduling (one mapped Airflow task or pod per set).

* ``number: N`` cuts a set every N datums;
* ``size_bytes: S`` starts a new set at the first datum after the running input size reached S;
* otherwise (``per_worker: P``, default 4) sets hold ``(total - skipped) / (parallelism * P)``
  datums, at least 1.

An explicitly all-zero ``datum_set_spec`` is rejected by the spec parser; here it means the
default. ``max_sets`` caps the number of sets (Airflow's ``max_map_length``) by growing them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TypeVar

from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.errors import SpecError

__all__ = ["DEFAULT_PER_WORKER", "cut_sets", "set_size"]

DEFAULT_PER_WORKER = 4
T = TypeVar("T", bound=Datum)


def set_size(
    total: int,
    *,
    number: int = 0,
    per_worker: int = 0,
    parallelism: int = 1,
    max_sets: int | None = None,
) -> int:
    """Datums per set for ``total`` datums to process (``size_bytes`` is handled by cutting)."""
    if number < 0 or per_worker < 0 or parallelism < 0:
        raise SpecError("must not be negative", field="datum_set_spec")
    if number:
        size = number
    else:
        workers = max(parallelism, 1)
        size = max(1, total // (workers * (per_worker or DEFAULT_PER_WORKER)))
    if max_sets and total and math.ceil(total / size) > max_sets:
        size = math.ceil(total / max_sets)
    return size


def cut_sets(
    datums: Iterable[T],
    *,
    total: int,
    number: int = 0,
    size_bytes: int = 0,
    per_worker: int = 0,
    parallelism: int = 1,
    max_sets: int | None = None,
) -> Iterator[list[T]]:
    """Group datums (to process) into sets, streaming."""
    if size_bytes < 0:
        raise SpecError("size_bytes must not be negative", field="datum_set_spec.size_bytes")
    if size_bytes and not number:
        yield from _cut_by_size(datums, size_bytes, total, max_sets)
        return
    size = set_size(
        total, number=number, per_worker=per_worker, parallelism=parallelism, max_sets=max_sets
    )
    current: list[T] = []
    for datum in datums:
        current.append(datum)
        if len(current) >= size:
            yield current
            current = []
    if current:
        yield current


def _cut_by_size(
    datums: Iterable[T], size_bytes: int, total: int, max_sets: int | None
) -> Iterator[list[T]]:
    floor = math.ceil(total / max_sets) if max_sets and total else 1
    current: list[T] = []
    running = 0
    for datum in datums:
        if running >= size_bytes and len(current) >= floor:
            yield current
            current, running = [], 0
        current.append(datum)
        running += datum.size
    if current:
        yield current
