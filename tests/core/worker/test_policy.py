"""The attempt policy driven by a runtime of the test's own: the interface a new runtime meets."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from airflow_datum_provider.core.worker import JobContext, RunOptions, run_datum
from airflow_datum_provider.core.worker._process import LogSink
from airflow_datum_provider.core.worker.policy import AttemptPolicy, DatumResult, attempts
from airflow_datum_provider.core.worker.runtime import Run
from airflow_datum_provider.core.worker.scratch import Scratch, lay_out
from tests.core.worker.conftest import World


class Scripted:
    """A runtime answering each run from a script, writing ``out/`` like user code would."""

    def __init__(self, answers: list[str | None]) -> None:
        self.answers = answers
        self.runs: list[tuple[str, int, float | None]] = []

    def run(self, run: Run) -> str | None:
        self.runs.append((run.kind, run.attempt, run.timeout))
        answer = self.answers.pop(0)
        if run.kind == "transform":
            (run.scratch.out / f"try{run.attempt}").write_text(run.datum.inputs[0].name)
        return answer


def _run(world: World, runtime: Scripted, **options: object) -> DatumResult:
    return run_datum(
        world.store,
        world.datum(world.input("in", "/a.txt")),
        options=RunOptions(cmd=("unused",), **options),  # type: ignore[arg-type]
        job=JobContext(job_id="j", output_commit="c", pipeline="p"),
        scratch_root=world.scratch,
        runtime=runtime,
    )


@pytest.mark.parametrize(
    ("answers", "err_cmd", "state", "runs", "outputs"),
    [
        (["exit status 1", None], False, "success", ["transform", "transform"], ["/try2"]),
        (["exit status 1"] * 3, False, "failed", ["transform"] * 3, []),
        (
            ["exit status 1", None, None],
            True,
            "success",
            ["transform", "err_cmd", "transform"],
            ["/try2"],
        ),
        (
            ["exit status 1", None, "exit status 1", "exit status 9"],
            True,
            "recovered",
            ["transform", "err_cmd", "transform", "err_cmd"],
            [],
        ),
        (
            ["exit status 1", "exit status 2", "exit status 1", "exit status 2"],
            True,
            "failed",
            ["transform", "err_cmd", "transform", "err_cmd"],
            [],
        ),
    ],
    ids=["retry-succeeds", "all-fail", "err-cmd-then-success", "recovered", "err-cmd-fails"],
)
def test_policy_over_a_runtime_of_ones_own(
    world: World,
    answers: list[str | None],
    err_cmd: bool,
    state: str,
    runs: list[str],
    outputs: list[str],
) -> None:
    tries = sum(1 for kind in runs if kind == "transform")
    runtime = Scripted(list(answers))
    result = _run(
        world,
        runtime,
        datum_tries=tries,
        err_cmd=("true",) if err_cmd else (),
        datum_timeout=7.0,
    )
    assert result.state == state
    assert [kind for kind, _, _ in runtime.runs] == runs
    assert {timeout for _, _, timeout in runtime.runs} == {7.0}
    assert sorted(e.path for e in result.outputs) == outputs
    assert result.attempts == tries


def test_two_datums_interleaved_as_a_batching_runtime_would(world: World, tmp_path: Path) -> None:
    """Generators of two datums advanced alternately: each gets the same semantics."""
    sink = LogSink(io.StringIO(), False)
    policy = AttemptPolicy(tries=2, err_cmd=True)
    datums = [world.datum(world.input("in", "/a.txt")), world.datum(world.input("in", "/b.txt"))]
    roots = [tmp_path / "r0", tmp_path / "r1"]

    def prepare(i: int) -> Scratch:
        return lay_out(world.store, datums[i], roots[i], variables={}, link=False)

    gens = [
        attempts(
            datums[i],
            policy,
            prepare=lambda i=i: prepare(i),  # type: ignore[misc]
            collect=lambda: ((), 0),
            sink=sink,
        )
        for i in range(2)
    ]
    pending = [next(g) for g in gens]
    assert [r.kind for r in pending] == ["transform", "transform"]
    pending[0] = gens[0].send("exit status 1")  # datum 0 fails → its err_cmd next
    assert (pending[0].kind, pending[0].attempt) == ("err_cmd", 1)
    results: list[DatumResult | None] = [None, None]
    try:
        gens[1].send(None)
    except StopIteration as stop:
        results[1] = stop.value
    pending[0] = gens[0].send(None)  # err_cmd succeeded: the second attempt still runs
    assert (pending[0].kind, pending[0].attempt) == ("transform", 2)
    pending[0] = gens[0].send("exit status 1")
    try:
        gens[0].send("exit status 3")
    except StopIteration as stop:
        results[0] = stop.value
    assert results[0] is not None
    assert results[1] is not None
    assert (results[0].state, results[0].reason, results[0].attempts) == (
        "recovered",
        "exit status 1",
        2,
    )
    assert (results[1].state, results[1].attempts) == ("success", 1)
