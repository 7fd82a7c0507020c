"""Which store ``datumctl`` talks to (cheap to import: ``--help`` and ``config`` use it).

Resolution order: ``--store URL``, then ``$DATUM_STORE``, then :func:`default_store_url`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from airflow_datum_provider.core.store import Store

__all__ = [
    "ENV_VAR",
    "CliState",
    "default_store_url",
    "remember_typed",
    "resolve_store",
    "typed_refs",
]

ENV_VAR = "DATUM_STORE"
_APP_DIR = "airflow-datum-provider"


def default_store_url() -> str:
    """The embedded default store: ``$XDG_DATA_HOME/airflow-datum-provider/store``.

    Falls back to ``~/.local/share/airflow-datum-provider/store`` when ``XDG_DATA_HOME`` is unset
    or not absolute (the XDG spec says to ignore relative values). The folder is created on first
    use, by the store.
    """
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return str(base / _APP_DIR / "store")


def resolve_store(store_url: str | None, ctx: click.Context | None = None) -> tuple[str, str]:
    """The store URL in use and where it came from: ``--store``, ``$DATUM_STORE`` or default."""
    if store_url is None:  # an empty --store is passed on, for the store to refuse
        env = os.environ.get(ENV_VAR, "")
        if env:
            return env, f"${ENV_VAR}"
        return default_store_url(), "the default folder"
    if ctx is not None:
        from click.core import ParameterSource

        if ctx.find_root().get_parameter_source("store_url") is ParameterSource.ENVIRONMENT:
            return store_url, f"${ENV_VAR}"
    return store_url, "--store"


# Verbs that may create the store they are pointed at; every other verb refuses a store that
# does not exist yet when it was named by --store or $DATUM_STORE (a typo there would
# otherwise read as a new, empty store).
_CREATING_VERBS = frozenset({"create", "put", "start"})


def _verb_of(ctx: click.Context) -> str:
    parent = ctx.parent
    if parent is not None and parent.parent is not None:
        return parent.info_name or ""
    return ctx.info_name or ""


@dataclass(slots=True)
class CliState:
    """Per-invocation state on ``ctx.obj``: the store URL, and the store once opened."""

    store_url: str | None = None
    _store: Store | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return resolve_store(self.store_url)[0]

    @property
    def store(self) -> Store:
        """The store, opened on first use (so ``--help`` never touches it)."""
        if self._store is None:
            self._store = self.open(create=True)
        return self._store

    def open(self, *, create: bool, ctx: click.Context | None = None, quiet: bool = False) -> Store:
        """Open the store; a new one is announced, a missing one named by the user refused.

        With ``create=False`` a store named by ``--store`` / ``$DATUM_STORE`` must exist; the
        default folder is created (with the same one-line note) by any verb.
        """
        if self._store is not None:
            return self._store
        from airflow_datum_provider.cli._errors import CliError
        from airflow_datum_provider.core.store import Store, _layout
        from airflow_datum_provider.core.store._backend import open_backend

        url, source = resolve_store(self.store_url, ctx)
        local = _local_path(url)
        if local is not None:  # checked without opening it: that would create the folder
            exists = (local / _layout.FORMAT).is_file()
        else:
            try:
                open_backend(url).read(_layout.FORMAT)
                exists = True
            except FileNotFoundError:
                exists = False
        if not exists and quiet:
            raise FileNotFoundError(url)
        if not exists and not create and source != "the default folder":
            raise CliError(
                f"no store at {url} (from {source}): check the URL, or create one there with "
                f"`datumctl --store {url} create repo NAME`"
            )
        self._store = Store.open(url)
        if not exists:
            click.echo(
                f"datumctl: note: created a new, empty store at {url} (from {source})", err=True
            )
        return self._store


def remember_typed(ctx: click.Context | None, text: str) -> None:
    """Note an argument as typed, so an error about what it resolved to can name it."""
    if ctx is not None:
        typed = ctx.find_root().meta.setdefault("datumctl.typed", [])
        if text not in typed:
            typed.append(text)


def typed_refs(ctx: click.Context) -> list[str]:
    """The refs the user typed in this invocation, in order."""
    return list(ctx.find_root().meta.get("datumctl.typed", []))


def _local_path(url: str) -> Path | None:
    """The folder of a local store URL (a path or ``file://``), else ``None`` (or blank)."""
    if not url.strip():
        return None  # opening it gives the store's own error
    if "://" not in url:
        return Path(url).expanduser()
    protocol, _, rest = url.partition("://")
    return Path(rest).expanduser() if protocol in ("file", "local") else None
