"""The versioned repo store on fsspec: repos, branches, immutable commits, blobs."""

from __future__ import annotations

from airflow_datum_provider.core.store._backend import check_store_url, redact_url
from airflow_datum_provider.core.store.manifest import Entry, Manifest
from airflow_datum_provider.core.store.paths import check_name, clean_path
from airflow_datum_provider.core.store.store import (
    OWNER_JOB,
    OWNER_PUT,
    OWNER_SHARED,
    BranchInfo,
    CommitInfo,
    FileDiff,
    FileInfo,
    OpenCommit,
    RepoInfo,
    Store,
)

__all__ = [
    "OWNER_JOB",
    "OWNER_PUT",
    "OWNER_SHARED",
    "BranchInfo",
    "CommitInfo",
    "Entry",
    "FileDiff",
    "FileInfo",
    "Manifest",
    "OpenCommit",
    "RepoInfo",
    "Store",
    "check_name",
    "check_store_url",
    "clean_path",
    "redact_url",
]
