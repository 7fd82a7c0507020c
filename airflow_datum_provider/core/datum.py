"""Datums and their identity (Pachyderm's ``DatumID`` and ``HashDatum``).

* **id** = BLAKE2b-256 over, for each input in datum order, its name, repo, branch and path,
  each followed by its length as an 8-byte big-endian integer. Content and commit do not count,
  so a datum keeps its id across commits. A row-range input (``rows_per_datum``, this
  provider's extension) hashes ``path NUL "rows=" start ":" end`` as its path (no path holds a
  NUL), so the ranges of one table have distinct, stable ids and other datums keep Pachyderm's.
* **hash** = BLAKE2b-256 over the id, the content hash of every non-``reference`` input, and the
  pipeline salt. A datum whose hash is unchanged since the base job's success is skipped.

File hashes are BLAKE2b-256 of the content. A directory's hash covers every file below it,
*names included* (``relative path NUL hash LF`` in path order). Pachyderm ignores names, so
renaming a file inside a directory datum skips the datum there; here it re-runs it, which is what
a user renaming an input expects. See ``docs/datums.md``.

Datums are ``NamedTuple`` rather than frozen dataclasses: planning creates millions of them and
tuple construction is several times cheaper, while staying immutable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, NamedTuple

__all__ = ["Datum", "DatumInput", "datum_hash", "datum_id", "dir_hasher"]

_blake2b = hashlib.blake2b


class DatumInput(NamedTuple):
    """One input of a datum: which file or directory of which pinned commit."""

    name: str
    repo: str
    branch: str
    commit: str
    path: str
    hash: str
    size: int
    join_on: str = ""
    group_by: str = ""
    reference: bool = False
    lazy: bool = False
    empty_files: bool = False
    rows: tuple[int, int] | None = None
    """A row range ``[start, end)`` of the table at ``path`` (``rows_per_datum``), else None."""

    @property
    def is_dir(self) -> bool:
        return self.path.endswith("/")

    @property
    def id_path(self) -> str:
        """The path as the datum id sees it (the row range appended after a NUL)."""
        if self.rows is None:
            return self.path
        return f"{self.path}\0rows={self.rows[0]}:{self.rows[1]}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "repo": self.repo,
            "branch": self.branch,
            "commit": self.commit,
            "path": self.path,
            "hash": self.hash,
            "size_bytes": self.size,
            "join_on": self.join_on,
            "group_by": self.group_by,
            "reference": self.reference,
            "lazy": self.lazy,
            "empty_files": self.empty_files,
        } | ({} if self.rows is None else {"rows": list(self.rows)})

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DatumInput:
        return cls(
            raw["name"],
            raw["repo"],
            raw["branch"],
            raw["commit"],
            raw["path"],
            raw["hash"],
            raw["size_bytes"],
            raw.get("join_on", ""),
            raw.get("group_by", ""),
            raw.get("reference", False),
            raw.get("lazy", False),
            raw.get("empty_files", False),
            None if raw.get("rows") is None else (int(raw["rows"][0]), int(raw["rows"][1])),
        )


class Datum(NamedTuple):
    """A unit of work: an id, a content hash and the inputs it mounts."""

    id: str
    hash: str
    inputs: tuple[DatumInput, ...]

    @property
    def size(self) -> int:
        return sum(i.size for i in self.inputs)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "hash": self.hash, "inputs": [i.to_dict() for i in self.inputs]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Datum:
        return cls(raw["id"], raw["hash"], tuple(DatumInput.from_dict(i) for i in raw["inputs"]))

    @classmethod
    def of(cls, inputs: tuple[DatumInput, ...], salt: str) -> Datum:
        """The datum of ``inputs`` with its id and hash (the planner's hot path)."""
        if len(inputs) == 1:
            # Same result as the general case, without the generator machinery.
            i = inputs[0]
            data = _prefix(i.name, i.repo, i.branch) + _field(
                i.path if i.rows is None else i.id_path
            )
            ident = _blake2b(data, digest_size=32).hexdigest()
            text = ident + ("" if i.reference else i.hash) + salt
            return cls(ident, _blake2b(text.encode(), digest_size=32).hexdigest(), inputs)
        ident_hex = datum_id(inputs)
        return cls(ident_hex, datum_hash(ident_hex, inputs, salt), inputs)


def _field(text: str) -> bytes:
    data = text.encode()
    return data + len(data).to_bytes(8, "big")


# name, repo and branch repeat across millions of datums; their encoded form is cached.
_PREFIXES: dict[tuple[str, str, str], bytes] = {}


def _prefix(name: str, repo: str, branch: str) -> bytes:
    key = (name, repo, branch)
    cached = _PREFIXES.get(key)
    if cached is None:
        if len(_PREFIXES) > 4096:
            _PREFIXES.clear()
        cached = _PREFIXES[key] = _field(name) + _field(repo) + _field(branch)
    return cached


def datum_id(inputs: Iterable[DatumInput]) -> str:
    """Pachyderm's ``DatumID``: name, repo, branch and path of every input, length-suffixed."""
    data = b"".join(_prefix(i.name, i.repo, i.branch) + _field(i.id_path) for i in inputs)
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def datum_hash(ident: str, inputs: Iterable[DatumInput], salt: str) -> str:
    """Pachyderm's ``HashDatum``: the id, non-reference content hashes, and the salt."""
    text = ident + "".join(i.hash for i in inputs if not i.reference) + salt
    return hashlib.blake2b(text.encode(), digest_size=32).hexdigest()


def dir_hasher() -> Any:
    """A hasher for a directory: feed relative path, NUL, hash, LF for each file in order."""
    return hashlib.blake2b(digest_size=32)
