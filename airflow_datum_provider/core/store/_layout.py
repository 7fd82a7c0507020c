"""Where everything lives inside a store root. Written down once; versioned by ``FORMAT``.

::

    FORMAT                                  {"format": "datum-store", "version": 1}
    blobs/<h[:2]>/<h>                       file content, named by its BLAKE2b-256 (hex)
    chunks/<h[:2]>/<h>                      manifest chunk (gzip TSV), named by its hash
    repos/<repo>/repo.json                  repo record
    repos/<repo>/branches/<branch>/<seq>    ref log: one immutable object per head version
    repos/<repo>/commits/<id>.json          finished commit record (immutable once landed)
    repos/<repo>/manifests/<id>.json        manifest index of a commit (chunk list)
    repos/<repo>/open/<id>/info.json        an unfinished commit
    repos/<repo>/open/<id>/ops/<seq>        staged changes, one sorted segment per flush
    meta/...                                pipelines and jobs (see core.jobs)
"""

from __future__ import annotations

FORMAT = "FORMAT"
FORMAT_NAME = "datum-store"
FORMAT_VERSION = 1
SEQ_WIDTH = 12


def blob(digest: str) -> str:
    return f"blobs/{digest[:2]}/{digest}"


def chunk(digest: str) -> str:
    return f"chunks/{digest[:2]}/{digest}"


def repos() -> str:
    return "repos"


def repo_dir(repo: str) -> str:
    return f"repos/{repo}"


def repo_record(repo: str) -> str:
    return f"repos/{repo}/repo.json"


def branches(repo: str) -> str:
    return f"repos/{repo}/branches"


def branch_dir(repo: str, branch: str) -> str:
    return f"repos/{repo}/branches/{branch}"


def ref(repo: str, branch: str, seq: int) -> str:
    return f"repos/{repo}/branches/{branch}/{seq:0{SEQ_WIDTH}d}"


def commits(repo: str) -> str:
    return f"repos/{repo}/commits"


def commit(repo: str, commit_id: str) -> str:
    return f"repos/{repo}/commits/{commit_id}.json"


def manifest(repo: str, commit_id: str) -> str:
    return f"repos/{repo}/manifests/{commit_id}.json"


def open_commits(repo: str) -> str:
    return f"repos/{repo}/open"


def open_dir(repo: str, commit_id: str) -> str:
    return f"repos/{repo}/open/{commit_id}"


def open_info(repo: str, commit_id: str) -> str:
    return f"repos/{repo}/open/{commit_id}/info.json"


def open_ops(repo: str, commit_id: str) -> str:
    return f"repos/{repo}/open/{commit_id}/ops"


def open_segment(repo: str, commit_id: str, seq: int) -> str:
    return f"repos/{repo}/open/{commit_id}/ops/{seq:0{SEQ_WIDTH}d}"
