"""The user side of datum batching: ``next_datum()`` and ``@batch_all_datums`` (stdlib only).

User code running under ``transform.datum_batching: true`` asks the worker for each datum::

    from airflow_datum_provider.core.worker.batching_client import batch_all_datums

    model = load_model()            # once per datum set

    @batch_all_datums
    def main() -> None:             # once per datum, its inputs under $PFS_ROOT
        process(os.environ["images"], os.environ["PFS_ROOT"] + "/out")

    main()                          # never returns: the worker kills the process when done

or calls :func:`next_datum` in its own loop (``datumctl next datum`` from a shell). Each call
reports the previous datum's result (``error``: ``None`` for success) and blocks until the next
datum's inputs, ``out/`` and ``.env`` are ready. The wire format is in ``docs/engine.md``
(*Datum batching*). This module imports nothing but the standard library, so it loads fast and
works without Airflow; the package root re-exports both
(``from airflow_datum_provider import batch_all_datums, next_datum``).
"""

from __future__ import annotations

import functools
import json
import os
import socket
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

__all__ = [
    "PROTOCOL_VERSION",
    "SOCKET_ENV",
    "NextDatumError",
    "batch_all_datums",
    "load_env_file",
    "next_datum",
]

SOCKET_ENV = "DATUM_NEXT_SOCKET"
"""The environment variable holding the path of the worker's next-datum socket."""

PROTOCOL_VERSION = 1
_MAX_REPLY = 1 << 20
_ERROR_LIMIT = 64 * 1024


class NextDatumError(RuntimeError):
    """The next-datum call could not be made (no socket, refused, a broken reply)."""


def next_datum(error: str | None = None) -> dict[str, Any]:
    """Report the previous datum (``error``: ``None`` = success) and wait for the next one.

    Returns the worker's reply: ``{"datum": <id>, "env_file": <path of .env>}``. After the
    set's last datum the call never returns (the worker kills the process group).
    """
    path = os.environ.get(SOCKET_ENV, "")
    if not path:
        raise NextDatumError(
            f"${SOCKET_ENV} is not set: next datum works only in user code that the datum "
            "worker started with transform.datum_batching: true"
        )
    request: dict[str, Any] = {"v": PROTOCOL_VERSION, "op": "next"}
    if error is not None:
        request["error"] = str(error)[:_ERROR_LIMIT] or "error"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
        except OSError as exc:
            raise NextDatumError(
                f"cannot reach the datum worker at {path}: {exc.strerror or exc}"
            ) from None
        try:
            sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError:
            pass  # refused before we spoke: the reply says why
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = sock.recv(65536)
            except OSError as exc:
                raise NextDatumError(f"next datum: {exc.strerror or exc}") from None
            if not chunk:
                raise NextDatumError("the datum worker closed the connection without a datum")
            data += chunk
            if len(data) > _MAX_REPLY:
                raise NextDatumError("the datum worker's reply is too long")
    try:
        reply = json.loads(data)
    except ValueError:
        raise NextDatumError("the datum worker's reply is not JSON") from None
    if not isinstance(reply, dict):
        raise NextDatumError("the datum worker's reply is not a JSON object")
    if "error" in reply:
        raise NextDatumError(f"next datum refused: {reply['error']}")
    return reply


def load_env_file(path: str) -> dict[str, str]:
    """Read a ``.env`` file (``KEY=VALUE`` lines) into ``os.environ``; return what it set."""
    found: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep and key:
                found[key] = value
    os.environ.update(found)
    return found


F = TypeVar("F", bound=Callable[..., Any])


def batch_all_datums(fn: Callable[..., Any]) -> Callable[..., NoReturn]:
    """Turn ``fn`` into a loop over every datum of the set (see the module docstring).

    Each turn asks for the next datum (reporting the previous turn's exception, as its
    ``repr``, or success), loads the datum's ``.env`` into ``os.environ`` and calls ``fn`` with
    the arguments the loop was called with. The loop never returns.
    """

    @functools.wraps(fn)
    def loop(*args: Any, **kwargs: Any) -> NoReturn:
        error: str | None = None
        while True:
            reply = next_datum(error)
            env_file = reply.get("env_file") or os.path.join(os.environ["PFS_ROOT"], ".env")
            load_env_file(str(env_file))
            try:
                fn(*args, **kwargs)
            except Exception as exc:
                error = repr(exc)
            else:
                error = None

    return loop
