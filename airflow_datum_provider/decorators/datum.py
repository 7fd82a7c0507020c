"""``@task.datum``: a function of one datum becomes a pipeline (a :func:`DatumPipeline`).

::

    @task.datum(input=pfs(repo="docs", glob="/*"), name="shout")
    def shout(datum):
        (datum.out / "x.txt").write_text(...)

    @task.datum(name="count")              # input: the output repo of the pipeline passed in
    def count(datum): ...

    count(shout())

Calling the decorated function inside a DAG adds the task group and returns it. Passing the
group returned by another ``@task.datum`` (or a ``DatumPipeline``) makes that pipeline's
output repo this one's input (glob ``/*`` unless ``glob=`` says otherwise) and orders the two.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

__all__ = ["datum_task"]


def datum_task(
    python_callable: Callable[[Any], Any] | None = None,
    *,
    input: Any = None,
    name: str | None = None,
    glob: str = "/*",
    parallelism: int = 1,
    store: Any = None,
    datum_tries: int = 3,
    **operator_kwargs: Any,
) -> Any:
    """Turn a function of the datum context into a pipeline factory (see the module docstring)."""
    from airflow_datum_provider.core.spec import PipelineSpec, Transform, pfs

    def decorate(fn: Callable[[Any], Any]) -> Callable[..., Any]:
        pipeline = name or fn.__name__

        @functools.wraps(fn)
        def build(upstream: Any = None) -> Any:
            from airflow_datum_provider.pipeline import DatumPipeline

            node = input
            if upstream is not None:
                repo = getattr(upstream, "pipeline_name", None)
                if not isinstance(repo, str):
                    raise TypeError(
                        f"@task.datum {pipeline}: the argument must be the group returned by "
                        f"another @task.datum or DatumPipeline, got {type(upstream).__name__}"
                    )
                node = pfs(repo=repo, glob=glob)
            if node is None:
                raise ValueError(
                    f"@task.datum {pipeline}: input: required (give input=pfs(...), or call it "
                    "with an upstream pipeline's group)"
                )
            spec = PipelineSpec(
                name=pipeline,
                input=node,
                transform=Transform(cmd=("true",)),
                parallelism=parallelism,
                datum_tries=datum_tries,
            )
            group = DatumPipeline(spec, store=store, python_callable=fn, **operator_kwargs)
            if upstream is not None:
                upstream.merge >> group.create
            return group

        return build

    if python_callable is not None:
        return decorate(python_callable)
    return decorate
