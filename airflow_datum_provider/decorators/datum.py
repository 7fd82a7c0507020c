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

A pipeline has one input, so it comes from one place: ``input=`` (the glob inside it) or the
upstream group passed in the call (with ``glob=``). ``glob=`` together with ``input=`` is
refused when the decorator is applied, and so is an upstream group passed to a function
decorated with ``input=``. Every argument is checked when the decorator is applied (at
DAG-parse time), with a one-line :class:`~airflow_datum_provider.core.errors.SpecError` naming
the pipeline and the argument: ``@task.datum shout: glob: `[` is not a valid glob: ...``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_datum_provider.core.errors import SpecError
    from airflow_datum_provider.core.spec import Input

__all__ = ["datum_task"]

# The spec field an error names -> the decorator argument that set it.
_ARGUMENTS = {
    "pipeline.name": "name",
    "parallelism_spec.constant": "parallelism",
    "datum_tries": "datum_tries",
    "pfs.glob": "glob",
}


def datum_task(
    python_callable: Callable[[Any], Any] | None = None,
    *,
    input: Any = None,
    name: str | None = None,
    glob: str | None = None,
    parallelism: int = 1,
    store: Any = None,
    datum_tries: int = 3,
    **operator_kwargs: Any,
) -> Any:
    """Turn a function of the datum context into a pipeline factory (see the module docstring).

    ``input`` is an input (``pfs(...)``, ``cross(...)``, ...) or its Pachyderm dict; without it,
    the call passes the upstream group and ``glob`` (default ``/*``) splits that pipeline's
    output into datums. ``glob`` with ``input`` is an error: put the glob inside ``input``.
    ``name`` is the pipeline's name (default: the function's), ``parallelism`` the number of
    datum sets at most, ``datum_tries`` the tries per datum; ``store`` and ``operator_kwargs``
    go to :func:`DatumPipeline`.
    """

    def decorate(fn: Callable[[Any], Any]) -> Callable[..., Any]:
        pipeline = str(name or getattr(fn, "__name__", ""))
        node = _check(fn, pipeline, input, glob, parallelism, datum_tries)

        @functools.wraps(fn)
        def build(upstream: Any = None) -> Any:
            from airflow_datum_provider.core.spec import PipelineSpec, Transform, pfs
            from airflow_datum_provider.pipeline import DatumPipeline

            here: Input
            if upstream is not None:
                if node is not None:
                    raise _refused(
                        pipeline,
                        "input",
                        "is given, so the call takes no upstream pipeline; give input= or "
                        "pass the upstream group, not both",
                    )
                repo = getattr(upstream, "pipeline_name", None)
                if not isinstance(repo, str):
                    raise TypeError(
                        f"@task.datum {pipeline}: the argument must be the group returned by "
                        f"another @task.datum or DatumPipeline, got {type(upstream).__name__}"
                    )
                here = pfs(repo=repo, glob=glob or "/*")
            elif node is None:
                raise _refused(
                    pipeline,
                    "input",
                    "required (give input=pfs(...), or call it with an upstream pipeline's group)",
                )
            else:
                here = node
            spec = PipelineSpec(
                name=pipeline,
                input=here,
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


def _check(
    fn: Any, pipeline: str, input: Any, glob: str | None, parallelism: int, datum_tries: int
) -> Input | None:
    """Every argument, checked now: the input to use (``None``: the upstream group's)."""
    from airflow_datum_provider.core.errors import SpecError
    from airflow_datum_provider.core.spec import PipelineSpec, Transform, parse_input, pfs

    if not callable(fn):
        raise TypeError(f"@task.datum: expected a function of one datum, got {fn!r:.80}")
    if input is not None and glob is not None:
        raise _refused(
            pipeline,
            "glob",
            f"give glob inside input= (pfs(repo=..., glob={glob!r:.60})) or without input=, "
            "not both",
        )
    node: Input | None = input
    try:
        if isinstance(input, Mapping):
            node = parse_input(input)
        # A stand-in input where the upstream group will give it: this checks glob= now.
        probe = node if node is not None else pfs(repo="upstream", glob=glob or "/*")
        PipelineSpec(
            name=pipeline,
            input=probe,
            transform=Transform(cmd=("true",)),
            parallelism=parallelism,
            datum_tries=datum_tries,
        )
    except SpecError as exc:
        field = exc.field or exc.spec_field
        # input.pfs.glob names a part of input=; the others name the argument that set them.
        argument = field if field.startswith("input") else _ARGUMENTS.get(field, field)
        raise _refused(pipeline, argument or "input", exc._bare) from None
    return node


def _refused(pipeline: str, argument: str, message: str) -> SpecError:
    from airflow_datum_provider.core.errors import SpecError

    return SpecError(f"@task.datum {pipeline}: {argument}: {message}", spec_field=argument)
