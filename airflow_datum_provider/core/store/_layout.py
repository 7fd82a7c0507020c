"""Where everything lives inside a store root. Written down once; versioned by ``FORMAT``.

::

    FORMAT                                  {"format": "datum-store", "version": 3}
    blobs/<h[:2]>/<h>                       file content, named by its BLAKE2b-256 (hex)
    packs/<id>                              small blobs back to back + index + trailer (packs.py)
    chunks/<h[:2]>/<h>                      manifest chunk (gzip TSV), named by its hash
    repos/<repo>/repo.json                  repo record
    repos/<repo>/branches/<branch>/<seq>    ref log: one immutable JSON object per head version
                                            ({"commit": id, "record": {...}} when a commit lands)
    repos/<repo>/commits/<id>.json          landed commit record (written after the ref CAS)
    repos/<repo>/manifests/<h>.json         manifest index (chunk list), named by its hash
                                            (format 1 stores: named by the commit id)
    repos/<repo>/open/<id>/info.json        an unfinished commit (with its owner)
    repos/<repo>/open/<id>/ops/<seq>        staged changes, one sorted segment per flush
    repos/<repo>/open/<id>/landing-<seq>    a finisher is about to create ref <seq>
    meta/...                                pipelines and jobs (see core.jobs)
"""

from __future__ import annotations

FORMAT = "FORMAT"
FORMAT_NAME = "datum-store"
# 3: packs (manifest entries and staged ops may carry a 5th / 6th column, the pack location).
# Versions 1 and 2 are read as they are; opening one marks it 3, so that an older release
# refuses it instead of misreading a packed entry.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
SEQ_WIDTH = 12


def blob(digest: str) -> str:
    return f"blobs/{digest[:2]}/{digest}"


def packs() -> str:
    return "packs"


def pack(pack_id: str) -> str:
    return f"packs/{pack_id}"


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


def open_landing(repo: str, commit_id: str, seq: int) -> str:
    return f"repos/{repo}/open/{commit_id}/landing-{seq:0{SEQ_WIDTH}d}"


LANDING_PREFIX = "landing-"


def open_segment(repo: str, commit_id: str, seq: int) -> str:
    return f"repos/{repo}/open/{commit_id}/ops/{seq:0{SEQ_WIDTH}d}"
