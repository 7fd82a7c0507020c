"""Pipelines: create, update and delete them, and what the local runner makes of their specs."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import replace
from typing import Any

from airflow_datum_provider.core.errors import (
    AlreadyExistsError,
    ConflictError,
    PipelineError,
    PipelineNotFound,
    SpecError,
)
from airflow_datum_provider.core.jobs.records import JobRecords, PipelineInfo, now
from airflow_datum_provider.core.spec import CronInput, PipelineSpec, iter_leaves
from airflow_datum_provider.core.store import Store
from airflow_datum_provider.core.store.paths import check_name

__all__ = [
    "check_local_runner",
    "cron_repo",
    "create_pipeline",
    "delete_pipeline",
    "local_runner_warnings",
]


_UPDATE_TRIES = 50


def create_pipeline(
    store: Store, spec: PipelineSpec, *, update: bool = False, reprocess: bool = False
) -> PipelineInfo:
    """Create (or, with ``update``, replace) a pipeline and its output repo.

    An update keeps the salt, so unchanged datums are still skipped, unless ``reprocess``.
    Every create or update writes a new immutable version (a compare-and-swap on its number):
    of concurrent creates of one name exactly one wins and the others get "already exists";
    concurrent updates are each applied, one after another, none lost. Jobs run the version
    they were created under.
    """
    records = JobRecords(store)
    check_name(spec.name, "pipeline")
    for _ in range(_UPDATE_TRIES):
        exists = records.pipeline_exists(spec.name)
        if exists and not update:
            raise _already_exists(spec.name)
        if update and not exists:
            raise PipelineNotFound(f"pipeline {spec.name!r} not found", pipeline=spec.name)
        stamp = now()
        if exists:
            old = records.pipeline(spec.name)
            salt = spec.salt or (uuid.uuid4().hex if reprocess else old.salt)
            info = replace(old, spec=spec, salt=salt, version=old.version + 1, updated=stamp)
        else:
            for leaf_repo in _input_repos(spec):
                if not store.repo_exists(leaf_repo):
                    raise SpecError(f"repo {leaf_repo!r} not found", field="input")
            info = PipelineInfo(
                name=spec.name,
                spec=spec,
                salt=spec.salt or uuid.uuid4().hex,
                created=stamp,
                updated=stamp,
            )
        # The version is claimed first, so of concurrent creates only the winner touches the
        # repo; the repo and branch steps are idempotent (an update after a crash redoes them).
        if records.add_pipeline_version(info):
            _ensure_output(store, spec)
            _ensure_inputs(store, spec)
            return info
        if not update:
            raise _already_exists(spec.name)
    raise ConflictError(
        f"pipeline {spec.name!r}: {_UPDATE_TRIES} concurrent updates won over this one; retry",
        pipeline=spec.name,
    )


def _ensure_output(store: Store, spec: PipelineSpec) -> None:
    if not store.repo_exists(spec.name):
        store.create_repo(
            spec.name, description=f"Output repo for pipeline {spec.name}.", exist_ok=True
        )
    if spec.output_branch not in {b.name for b in store.list_branches(spec.name)}:
        with contextlib.suppress(AlreadyExistsError):  # a concurrent writer made it
            store.create_branch(spec.name, spec.output_branch)


def _ensure_inputs(store: Store, spec: PipelineSpec) -> None:
    """Input branches that do not exist yet start empty, and cron repos exist (as Pachyderm).

    A job over an empty branch has no datums from it and succeeds.
    """
    for leaf in iter_leaves(spec.input):
        if isinstance(leaf, CronInput):
            repo = cron_repo(spec.name, leaf)
            store.create_repo(
                repo, description=f"Cron ticks of pipeline {spec.name}.", exist_ok=True
            )
            store.ensure_branch(repo, "master")
        else:
            store.ensure_branch(leaf.repo, leaf.branch)


def cron_repo(pipeline: str, leaf: CronInput) -> str:
    """The repo a cron input's ticks go to: ``<pipeline>_<name>``, as in Pachyderm."""
    return f"{pipeline}_{leaf.name}"


def _already_exists(name: str) -> PipelineError:
    return PipelineError(f"pipeline {name!r} already exists; use update pipeline", pipeline=name)


_KUBERNETES_ONLY = (
    "transform.image",
    "resource_requests",
    "resource_limits",
    "pod_spec",
    "pod_patch",
)
_NOT_LOCAL_YET = ("transform.user", "transform.secrets")


def _set_fields(spec: PipelineSpec, names: tuple[str, ...]) -> list[str]:
    found = []
    for name in names:
        obj: Any = spec
        for part in name.split("."):
            obj = getattr(obj, part)
        if obj:
            found.append(name)
    return found


def local_runner_warnings(spec: PipelineSpec) -> list[str]:
    """What ``create pipeline`` says about fields the local runner does not use.

    ``transform.image``, ``resource_*`` and ``pod_*`` are for the Kubernetes runner and are
    ignored locally; ``user`` and ``secrets`` change what user code sees,
    so the local runner refuses them (:func:`check_local_runner`) rather than ignore them.
    """
    messages = []
    ignored = _set_fields(spec, _KUBERNETES_ONLY)
    if ignored:
        messages.append(
            f"{', '.join(ignored)}: used only by the Kubernetes runner; ignored when running "
            "locally"
        )
    refused = _set_fields(spec, _NOT_LOCAL_YET)
    if refused:
        messages.append(
            f"{', '.join(refused)}: not supported by the local runner yet; "
            "`run pipeline` will refuse this pipeline"
        )
    return messages


def check_local_runner(spec: PipelineSpec) -> None:
    """Refuse a spec whose behaviour the local runner would silently get wrong."""
    refused = _set_fields(spec, _NOT_LOCAL_YET)
    if refused:
        raise PipelineError(
            f"{', '.join(refused)}: not supported by the local runner yet", pipeline=spec.name
        )


def _input_repos(spec: PipelineSpec) -> list[str]:
    return [leaf.repo for leaf in iter_leaves(spec.input) if not isinstance(leaf, CronInput)]


def delete_pipeline(store: Store, name: str, *, keep_repo: bool = False) -> None:
    """Delete a pipeline, its jobs and (unless ``keep_repo``) its output and cron repos."""
    records = JobRecords(store)
    try:
        spec: PipelineSpec | None = records.pipeline(name).spec
    except LookupError:
        spec = None
    records.delete_pipeline(name)
    if keep_repo:
        return
    owned = [name]
    if spec is not None:
        owned += [
            cron_repo(name, leaf) for leaf in iter_leaves(spec.input) if isinstance(leaf, CronInput)
        ]
    for repo in owned:
        if store.repo_exists(repo):
            store.delete_repo(repo)
