"""Run options of a pipeline's DAG run: ``reprocess``, ``pin`` and ``dry_run``.

``run_params()`` gives the DAG the described ``Param`` objects, so a person pressing *Trigger*
gets a form; the same keys work as ``dag_run.conf`` (REST API, ``airflow dags trigger --conf``).
The create task reads them with :meth:`RunOptions.from_context` and checks them against the
pipeline's inputs and the store with :meth:`RunOptions.check`, which fails with one line naming
the bad repo or commit.

- ``reprocess`` (bool): ignore skipping for this run (every datum runs).
- ``pin`` (``{"repo": "commit"}``): run against that commit instead of the branch head.
- ``dry_run`` (bool): plan and report the datums, change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Param

    from airflow_datum_provider.core.store import Store

__all__ = ["RUN_OPTION_KEYS", "RunOptions", "run_params"]

RUN_OPTION_KEYS = ("reprocess", "pin", "dry_run")


def run_params() -> dict[str, Param]:
    """The trigger form's Params (add them to the DAG's ``params``)."""
    from airflow.sdk import Param

    return {
        "reprocess": Param(
            False,
            type="boolean",
            title="Reprocess",
            description="Run every datum again, ignoring what the last successful job did.",
        ),
        "pin": Param(
            {},
            type="object",
            title="Pin inputs",
            description=(
                'Run against these commits instead of the branch heads: {"repo": "commit id"}. '
                "Every repo must be an input of the pipeline."
            ),
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Plan and report the datums in the log and the return value; change nothing.",
        ),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """One DAG run's options, parsed and shape-checked."""

    reprocess: bool = False
    pin: tuple[tuple[str, str], ...] = ()
    dry_run: bool = False

    @property
    def pins(self) -> dict[str, str]:
        return dict(self.pin)

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> RunOptions:
        """From params / ``dag_run.conf``; a bad value raises ``ValueError`` naming it."""
        raw = dict(raw or {})
        out: dict[str, Any] = {}
        for key in ("reprocess", "dry_run"):
            value = raw.get(key, False)
            if value is None:
                value = False
            if not isinstance(value, bool):
                raise ValueError(f"run option {key}: must be true or false, got {value!r}")
            out[key] = value
        pin = raw.get("pin") or {}
        if not isinstance(pin, Mapping):
            raise ValueError(f'run option pin: must be {{"repo": "commit"}}, got {pin!r}')
        pairs = []
        for repo, commit in sorted(pin.items()):
            if not isinstance(repo, str) or not isinstance(commit, str) or not commit:
                raise ValueError(
                    f"run option pin: {repo!r}: the commit must be a non-empty string, "
                    f"got {commit!r}"
                )
            pairs.append((repo, commit))
        return cls(reprocess=out["reprocess"], pin=tuple(pairs), dry_run=out["dry_run"])

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> RunOptions:
        """The options of the running DAG run: its ``params``, overridden by ``dag_run.conf``."""
        raw: dict[str, Any] = {}
        params = context.get("params") or {}
        for key in RUN_OPTION_KEYS:
            if key in params:
                raw[key] = params[key]
        dag_run = context.get("dag_run")
        conf = getattr(dag_run, "conf", None) or {}
        for key in RUN_OPTION_KEYS:
            if key in conf:
                raw[key] = conf[key]
        return cls.parse(raw)

    def check(self, store: Store, pipeline: str, inputs: Iterable[tuple[str, str]]) -> None:
        """Every pinned repo is an input (``(repo, branch)`` pairs) and its commit exists on it.

        Raises ``ValueError`` with one line: ``pin: repo 'x' is not an input of pipeline 'p'
        (inputs: a, b)`` or ``pin: commit 'c' does not exist in repo 'a'``.
        """
        from airflow_datum_provider.core.errors import DatumError

        branches = dict(inputs)
        for repo, commit in self.pin:
            if repo not in branches:
                names = ", ".join(sorted(branches)) or "none"
                raise ValueError(
                    f"pin: repo {repo!r} is not an input of pipeline {pipeline!r} (inputs: {names})"
                )
            try:
                info = store.inspect_commit(repo, commit)
            except DatumError:
                raise ValueError(
                    f"pin: commit {commit!r} does not exist in repo {repo!r}"
                ) from None
            if info.finished is None:
                raise ValueError(f"pin: commit {commit!r} in repo {repo!r} is not finished")
