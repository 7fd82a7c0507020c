"""The DAG of pipelines: which pipeline reads or writes which branch, and in what order to run.

Used to refuse deletes that would break a pipeline (``delete repo``, ``delete pipeline``), to
refuse user commits into a pipeline's output branch, and by ``run pipeline --downstream`` and
``watch`` to run pipelines in provenance order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import assert_never

from airflow_datum_provider.core.jobs import JobRecords
from airflow_datum_provider.core.spec import (
    CronInput,
    CrossInput,
    GroupInput,
    Input,
    JoinInput,
    PFSInput,
    UnionInput,
)
from airflow_datum_provider.core.store import Store

__all__ = ["PipelineGraph", "input_branches", "pipeline_graph"]


def input_branches(node: Input, pipeline: str) -> Iterator[tuple[str, str]]:
    """Every ``(repo, branch)`` an input tree reads (a cron input: its tick repo)."""
    if isinstance(node, PFSInput):
        yield node.repo, node.branch
    elif isinstance(node, CronInput):
        yield f"{pipeline}_{node.name}", "master"
    elif isinstance(node, (CrossInput, UnionInput, JoinInput, GroupInput)):
        for child in node.inputs:
            yield from input_branches(child, pipeline)
    else:
        assert_never(node)


@dataclass(frozen=True, slots=True)
class PipelineGraph:
    """Inputs and output branch of every pipeline (``name -> ...``)."""

    inputs: dict[str, tuple[tuple[str, str], ...]]
    outputs: dict[str, tuple[str, str]]

    def readers_of(self, repo: str, branch: str | None = None) -> list[str]:
        """The pipelines reading ``repo`` (any branch when ``branch`` is ``None``)."""
        return sorted(
            name
            for name, ins in self.inputs.items()
            if any(r == repo and (branch is None or b == branch) for r, b in ins)
        )

    def writer_of(self, repo: str, branch: str | None = None) -> str | None:
        """The pipeline whose output is ``repo`` (``@branch``), if any."""
        for name, (r, b) in self.outputs.items():
            if r == repo and (branch is None or b == branch):
                return name
        return None

    def downstream(self, start: str) -> list[str]:
        """``start`` and every pipeline that (transitively) reads its output, in run order."""
        wanted = {start}
        frontier = [start]
        while frontier:
            repo, branch = self.outputs[frontier.pop()]
            for reader in self.readers_of(repo, branch):
                if reader not in wanted:
                    wanted.add(reader)
                    frontier.append(reader)
        return [name for name in self.order() if name in wanted]

    def order(self) -> list[str]:
        """Every pipeline, upstream before downstream (ties by name)."""
        done: list[str] = []
        seen: set[str] = set()
        remaining = sorted(self.inputs)
        while remaining:
            ready = [
                name
                for name in remaining
                if all(
                    (w := self.writer_of(r, b)) is None or w in seen or w == name
                    for r, b in self.inputs[name]
                )
            ]
            if not ready:  # a cycle (refused at create time, but never loop here)
                ready = remaining[:1]
            for name in ready:
                done.append(name)
                seen.add(name)
            remaining = [n for n in remaining if n not in seen]
        return done


def pipeline_graph(store: Store) -> PipelineGraph:
    """The graph of the pipelines created in ``store``."""
    inputs: dict[str, tuple[tuple[str, str], ...]] = {}
    outputs: dict[str, tuple[str, str]] = {}
    for info in JobRecords(store).pipelines():
        inputs[info.name] = tuple(dict.fromkeys(input_branches(info.spec.input, info.name)))
        outputs[info.name] = (info.name, info.spec.output_branch)
    return PipelineGraph(inputs=inputs, outputs=outputs)
