"""``PutFilesOperator``: commit files from a DAG into a repo, as one commit.

Ingestion DAGs feed repos with it and so start the pipeline chain: its outlet is the branch's
``DatumAsset`` (added for you when ``repo`` and ``branch`` are not templated), and the Asset
event's ``extra`` names the new commit, so a DAG scheduled on that Asset pins its job to it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_datum_provider.core.store.paths import check_name

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["PutFilesOperator"]


class PutFilesOperator(BaseOperator):
    """Put local files, ``ObjectStoragePath`` objects or bytes into ``repo@branch``; one commit.

    :param repo: the repo (created if missing, unless ``create_repo=False``).
    :param files: ``{store path: source}`` or a list of sources (each put at ``/<its name>``).
        A source is ``bytes``, ``{"text": str}`` or ``{"base64": str}`` (content; the last two
        travel through XCom, which cannot carry bytes), a local file or folder path, or an
        ``ObjectStoragePath`` (file or folder). An ``XComArg`` (an upstream task's return
        value) works too.
    :param branch: the branch (default ``master``).
    :param store: a store URL, an ``ObjectStoragePath`` or ``None`` (``datum_store_default``,
        then ``$DATUM_STORE``, then the embedded default folder).
    :param datum_store_conn_id: a ``datum_store`` connection instead of ``store``.
    :param description: the commit's description.

    Returns the commit id (XCom). Either every source lands in the one commit or none does.
    """

    template_fields: Sequence[str] = ("repo", "branch", "files", "description")
    ui_color = "#e8eaf6"

    def __init__(
        self,
        *,
        repo: str,
        files: Any,
        branch: str = "master",
        store: Any = None,
        datum_store_conn_id: str | None = None,
        description: str = "",
        create_repo: bool = True,
        **kwargs: Any,
    ) -> None:
        static = "{{" not in repo and "{{" not in branch
        if static:
            check_name(repo, "repo")
            check_name(branch, "branch")
            if "outlets" not in kwargs:
                from airflow_datum_provider.assets import DatumAsset

                kwargs["outlets"] = [DatumAsset(repo, branch)]
        super().__init__(**kwargs)
        if store is not None and datum_store_conn_id is not None:
            raise ValueError(f"{self.task_id}: give store or datum_store_conn_id, not both")
        self.repo = repo
        self.branch = branch
        self.files = files
        self.store = store
        self.datum_store_conn_id = datum_store_conn_id
        self.description = description
        self.create_repo = create_repo

    def _items(self) -> list[tuple[str, Any]]:
        files = self.files
        if isinstance(files, Mapping):
            return list(files.items())
        if isinstance(files, (str, bytes, os.PathLike)) or hasattr(files, "fs"):
            files = [files]
        items: list[tuple[str, Any]] = []
        for source in files:
            if isinstance(source, (bytes, bytearray)):
                raise ValueError(
                    f"{self.task_id}: bytes need a store path: give files={{'/name': data}}"
                )
            name = getattr(source, "name", None) or os.path.basename(os.fspath(source))
            items.append((f"/{name}", source))
        return items

    def execute(self, context: Context) -> str:
        """Commit the files; return the commit id."""
        from airflow_datum_provider.hooks.store import DatumStoreHook, put_files, resolve_store

        if self.datum_store_conn_id is not None:
            store = DatumStoreHook(self.datum_store_conn_id).get_store()
        else:
            store = resolve_store(self.store)
        info = put_files(
            store,
            self.repo,
            self._items(),
            branch=self.branch,
            description=self.description,
            create_repo=self.create_repo,
            context=context,
        )
        return info.id
