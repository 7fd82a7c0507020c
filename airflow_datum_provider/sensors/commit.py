"""``CommitSensor``: wait for a finished commit on a branch that this DAG has not taken yet.

"Not taken yet" lives in the store, as claims (:mod:`airflow_datum_provider.core.claims`): the
sensor claims the head for its consumer (default ``<dag_id>.<task_id>``) on behalf of its DAG
run, so the next DAG run waits for the next commit, and a retried or rescheduled try of the same
run gets the same commit back. It returns the commit id (XCom ``return_value``), so a downstream
task can pin its job to exactly that commit; the whole claim (every commit since the previous
one) is pushed as XCom ``claim``.

Modes: ``poke`` (a worker slot held), ``reschedule`` (slot freed between pokes) and
``deferrable=True`` (the wait moves to the triggerer as a :class:`CommitTrigger`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_datum_provider.core.store.paths import check_name
from airflow_datum_provider.triggers.commit import CommitTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_datum_provider.core.claims import Claim
    from airflow_datum_provider.core.store import Store

__all__ = ["CommitSensor"]


class CommitSensor(BaseSensorOperator):
    """Wait for a commit on ``repo@branch`` not yet claimed by this sensor's consumer.

    :param repo: the repo to watch.
    :param branch: its branch (default ``master``).
    :param store: a store URL, an ``ObjectStoragePath`` or ``None`` (``datum_store_default``,
        then ``$DATUM_STORE``, then the embedded default folder).
    :param datum_store_conn_id: a ``datum_store`` connection instead of ``store``.
    :param consumer: whose progress this is; default ``<dag_id>.<task_id>``. Sensors in
        different DAGs that must each see every commit keep distinct consumers.
    :param deferrable: wait in the triggerer (``CommitTrigger``) instead of a worker.
    """

    template_fields: Sequence[str] = ("repo", "branch", "consumer")
    ui_color = "#e0f2e9"

    def __init__(
        self,
        *,
        repo: str,
        branch: str = "master",
        store: Any = None,
        datum_store_conn_id: str | None = None,
        consumer: str | None = None,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if "{{" not in repo:
            check_name(repo, "repo")
        if "{{" not in branch:
            check_name(branch, "branch")
        if store is not None and datum_store_conn_id is not None:
            raise ValueError(f"{self.task_id}: give store or datum_store_conn_id, not both")
        if deferrable and store is not None and not isinstance(store, str):
            raise ValueError(
                f"{self.task_id}: a deferrable sensor needs a store URL string or "
                "datum_store_conn_id (the trigger is serialised), not "
                f"{type(store).__name__}"
            )
        self.repo = repo
        self.branch = branch
        self.store = store
        self.datum_store_conn_id = datum_store_conn_id
        self.consumer = consumer
        self.deferrable = deferrable

    def _consumer(self) -> str:
        return self.consumer or f"{self.dag_id}.{self.task_id}"

    @staticmethod
    def _claimant(context: Context) -> str:
        return f"{context['dag'].dag_id}/{context['run_id']}"

    def _open_store(self) -> Store:
        from airflow_datum_provider.hooks.store import DatumStoreHook, resolve_store

        if self.datum_store_conn_id is not None:
            return DatumStoreHook(self.datum_store_conn_id).get_store()
        return resolve_store(self.store)

    def _claim(self, context: Context) -> Claim | None:
        from airflow_datum_provider.core.claims import claim_next

        return claim_next(
            self._open_store(),
            self._consumer(),
            self.repo,
            self.branch,
            by=self._claimant(context),
        )

    def _done(self, context: Context, claim: Claim) -> str:
        self.log.info(
            "Commit %s on %s@%s (%d commits since the last one this consumer took)",
            claim.commit,
            self.repo,
            self.branch,
            len(claim.commits),
        )
        context["ti"].xcom_push(key="claim", value=claim.to_dict())
        return claim.commit

    def poke(self, context: Context) -> PokeReturnValue:
        """Claim the head if it is new; done with the commit id as XCom."""
        claim = self._claim(context)
        if claim is None:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._done(context, claim))

    def execute(self, context: Context) -> Any:
        """Poke / reschedule as usual; deferrable: one poll here, then wait in the triggerer."""
        if not self.deferrable:
            return super().execute(context)
        claim = self._claim(context)
        if claim is not None:
            return self._done(context, claim)
        self.defer(
            trigger=CommitTrigger(
                repo=self.repo,
                branch=self.branch,
                datum_store_conn_id=self.datum_store_conn_id,
                store=self.store,
                consumer=self._consumer(),
                claimant=self._claimant(context),
                poll_interval=self.poke_interval,
                once=True,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )
        return None  # not reached: defer() raises

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger: the commit id, or the trigger's one-line error."""
        from airflow.sdk.exceptions import AirflowException

        if event.get("status") != "commit":
            raise AirflowException(
                f"{self.task_id}: waiting for {self.repo}@{self.branch} failed: "
                f"{event.get('message', event)}"
            )
        # The trigger made the claim; re-reading it returns the same claim (same claimant).
        claim = self._claim(context)
        if claim is None or claim.commit != event["commit"]:
            raise AirflowException(
                f"{self.task_id}: the claim of {event['commit']} on {self.repo}@{self.branch} "
                "is gone from the store"
            )
        return self._done(context, claim)
