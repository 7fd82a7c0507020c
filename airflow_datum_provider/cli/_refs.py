"""Parse pachctl-style arguments: ``repo``, ``repo@branch``, ``repo@ref:/path``.

A *ref* is what the store resolves: a branch name, a commit id, ``branch=id``, or an ancestor
(``branch^``, ``branch~2``). Shape errors (a missing ``@`` or ``:``) are usage errors and exit 2;
a name with a forbidden character is the store's :class:`InvalidNameError` and exits 1, like
every other error about what the user named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import click

from airflow_datum_provider.cli._config import remember_typed, typed_refs
from airflow_datum_provider.core.errors import InvalidNameError
from airflow_datum_provider.core.store.paths import check_name

__all__ = [
    "CommitRef",
    "CommitRefType",
    "FileRef",
    "FileRefType",
    "RefSyntaxError",
    "complete_refs",
    "complete_repo",
    "remember_typed",
    "typed_refs",
    "is_commit_id",
    "repo_name",
    "parse_commit_ref",
    "parse_file_ref",
]

_ID = re.compile(r"\A[0-9a-f]{32}\Z")
# A branch or id, then at most one ``=id``, then ancestry marks (``^``, ``~N``).
_REF = re.compile(r"\A[A-Za-z0-9_-]+(=[A-Za-z0-9_-]+)?[\^~0-9]*\Z")
_REF_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-=^~")


class RefSyntaxError(ValueError):
    """An argument does not have the shape ``repo@branch:/path`` asks for."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitRef:
    """``repo@ref``; ``ref`` is ``None`` when the argument named the repo alone."""

    repo: str
    ref: str | None

    def __str__(self) -> str:
        return self.repo if self.ref is None else f"{self.repo}@{self.ref}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRef:
    """``repo@ref:path``; ``path`` is ``None`` when the argument had no ``:`` part."""

    repo: str
    ref: str
    path: str | None

    def __str__(self) -> str:
        return f"{self.repo}@{self.ref}" + ("" if self.path is None else f":{self.path}")


def is_commit_id(ref: str) -> bool:
    """Whether ``ref`` looks like a commit id (32 lowercase hex characters)."""
    return bool(_ID.match(ref))


def repo_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Click callback for a plain ``REPO`` argument: the store's name rule (exit 1)."""
    return check_name(value, "repo")


_CARET_N = re.compile(r"\^(\d+)")


def _check_ref(ref: str) -> str:
    """A ref as typed, with pachctl's ``^N`` (N ancestors back, like ``~N``) spelled ``~N``."""
    if _REF.match(ref):
        return _CARET_N.sub(r"~\1", ref)
    bad = next((ch for ch in ref if ch not in _REF_CHARS), None)
    detail = (
        f"character {bad!r} is not allowed" if bad else "expected branch, id, branch=id, ^ or ~N"
    )
    raise InvalidNameError(f"branch or commit {ref!r} is invalid: {detail}", name=ref)


def parse_commit_ref(text: str, *, ref: Literal["required", "optional"]) -> CommitRef:
    """Split ``repo@ref`` (or ``repo`` when ``ref="optional"``)."""
    form = "repo@branch" if ref == "required" else "repo[@branch]"
    repo, at, rest = text.partition("@")
    if not repo or (at and not rest) or (ref == "required" and not at) or ":" in text:
        raise RefSyntaxError(f'"{text}" is not of the form {form}')
    check_name(repo, "repo")
    return CommitRef(repo=repo, ref=_check_ref(rest) if at else None)


def parse_file_ref(text: str, *, path: Literal["required", "optional"]) -> FileRef:
    """Split ``repo@ref:path`` (the ``:path`` may be left out when ``path="optional"``).

    The path is returned as typed: the store applies Pachyderm's path rules and names the
    offending character, and ``glob file`` passes it on as a pattern.
    """
    form = "repo@branch:/path" if path == "required" else "repo@branch[:/path]"
    head, colon, file_path = text.partition(":")
    repo, at, ref = head.partition("@")
    if not repo or not at or not ref or (colon and not file_path):
        raise RefSyntaxError(f'"{text}" is not of the form {form}')
    if path == "required" and not colon:
        raise RefSyntaxError(f'"{text}" is not of the form {form}')
    check_name(repo, "repo")
    return FileRef(repo=repo, ref=_check_ref(ref), path=file_path if colon else None)


def _complete_store(ctx: click.Context) -> Any:
    """The store for shell completion, or ``None`` (missing store, any error: no completions)."""
    from airflow_datum_provider.cli._config import CliState

    state = ctx.find_object(CliState)
    if state is None:
        root = ctx.find_root()
        state = CliState(store_url=root.params.get("store_url"))
    try:
        return state.open(create=False, ctx=ctx, quiet=True)
    except Exception:
        return None


def complete_refs(ctx: click.Context, incomplete: str, *, files: bool) -> list[str]:
    """``rep`` → ``repo@``; ``repo@ma`` → ``repo@master``; with files, ``repo@master:/d`` → paths."""
    store = _complete_store(ctx)
    if store is None:
        return []
    try:
        repo, at, rest = incomplete.partition("@")
        if not at:
            return [f"{r.name}@" for r in store.list_repos() if r.name.startswith(repo)]
        ref, colon, path = rest.partition(":")
        if not colon:
            names = [b.name for b in store.list_branches(repo) if b.name.startswith(ref)]
            suffix = ":" if files else ""
            return [f"{repo}@{name}{suffix}" for name in names]
        if not files:
            return []
        folder = path.rsplit("/", 1)[0] + "/" if "/" in path else "/"
        return [
            f"{repo}@{ref}:{f.path}"
            for f in store.list_files(repo, ref, folder)
            if f.path.startswith(path or "/")
        ]
    except Exception:
        return []


def complete_repo(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of a plain ``REPO`` argument."""
    store = _complete_store(ctx)
    if store is None:
        return []
    return [r.name for r in store.list_repos() if r.name.startswith(incomplete)]


class CommitRefType(click.ParamType):  # type: ignore[type-arg]  # generic in click>=8.4 only
    """A click parameter for ``repo@ref`` arguments."""

    name = "repo@branch"

    def __init__(self, ref: Literal["required", "optional"] = "required") -> None:
        self.ref: Literal["required", "optional"] = ref

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, CommitRef):
            return value
        remember_typed(ctx, str(value))
        try:
            return parse_commit_ref(str(value), ref=self.ref)
        except RefSyntaxError as exc:
            self.fail(str(exc), param, ctx)

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(c) for c in complete_refs(ctx, incomplete, files=False)]


class FileRefType(click.ParamType):  # type: ignore[type-arg]  # generic in click>=8.4 only
    """A click parameter for ``repo@ref:/path`` arguments."""

    name = "repo@branch:/path"

    def __init__(self, path: Literal["required", "optional"] = "required") -> None:
        self.path: Literal["required", "optional"] = path

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, FileRef):
            return value
        remember_typed(ctx, str(value))
        try:
            return parse_file_ref(str(value), path=self.path)
        except RefSyntaxError as exc:
            self.fail(str(exc), param, ctx)

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [
            CompletionItem(c, type="nospace") for c in complete_refs(ctx, incomplete, files=True)
        ]
