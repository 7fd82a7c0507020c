"""Where pipeline and job records live inside a store: every ``meta/`` key, written down once.

::

    meta/pipelines/<name>/pipeline.json               PipelineInfo (spec, salt, version)
    meta/pipelines/<name>/versions/<v>.json           PipelineInfo of version v (immutable)
    meta/pipelines/<name>/jobs/<job>/job.json         JobInfo (rewritten atomically on change)
    meta/pipelines/<name>/jobs/<job>/sets/<n>.json.gz one datum set: Datum dicts, one per line
    meta/pipelines/<name>/jobs/<job>/skipped.json.gz  skipped datums (carried forward)
    meta/pipelines/<name>/jobs/<job>/results/<n>/<try>-<seq>.jsonl.gz  a checkpoint part of
                                                      set n: results and log pieces (record 2)
    meta/pipelines/<name>/jobs/<job>/results/<n>/<datum>.json   per-datum result (record 1)
    meta/pipelines/<name>/jobs/<job>/logs/<datum>     a datum's stdout / stderr (record 1)
    meta/pipelines/<name>/jobs/<job>/index.gz         datum index: id, hash, state (after merge)
    meta/pipelines/<name>/jobs/<job>/stop             stop request: its text is the reason
    meta/pipelines/<name>/jobs/<job>/heartbeat        the runner's ``pid@host`` and last beat
    meta/pipelines/<name>/jobs/<job>/leases/<n>.json  the lease of set n: runner, try, time

Set numbers are zero-padded to :data:`SET_WIDTH` digits so listings sort numerically.
"""

from __future__ import annotations

SET_WIDTH = 6
ROOT = "meta/pipelines"


def pipelines() -> str:
    return ROOT


def pipeline_dir(name: str) -> str:
    return f"{ROOT}/{name}"


def pipeline(name: str) -> str:
    return f"{ROOT}/{name}/pipeline.json"


def versions_dir(name: str) -> str:
    return f"{ROOT}/{name}/versions"


def version(name: str, number: int) -> str:
    return f"{ROOT}/{name}/versions/{number:06d}.json"


def jobs_dir(name: str) -> str:
    return f"{ROOT}/{name}/jobs"


def job_dir(name: str, job: str) -> str:
    return f"{ROOT}/{name}/jobs/{job}"


def job(name: str, job_id: str) -> str:
    return f"{job_dir(name, job_id)}/job.json"


def sets_dir(name: str, job_id: str) -> str:
    return f"{job_dir(name, job_id)}/sets"


def datum_set(name: str, job_id: str, number: int) -> str:
    return f"{job_dir(name, job_id)}/sets/{number:0{SET_WIDTH}d}.json.gz"


def skipped(name: str, job_id: str) -> str:
    return f"{job_dir(name, job_id)}/skipped.json.gz"


def results_dir(name: str, job_id: str, number: int) -> str:
    return f"{job_dir(name, job_id)}/results/{number:0{SET_WIDTH}d}"


def result(name: str, job_id: str, number: int, datum_id: str) -> str:
    return f"{results_dir(name, job_id, number)}/{datum_id}.json"


PART_SUFFIX = ".jsonl.gz"


def part(name: str, job_id: str, number: int, try_number: int, seq: int) -> str:
    """One checkpoint part of set ``number``: written once by try ``try_number``, ``seq``-th."""
    return f"{results_dir(name, job_id, number)}/{try_number:06d}-{seq:06d}{PART_SUFFIX}"


def part_order(part_name: str) -> tuple[int, int] | None:
    """``(try, seq)`` of a part's file name; ``None`` for any other name."""
    if not part_name.endswith(PART_SUFFIX):
        return None
    head, _, tail = part_name[: -len(PART_SUFFIX)].partition("-")
    if not (head.isdigit() and tail.isdigit()):
        return None
    return int(head), int(tail)


def logs_dir(name: str, job_id: str) -> str:
    return f"{job_dir(name, job_id)}/logs"


def log(name: str, job_id: str, datum_id: str) -> str:
    return f"{job_dir(name, job_id)}/logs/{datum_id}"


def index(name: str, job_id: str) -> str:
    return f"{job_dir(name, job_id)}/index.gz"


def stop(name: str, job_id: str) -> str:
    return f"{job_dir(name, job_id)}/stop"


def heartbeat(name: str, job_id: str) -> str:
    return f"{job_dir(name, job_id)}/heartbeat"


def leases_dir(name: str, job_id: str) -> str:
    return f"{job_dir(name, job_id)}/leases"


def lease(name: str, job_id: str, number: int) -> str:
    return f"{job_dir(name, job_id)}/leases/{number:0{SET_WIDTH}d}.json"
