"""Pachyderm's rules for file paths and repo / branch names."""

from __future__ import annotations

import re

from airflow_datum_provider.core.errors import InvalidNameError, InvalidPathError

__all__ = ["BAD_PATH_CHARS", "MAX_ELEMENT_BYTES", "check_name", "clean_dir", "clean_path"]

BAD_PATH_CHARS = frozenset("*?[]{}!()@+^")
_NAME = re.compile(r"\A[a-zA-Z0-9_-]+\Z")
_MAX_NAME = 63
MAX_ELEMENT_BYTES = 255
"""The longest path element (UTF-8 bytes) a file system stores (``NAME_MAX``): longer cannot
be materialised in a datum's scratch, so it is refused when written."""


def check_name(name: str, what: str = "repo") -> str:
    """Return ``name`` if it follows Pachyderm's name rule (letters, digits, ``_``, ``-``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidNameError(
            f"{what} name {name!r} is invalid: only letters, digits, '_' and '-' are allowed",
            name=name,
        )
    if len(name) > _MAX_NAME:
        raise InvalidNameError(
            f"{what} name {name!r} is too long: at most {_MAX_NAME} characters", name=name
        )
    return name


def clean_path(path: str) -> str:
    """Normalise a file path (``//`` folded, leading ``/`` added) and enforce the path rules.

    Rejects elements ``.`` and ``..``, elements over 255 UTF-8 bytes, non-printable characters,
    and any of ``* ? [ ] { } ! ( ) @ + ^``. Returns ``/`` for the root. A trailing ``/`` is dropped.
    """
    if not isinstance(path, str):
        raise InvalidPathError(f"path {path!r} is not a string", path=path)
    parts = [p for p in path.split("/") if p]
    for part in parts:
        if part in (".", ".."):
            raise InvalidPathError(
                f"path {path!r} is invalid: element {part!r} is not allowed", path=path
            )
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > MAX_ELEMENT_BYTES:
            raise InvalidPathError(
                f"path element {part[:40]!r}… is {size} bytes long; at most "
                f"{MAX_ELEMENT_BYTES} bytes are allowed (the longest file name a file system "
                "stores)",
                path=path,
            )
        for ch in part:
            if ch in BAD_PATH_CHARS:
                raise InvalidPathError(
                    f"path {path!r} is invalid: character {ch!r} is not allowed "
                    f"(no * ? [ ] {{ }} ! ( ) @ + ^)",
                    path=path,
                )
            if not ch.isprintable():
                raise InvalidPathError(
                    f"path {path!r} is invalid: non-printable character {ch!r}", path=path
                )
    return "/" + "/".join(parts)


def clean_dir(path: str) -> str:
    """Like :func:`clean_path`, but return a directory prefix that ends with ``/``."""
    cleaned = clean_path(path)
    return cleaned if cleaned == "/" else cleaned + "/"
