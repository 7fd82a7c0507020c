"""Planning: an input spec plus pinned commits become a deterministic stream of datums.

* **pfs**: the glob runs over the commit's listing, directories included (``/d/`` datums carry
  their subtree); datums come in path order. With ``rows_per_datum: N`` (this provider's
  extension) each matched table file becomes one datum per ``N`` rows, in row order
  (:mod:`airflow_datum_provider.batch.rows`).
* **cross**: nested loop, first child outermost. The first child streams; the others are held
  (their datums, not the product), so a 1,000 x 1,000 cross never holds a million datums.
* **union**: the children's datums in child order. A datum produced identically by two branches
  (same id) is emitted once, as Pachyderm's job path keys datums by id.
* **join**: every input entry is keyed by its own ``join_on``; per key, the product of the
  children that have it; when some child lacks the key only ``outer_join`` children's entries
  form the datum (none: no datum). Keys come out in sorted order.
* **group**: every input entry is keyed by its ``group_by``; all entries sharing a key, across
  all children, form one datum. Keys come out in sorted order.

Children of cross / union / join / group are already sorted by input name by the spec.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar, assert_never

from airflow_datum_provider.core.datum import Datum, DatumInput, dir_hasher
from airflow_datum_provider.core.errors import JobKilled
from airflow_datum_provider.core.glob import Glob, compile_glob, expand_template
from airflow_datum_provider.core.listing import listing_prefix
from airflow_datum_provider.core.spec import (
    CronInput,
    CrossInput,
    GroupInput,
    Input,
    JoinInput,
    PFSInput,
    UnionInput,
)
from airflow_datum_provider.core.store import Entry, Store

__all__ = [
    "PLAN_TIMEOUT_REASON",
    "Pins",
    "Planner",
    "count_datums",
    "list_datums",
    "pin_inputs",
    "pfs_leaves",
]

Pins = Mapping[tuple[str, str], "str | None"]
"""(repo, branch) -> pinned commit id (``None``: the branch has no commit yet)."""


class _Member(NamedTuple):
    """An input entry with the join / group flags it needs inside combinators."""

    input: DatumInput
    outer: bool


def pfs_leaves(spec: Input, pipeline: str = "") -> Iterator[PFSInput]:
    """Every pfs leaf of an input tree in order; a cron input counts as its pfs equivalent."""
    match spec:
        case PFSInput():
            yield spec
        case CronInput():
            yield _cron_as_pfs(spec, pipeline)
        case CrossInput() | UnionInput() | JoinInput() | GroupInput():
            for child in spec.inputs:
                yield from pfs_leaves(child, pipeline)
        case _:
            assert_never(spec)


def _cron_as_pfs(spec: CronInput, pipeline: str) -> PFSInput:
    repo = f"{pipeline}_{spec.name}" if pipeline else spec.name
    return PFSInput(repo=repo, branch="master", glob="/*", name=spec.name)


def pin_inputs(store: Store, spec: Input, pipeline: str = "") -> dict[tuple[str, str], str | None]:
    """Pin every input branch to its current head (the job's provenance)."""
    pins: dict[tuple[str, str], str | None] = {}
    for leaf in pfs_leaves(spec, pipeline):
        key = (leaf.repo, leaf.branch)
        if key not in pins:
            pins[key] = store.branch_head(leaf.repo, leaf.branch)
    return pins


class Planner:
    """Streams the datums of one input tree over one set of pinned commits."""

    def __init__(
        self,
        store: Store,
        spec: Input,
        pins: Pins | None = None,
        *,
        salt: str = "",
        pipeline: str = "",
        deadline: float | None = None,
    ) -> None:
        self.store = store
        self.spec = spec
        self.pipeline = pipeline
        self.pins = dict(pins) if pins is not None else pin_inputs(store, spec, pipeline)
        self.salt = salt
        self.deadline = deadline

    def __iter__(self) -> Iterator[Datum]:
        return self.datums()

    def datums(self) -> Iterator[Datum]:
        """The datums in order; past ``deadline`` (``time.monotonic``) raises :class:`JobKilled`."""
        if self.deadline is None:
            return self._datums()
        return _until(self._datums(), self.deadline)

    def _datums(self) -> Iterator[Datum]:
        salt = self.salt
        of = Datum.of
        spec = self.spec
        if isinstance(spec, PFSInput | CronInput):
            # The common case, without the per-datum member tuples combinators need.
            leaf, field = (
                (spec, "input.pfs")
                if isinstance(spec, PFSInput)
                else (_cron_as_pfs(spec, self.pipeline), "input.cron")
            )
            for inp in self._pfs_inputs(leaf, field):
                yield of((inp,), salt)
            return
        for members in self._node(spec, "input"):
            inputs = tuple(m.input for m in members)
            yield Datum.of(inputs, salt)

    # Each node yields datums as tuples of members; combinators re-combine members.

    def _node(self, spec: Input, field: str) -> Iterator[tuple[_Member, ...]]:
        match spec:
            case PFSInput():
                return ((m,) for m in self._pfs(spec, field + ".pfs"))
            case CronInput():
                cron_leaf = _cron_as_pfs(spec, self.pipeline)
                return ((m,) for m in self._pfs(cron_leaf, field + ".cron"))
            case CrossInput():
                return self._cross(spec, field + ".cross")
            case UnionInput():
                return self._union(spec, field + ".union")
            case JoinInput():
                return self._join(spec, field + ".join")
            case GroupInput():
                return self._group(spec, field + ".group")
            case _:
                assert_never(spec)

    def _cross(self, spec: CrossInput, field: str) -> Iterator[tuple[_Member, ...]]:
        children = spec.inputs
        if not children:
            return
        rest = [list(self._node(c, f"{field}[{i}]")) for i, c in enumerate(children[1:], 1)]
        if any(not r for r in rest):
            return
        for first in self._node(children[0], f"{field}[0]"):
            for combo in itertools.product(*rest):
                yield first + tuple(itertools.chain.from_iterable(combo))

    def _union(self, spec: UnionInput, field: str) -> Iterator[tuple[_Member, ...]]:
        names = [set(_names(c)) for c in spec.inputs]
        overlap = any(a & b for a, b in itertools.combinations(names, 2))
        seen: set[tuple[tuple[str, str, str, str], ...]] = set()
        for i, child in enumerate(spec.inputs):
            for members in self._node(child, f"{field}[{i}]"):
                if overlap:
                    key = tuple(
                        (m.input.name, m.input.repo, m.input.branch, m.input.id_path)
                        for m in members
                    )
                    if key in seen:
                        continue
                    seen.add(key)
                yield members

    def _keyed(
        self, spec: JoinInput | GroupInput, field: str, attr: str
    ) -> list[dict[str, list[_Member]]]:
        """Per child: key -> distinct members (flattened per input entry), in first-seen order."""
        keyed: list[dict[str, list[_Member]]] = []
        for i, child in enumerate(spec.inputs):
            by_key: dict[str, dict[DatumInput, _Member]] = {}
            for members in self._node(child, f"{field}[{i}]"):
                for m in members:
                    by_key.setdefault(getattr(m.input, attr), {}).setdefault(m.input, m)
            keyed.append({k: list(v.values()) for k, v in by_key.items()})
        return keyed

    def _join(self, spec: JoinInput, field: str) -> Iterator[tuple[_Member, ...]]:
        keyed = self._keyed(spec, field, "join_on")
        outer = [any(leaf.outer_join for leaf in pfs_leaves(c, self.pipeline)) for c in spec.inputs]
        keys = sorted(set().union(*keyed)) if keyed else []
        for key in keys:
            present = [k.get(key) for k in keyed]
            if all(p is not None for p in present):
                lists = [p for p in present if p is not None]
            else:
                lists = [p for p, o in zip(present, outer) if p is not None and o]
                if not lists:
                    continue
            for combo in itertools.product(*lists):
                yield tuple(combo)

    def _group(self, spec: GroupInput, field: str) -> Iterator[tuple[_Member, ...]]:
        keyed = self._keyed(spec, field, "group_by")
        keys = sorted(set().union(*keyed)) if keyed else []
        for key in keys:
            yield tuple(itertools.chain.from_iterable(k.get(key, ()) for k in keyed))

    def _pfs(self, spec: PFSInput, field: str) -> Iterator[_Member]:
        outer = spec.outer_join
        for inp in self._pfs_inputs(spec, field):
            yield _Member(inp, outer)

    def _pfs_inputs(self, spec: PFSInput, field: str) -> Iterator[DatumInput]:
        glob = compile_glob(spec.glob, field=field + ".glob")
        key = (spec.repo, spec.branch)
        if key not in self.pins:
            self.pins[key] = self.store.branch_head(spec.repo, spec.branch)
        commit = self.pins[key]
        if commit is None:
            return
        prefix = listing_prefix(glob.prefix)
        entries: Iterable[Entry] = self.store.manifest(spec.repo, commit).entries(
            self.store.backend, prefix
        )
        if self.deadline is not None:
            entries = _until(entries, self.deadline)
        name = spec.name or spec.repo
        join_on, group_by = spec.join_on, spec.group_by
        repo, branch = spec.repo, spec.branch
        reference, lazy, empty = spec.reference, spec.lazy, spec.empty_files
        rows_per_datum = spec.rows_per_datum
        for path, size, digest, caps in iter_matches(entries, glob, prefix):
            jk = expand_template(join_on, caps) if join_on else ""
            gk = expand_template(group_by, caps) if group_by else ""
            if rows_per_datum:
                from airflow_datum_provider.batch.rows import table_row_ranges

                ranges = table_row_ranges(
                    self.store,
                    repo,
                    commit,
                    path,
                    digest,
                    rows_per_datum,
                    field=field + ".rows_per_datum",
                )
                for rows in ranges:
                    yield DatumInput(
                        name,
                        repo,
                        branch,
                        commit,
                        path,
                        digest,
                        size,
                        jk,
                        gk,
                        reference,
                        lazy,
                        empty,
                        rows,
                    )
                continue
            yield DatumInput(
                name, repo, branch, commit, path, digest, size, jk, gk, reference, lazy, empty
            )


PLAN_TIMEOUT_REASON = "job timed out while planning"

_T = TypeVar("_T")


def _until(items: Iterable[_T], deadline: float, every: int = 256) -> Iterator[_T]:
    """``items``, checking every ``every`` items that ``deadline`` has not passed."""
    for n, item in enumerate(items):
        if not n % every and time.monotonic() >= deadline:
            raise JobKilled(PLAN_TIMEOUT_REASON)
        yield item


def _names(spec: Input) -> Iterator[str]:
    for leaf in pfs_leaves(spec):
        yield leaf.name or leaf.repo


class _Open:
    __slots__ = ("path", "hasher", "size", "index")

    def __init__(self, path: str, index: int) -> None:
        self.path = path
        self.hasher = dir_hasher()
        self.size = 0
        self.index = index


def iter_matches(
    entries: Iterable[Entry], glob: Glob, prefix: str = "/"
) -> Iterator[tuple[str, int, str, tuple[str, ...]]]:
    """Listing entries (files and directories) matching ``glob``: (path, size, hash, captures).

    Directory matches get their size and hash once their subtree has been read; matches inside
    an open matched directory are held back so the output stays in path order.
    """
    pending: list[Any] = []  # [path, size, hash, caps] rows awaiting an open directory
    open_dirs: list[str] = []  # every open directory, outermost first
    hashing: list[_Open] = []  # matched directories still collecting their subtree
    match = glob.matcher.match
    root_only = glob.pattern == "/"
    first = True

    def close_to(path: str) -> Iterator[tuple[str, int, str, tuple[str, ...]]]:
        while open_dirs and not path.startswith(open_dirs[-1]):
            closed = open_dirs.pop()
            if hashing and hashing[-1].path == closed:
                done = hashing.pop()
                row = pending[done.index]
                row[1], row[2] = done.size, done.hasher.hexdigest()
        if not hashing and pending:
            for row in pending:
                yield (row[0], row[1], row[2], row[3])
            pending.clear()

    for entry in entries:
        path = entry.path
        if first:
            first = False
            if prefix == "/":
                open_dirs.append("/")
                if root_only:
                    hashing.append(_Open("/", 0))
                    pending.append(["/", 0, "", ("/",)])
        if open_dirs and not path.startswith(open_dirs[-1]):
            # Only closing a directory can complete a held-back match (see close_to).
            yield from close_to(path)
        start = len(open_dirs[-1]) if open_dirs else len(prefix)
        slash = path.find("/", start)
        while slash >= 0:
            directory = path[: slash + 1]
            open_dirs.append(directory)
            if not root_only:
                m = match(directory[:-1])
                if m is not None:
                    caps = (m.group(0), *(g or "" for g in m.groups()))
                    hashing.append(_Open(directory, len(pending)))
                    pending.append([directory, 0, "", caps])
            slash = path.find("/", slash + 1)
        for h in hashing:
            h.size += entry.size
            h.hasher.update(f"{path[len(h.path) :]}\0{entry.hash}\n".encode())
        if not root_only:
            m = match(path)
            if m is not None:
                caps = (m.group(0), *(g or "" for g in m.groups()))
                if hashing:
                    pending.append([path, entry.size, entry.hash, caps])
                else:
                    yield path, entry.size, entry.hash, caps
    yield from close_to("\0")


def list_datums(
    store: Store,
    input_spec: Input,
    pinned_commits: Pins | None = None,
    *,
    salt: str = "",
    pipeline: str = "",
    deadline: float | None = None,
) -> Iterator[Datum]:
    """Stream the datums of ``input_spec``; inputs pinned to branch heads unless given."""
    return Planner(
        store, input_spec, pinned_commits, salt=salt, pipeline=pipeline, deadline=deadline
    ).datums()


def count_datums(datums: Iterable[Datum]) -> int:
    return sum(1 for _ in datums)


def describe(datum: Datum) -> str:
    """``repo@commit:path, ...`` as ``pachctl list datum`` prints FILES (``[a:b]``: rows)."""
    return ", ".join(
        f"{i.repo}@{i.commit}:{i.path}" + ("" if i.rows is None else f"[{i.rows[0]}:{i.rows[1]}]")
        for i in datum.inputs
    )
