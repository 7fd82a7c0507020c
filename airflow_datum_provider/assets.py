"""Airflow Assets for datum repos: the ``datum://<repo>@<branch>`` URI scheme and its events.

One Asset stands for one branch of one repo: ``datum://words@master``. The branch defaults to
``master`` (``datum://words`` normalises to ``datum://words@master``); no path, query or
fragment is allowed, and repo and branch follow the store's name rule (letters, digits, ``_``,
``-``). The scheme is registered in the provider info (``asset-uris``), so Airflow normalises
every ``Asset("datum://...")`` with :func:`sanitize_uri` and a typo fails at DAG-parse time.

Every commit this provider finishes from a task (``DatumStoreHook.put_files``,
``PutFilesOperator``, the merge of a pipeline job) emits an event on its branch's Asset whose
``extra`` carries ``repo``, ``branch``, ``commit``, ``commits`` and, for a job, ``job_id`` and
its ``counters``: a DAG scheduled on ``DatumAsset(...)`` reads the commit to pin from there
(:func:`commit_from_events`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

from airflow_datum_provider.core.store.paths import check_name

if TYPE_CHECKING:
    from airflow.sdk import Asset

__all__ = [
    "SCHEME",
    "DatumAsset",
    "commit_event_extra",
    "commit_from_events",
    "create_asset",
    "datum_uri",
    "emit_commit_event",
    "parse_uri",
    "pipeline_assets",
    "sanitize_uri",
]

SCHEME = "datum"
DEFAULT_BRANCH = "master"


def datum_uri(repo: str, branch: str = DEFAULT_BRANCH) -> str:
    """The Asset URI of ``repo@branch``: ``datum://<repo>@<branch>``."""
    check_name(repo, "repo")
    check_name(branch, "branch")
    return f"{SCHEME}://{repo}@{branch}"


def parse_uri(uri: str) -> tuple[str, str]:
    """``(repo, branch)`` of a ``datum://`` URI; ``ValueError`` naming what is wrong."""
    return _parse(urlsplit(uri), uri)


def _parse(parts: SplitResult, shown: str) -> tuple[str, str]:
    if parts.scheme.lower() != SCHEME:
        raise ValueError(f"asset URI {shown!r}: the scheme must be {SCHEME}://")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            f"asset URI {shown!r}: only datum://<repo>@<branch> is allowed "
            "(no path, query or fragment)"
        )
    repo, sep, branch = parts.netloc.partition("@")
    if not sep:
        branch = DEFAULT_BRANCH
    try:
        check_name(repo, "repo")
        check_name(branch, "branch")
    except ValueError as exc:
        raise ValueError(f"asset URI {shown!r}: {exc}") from None
    return repo, branch


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Normalise a ``datum://`` URI for Airflow (the ``asset-uris`` handler)."""
    repo, branch = _parse(uri, uri.geturl())
    return SplitResult(SCHEME, f"{repo}@{branch}", "", "", "")


def DatumAsset(  # a function that reads like the Asset it builds
    repo: str,
    branch: str = DEFAULT_BRANCH,
    *,
    name: str | None = None,
    group: str = "datum",
    extra: Mapping[str, Any] | None = None,
    watchers: Sequence[Any] = (),
) -> Asset:
    """The Airflow ``Asset`` of ``repo@branch`` (name defaults to the URI).

    ``watchers`` are passed through, e.g. ``[AssetWatcher(name=..., trigger=CommitTrigger(...))]``
    to start DAG runs for commits made outside Airflow.
    """
    from airflow.sdk import Asset

    uri = datum_uri(repo, branch)
    return Asset(
        uri=uri, name=name or uri, group=group, extra=dict(extra or {}), watchers=list(watchers)
    )


def create_asset(
    *, repo: str, branch: str = DEFAULT_BRANCH, extra: Mapping[str, Any] | None = None
) -> Asset:
    """Asset factory for the ``asset-uris`` registry (hook-level lineage)."""
    return DatumAsset(repo, branch, extra=extra)


def commit_event_extra(
    repo: str,
    branch: str,
    commit: str,
    *,
    commits: Iterable[str] = (),
    job_id: str = "",
    counters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``extra`` of a commit's Asset event (JSON only; never credentials)."""
    extra: dict[str, Any] = {
        "repo": repo,
        "branch": branch,
        "commit": commit,
        "commits": list(commits) or [commit],
    }
    if job_id:
        extra["job_id"] = job_id
    if counters:
        extra["counters"] = dict(counters)
    return extra


def _outlets(context: Mapping[str, Any]) -> list[Any]:
    task = context.get("task")
    return list(getattr(task, "outlets", None) or ())


def emit_commit_event(
    context: Mapping[str, Any],
    repo: str,
    branch: str,
    commit: str,
    *,
    commits: Iterable[str] = (),
    job_id: str = "",
    counters: Mapping[str, Any] | None = None,
) -> bool:
    """Attach a finished commit to the running task's Asset event for ``repo@branch``.

    The event itself is emitted by Airflow when the task succeeds, for the task's outlets only:
    the task must list ``DatumAsset(repo, branch)`` (our operators do it for you) or an
    ``AssetAlias`` (then the Asset is added to the alias). Returns whether an outlet took it.
    """
    from airflow.sdk import Asset, AssetAlias

    uri = datum_uri(repo, branch)
    extra = commit_event_extra(
        repo, branch, commit, commits=commits, job_id=job_id, counters=counters
    )
    events = context.get("outlet_events")
    if events is None:
        return False
    for outlet in _outlets(context):
        if isinstance(outlet, Asset) and outlet.uri == uri:
            events[outlet].extra.update(extra)
            return True
    for outlet in _outlets(context):
        if isinstance(outlet, AssetAlias):
            events[outlet].add(DatumAsset(repo, branch), extra=extra)
            return True
    return False


def pipeline_assets(spec: Any) -> tuple[list[Asset], list[Asset]]:
    """``(inlets, outlets)`` of a pipeline's merge task: its input repos and its output repo.

    With these on the merge task, Airflow's Asset graph draws the pipeline graph. Cron inputs
    count as their tick repo (``<pipeline>_<name>``).
    """
    from airflow_datum_provider.core.plan import pfs_leaves

    seen: dict[str, Asset] = {}
    for leaf in pfs_leaves(spec.input, spec.name):
        uri = datum_uri(leaf.repo, leaf.branch)
        seen.setdefault(uri, DatumAsset(leaf.repo, leaf.branch))
    return list(seen.values()), [DatumAsset(spec.name, spec.output_branch)]


def commit_from_events(
    events: Mapping[Any, Sequence[Any]] | None, repo: str, branch: str = DEFAULT_BRANCH
) -> str | None:
    """The newest commit of ``repo@branch`` named by triggering Asset events, if any.

    ``events`` is the task context's ``triggering_asset_events``: a DAG scheduled on
    ``DatumAsset(repo, branch)`` pins its job to this commit instead of the branch head.
    Events from tasks carry the commit in ``extra``; events from a ``CommitTrigger`` watcher
    carry it in ``extra["payload"]`` (Airflow nests a trigger's payload there).
    """
    if not events:
        return None
    uri = datum_uri(repo, branch)
    newest: tuple[str, str] | None = None
    for key, items in events.items():
        if getattr(key, "uri", key) != uri:
            continue
        for event in items:
            extra = getattr(event, "extra", None) or {}
            # An AssetWatcher's event nests the trigger's payload: {"from_trigger", "payload"}.
            payload = extra.get("payload") if extra.get("from_trigger") else extra
            commit = payload.get("commit") if isinstance(payload, Mapping) else None
            stamp = str(getattr(event, "timestamp", ""))
            if isinstance(commit, str) and (newest is None or stamp >= newest[0]):
                newest = (stamp, commit)
    return newest[1] if newest else None
