"""A set's records in checkpoint parts: flushed by count and by clock, resumed after a crash,
refused after a lost lease, two tries side by side, the per-datum layout of record 1, and
logs capped and streamed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from airflow_datum_provider.core import create_pipeline, datum_views, live_job, plan_job
from airflow_datum_provider.core.errors import PipelineError, SetTakenOver
from airflow_datum_provider.core.jobs import JobInfo, JobRecords, _layout
from airflow_datum_provider.core.jobs.lifecycle import start_job
from airflow_datum_provider.core.jobs.liveness import Beat
from airflow_datum_provider.core.jobs.records import CheckpointPolicy
from airflow_datum_provider.core.jobs.steps import finish_job, process_set
from airflow_datum_provider.core.spec import parse_spec
from airflow_datum_provider.core.store import Store
from airflow_datum_provider.core.worker.policy import DatumResult

N = 7


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "store")
    store.create_repo("data")
    with store.commit("data") as c:
        for i in range(N):
            c.put_bytes(f"/f{i}", f"v{i}".encode())
    spec = {
        "pipeline": {"name": "copy"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": ["true"]},
        "datum_set_spec": {"number": N},  # one set of N datums
    }
    create_pipeline(store, parse_spec(spec))
    return store


def copy(ctx: Any) -> None:
    for path in ctx.inputs.values():
        (ctx.out / f"{Path(path).name}.out").write_bytes(Path(path).read_bytes())


def _planned(store: Store) -> JobInfo:
    return plan_job(store, start_job(store, "copy")).job


def _parts(store: Store, job: JobInfo, number: int = 0) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each part of a set: its name and its lines (header first)."""
    import gzip

    base = _layout.results_dir(job.pipeline, job.id, number)
    out = []
    for name in sorted(store.backend.list(base)):
        lines = gzip.decompress(store.backend.read(f"{base}/{name}")).decode().splitlines()
        out.append((name, [json.loads(line) for line in lines]))
    return out


def _results_per_part(store: Store, job: JobInfo) -> list[int]:
    return [sum("r" in line for line in lines) for _, lines in _parts(store, job)]


def _outputs(store: Store) -> dict[str, bytes]:
    return {
        e.path: store.read_bytes("copy", "master", e.path) for e in store.walk("copy", "master")
    }


def _expected() -> dict[str, bytes]:
    return {f"/f{i}.out": f"v{i}".encode() for i in range(N)}


# -- when parts are written ----------------------------------------------------------------


def test_a_part_every_n_datums_and_one_at_the_end(store: Store) -> None:
    job = _planned(store)
    summary = process_set(
        store, job, 0, python=copy, checkpoint=CheckpointPolicy(datums=3, seconds=1e6)
    )
    assert summary.success == N
    parts = _parts(store, job)
    assert [name for name, _ in parts] == [
        "000001-000000.jsonl.gz",
        "000001-000001.jsonl.gz",
        "000001-000002.jsonl.gz",
    ]
    assert _results_per_part(store, job) == [3, 3, 1]
    header = parts[0][1][0]
    assert (header["part"], header["set"], header["try"], header["seq"]) == (2, 0, 1, 0)
    # One object per datum is gone: no per-datum result, no per-datum log.
    assert store.backend.list(_layout.logs_dir(job.pipeline, job.id)) == []
    done = finish_job(store, JobRecords(store).job("copy", job.id))
    assert (done.state, done.processed) == ("success", N)
    assert _outputs(store) == _expected()


def test_a_part_when_the_clock_says_so(store: Store) -> None:
    now = [0.0]

    def copy_slowly(ctx: Any) -> None:
        copy(ctx)
        now[0] += 4.0  # each datum "takes" 4 s on the injected clock

    job = _planned(store)
    process_set(
        store,
        job,
        0,
        python=copy_slowly,
        checkpoint=CheckpointPolicy(datums=100, seconds=10.0),
        clock=lambda: now[0],
    )
    # 4, 8, 12 s -> a part after datum 3; 16, 20, 24 -> after datum 6; the end: datum 7.
    assert _results_per_part(store, job) == [3, 3, 1]


def test_the_policy_comes_from_the_environment_and_refuses_bad_values() -> None:
    assert CheckpointPolicy.from_env({}) == CheckpointPolicy(datums=100, seconds=5.0)
    policy = CheckpointPolicy.from_env(
        {"DATUM_CHECKPOINT_DATUMS": "1", "DATUM_CHECKPOINT_SECONDS": "0.5"}
    )
    assert (policy.datums, policy.seconds) == (1, 0.5)
    with pytest.raises(PipelineError, match=r"^DATUM_CHECKPOINT_DATUMS='0': expected"):
        CheckpointPolicy.from_env({"DATUM_CHECKPOINT_DATUMS": "0"})
    with pytest.raises(PipelineError, match=r"^DATUM_CHECKPOINT_SECONDS='soon': expected"):
        CheckpointPolicy.from_env({"DATUM_CHECKPOINT_SECONDS": "soon"})


def test_a_stop_request_takes_effect_within_the_control_interval(store: Store) -> None:
    from airflow_datum_provider.core.errors import JobKilled
    from airflow_datum_provider.core.jobs.liveness import write_stop

    now = [0.0]
    job = _planned(store)
    ran: list[str] = []

    def stop_after_two(ctx: Any) -> None:
        copy(ctx)
        ran.append(ctx.id)
        if len(ran) == 2:
            write_stop(store, job, "stopped by user")
        now[0] += 0.4  # the stop is read once a second (of this clock): 3 datums later

    with pytest.raises(JobKilled, match="stopped by user"):
        process_set(
            store,
            job,
            0,
            python=stop_after_two,
            checkpoint=CheckpointPolicy(datums=100, seconds=5.0),
            clock=lambda: now[0],
        )
    assert len(ran) == 3  # checked at 0 s, then at the first datum starting at >= 1 s
    # What finished before the stop is recorded.
    assert _results_per_part(store, job) == [3]


# -- a crash between parts -------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from airflow_datum_provider.core.store import Store
    from airflow_datum_provider.core.jobs import JobRecords
    from airflow_datum_provider.core.jobs.steps import process_set

    url, job_id, runs = sys.argv[1:4]

    def copy(ctx):
        for path in ctx.inputs.values():
            with open(Path(runs) / Path(path).name, "a") as fh:
                fh.write("ran\\n")
            (ctx.out / (Path(path).name + ".out")).write_bytes(Path(path).read_bytes())

    store = Store.open(url)
    job = JobRecords(store).job("copy", job_id)
    process_set(store, job, 0, python=copy)
    """
)


def _run_child(store: Store, job: JobInfo, runs: Path, env: dict[str, str]) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, store.url, job.id, str(runs)],
        env={**os.environ, **env},
        capture_output=True,
        timeout=120,
        check=False,
    )
    return proc.returncode


@pytest.mark.parametrize(
    ("point", "recorded"),
    [("after-datum:5", 3), ("after-flush", 3), ("after-flush:2", 6)],
    ids=["between-parts", "right-after-a-part", "after-the-second-part"],
)
def test_a_set_killed_between_parts_resumes_from_the_last_part(
    store: Store, tmp_path: Path, point: str, recorded: int
) -> None:
    job = _planned(store)
    runs = tmp_path / "runs"
    runs.mkdir()
    env = {"DATUM_FAILPOINT": point, "DATUM_CHECKPOINT_DATUMS": "3"}
    assert _run_child(store, job, runs, env) == -signal.SIGKILL
    first = {p.name: len(p.read_text().splitlines()) for p in runs.iterdir()}
    assert len(JobRecords(store).results(job, 0)) == recorded
    assert _results_per_part(store, job) == [3] * (recorded // 3)

    # The retry (a fresh process, try 2) runs only what no part recorded.
    assert _run_child(store, job, runs, {"DATUM_CHECKPOINT_DATUMS": "3"}) == 0
    counts = {p.name: len(p.read_text().splitlines()) for p in runs.iterdir()}
    recorded_ids = sorted(first)[:recorded]
    for name in counts:
        assert counts[name] == (1 if name in recorded_ids else first.get(name, 0) + 1), name
    assert sum(counts.values()) - N == len(first) - recorded  # the re-run: at most a part's worth
    results = JobRecords(store).results(job, 0)
    assert len(results) == N
    assert sorted(r["try"] for r in results.values()) == [1] * recorded + [2] * (N - recorded)
    done = finish_job(store, JobRecords(store).job("copy", job.id))
    assert (done.state, done.processed) == ("success", N)
    assert _outputs(store) == _expected()  # each output exactly once


# -- a lost lease, two tries ----------------------------------------------------------------


def test_a_runner_that_lost_its_lease_publishes_nothing_more(store: Store) -> None:
    job = _planned(store)
    ran: list[str] = []

    def copy_then_lose_the_set(ctx: Any) -> None:
        copy(ctx)
        ran.append(ctx.id)
        if len(ran) == 3:  # another runner takes the set over (it thought this one dead)
            key = _layout.lease(job.pipeline, job.id, 0)
            other = Beat(runner="4242@elsewhere", time=0.0, try_number=2, token="theirs")
            store.backend.write(key, other.to_bytes())

    with pytest.raises(SetTakenOver, match=r"taken over by 4242@elsewhere \(try 2\)"):
        process_set(
            store,
            job,
            0,
            python=copy_then_lose_the_set,
            checkpoint=CheckpointPolicy(datums=2, seconds=1e6),
        )
    # Part 0 (datums 1-2) was published before; datums 3-4 were refused, nothing after ran.
    assert len(ran) == 4
    assert _results_per_part(store, job) == [2]


def _result(datum_id: str, state: str, try_number: int, reason: str = "") -> DatumResult:
    return DatumResult(
        datum_id=datum_id,
        state=state,  # type: ignore[arg-type]
        reason=reason,
        try_number=try_number,
    )


def test_two_tries_never_clobber_each_other_and_the_latest_try_wins(store: Store) -> None:
    job = _planned(store)
    records = JobRecords(store)
    a, b = "a" * 64, "b" * 64
    second = records.checkpoint(job, 0, 2)
    second.add(_result(a, "success", 2))
    second.log(a, "try 2 says hi\n")
    second.flush()
    # The replaced runner (try 1) publishes late: its part stays beside try 2's...
    first = records.checkpoint(job, 0, 1)
    first.add(_result(a, "failed", 1, reason="exit status 1"))
    first.add(_result(b, "success", 1))
    first.log(a, "try 1 failed\n")
    first.flush()
    names = [name for name, _ in _parts(store, job)]
    assert names == ["000001-000000.jsonl.gz", "000002-000000.jsonl.gz"]
    # ...and readers take each datum's result and log from its latest try.
    fresh = JobRecords(store)
    results = fresh.results(job, 0)
    assert (results[a]["state"], results[a]["try"]) == ("success", 2)
    assert (results[b]["state"], results[b]["try"]) == ("success", 1)
    assert fresh.read_log(job, a) == "try 2 says hi\n"
    # A second writer of the same try and sequence number loses the create: it stops.
    twin = records.checkpoint(job, 0, 2)
    twin.add(_result(b, "failed", 2))
    with pytest.raises(SetTakenOver, match="written by another runner of try 2"):
        twin.flush()
    assert JobRecords(store).results(job, 0)[b]["state"] == "success"


# -- record 1: one object per datum -----------------------------------------------------------


def _rewrite_as_record_1(store: Store, job: JobInfo, keep: int | None = None) -> None:
    """Turn a job's parts into what the previous release wrote: an object per datum."""
    records = JobRecords(store)
    found = records.set_records(job, 0)
    base = _layout.results_dir(job.pipeline, job.id, 0)
    for name in store.backend.list(base):
        store.backend.delete(f"{base}/{name}")
    for ident, raw in list(found.results.items())[:keep]:
        store.backend.write(
            _layout.result(job.pipeline, job.id, 0, ident), json.dumps(raw).encode()
        )
        store.backend.write(_layout.log(job.pipeline, job.id, ident), found.logs[ident].encode())
    raw_job = json.loads(store.backend.read(_layout.job(job.pipeline, job.id)))
    raw_job["record"] = 1
    store.backend.write(_layout.job(job.pipeline, job.id), json.dumps(raw_job).encode())


def test_a_job_written_by_the_previous_release_is_still_read(store: Store) -> None:
    job = _planned(store)
    process_set(store, job, 0, python=copy)
    _rewrite_as_record_1(store, job)
    records = JobRecords(store)
    assert len(records.results(job, 0)) == N
    assert records.set_records(job, 0).parts == 0
    views = list(datum_views(store, job))
    assert {v.status for v in views} == {"success"}
    assert live_job(store, records.job("copy", job.id)).processed == N
    ident = views[0].id
    assert f"=== datum {ident[:12]}" in records.read_log(job, ident) or records.read_log(job, ident)
    assert sorted(records.log_ids(job)) == sorted(v.id for v in views)
    done = finish_job(store, records.job("copy", job.id))
    assert (done.state, done.processed) == ("success", N)
    assert _outputs(store) == _expected()


def test_a_record_1_job_resumed_by_this_release_mixes_both_layouts(store: Store) -> None:
    job = _planned(store)
    process_set(store, job, 0, python=copy)
    _rewrite_as_record_1(store, job, keep=4)  # the old runner died after 4 datums
    ran: list[str] = []

    def counted(ctx: Any) -> None:
        ran.append(ctx.id)
        copy(ctx)

    process_set(store, job, 0, python=counted)
    assert len(ran) == N - 4
    records = JobRecords(store)
    assert len(records.results(job, 0)) == N
    assert len(records.log_ids(job)) == N
    done = finish_job(store, records.job("copy", job.id))
    assert (done.state, done.processed) == ("success", N)
    assert _outputs(store) == _expected()


# -- logs ------------------------------------------------------------------------------------


def test_a_loud_datum_is_capped_streamed_in_pieces_and_its_tail_kept(store: Store) -> None:
    from airflow_datum_provider.cli.main import cli
    from airflow_datum_provider.core.worker._process import LOG_HEAD, LOG_TAIL

    job = _planned(store)
    chunk = "x" * 1023 + "\n"
    loud = 32 * 1024  # 32 MiB of output in 1 KiB lines, in each of the datum's 3 attempts

    def shout(ctx: Any) -> None:
        copy(ctx)
        if ctx.inputs["data"].name != "f3":
            print(f"quiet {ctx.inputs['data'].name}")
            return
        for _ in range(loud):
            sys.stdout.write(chunk)
        print("the last line")
        raise RuntimeError("boom")

    tracemalloc.start()
    try:
        process_set(
            store,
            job,
            0,
            python=shout,
            checkpoint=CheckpointPolicy(datums=100, seconds=1e6, log_chars=256 << 10),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Head + tail kept (1 + 1 MiB), never the 96 MiB printed; the peak is a few copies of the
    # kept text on their way into a part.
    assert peak < 12 << 20, peak
    parts = _parts(store, job)
    log_only = [lines for _, lines in parts if not any("r" in line for line in lines)]
    assert len(log_only) >= 4  # pieces published while the datum still ran
    records = JobRecords(store)
    (bad,) = [r for r in records.results(job, 0).values() if r["state"] == "failed"]
    text = records.read_log(job, bad["datum_id"])
    assert LOG_HEAD + LOG_TAIL <= len(text) <= LOG_HEAD + LOG_TAIL + 4096
    assert f"a datum's log keeps its first {LOG_HEAD} and last {LOG_TAIL} characters" in text
    assert text.rstrip().endswith("RuntimeError('boom')") or "the last line" in text
    assert "the last line" in bad["log_tail"]  # what the Airflow task log shows on failure
    # datumctl logs shows it, and the quiet datums' logs.
    out = CliRunner().invoke(
        cli, ["--store", store.url, "logs", "-j", f"copy@{job.id}", "--datum", bad["datum_id"]]
    )
    assert out.exit_code == 0, out.output
    assert "the last line" in out.output
    every = CliRunner().invoke(cli, ["--store", store.url, "logs", "-j", f"copy@{job.id}"])
    assert every.exit_code == 0, every.output
    assert all(f"quiet f{i}" in every.output for i in range(N) if i != 3)
