"""Pachyderm pipeline specs as frozen values: parse, validate, and round-trip to Pachyderm JSON.

Inputs form a closed algebra, ``Input = PFSInput | CronInput | CrossInput | UnionInput |
JoinInput | GroupInput``, built with :func:`pfs`, :func:`cron`, :func:`cross`, :func:`union`,
:func:`join` and :func:`group`, or parsed from Pachyderm's JSON / YAML with :func:`parse_spec`,
:func:`parse_input` and :func:`parse_spec_or_input`.

Defaults and normalisation follow Pachyderm's ``setInputDefaults`` / ``setPipelineDefaults``:
``branch`` is ``master``, ``name`` is the repo name, the glob is cleaned, children of
cross/union/join/group are sorted by input name (``pps.SortInput``: the first pfs/cron name found
depth-first; the sort is stable), ``parallelism_spec.constant`` 0 means 1.

Parsing follows ``pachctl``: every field may be spelled in snake_case or protojson camelCase
(``join_on`` / ``joinOn``; :data:`FIELDS`, :func:`camel`), giving both spellings of one field
is an error naming both, and :meth:`PipelineSpec.to_dict` writes the canonical snake_case.
protojson values are accepted: int64 fields as strings (``"constant": "2"``), durations as
strings. :func:`parse_specs` reads a file of several pipelines (YAML ``---`` stream, a JSON list,
concatenated JSON objects). Text is loaded with bounds (``core/_documents.py``): duplicate keys,
nesting past 100 levels and YAML alias bombs are one-line errors, and no error formats an
unbounded value.

Decisions where Pachyderm is silent or quirky:

* A combinator needs at least one child (``input.cross: needs at least one input``).
* ``join_on`` / ``outer_join`` are only allowed on a pfs input with a join above it (directly or
  through other combinators), ``group_by`` only with a group above it.
* Input names (and repo and branch names) match ``[A-Za-z0-9_-]+``; input names are unique across
  the tree except between union branches (``validateNames``); ``out`` and ``.env`` are reserved.
* ``datum_set_spec`` is ``None`` when absent (Pachyderm's default: ``per_worker`` 4). A given
  spec with all three values 0 is an error (Pachyderm would divide by zero), and so is
  ``per_worker`` together with ``number`` or ``size_bytes`` (Pachyderm's docs forbid it).
* ``datum_tries`` 0 (or absent) means the default, 3, as in Pachyderm; below 0 is an error.
* Durations (``datum_timeout``, ``job_timeout``, ``cron`` ``@every``) accept Go/protobuf strings
  (``30s``, ``1.5s``, ``1h30m``, ``250ms``) or a number of seconds; they must be positive and at
  most Go's longest duration (about 292 years), and are emitted as protobuf JSON seconds
  (``"90s"``, ``"0.25s"``).
* ``resource_requests`` / ``resource_limits`` are kept opaque as canonical JSON text (sorted
  keys) and emitted as objects; ``pod_spec`` / ``pod_patch`` are JSON text as in Pachyderm's
  proto (an object given in YAML is serialised).
* ``env`` values may be YAML numbers; they are stored as strings (Pachyderm's env is
  ``map<string,string>``).
* A key whose value is ``null`` counts as absent (YAML's ``key:`` with nothing after it).
* ``project`` (``pipeline.project``, ``input.pfs.project``, ``input.cron.project``): only the
  default project exists here; ``default`` (or nothing) is accepted, any other is an error.
* Fields that change what user code sees or does are refused with one line saying what to do
  instead (``service``, ``spout``, ``s3_out``, ``egress``, ``tf_job``, ``determined``,
  ``input.pfs.s3``, ``input.pfs.trigger``, ``transform.build``); ``input.pfs.repo_type`` may only
  be ``user``. Pachyderm fields that only tune Pachyderm's own machinery (``autoscaling``,
  ``standby``, ``metadata``, …) emit :class:`UnsupportedFieldWarning` and are dropped, unless
  their value is ``false``, ``0``, ``""`` or ``[]`` (defaults ``pachctl`` writes out).
  ``pfs.commit`` is an error, as in Pachyderm. Anything else unknown is an error listing what is
  allowed.
* ``transform.python`` (``"package.module:function"``) is this provider's extension: the datum
  runs a Python callable in the worker instead of ``cmd``. Exactly one of ``cmd`` / ``python``.
* ``input.pfs.rows_per_datum`` (a positive integer) is this provider's extension too: every
  table file the glob matches becomes one datum per ``rows_per_datum`` rows (``docs/batch.md``).
  At most one input of a tree may set it (user code sees one ``DATUM_ROW_START`` / ``_END``).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from os import PathLike
from pathlib import Path
from typing import Any, Literal, TypeAlias, assert_never, cast

from airflow_datum_provider.core._documents import check_bounds, load_documents, show
from airflow_datum_provider.core.errors import SpecError
from airflow_datum_provider.core.glob import compile_glob

__all__ = [
    "CronInput",
    "CrossInput",
    "DatumSetSpec",
    "GroupInput",
    "Input",
    "JoinInput",
    "PFSInput",
    "PipelineSpec",
    "ReprocessSpec",
    "Secret",
    "Transform",
    "UnionInput",
    "UnsupportedFieldWarning",
    "cron",
    "cross",
    "FIELDS",
    "format_duration",
    "group",
    "in_spec_file",
    "input_name",
    "input_to_dict",
    "iter_leaves",
    "iter_pfs_inputs",
    "join",
    "camel",
    "load_spec",
    "load_specs",
    "parse_duration",
    "parse_input",
    "parse_spec",
    "parse_spec_or_input",
    "parse_specs",
    "read_spec_file",
    "pfs",
    "union",
    "validate_input",
]


class UnsupportedFieldWarning(UserWarning):
    """A Pachyderm spec field that this provider accepts but ignores."""


ReprocessSpec: TypeAlias = Literal["until_success", "every_job"]

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_PYTHON_TARGET = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_RESERVED_NAMES = ("out", ".env")
_MAX_PIPELINE_NAME = 63

# The path of the node being built, so leaf validation can name ``input.cross[1].pfs.glob``.
_PATH: ContextVar[str] = ContextVar("_PATH", default="")


def camel(key: str) -> str:
    """Protobuf's JSON name of a field: ``join_on`` → ``joinOn``, ``s3_out`` → ``s3Out``."""
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _cut(value: object, limit: int = 80) -> str:
    """``value`` as text, cut to ``limit`` characters for an error message."""
    text = str(value) if isinstance(value, str) else show(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _at(*parts: str) -> str:
    return ".".join(p for p in (_PATH.get(), *parts) if p)


@contextmanager
def _building_at(path: str) -> Iterator[None]:
    token = _PATH.set(path)
    try:
        yield
    finally:
        _PATH.reset(token)


def _check_name(value: str, what: str, field_: str) -> None:
    if not _NAME.fullmatch(value):
        raise SpecError(
            f"`{_cut(value)}` is not a valid {what}: use letters, digits, `_` and `-`", field=field_
        )


# --- durations --------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_MICROS = {
    "ns": Decimal("0.001"),
    "us": Decimal(1),
    "µs": Decimal(1),
    "μs": Decimal(1),
    "ms": Decimal(1000),
    "s": Decimal(1_000_000),
    "m": Decimal(60_000_000),
    "h": Decimal(3_600_000_000),
}


def parse_duration(value: object, field: str = "") -> timedelta:
    """Parse a positive Pachyderm duration: ``"30s"``, ``"1h30m"``, ``"250ms"``, or seconds."""
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise SpecError(f"`{_cut(value)}` is not a duration", field=field)
        if abs(value) > _MAX_DURATION.total_seconds():
            raise _too_long(value, field)
        result = timedelta(seconds=value)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 100:
            raise SpecError(f"{show(value)} is not a duration", field=field)
        parts = _DURATION_PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise SpecError(
                f"`{_cut(value)}` is not a duration; use e.g. 30s, 1.5s, 1m, 1h30m, 250ms",
                field=field,
            )
        try:
            micros = sum((Decimal(n) * _UNIT_MICROS[u] for n, u in parts), Decimal(0))
        except InvalidOperation:  # pragma: no cover - the regex admits only decimals
            raise SpecError(f"`{_cut(value)}` is not a duration", field=field) from None
        if micros > _MAX_DURATION_MICROS:
            raise _too_long(value, field)
        result = timedelta(microseconds=int(micros.to_integral_value()))
    else:
        raise SpecError(f"expected a duration string or seconds, got {show(value)}", field=field)
    if result <= timedelta(0):
        raise SpecError(f"`{_cut(value)}` must be a positive duration", field=field)
    if result > _MAX_DURATION:
        raise _too_long(value, field)
    return result


# Go's time.Duration (what Pachyderm parses into) holds at most 2^63-1 ns, about 292 years.
_MAX_DURATION_MICROS = Decimal(2**63 - 1) / 1000
_MAX_DURATION = timedelta(microseconds=int(_MAX_DURATION_MICROS))


def _too_long(value: object, field: str) -> SpecError:
    return SpecError(
        f"`{show(value) if not isinstance(value, str) else value.strip()}` is longer than the "
        "longest duration allowed (2562047h47m16s, about 292 years)",
        field=field,
    )


def format_duration(value: timedelta) -> str:
    """Protobuf-JSON duration text: whole or fractional seconds, e.g. ``"90s"``, ``"0.25s"``."""
    micros = value // timedelta(microseconds=1)
    seconds, fraction = divmod(micros, 1_000_000)
    if not fraction:
        return f"{seconds}s"
    return f"{seconds}.{fraction:06d}".rstrip("0") + "s"


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PFSInput:
    """Datums from a glob over one branch of one repo; ``name`` defaults to the repo name.

    ``glob`` is stored cleaned (``*`` → ``/*``). ``join_on`` / ``outer_join`` matter under a
    join, ``group_by`` under a group; both are ``$n`` templates over the glob's captures.
    """

    repo: str
    glob: str
    branch: str = "master"
    name: str = ""
    lazy: bool = False
    empty_files: bool = False
    reference: bool = False
    join_on: str = ""
    outer_join: bool = False
    group_by: str = ""
    rows_per_datum: int = 0

    def __post_init__(self) -> None:
        if not self.repo:
            raise SpecError("required", field=_at("pfs", "repo"))
        rows = self.rows_per_datum
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise SpecError(
                f"must be a positive integer (rows per datum), got {show(rows)}",
                field=_at("pfs", "rows_per_datum"),
            )
        if rows and (self.empty_files or self.reference):
            other = "empty_files" if self.empty_files else "reference"
            why = (
                "zero-byte placeholders have no rows to read"
                if self.empty_files
                else "a reference input's content does not count in the datum hash, but its row "
                "ranges come from that content"
            )
            raise SpecError(
                f"cannot be used with {other}: {why}", field=_at("pfs", "rows_per_datum")
            )
        _check_name(self.repo, "repo name", _at("pfs", "repo"))
        _check_name(self.branch, "branch name", _at("pfs", "branch"))
        if not self.name:
            object.__setattr__(self, "name", self.repo)
        if self.name in _RESERVED_NAMES:
            hint = (
                " (a repo with that name needs an explicit `name`)"
                if self.name == self.repo
                else ""
            )
            raise SpecError(
                f"`{_cut(self.name)}` is a reserved input name{hint}", field=_at("pfs", "name")
            )
        _check_name(self.name, "input name", _at("pfs", "name"))
        if not self.glob:
            raise SpecError("required", field=_at("pfs", "glob"))
        object.__setattr__(self, "glob", compile_glob(self.glob, _at("pfs", "glob")).pattern)

    def to_dict(self) -> dict[str, Any]:
        """Pachyderm's JSON shape: ``{"pfs": {...}}``."""
        body: dict[str, Any] = {
            "name": self.name,
            "repo": self.repo,
            "branch": self.branch,
            "glob": self.glob,
        }
        for key in (
            "join_on",
            "outer_join",
            "group_by",
            "lazy",
            "empty_files",
            "reference",
            "rows_per_datum",
        ):
            value = getattr(self, key)
            if value:
                body[key] = value
        return {"pfs": body}


_CRON_DESCRIPTORS = frozenset(
    ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CronInput:
    """A tick input: each tick is a file in repo ``<pipeline>_<name>`` (glob ``/*``).

    ``spec`` is a 5- or 6-field cron line, a descriptor (``@daily``) or ``@every <duration>``.
    ``overwrite`` keeps only the latest tick. A naive ``start`` is taken as UTC.
    """

    name: str
    spec: str
    overwrite: bool = False
    start: datetime | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise SpecError("required", field=_at("cron", "name"))
        if self.name in _RESERVED_NAMES:
            raise SpecError(
                f"`{_cut(self.name)}` is a reserved input name", field=_at("cron", "name")
            )
        _check_name(self.name, "input name", _at("cron", "name"))
        _check_cron(self.spec, _at("cron", "spec"))
        if self.start is not None and self.start.tzinfo is None:
            object.__setattr__(self, "start", self.start.replace(tzinfo=UTC))

    def to_dict(self) -> dict[str, Any]:
        """Pachyderm's JSON shape: ``{"cron": {...}}``."""
        body: dict[str, Any] = {"name": self.name, "spec": self.spec}
        if self.overwrite:
            body["overwrite"] = True
        if self.start is not None:
            body["start"] = _format_timestamp(self.start)
        return {"cron": body}


def _check_cron(spec: str, field_: str) -> None:
    spec = spec.strip()
    if not spec:
        raise SpecError("required", field=field_)
    if spec.startswith("@every "):
        parse_duration(spec[len("@every ") :], field_)
    elif spec.startswith("@"):
        if spec not in _CRON_DESCRIPTORS:
            allowed = ", ".join(sorted(_CRON_DESCRIPTORS))
            raise SpecError(
                f"`{_cut(spec)}` is not a cron descriptor; allowed: {allowed}, @every <duration>",
                field=field_,
            )
    elif len(spec.split()) not in (5, 6):
        raise SpecError(f"`{_cut(spec)}` is not a cron spec: expected 5 or 6 fields", field=field_)


def _format_timestamp(value: datetime) -> str:
    text = value.isoformat()
    return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text


def _sorted_children(inputs: Sequence[Input], kind: str) -> tuple[Input, ...]:
    children = tuple(inputs)
    if not children:
        raise SpecError("needs at least one input", field=_at(kind))
    for i, child in enumerate(children):
        if not isinstance(child, _INPUT_TYPES):
            raise SpecError(f"expected an input, got {show(child)}", field=_at(f"{kind}[{i}]"))
    return tuple(sorted(children, key=input_name))


@dataclass(frozen=True, slots=True, kw_only=True)
class CrossInput:
    """Cartesian product of the children's datums; children are sorted by input name."""

    inputs: tuple[Input, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _sorted_children(self.inputs, "cross"))

    def to_dict(self) -> dict[str, Any]:
        """Pachyderm's JSON shape: ``{"cross": [...]}``."""
        return {"cross": [child.to_dict() for child in self.inputs]}


@dataclass(frozen=True, slots=True, kw_only=True)
class UnionInput:
    """Concatenation of the children's datums; branches may share input names."""

    inputs: tuple[Input, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _sorted_children(self.inputs, "union"))

    def to_dict(self) -> dict[str, Any]:
        """Pachyderm's JSON shape: ``{"union": [...]}``."""
        return {"union": [child.to_dict() for child in self.inputs]}


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinInput:
    """Per ``join_on`` key, the product of the children having it (plus ``outer_join`` rules)."""

    inputs: tuple[Input, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _sorted_children(self.inputs, "join"))

    def to_dict(self) -> dict[str, Any]:
        """Pachyderm's JSON shape: ``{"join": [...]}``."""
        return {"join": [child.to_dict() for child in self.inputs]}


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupInput:
    """Per ``group_by`` key, one datum holding every matching file of every child."""

    inputs: tuple[Input, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _sorted_children(self.inputs, "group"))

    def to_dict(self) -> dict[str, Any]:
        """Pachyderm's JSON shape: ``{"group": [...]}``."""
        return {"group": [child.to_dict() for child in self.inputs]}


Input: TypeAlias = PFSInput | CronInput | CrossInput | UnionInput | JoinInput | GroupInput
_INPUT_TYPES = (PFSInput, CronInput, CrossInput, UnionInput, JoinInput, GroupInput)
_COMBINATORS: dict[str, type[CrossInput | UnionInput | JoinInput | GroupInput]] = {
    "cross": CrossInput,
    "union": UnionInput,
    "join": JoinInput,
    "group": GroupInput,
}


def _kind(node: Input) -> str:
    """The JSON key of a node: ``pfs``, ``cron``, ``cross``, ``union``, ``join`` or ``group``."""
    match node:
        case PFSInput():
            return "pfs"
        case CronInput():
            return "cron"
        case CrossInput():
            return "cross"
        case UnionInput():
            return "union"
        case JoinInput():
            return "join"
        case GroupInput():
            return "group"
        case _:
            assert_never(node)


def input_name(node: Input) -> str:
    """Pachyderm's ``InputName``: a leaf's name, else the first child's (depth-first)."""
    match node:
        case PFSInput() | CronInput():
            return node.name
        case CrossInput() | UnionInput() | JoinInput() | GroupInput():
            return input_name(node.inputs[0]) if node.inputs else ""
        case _:
            assert_never(node)


def iter_leaves(node: Input) -> Iterator[PFSInput | CronInput]:
    """The pfs and cron leaves, depth-first in child order."""
    match node:
        case PFSInput() | CronInput():
            yield node
        case CrossInput() | UnionInput() | JoinInput() | GroupInput():
            for child in node.inputs:
                yield from iter_leaves(child)
        case _:
            assert_never(node)


def iter_pfs_inputs(node: Input) -> Iterator[PFSInput]:
    """The pfs leaves, depth-first in child order."""
    for leaf in iter_leaves(node):
        if isinstance(leaf, PFSInput):
            yield leaf


def pfs(
    repo: str,
    glob: str,
    *,
    branch: str = "master",
    name: str = "",
    lazy: bool = False,
    empty_files: bool = False,
    reference: bool = False,
    join_on: str = "",
    outer_join: bool = False,
    group_by: str = "",
    rows_per_datum: int = 0,
) -> PFSInput:
    """Build a :class:`PFSInput` (``rows_per_datum``: this provider's row-range extension)."""
    return PFSInput(
        repo=repo,
        glob=glob,
        branch=branch,
        name=name,
        lazy=lazy,
        empty_files=empty_files,
        reference=reference,
        join_on=join_on,
        outer_join=outer_join,
        group_by=group_by,
        rows_per_datum=rows_per_datum,
    )


def cron(
    name: str, spec: str, *, overwrite: bool = False, start: datetime | None = None
) -> CronInput:
    """Build a :class:`CronInput`."""
    return CronInput(name=name, spec=spec, overwrite=overwrite, start=start)


def cross(*inputs: Input) -> CrossInput:
    """Build a :class:`CrossInput` (children sorted by name)."""
    return CrossInput(inputs=inputs)


def union(*inputs: Input) -> UnionInput:
    """Build a :class:`UnionInput` (children sorted by name)."""
    return UnionInput(inputs=inputs)


def join(*inputs: Input) -> JoinInput:
    """Build a :class:`JoinInput` (children sorted by name)."""
    return JoinInput(inputs=inputs)


def group(*inputs: Input) -> GroupInput:
    """Build a :class:`GroupInput` (children sorted by name)."""
    return GroupInput(inputs=inputs)


def validate_input(node: Input, field: str = "input") -> None:
    """Whole-tree checks a single node cannot make: name uniqueness and key placement.

    Names must be unique except between union branches (Pachyderm's ``validateNames``: each
    branch starts from the names seen so far, and all branches' names count afterwards).
    """
    _check_tree(node, field, set(), in_join=False, in_group=False)
    ranged = [leaf.name for leaf in iter_pfs_inputs(node) if leaf.rows_per_datum]
    if len(ranged) > 1:
        raise SpecError(
            f"set on inputs {', '.join(ranged)}; at most one input may split its tables into "
            "row ranges",
            field=f"{field}.rows_per_datum" if field else "rows_per_datum",
        )


def _check_tree(node: Input, path: str, names: set[str], *, in_join: bool, in_group: bool) -> None:
    here = ".".join(p for p in (path, _kind(node)) if p)
    match node:
        case PFSInput() | CronInput():
            if node.name in names:
                raise SpecError(
                    f"input name `{_cut(node.name)}` is used more than once", field=f"{here}.name"
                )
            names.add(node.name)
            if isinstance(node, PFSInput):
                if node.join_on and not in_join:
                    raise SpecError("only allowed under a join input", field=f"{here}.join_on")
                if node.outer_join and not in_join:
                    raise SpecError("only allowed under a join input", field=f"{here}.outer_join")
                if node.group_by and not in_group:
                    raise SpecError("only allowed under a group input", field=f"{here}.group_by")
        case UnionInput():
            seen_in_branches: set[str] = set()
            for i, child in enumerate(node.inputs):
                branch_names = set(names)
                _check_tree(child, f"{here}[{i}]", branch_names, in_join=in_join, in_group=in_group)
                seen_in_branches |= branch_names
            names |= seen_in_branches
        case CrossInput() | JoinInput() | GroupInput():
            in_join = in_join or isinstance(node, JoinInput)
            in_group = in_group or isinstance(node, GroupInput)
            for i, child in enumerate(node.inputs):
                _check_tree(child, f"{here}[{i}]", names, in_join=in_join, in_group=in_group)
        case _:
            assert_never(node)


def input_to_dict(node: Input) -> dict[str, Any]:
    """Pachyderm's JSON shape of an input."""
    return node.to_dict()


# --- transform --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Secret:
    """A Kubernetes secret mounted at ``mount_path`` or exposed as ``env_var`` (from ``key``)."""

    name: str
    key: str = ""
    mount_path: str = ""
    env_var: str = ""

    def to_dict(self) -> dict[str, str]:
        """Pachyderm's JSON shape, empty fields omitted."""
        return {
            k: getattr(self, k)
            for k in ("name", "key", "mount_path", "env_var")
            if getattr(self, k)
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Transform:
    """What runs per datum: ``cmd`` (+ ``stdin``) in ``image``, or the ``python`` callable.

    ``env`` is a tuple of ``(name, value)`` pairs in spec order (see :attr:`env_dict`).
    ``python`` (``"package.module:function"``) is this provider's extension, not Pachyderm's.
    """

    cmd: tuple[str, ...] = ()
    stdin: tuple[str, ...] = ()
    err_cmd: tuple[str, ...] = ()
    err_stdin: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    image: str = ""
    working_dir: str = ""
    user: str = ""
    accept_return_code: tuple[int, ...] = ()
    datum_batching: bool = False
    secrets: tuple[Secret, ...] = ()
    python: str | None = None

    def __post_init__(self) -> None:
        for key in ("cmd", "stdin", "err_cmd", "err_stdin"):
            value = tuple(getattr(self, key))
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    raise SpecError(
                        f"expected a string, got {show(item)}",
                        field=_at("transform", f"{key}[{i}]"),
                    )
            object.__setattr__(self, key, value)
        env = tuple((k, v) for k, v in self.env)
        seen: set[str] = set()
        for k, v in env:
            if not isinstance(k, str) or not k or not isinstance(v, str):
                raise SpecError(
                    f"expected a string name and value, got {show(k)}: {show(v)}",
                    field=_at("transform", "env"),
                )
            if k in seen:
                raise SpecError(f"`{_cut(k)}` is set more than once", field=_at("transform", "env"))
            seen.add(k)
        object.__setattr__(self, "env", env)
        codes = tuple(self.accept_return_code)
        for i, code in enumerate(codes):
            if not isinstance(code, int) or isinstance(code, bool):
                raise SpecError(
                    f"expected an integer, got {show(code)}",
                    field=_at("transform", f"accept_return_code[{i}]"),
                )
        object.__setattr__(self, "accept_return_code", codes)
        secrets = tuple(self.secrets)
        for i, secret in enumerate(secrets):
            _check_secret(secret, _at("transform", f"secrets[{i}]"))
        object.__setattr__(self, "secrets", secrets)
        if self.python is not None:
            if self.cmd:
                raise SpecError(
                    "give either `cmd` or `python`, not both", field=_at("transform", "python")
                )
            if not _PYTHON_TARGET.fullmatch(self.python):
                raise SpecError(
                    f"`{_cut(self.python)}` is not a callable reference; use `package.module:function`",
                    field=_at("transform", "python"),
                )
        elif not self.cmd:
            raise SpecError("required unless `python` is given", field=_at("transform", "cmd"))

    @property
    def env_dict(self) -> dict[str, str]:
        """``env`` as a plain dict."""
        return dict(self.env)

    def to_dict(self) -> dict[str, Any]:
        """Pachyderm's JSON shape, empty fields omitted."""
        out: dict[str, Any] = {}
        for key in ("image", "cmd", "stdin", "err_cmd", "err_stdin"):
            value = getattr(self, key)
            if value:
                out[key] = list(value) if isinstance(value, tuple) else value
        if self.env:
            out["env"] = dict(self.env)
        if self.secrets:
            out["secrets"] = [s.to_dict() for s in self.secrets]
        if self.accept_return_code:
            out["accept_return_code"] = list(self.accept_return_code)
        for key in ("working_dir", "user", "datum_batching"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.python is not None:
            out["python"] = self.python
        return out


def _check_secret(secret: Secret, field_: str) -> None:
    if not isinstance(secret, Secret):
        raise SpecError(f"expected a Secret, got {show(secret)}", field=field_)
    if not secret.name:
        raise SpecError("required", field=f"{field_}.name")
    if not secret.mount_path and not secret.env_var:
        raise SpecError("set `mount_path` or `env_var`", field=field_)
    if secret.env_var and not secret.key:
        raise SpecError("required with `env_var`", field=f"{field_}.key")


# --- pipeline ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DatumSetSpec:
    """How datums are cut into sets: every ``number``, after ``size_bytes``, or ``per_worker``.

    At least one value must be positive; ``per_worker`` excludes the other two. An absent spec
    (``PipelineSpec.datum_set_spec is None``) means ``per_worker`` 4.
    """

    number: int = 0
    size_bytes: int = 0
    per_worker: int = 0

    def __post_init__(self) -> None:
        for key in ("number", "size_bytes", "per_worker"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SpecError(
                    f"expected an integer >= 0, got {show(value)}", field=f"datum_set_spec.{key}"
                )
        if not (self.number or self.size_bytes or self.per_worker):
            raise SpecError(
                "at least one of number, size_bytes, per_worker must be > 0", field="datum_set_spec"
            )
        if self.per_worker and (self.number or self.size_bytes):
            raise SpecError(
                "per_worker cannot be combined with number or size_bytes", field="datum_set_spec"
            )

    def to_dict(self) -> dict[str, int]:
        """Pachyderm's JSON shape, zero fields omitted."""
        return {
            k: getattr(self, k) for k in ("number", "size_bytes", "per_worker") if getattr(self, k)
        }


_RESOURCE_KEYS = ("cpu", "memory", "gpu", "disk")


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineSpec:
    """A Pachyderm pipeline spec, validated; :meth:`to_dict` / :meth:`from_dict` round-trip.

    ``resource_requests`` / ``resource_limits`` hold canonical JSON text of Pachyderm's resource
    object (a mapping passed in is serialised); ``pod_spec`` / ``pod_patch`` hold JSON text.
    ``parallelism`` is ``parallelism_spec.constant``; 0 becomes 1.
    """

    name: str
    input: Input
    transform: Transform
    description: str = ""
    datum_tries: int = 3
    datum_timeout: timedelta | None = None
    job_timeout: timedelta | None = None
    parallelism: int = 1
    datum_set_spec: DatumSetSpec | None = None
    reprocess_spec: ReprocessSpec = "until_success"
    salt: str = ""
    output_branch: str = "master"
    resource_requests: str | None = None
    resource_limits: str | None = None
    pod_spec: str | None = None
    pod_patch: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise SpecError("required", field="pipeline.name")
        _check_name(self.name, "pipeline name", "pipeline.name")
        if len(self.name) > _MAX_PIPELINE_NAME:
            raise SpecError(
                f"`{_cut(self.name)}` is longer than {_MAX_PIPELINE_NAME} characters",
                field="pipeline.name",
            )
        if not isinstance(self.input, _INPUT_TYPES):
            raise SpecError(f"expected an input, got {show(self.input)}", field="input")
        validate_input(self.input, "input")
        if not isinstance(self.transform, Transform):
            raise SpecError(f"expected a Transform, got {show(self.transform)}", field="transform")
        if (
            isinstance(self.datum_tries, bool)
            or not isinstance(self.datum_tries, int)
            or self.datum_tries < 1
        ):
            raise SpecError(
                f"must be an integer >= 1, got {show(self.datum_tries)}", field="datum_tries"
            )
        for key in ("datum_timeout", "job_timeout"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, parse_duration(value, key))
        if (
            isinstance(self.parallelism, bool)
            or not isinstance(self.parallelism, int)
            or self.parallelism < 0
        ):
            raise SpecError(
                f"must be an integer >= 0, got {show(self.parallelism)}",
                field="parallelism_spec.constant",
            )
        if self.parallelism == 0:
            object.__setattr__(self, "parallelism", 1)
        if self.reprocess_spec not in ("until_success", "every_job"):
            raise SpecError(
                f"`{_cut(self.reprocess_spec)}` is not allowed; use until_success or every_job",
                field="reprocess_spec",
            )
        _check_name(self.output_branch, "branch name", "output_branch")
        for key in ("resource_requests", "resource_limits"):
            object.__setattr__(self, key, _resources_text(getattr(self, key), key))
        for key in ("pod_spec", "pod_patch"):
            object.__setattr__(self, key, _json_text(getattr(self, key), key))

    # builders
    def with_salt(self, salt: str) -> PipelineSpec:
        """A copy with another salt (a new salt reprocesses every datum)."""
        return replace(self, salt=salt)

    def with_input(self, input: Input) -> PipelineSpec:
        """A copy with another input."""
        return replace(self, input=input)

    def with_transform(self, transform: Transform) -> PipelineSpec:
        """A copy with another transform."""
        return replace(self, transform=transform)

    def with_parallelism(self, parallelism: int) -> PipelineSpec:
        """A copy with another ``parallelism_spec.constant``."""
        return replace(self, parallelism=parallelism)

    def with_datum_tries(self, datum_tries: int) -> PipelineSpec:
        """A copy with another ``datum_tries``."""
        return replace(self, datum_tries=datum_tries)

    def to_dict(self) -> dict[str, Any]:
        """Pachyderm's JSON shape; unset optional fields are omitted."""
        out: dict[str, Any] = {"pipeline": {"name": self.name}}
        if self.description:
            out["description"] = self.description
        out["input"] = self.input.to_dict()
        out["transform"] = self.transform.to_dict()
        out["parallelism_spec"] = {"constant": self.parallelism}
        out["datum_tries"] = self.datum_tries
        if self.datum_timeout is not None:
            out["datum_timeout"] = format_duration(self.datum_timeout)
        if self.job_timeout is not None:
            out["job_timeout"] = format_duration(self.job_timeout)
        if self.datum_set_spec is not None:
            out["datum_set_spec"] = self.datum_set_spec.to_dict()
        out["reprocess_spec"] = self.reprocess_spec
        if self.salt:
            out["salt"] = self.salt
        out["output_branch"] = self.output_branch
        for key in ("resource_requests", "resource_limits"):
            text = getattr(self, key)
            if text is not None:
                out[key] = json.loads(text)
        for key in ("pod_spec", "pod_patch"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineSpec:
        """Parse Pachyderm's JSON shape (see :func:`parse_spec`)."""
        return _parse_pipeline(data)


def _resources_text(value: object, field_: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SpecError("not valid JSON", field=field_) from None
    if not isinstance(value, Mapping):
        raise SpecError(f"expected an object, got {show(value)}", field=field_)
    for key in value:
        if key not in _RESOURCE_KEYS:
            raise SpecError(
                f"unknown field; allowed: {', '.join(_RESOURCE_KEYS)}", field=f"{field_}.{key}"
            )
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _json_text(value: object, field_: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            raise SpecError("not valid JSON", field=field_) from None
        return value
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    raise SpecError(f"expected JSON text or an object, got {show(value)}", field=field_)


# --- parsing ----------------------------------------------------------------------------------

# Per object: (supported keys, Pachyderm keys we accept and ignore).
_TOP_KEYS = (
    "pipeline",
    "description",
    "input",
    "transform",
    "parallelism_spec",
    "datum_tries",
    "datum_timeout",
    "job_timeout",
    "datum_set_spec",
    "reprocess_spec",
    "salt",
    "output_branch",
    "resource_requests",
    "resource_limits",
    "pod_spec",
    "pod_patch",
)
_TOP_IGNORED = (
    "autoscaling",
    "cache_size",
    "chunk_spec",
    "enable_stats",
    "hashtree_spec",
    "max_queue_size",
    "maximum_expected_uptime",
    "metadata",
    "reprocess",
    "scheduling_spec",
    "sidecar_resource_limits",
    "sidecar_resource_requests",
    "spec_commit",
    "standby",
    "tolerations",
    "update",
)
# Fields that change what user code sees or does: refused, never dropped.
_TOP_REFUSED = {
    "service": "a service pipeline serves requests from a long-running pod; run the server "
    "outside the datum model",
    "spout": "a spout pushes data itself; write into an input repo instead (`datumctl put "
    "file`, or an Airflow task / sensor) and run a pipeline over it",
    "s3_out": "outputs are written to /pfs/out; read them with `datumctl get file`",
    "egress": "copy outputs out after the job (`datumctl get file -r`, or an Airflow task "
    "downstream)",
    "dry_run": "preview the datums with `datumctl list datum -f SPEC` instead; nothing is "
    "created by that",
    "tf_job": "run the training as the transform's `cmd`",
    "determined": "run the training as the transform's `cmd`",
}
_PIPELINE_KEYS = ("name", "project")
_INPUT_KEYS = ("pfs", "cron", "cross", "union", "join", "group")
_PFS_KEYS = (
    "name",
    "repo",
    "branch",
    "glob",
    "join_on",
    "outer_join",
    "group_by",
    "lazy",
    "empty_files",
    "reference",
    "project",
    "repo_type",
    "rows_per_datum",
)
# An empty ``commit`` (as some tools write out) is tolerated; a set one is rejected above.
_PFS_IGNORED = ("propagation_spec", "commit")
_PFS_REFUSED = {
    "s3": "inputs are files under /pfs/<name>; read them there",
    "trigger": "run the pipeline when you want it to (`datumctl run pipeline`, an Airflow "
    "schedule or asset)",
}
_CRON_KEYS = ("name", "spec", "overwrite", "start", "project")
_CRON_IGNORED = ("repo", "commit")
_TRANSFORM_KEYS = (
    "image",
    "cmd",
    "stdin",
    "err_cmd",
    "err_stdin",
    "env",
    "secrets",
    "accept_return_code",
    "working_dir",
    "user",
    "datum_batching",
    "python",
)
_TRANSFORM_IGNORED = ("debug", "image_pull_secrets", "memory_volume")
_TRANSFORM_REFUSED = {
    "build": "build the image yourself and name it in `transform.image`",
    "dockerfile": "build the image yourself and name it in `transform.image`",
}
_SECRET_KEYS = ("name", "key", "mount_path", "env_var")
_DATUM_SET_KEYS = ("number", "size_bytes", "per_worker")
_PARALLELISM_KEYS = ("constant",)
_PARALLELISM_IGNORED = ("coefficient",)


def _every_field() -> tuple[str, ...]:
    keys: set[str] = set()
    for table in (
        _TOP_KEYS, _TOP_IGNORED, _TOP_REFUSED, _PIPELINE_KEYS, _INPUT_KEYS, _PFS_KEYS,
        _PFS_IGNORED, _PFS_REFUSED, _CRON_KEYS, _CRON_IGNORED, _TRANSFORM_KEYS,
        _TRANSFORM_IGNORED, _TRANSFORM_REFUSED, _SECRET_KEYS, _DATUM_SET_KEYS,
        _PARALLELISM_KEYS, _PARALLELISM_IGNORED,
    ):  # fmt: skip
        keys.update(table)
    return tuple(sorted(keys))


FIELDS = _every_field()
"""Every field name the parser knows (snake_case); each is also accepted as :func:`camel`."""
_SNAKE = {camel(key): key for key in FIELDS if camel(key) != key}


def _fields(
    data: object,
    path: str,
    allowed: Sequence[str],
    ignored: Sequence[str] = (),
    refused: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check an object's keys (either spelling); warn for ignored ones; drop ``null`` values.

    Keys come back in snake_case. A refused key with a set value is an error saying what to do
    instead; an ignored one warns and is dropped.
    """
    if not isinstance(data, Mapping):
        raise SpecError(f"expected an object, got {show(data)}", field=path or "spec")
    refused = refused or {}
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for raw_key in data:
        key = _SNAKE.get(raw_key, raw_key) if isinstance(raw_key, str) else raw_key
        if not isinstance(key, str):
            raise SpecError(f"expected a field name, got {show(raw_key)}", field=path or "spec")
        if key in spelled:
            first, second = sorted((spelled[key], raw_key), key=lambda k: k != key)
            raise SpecError(
                f"`{_cut(first)}` and `{_cut(second)}` are the same field; give one",
                field=_join(path, key),
            )
        spelled[key] = raw_key
    for key, raw_key in spelled.items():
        value = data[raw_key]
        here = _join(path, key)
        if value is None:
            continue
        if key in allowed:
            out[key] = value
        elif key in refused:
            if value not in (False, 0, "", []):
                raise SpecError(
                    f"not supported by airflow-datum-provider: {refused[key]}", field=here
                )
        elif key in ignored:
            if value not in (False, 0, "", []):  # `{}` still asks for the feature
                warnings.warn(
                    f"{here}: not supported by airflow-datum-provider; ignored",
                    UnsupportedFieldWarning,
                    stacklevel=4,
                )
        else:
            raise SpecError(
                f"unknown field; allowed: {', '.join(allowed)}", field=_join(path, _cut(key))
            )
    return out


def _check_project(data: Mapping[str, Any], key: str, path: str) -> None:
    """``project`` (Pachyderm 2.5+): only the default project exists here."""
    value = data.get(key)
    name = value.get("name", "") if isinstance(value, Mapping) else value
    if isinstance(value, Mapping):
        _fields(value, _join(path, key), ("name",))
    if name in (None, "", "default"):
        return
    raise SpecError(
        f"project {show(name)} is not supported: airflow-datum-provider has only the default "
        "project; drop `project` (or name it `default`) and keep repo names unique",
        field=_join(path, key),
    )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _str(data: Mapping[str, Any], key: str, path: str, default: str = "") -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise SpecError(f"expected a string, got {show(value)}", field=_join(path, key))
    return value


def _bool(data: Mapping[str, Any], key: str, path: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise SpecError(f"expected true or false, got {show(value)}", field=_join(path, key))
    return value


_INT_TEXT = re.compile(r"-?\d{1,19}")


def _int(data: Mapping[str, Any], key: str, path: str, default: int) -> int:
    return _int_value(data.get(key, default), _join(path, key))


def _int_value(value: object, field: str) -> int:
    """An integer; protojson's int64 may come as a string (``"2"``) or an integral float."""
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        return int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"expected an integer, got {show(value)}", field=field)
    return value


def _rows_per_datum(data: Mapping[str, Any], path: str) -> int:
    if "rows_per_datum" not in data:
        return 0
    value = _int(data, "rows_per_datum", path, 0)
    if value < 1:
        raise SpecError(
            f"must be a positive integer (rows per datum), got {show(data['rows_per_datum'])}",
            field=_join(path, "rows_per_datum"),
        )
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise SpecError(f"expected a list, got {show(value)}", field=path)
    return list(value)


def _str_list(data: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    here = _join(path, key)
    items = _list(data.get(key, []), here)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise SpecError(f"expected a string, got {show(item)}", field=f"{here}[{i}]")
    return tuple(items)


def parse_input(data: Mapping[str, Any], field: str = "input") -> Input:
    """Parse and validate a bare input object (``{"pfs": {...}}``, ``{"cross": [...]}``, …)."""
    node = _parse_input(data, field)
    validate_input(node, field)
    return node


def _parse_input(data: object, path: str) -> Input:
    values = _fields(data, path, _INPUT_KEYS)
    if len(values) != 1:
        got = ", ".join(values) or "none"
        raise SpecError(
            f"exactly one of {', '.join(_INPUT_KEYS)} must be set; got {got}", field=path or "input"
        )
    ((kind, body),) = values.items()
    here = _join(path, kind)
    if kind == "pfs":
        if isinstance(body, Mapping) and body.get("commit"):
            raise SpecError(
                "not allowed in a pipeline spec; use a branch whose head points to the commit",
                field=f"{here}.commit",
            )
        fields_ = _fields(body, here, _PFS_KEYS, _PFS_IGNORED, _PFS_REFUSED)
        _check_project(fields_, "project", here)
        if _str(fields_, "repo_type", here) not in ("", "user"):
            raise SpecError(
                f"`{_cut(fields_['repo_type'])}` repos cannot be inputs here; only user repos",
                field=f"{here}.repo_type",
            )
        for key in ("repo", "glob"):
            if key not in fields_:
                raise SpecError("required", field=f"{here}.{key}")
        with _building_at(path):
            return PFSInput(
                repo=_str(fields_, "repo", here),
                glob=_str(fields_, "glob", here),
                branch=_str(fields_, "branch", here, "master") or "master",
                name=_str(fields_, "name", here),
                lazy=_bool(fields_, "lazy", here),
                empty_files=_bool(fields_, "empty_files", here),
                reference=_bool(fields_, "reference", here),
                join_on=_str(fields_, "join_on", here),
                outer_join=_bool(fields_, "outer_join", here),
                group_by=_str(fields_, "group_by", here),
                rows_per_datum=_rows_per_datum(fields_, here),
            )
    if kind == "cron":
        fields_ = _fields(body, here, _CRON_KEYS, _CRON_IGNORED)
        _check_project(fields_, "project", here)
        for key in ("name", "spec"):
            if key not in fields_:
                raise SpecError("required", field=f"{here}.{key}")
        with _building_at(path):
            return CronInput(
                name=_str(fields_, "name", here),
                spec=_str(fields_, "spec", here),
                overwrite=_bool(fields_, "overwrite", here),
                start=_timestamp(fields_.get("start"), f"{here}.start"),
            )
    children = tuple(
        _parse_input(child, f"{here}[{i}]") for i, child in enumerate(_list(body, here))
    )
    with _building_at(path):
        return _COMBINATORS[kind](inputs=children)


def _timestamp(value: object, path: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise SpecError(f"`{_cut(value)}` is not an RFC 3339 timestamp", field=path)


def _parse_transform(data: object) -> Transform:
    path = "transform"
    values = _fields(data, path, _TRANSFORM_KEYS, _TRANSFORM_IGNORED, _TRANSFORM_REFUSED)
    env_data = values.get("env", {})
    if not isinstance(env_data, Mapping):
        raise SpecError(f"expected an object, got {show(env_data)}", field="transform.env")
    env: list[tuple[str, str]] = []
    for key, value in env_data.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise SpecError(f"expected a string, got {show(value)}", field=f"transform.env.{key}")
        env.append((str(key), str(value)))
    secrets: list[Secret] = []
    for i, item in enumerate(_list(values.get("secrets", []), "transform.secrets")):
        here = f"transform.secrets[{i}]"
        secret = _fields(item, here, _SECRET_KEYS)
        secrets.append(
            Secret(
                name=_str(secret, "name", here),
                key=_str(secret, "key", here),
                mount_path=_str(secret, "mount_path", here),
                env_var=_str(secret, "env_var", here),
            )
        )
    codes = [
        _int_value(code, f"transform.accept_return_code[{i}]") if isinstance(code, str) else code
        for i, code in enumerate(
            _list(values.get("accept_return_code", []), "transform.accept_return_code")
        )
    ]
    python = values.get("python")
    if python is not None and not isinstance(python, str):
        raise SpecError(f"expected a string, got {show(python)}", field="transform.python")
    return Transform(
        cmd=_str_list(values, "cmd", path),
        stdin=_str_list(values, "stdin", path),
        err_cmd=_str_list(values, "err_cmd", path),
        err_stdin=_str_list(values, "err_stdin", path),
        env=tuple(env),
        image=_str(values, "image", path),
        working_dir=_str(values, "working_dir", path),
        user=_str(values, "user", path),
        accept_return_code=tuple(codes),
        datum_batching=_bool(values, "datum_batching", path),
        secrets=tuple(secrets),
        python=python,
    )


def _parse_pipeline(data: Mapping[str, Any]) -> PipelineSpec:
    values = _fields(data, "", _TOP_KEYS, _TOP_IGNORED, _TOP_REFUSED)
    for key in ("pipeline", "input", "transform"):
        if key not in values:
            raise SpecError("required", field=key)
    pipeline = _fields(values["pipeline"], "pipeline", _PIPELINE_KEYS)
    _check_project(pipeline, "project", "pipeline")
    parallelism = 1
    if "parallelism_spec" in values:
        spec = _fields(
            values["parallelism_spec"], "parallelism_spec", _PARALLELISM_KEYS, _PARALLELISM_IGNORED
        )
        parallelism = _int(spec, "constant", "parallelism_spec", 1)
    datum_set_spec = None
    if "datum_set_spec" in values:
        sets = _fields(values["datum_set_spec"], "datum_set_spec", _DATUM_SET_KEYS)
        datum_set_spec = DatumSetSpec(
            **{k: _int(sets, k, "datum_set_spec", 0) for k in _DATUM_SET_KEYS}
        )
    reprocess = values.get("reprocess_spec", "until_success")
    if reprocess not in ("until_success", "every_job"):
        raise SpecError(
            f"`{_cut(reprocess)}` is not allowed; use until_success or every_job",
            field="reprocess_spec",
        )
    return PipelineSpec(
        name=_str(pipeline, "name", "pipeline"),
        description=_str(values, "description", ""),
        input=_parse_input(values["input"], "input"),
        transform=_parse_transform(values["transform"]),
        datum_tries=_int(values, "datum_tries", "", 3) or 3,  # 0 is Pachyderm's "default"
        datum_timeout=_duration(values, "datum_timeout"),
        job_timeout=_duration(values, "job_timeout"),
        parallelism=parallelism,
        datum_set_spec=datum_set_spec,
        reprocess_spec=cast("ReprocessSpec", reprocess),
        salt=_str(values, "salt", ""),
        output_branch=_str(values, "output_branch", "", "master") or "master",
        resource_requests=_resources_text(values.get("resource_requests"), "resource_requests"),
        resource_limits=_resources_text(values.get("resource_limits"), "resource_limits"),
        pod_spec=_json_text(values.get("pod_spec"), "pod_spec"),
        pod_patch=_json_text(values.get("pod_patch"), "pod_patch"),
    )


def _duration(values: Mapping[str, Any], key: str) -> timedelta | None:
    return parse_duration(values[key], key) if key in values else None


def _load(text_or_mapping: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(text_or_mapping, str):
        documents = load_documents(text_or_mapping)
        if not documents:
            raise SpecError("expected an object, got None (the text is empty)", field="spec")
        if len(documents) != 1:
            raise SpecError(
                f"expected one spec, got {len(documents)} documents (a file of several "
                "pipelines is for `create pipeline -f` / parse_specs)",
                field="spec",
            )
        (data,) = documents
    else:
        check_bounds(text_or_mapping)
        data = text_or_mapping
    if not isinstance(data, Mapping):
        raise SpecError(f"expected an object, got {show(data)}", field="spec")
    return data


def parse_spec(text_or_mapping: str | Mapping[str, Any]) -> PipelineSpec:
    """Parse a pipeline spec from JSON or YAML text, or from an already-loaded mapping."""
    return _parse_pipeline(_load(text_or_mapping))


def parse_specs(
    text_or_data: str | Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> tuple[PipelineSpec, ...]:
    """Every pipeline spec of a file, in order, as ``pachctl create pipeline -f`` reads it.

    A YAML stream (documents separated by ``---``), a JSON list of specs, concatenated JSON
    objects, or one spec. Every spec is parsed before any is returned, so one bad spec refuses
    the whole file; its error starts with ``spec N of M`` when the file holds several.
    """
    if isinstance(text_or_data, str):
        documents = load_documents(text_or_data)
    elif isinstance(text_or_data, Mapping):
        documents = [text_or_data]
    else:
        documents = list(text_or_data)
    if len(documents) == 1 and isinstance(documents[0], list | tuple):
        documents = list(documents[0])  # a JSON (or YAML) list of specs
    if not documents:
        raise SpecError("no pipeline spec in the file", field="spec")
    specs: list[PipelineSpec] = []
    for n, data in enumerate(documents, 1):
        try:
            if not isinstance(data, Mapping):
                raise SpecError(f"expected an object, got {show(data)}", field="spec")
            check_bounds(data)
            specs.append(_parse_pipeline(data))
        except SpecError as exc:
            if len(documents) == 1:
                raise
            raise SpecError(
                f"spec {n} of {len(documents)}: {exc}",
                document=n,
                spec_field=getattr(exc, "field", ""),
            ) from None
    names = [spec.name for spec in specs]
    for name in names:
        if names.count(name) > 1:
            raise SpecError(f"pipeline `{_cut(name)}` is given more than once", field="spec")
    return tuple(specs)


def in_spec_file(exc: SpecError, source: str) -> SpecError:
    """``exc`` as an error in the spec file ``source``: one line, ``SOURCE: field: message``.

    The line and column, when the YAML/JSON parser gave them, are in the message already. The
    new error keeps the class and attributes; the field moves to ``spec_field``.
    """
    if exc.path:
        return exc
    text = exc._bare if exc.field == "spec" else str(exc)  # "spec:" adds nothing to a file name
    attrs = {k: v for k, v in exc._attrs.items() if k != "field"}
    attrs["spec_field"] = exc.field or exc.spec_field
    attrs["path"] = source
    return type(exc)(f"{source}: {text}", **attrs)


def read_spec_file(path: str | PathLike[str]) -> str:
    """The text of a spec file; a missing, unreadable or non-UTF-8 file is a one-line error."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text", path=str(path)) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SpecError(f"{path}: cannot read the spec file ({reason})", path=str(path)) from None


def load_spec(path: str | PathLike[str]) -> PipelineSpec:
    """Read and parse a pipeline spec file (JSON or YAML); an error names the file."""
    text = read_spec_file(path)
    try:
        return parse_spec(text)
    except SpecError as exc:
        raise in_spec_file(exc, str(path)) from None


def load_specs(path: str | PathLike[str]) -> tuple[PipelineSpec, ...]:
    """Read and parse a file of one or several pipeline specs (see :func:`parse_specs`)."""
    text = read_spec_file(path)
    try:
        return parse_specs(text)
    except SpecError as exc:
        raise in_spec_file(exc, str(path)) from None


def parse_spec_or_input(text_or_mapping: str | Mapping[str, Any]) -> PipelineSpec | Input:
    """A full pipeline spec, or a bare input (``{"pfs": …}`` or ``{"input": {…}}`` alone).

    A bare input's field paths start at its type (``cross[1].pfs.glob``), or at ``input`` when
    wrapped.
    """
    data = _load(text_or_mapping)
    if "pipeline" in data or "transform" in data:
        return _parse_pipeline(data)
    if set(data) == {"input"}:
        return parse_input(data["input"], "input")
    return parse_input(data, "")
