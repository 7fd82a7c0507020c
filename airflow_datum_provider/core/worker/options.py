"""What the datum worker needs from a pipeline spec, as one small frozen value.

The worker does not import the spec module: the job engine builds a :class:`RunOptions` with
:meth:`RunOptions.from_spec` (or by hand in tests and benchmarks), and the value pickles, so it
crosses into worker processes unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_datum_provider.core.errors import SpecError
from airflow_datum_provider.core.worker.namespace import pfs_mount_setting

if TYPE_CHECKING:
    from airflow_datum_provider.core.worker.runner import DatumContext

__all__ = ["PythonTransform", "RunOptions"]

PythonTransform = Callable[["DatumContext"], object]
"""A Python transform: called in-process with the datum's context; its return value is ignored."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How to run one datum: the transform, its retries and its timeout.

    Exactly one of ``cmd`` and ``python`` is set. ``python`` is a callable or a
    ``"package.module:function"`` reference, imported on first use. ``datum_tries`` counts
    attempts (not retries). ``datum_timeout`` is in seconds, per attempt. ``use_pfs_mount``:
    ``True`` requires the private ``/pfs`` mount for commands, ``False`` never uses it, ``None``
    uses it where the machine allows (see :mod:`~airflow_datum_provider.core.worker.namespace`).
    ``datum_batching`` starts ``cmd`` once per datum set (see
    :mod:`~airflow_datum_provider.core.worker.batching`).
    """

    cmd: tuple[str, ...] = ()
    stdin: tuple[str, ...] = ()
    err_cmd: tuple[str, ...] = ()
    err_stdin: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str = ""
    accept_return_code: tuple[int, ...] = ()
    python: str | PythonTransform | None = None
    datum_tries: int = 3
    datum_timeout: float | None = None
    use_pfs_mount: bool | None = None
    datum_batching: bool = False

    def __post_init__(self) -> None:
        for key in ("cmd", "stdin", "err_cmd", "err_stdin", "accept_return_code"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        object.__setattr__(self, "env", dict(self.env))
        if bool(self.cmd) == (self.python is not None):
            raise SpecError(
                f"give exactly one of `cmd` and `python`, got cmd={list(self.cmd)!r} "
                f"and python={self.python!r}",
                field="transform",
            )
        if self.datum_batching and self.python is not None:
            raise SpecError(
                "datum batching runs a command once per datum set; a Python transform is "
                "already called in-process for each datum: drop datum_batching or use cmd",
                field="transform.datum_batching",
            )
        if isinstance(self.python, str) and ":" not in self.python:
            raise SpecError(
                f"`{self.python}` is not a callable reference; use `package.module:function`",
                field="transform.python",
            )
        if (
            isinstance(self.datum_tries, bool)
            or not isinstance(self.datum_tries, int)
            or self.datum_tries < 1
        ):
            raise SpecError(
                f"must be an integer >= 1, got {self.datum_tries!r}", field="datum_tries"
            )
        if self.datum_timeout is not None and not self.datum_timeout > 0:
            raise SpecError(
                f"must be a positive number of seconds, got {self.datum_timeout!r}",
                field="datum_timeout",
            )

    @classmethod
    def from_spec(cls, spec: Any, *, use_pfs_mount: bool | None = None) -> RunOptions:
        """Read the worker's options off a ``PipelineSpec`` (attributes read by name).

        ``use_pfs_mount`` defaults to the ``DATUM_PFS_MOUNT`` setting (auto / on / off).
        """
        if use_pfs_mount is None:
            use_pfs_mount = pfs_mount_setting()
        transform = spec.transform
        timeout = spec.datum_timeout
        env = transform.env
        return cls(
            cmd=tuple(transform.cmd),
            stdin=tuple(transform.stdin),
            err_cmd=tuple(transform.err_cmd),
            err_stdin=tuple(transform.err_stdin),
            env=dict(env.items() if isinstance(env, Mapping) else env),
            working_dir=transform.working_dir or "",
            accept_return_code=tuple(transform.accept_return_code),
            python=getattr(transform, "python", None),
            datum_tries=spec.datum_tries,
            datum_timeout=None if timeout is None else timeout.total_seconds(),
            use_pfs_mount=use_pfs_mount,
            datum_batching=bool(getattr(transform, "datum_batching", False)),
        )
