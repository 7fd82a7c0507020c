"""``datumctl run pipeline --batch-config``: a set's datums through the batch executor, end to end.

Real runs go through the installed console script (a subprocess, a store in ``tmp_path``, ``sh``
transforms); bad values are checked in-process with click's CliRunner. No timing is asserted
except generous upper bounds that prove a killed ``sleep`` did not run to its end.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from airflow_datum_provider.batch.config import PRESETS, load_batch_config
from airflow_datum_provider.batch.datums import chunk_timeout_reason
from airflow_datum_provider.cli.main import cli
from airflow_datum_provider.core.jobs import JobRecords
from airflow_datum_provider.core.store import Store
from tests.cli.conftest import DATUMCTL, Run

# One datum per file: record that it started, pause or fail by name, write a derived output.
WORK = (
    'n=$(basename "$data"); echo "$n" >> "$STARTED"; '
    'case "$n" in slow*) sleep 60;; bad*) echo "cannot read $n" >&2; exit 3;; esac; '
    'tr a-z A-Z < "$data" > "$PFS_ROOT/out/$n"; wc -c < "$data" > "$PFS_ROOT/out/$n.size"'
)


def _spec(tmp_path: Path, name: str, *, one_set: bool = False) -> Path:
    spec: dict[str, Any] = {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {
            "cmd": ["sh", "-c", WORK],
            "env": {"STARTED": str(tmp_path / f"{name}.started")},
        },
        "datum_tries": 1,
    }
    if one_set:  # else the default datum_set_spec cuts one set per datum or few
        spec["datum_set_spec"] = {"number": 1000}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec))
    return path


def _data(store_dir: Path, files: dict[str, bytes]) -> None:
    store = Store.open(store_dir)
    store.create_repo("data")
    with store.commit("data", "master") as c:
        for path, data in files.items():
            c.put_bytes(path, data)


def _outputs(store_dir: Path, repo: str) -> dict[str, bytes]:
    store = Store.open(store_dir)
    return {e.path: store.read_bytes(repo, "master", e.path) for e in store.walk(repo, "master")}


def _started(tmp_path: Path, name: str) -> list[str]:
    path = tmp_path / f"{name}.started"
    return path.read_text().split() if path.exists() else []


def _no_process_left(marker: str, within: float = 20.0) -> None:
    """No process whose environment mentions ``marker`` (the test's folder) outlives the run."""
    proc = Path("/proc")
    if not proc.is_dir():
        return
    deadline = time.monotonic() + within
    while True:
        left = []
        for entry in proc.iterdir():
            if entry.name.isdigit():
                try:
                    if marker.encode() in (entry / "environ").read_bytes():
                        left.append(entry.name)
                except OSError:
                    continue
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"processes left running: {left}"


def _datum_of(store_dir: Path, pipeline: str, path: str) -> str:
    """The id of the datum of the last job of ``pipeline`` whose input is ``path``."""
    records = JobRecords(Store.open(store_dir))
    job = records.jobs(pipeline)[0]
    for number in records.set_numbers(job):
        for datum in records.read_set(job, number):
            if datum.inputs[0].path == path:
                return datum.id
    raise AssertionError(f"no datum of {path}")


FILES = {f"/f{i:02d}": f"line {i}\n".encode() * (i + 1) for i in range(12)}


def test_parallel_preset_gives_the_outputs_of_the_default_run(
    run: Run, tmp_path: Path, store_dir: Path
) -> None:
    _data(store_dir, FILES)
    run("create", "pipeline", "-f", str(_spec(tmp_path, "plain")))
    run("create", "pipeline", "-f", str(_spec(tmp_path, "batched", one_set=True)))
    run("run", "pipeline", "plain")
    done = run("run", "pipeline", "batched", "--batch-config", "parallel")
    assert re.search(rb"^[0-9a-f]{32} success 12 \+ 0 / 12$", done.stdout, re.M), done.stdout
    plain, batched = _outputs(store_dir, "plain"), _outputs(store_dir, "batched")
    assert len(plain) == 24
    assert batched == plain
    assert sorted(_started(tmp_path, "batched")) == sorted(p[1:] for p in FILES)
    # Unchanged inputs: the next batched job skips every datum, as the default one does.
    again = run("run", "pipeline", "batched", "--batch-config", '{"max_workers": 3}')
    assert re.search(rb" success 0 \+ 12 / 12$", again.stdout, re.M)
    assert len(_started(tmp_path, "batched")) == 12


def test_batch_config_reaches_spawned_set_workers(
    run: Run, tmp_path: Path, store_dir: Path
) -> None:
    """--parallelism 2 runs sets in spawned processes; each enforces the config it was sent."""
    _data(store_dir, {"/a": b"a", "/b": b"b", "/slow": b"s", "/z": b"z"})
    run("create", "pipeline", "-f", str(_spec(tmp_path, "pooled")))
    config = '{"max_workers": 2, "chunk_timeout_seconds": 5}'
    failed = run(
        "run", "pipeline", "pooled", "--parallelism", "2", "--batch-config", config, code=1
    )
    slow = _datum_of(store_dir, "pooled", "/slow")
    err = failed.stderr.decode()
    assert f"failure: datum {slow} failed" in err
    assert "datum timed out after 5s (batch_config.chunk_timeout_seconds)" in err
    assert sorted(_started(tmp_path, "pooled")) == ["a", "b", "slow", "z"]


def test_fail_fast_stops_the_set_and_the_job_fails_with_that_datum(
    run: Run, tmp_path: Path, store_dir: Path
) -> None:
    files = {"/a0": b"x", "/a1": b"y", "/bad2": b"z", "/c3": b"w", "/c4": b"v", "/c5": b"u"}
    _data(store_dir, files)
    run("create", "pipeline", "-f", str(_spec(tmp_path, "ff")))
    config = tmp_path / "ff.yaml"
    config.write_text("preset: fail-fast\nmax_workers: 1\n")
    failed = run("run", "pipeline", "ff", "--batch-config", str(config), code=1)
    err = failed.stderr.decode()
    bad = _datum_of(store_dir, "ff", "/bad2")
    assert re.search(
        rf"^datumctl: error: job [0-9a-f]{{32}} failure: datum {bad} failed$", err, re.M
    )
    assert f"datum {bad} (data@" in err
    assert "exit status 3" in err
    # Nothing after the failed datum: not in its set, and no later set (one datum per set here).
    assert _started(tmp_path, "ff") == ["a0", "a1", "bad2"]
    store = Store.open(store_dir)
    assert store.branch_head("ff", "master") is None  # the output branch did not move
    job = JobRecords(store).jobs("ff")[0]
    assert (job.state, job.reason) == ("failure", f"datum {bad} failed")


def test_chunk_timeout_fails_the_datum_with_its_reason(
    run: Run, tmp_path: Path, store_dir: Path
) -> None:
    _data(store_dir, {"/a": b"a", "/slow": b"s", "/z": b"z"})
    run("create", "pipeline", "-f", str(_spec(tmp_path, "to", one_set=True)))
    started = time.monotonic()
    config = '{"chunk_timeout_seconds": 5, "max_workers": 2}'
    failed = run("run", "pipeline", "to", "--batch-config", config, code=1)
    assert time.monotonic() - started < 50  # the 60 s sleep was killed, not waited for
    err = failed.stderr.decode()
    slow = _datum_of(store_dir, "to", "/slow")
    assert f"failure: datum {slow} failed" in err
    reason = "datum timed out after 5s (batch_config.chunk_timeout_seconds)"
    assert f"datum {slow} (data@" in err
    assert reason in err
    records = JobRecords(Store.open(store_dir))
    job = records.jobs("to")[0]
    states = {
        d: r["state"] for n in records.set_numbers(job) for d, r in records.results(job, n).items()
    }
    assert sorted(states.values()) == ["failed", "success", "success"]
    assert records.results(job, 0)[slow]["reason"] == reason
    assert sorted(_started(tmp_path, "to")) == ["a", "slow", "z"]
    _no_process_left(str(tmp_path / "to.started"))  # the timed-out `sleep 60` was killed


def test_set_timeout_kills_the_job_and_leaves_the_rest_not_run(
    run: Run, tmp_path: Path, store_dir: Path
) -> None:
    _data(store_dir, {"/slow": b"s", "/z": b"z"})
    run("create", "pipeline", "-f", str(_spec(tmp_path, "st", one_set=True)))
    started = time.monotonic()
    config = '{"timeout_seconds": 2, "max_workers": 1}'
    failed = run("run", "pipeline", "st", "--batch-config", config, code=1)
    assert time.monotonic() - started < 50
    reason = "set timed out after 2s (batch_config.timeout_seconds)"
    assert re.search(
        rf"job [0-9a-f]{{32}} killed: {re.escape(reason)}$", failed.stderr.decode(), re.M
    )
    assert _started(tmp_path, "st") == ["slow"]  # /z never started
    records = JobRecords(Store.open(store_dir))
    job = records.jobs("st")[0]
    assert (job.state, job.reason) == ("killed", reason)
    results = records.results(job, 0)
    assert results[_datum_of(store_dir, "st", "/slow")]["reason"] == reason
    assert _datum_of(store_dir, "st", "/z") not in results
    _no_process_left(str(tmp_path / "st.started"))


def test_watch_runs_each_job_on_the_batch_config(
    run: Run, tmp_path: Path, store_dir: Path, clean_env: dict[str, str]
) -> None:
    _data(store_dir, {"/a": b"a", "/slow": b"s"})
    run("create", "pipeline", "-f", str(_spec(tmp_path, "watched", one_set=True)))
    assert DATUMCTL is not None
    config = '{"chunk_timeout_seconds": 5, "max_workers": 2}'
    argv = [DATUMCTL, "--store", str(store_dir), "watch", "--interval", "0.1"]
    watcher = subprocess.Popen(
        [*argv, "--batch-config", config],
        env=clean_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    records = JobRecords(Store.open(store_dir))
    try:
        deadline = time.monotonic() + 60
        while not (records.jobs("watched") and records.jobs("watched")[0].done):
            assert time.monotonic() < deadline, "the watched job did not end"
            time.sleep(0.05)
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    job = records.jobs("watched")[0]
    slow = _datum_of(store_dir, "watched", "/slow")
    assert (job.state, job.reason) == ("failure", f"datum {slow} failed")
    assert records.results(job, 0)[slow]["reason"] == chunk_timeout_reason(5)
    assert len(records.jobs("watched")) == 1  # inputs unchanged: watch did not run it again
    _no_process_left(str(tmp_path / "watched.started"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "paralel",
            "batch_config: 'paralel' is not a preset (default, parallel, sequential, "
            "fail-fast, large-data), a file, or a JSON/YAML mapping",
        ),
        ('{"max_workers": 0}', "batch_config.max_workers: must be a positive integer, got 0"),
        ('{"fail_fast": "yes"}', "batch_config.fail_fast: must be true or false, got 'yes'"),
        (
            '{"execution_strategy": "fast"}',
            "batch_config.execution_strategy: 'fast' is not one of SEQUENTIAL, PARALLEL, ADAPTIVE",
        ),
        (
            '{"chunk_timeout_seconds": -1}',
            "batch_config.chunk_timeout_seconds: must be a positive number of seconds or None, "
            "got -1",
        ),
        ('{"max_worker": 2}', "batch_config: unknown key(s) max_worker; allowed: "),
        ('{"preset": "turbo"}', "batch_config.preset: 'turbo' is not one of default, parallel"),
        ("[1, 2]", "batch_config: '[1, 2]' is not a preset"),
    ],
)
def test_bad_batch_config_is_one_line_naming_the_field(
    tmp_path: Path, value: str, message: str
) -> None:
    store = Store.open(tmp_path / "store")
    store.create_repo("data")
    result = CliRunner().invoke(
        cli,
        ["--store", str(tmp_path / "store"), "run", "pipeline", "nope", "--batch-config", value],
    )
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"datumctl: error: {message}"), lines[0]


def test_presets_are_the_configs_of_batch_config() -> None:
    from airflow_datum_provider.batch import (
        DEFAULT_BATCH_CONFIG,
        FAIL_FAST_BATCH_CONFIG,
        LARGE_DATA_BATCH_CONFIG,
        PARALLEL_BATCH_CONFIG,
        SEQUENTIAL_BATCH_CONFIG,
    )

    assert PRESETS == {
        "default": DEFAULT_BATCH_CONFIG,
        "parallel": PARALLEL_BATCH_CONFIG,
        "sequential": SEQUENTIAL_BATCH_CONFIG,
        "fail-fast": FAIL_FAST_BATCH_CONFIG,
        "large-data": LARGE_DATA_BATCH_CONFIG,
    }
    assert load_batch_config("Fail_Fast") is FAIL_FAST_BATCH_CONFIG
    merged = load_batch_config('{"preset": "parallel", "max_workers": 2}')
    assert (merged.max_workers, merged.execution_strategy) == (
        2,
        PARALLEL_BATCH_CONFIG.execution_strategy,
    )
