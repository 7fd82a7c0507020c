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

__all__ = ["DEFAULT_PER_WORKER", "SetCutter", "cut_sets", "set_size"]

DEFAULT_PER_WORKER = 4
T = TypeVar("T", bound=Datum)


_FIELDS = {"parallelism": "parallelism_spec.constant", "max_sets": "max_sets"}


def _check(**values: int | None) -> None:
    for key, value in values.items():
        if value is not None and value < 0:
            where = _FIELDS.get(key, f"datum_set_spec.{key}")
            raise SpecError(f"must not be negative, got {value}", field=where)


def set_size(
    total: int,
    *,
    number: int = 0,
    per_worker: int = 0,
    parallelism: int = 1,
    max_sets: int | None = None,
) -> int:
    """Datums per set for ``total`` datums to process (``size_bytes`` is handled by cutting)."""
    _check(number=number, per_worker=per_worker, parallelism=parallelism, max_sets=max_sets)
    if number:
        size = number
    else:
        workers = max(parallelism, 1)
        size = max(1, total // (workers * (per_worker or DEFAULT_PER_WORKER)))
    if max_sets and total and math.ceil(total / size) > max_sets:
        size = math.ceil(total / max_sets)
    return size


class SetCutter:
    """Assigns datums, one at a time in order, to sets: :func:`cut_sets` without holding any.

    ``place(size)`` returns the set number of the next datum (``size``: its input bytes).
    """

    def __init__(
        self,
        *,
        total: int,
        number: int = 0,
        size_bytes: int = 0,
        per_worker: int = 0,
        parallelism: int = 1,
        max_sets: int | None = None,
    ) -> None:
        _check(
            number=number,
            size_bytes=size_bytes,
            per_worker=per_worker,
            parallelism=parallelism,
            max_sets=max_sets,
        )
        self._by_size = bool(size_bytes and not number)
        self._size_bytes = size_bytes
        self._floor = math.ceil(total / max_sets) if max_sets and total else 1
        self._size = (
            0
            if self._by_size
            else set_size(
                total,
                number=number,
                per_worker=per_worker,
                parallelism=parallelism,
                max_sets=max_sets,
            )
        )
        self._set = 0
        self._count = 0
        self._running = 0

    def place(self, size: int) -> int:
        if self._by_size:
            if self._running >= self._size_bytes and self._count >= self._floor:
                self._set += 1
                self._count = self._running = 0
            self._running += size
        elif self._count >= self._size:
            self._set += 1
            self._count = 0
        self._count += 1
        return self._set


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
    """Group datums (to process) into sets, streaming (see :class:`SetCutter`)."""
    cutter = SetCutter(
        total=total,
        number=number,
        size_bytes=size_bytes,
        per_worker=per_worker,
        parallelism=parallelism,
        max_sets=max_sets,
    )
    current: list[T] = []
    at = 0
    for datum in datums:
        n = cutter.place(datum.size)
        if n != at and current:
            yield current
            current = []
        at = n
        current.append(datum)
    if current:
        yield current
