"""Read a datum set's inputs ahead, a window at a time, with coalesced ranged reads.

On a store that packs small files (object storage), the inputs of neighbouring datums usually
sit side by side in a few packs. Instead of one GET per input when each datum is laid out,
:func:`prefetch_inputs` reads a window of datums' inputs with one ranged GET per coalesced
range of a pack (several in flight) into the store's small blob cache, then hands the datums
on; laying a datum out (``scratch.lay_out``) then reads its inputs from the cache. On a local
folder nothing is read ahead: inputs are hard links to the blob files.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator

from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.store.packs import BlobRef
from airflow_datum_provider.core.store.store import Store

__all__ = ["prefetch_inputs"]

WINDOW_BYTES = 32 << 20  # half the store's blob cache: a window stays cached while it runs
WINDOW_DATUMS = 4096


def prefetch_inputs(
    store: Store,
    datums: Iterable[Datum],
    *,
    skip: Container[str] = (),
    window_bytes: int = WINDOW_BYTES,
    window_datums: int = WINDOW_DATUMS,
) -> Iterator[Datum]:
    """``datums``, in order, each yielded once the inputs of its window are prefetched.

    Datums whose id is in ``skip`` (already done) are passed on without reading anything.
    """
    if not store.pack_below:
        yield from datums
        return
    window: list[Datum] = []
    size = 0
    for datum in datums:
        window.append(datum)
        if datum.id not in skip:
            size += datum.size
        if size >= window_bytes or len(window) >= window_datums:
            _fetch(store, window, skip)
            yield from window
            window, size = [], 0
    _fetch(store, window, skip)
    yield from window


def _fetch(store: Store, window: list[Datum], skip: Container[str]) -> None:
    refs: list[BlobRef] = []
    for datum in window:
        if datum.id in skip:
            continue
        for inp in datum.inputs:
            if inp.empty_files or inp.lazy:
                continue
            if inp.is_dir:
                refs.extend(
                    BlobRef(e.hash, e.size, e.loc)
                    for e in store.walk(inp.repo, inp.commit, inp.path)
                )
            elif inp.hash:
                loc = store.locate(inp.repo, inp.commit, inp.path, inp.hash)
                refs.append(BlobRef(inp.hash, inp.size, loc))
    if refs:
        store.prefetch(refs)
