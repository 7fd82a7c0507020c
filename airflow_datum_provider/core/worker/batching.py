"""Datum batching, the worker side: one user process per datum set, fed by ``next datum`` calls.

With ``transform.datum_batching: true`` the set's runner makes one :class:`BatchingRuntime`
and passes it to :func:`~airflow_datum_provider.core.worker.runner.run_datum` for every datum
of the set, so the attempt policy (tries, ``err_cmd``, timeouts, the job deadline, output
collection) is the very one of non-batched datums; only *how a transform run happens* differs:

* The user command starts once, on the first transform run, with the base environment (the
  transform's ``env``, ``PPS_PIPELINE_NAME``, ``PACH_JOB_ID``, ``PACH_OUTPUT_COMMIT_ID``,
  ``PFS_ROOT``, and ``DATUM_NEXT_SOCKET``) and no datum laid out; its ``stdin`` lines are fed
  once. It calls ``datumctl next datum`` / ``next_datum()``; the first call's error is ignored.
* A transform run answers the pending call once the datum's scratch is laid out, then waits
  for the process's next call: no error → the attempt succeeded (the process stays blocked in
  that call while outputs are collected and the next datum is laid out, then gets its answer);
  an error → the attempt failed with that message. The process exiting (exit 0 is
  ``user code exited prematurely``), overrunning ``datum_timeout``, or the job deadline passing
  also fail the attempt. Every failure kills the process group (and escaped processes, by the
  environment token of :mod:`._process`); the next run (a retry of the datum, or the next
  datum) starts a fresh process. ``err_cmd`` runs as a command with the datum's environment.
* Waiting for a call has no limit but the job's deadline before a datum is handed out (a
  process that never calls next stops only at ``job_timeout``), and ``datum_timeout`` after.
* :meth:`BatchingRuntime.close` (the set is done) kills the process group: the pending call
  never returns.

Transport: a Unix stream socket ``next.sock`` (mode 0600) in a fresh 0700 folder of the job's
scratch folder (``<tmp>/datum-<job>/``; the system temp directory for another scratch root,
such as ``/pfs`` in a pod); its path is in ``$DATUM_NEXT_SOCKET``. Each call is one connection
carrying one JSON line each way (``docs/engine.md``, *Datum batching*). A connection is served
only when the peer (``SO_PEERCRED``) runs as this user in the user process's process group;
any other caller gets ``{"error": ...}`` and is closed, and the set goes on.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_datum_provider.core.worker._process import (
    RUN_MARKER_ENV,
    LogSink,
    kill_marked,
    run_command,
)
from airflow_datum_provider.core.worker.batching_client import PROTOCOL_VERSION, SOCKET_ENV
from airflow_datum_provider.core.worker.env import datum_env, datum_variables
from airflow_datum_provider.core.worker.namespace import PFS, pfs_namespace_available, wrap_command
from airflow_datum_provider.core.worker.options import RunOptions
from airflow_datum_provider.core.worker.policy import JOB_TIMEOUT_REASON

if TYPE_CHECKING:
    from airflow_datum_provider.core.worker.runner import JobContext
    from airflow_datum_provider.core.worker.runtime import Run

__all__ = ["PREMATURE_EXIT", "BatchingRuntime", "batching_runtime"]

PREMATURE_EXIT = "user code exited prematurely"
_REQUEST_LIMIT = 1 << 17
_READ_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class _Call:
    """A pending ``next datum`` call of process ``generation``."""

    generation: int
    conn: socket.socket
    error: str | None


@dataclass(frozen=True, slots=True)
class _Exited:
    generation: int
    code: int


def _send(conn: socket.socket, payload: dict[str, Any]) -> None:
    try:
        conn.sendall(json.dumps(payload).encode() + b"\n")
    except OSError:
        pass


def _close(conn: socket.socket) -> None:
    try:
        conn.close()
    except OSError:
        pass


def _peer(conn: socket.socket) -> tuple[int, int]:
    """``(pid, uid)`` of the process at the other end (Linux ``SO_PEERCRED``)."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    return pid, uid


def _read_request(conn: socket.socket) -> dict[str, Any]:
    conn.settimeout(_READ_TIMEOUT)
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise ValueError("the connection closed before a request")
        data += chunk
        if len(data) > _REQUEST_LIMIT:
            raise ValueError(f"a request is at most {_REQUEST_LIMIT} bytes")
    conn.settimeout(None)
    request = json.loads(data)
    if not isinstance(request, dict) or request.get("op") != "next":
        raise ValueError('a request is {"v": 1, "op": "next", "error": null | "..."}')
    if request.get("v") != PROTOCOL_VERSION:
        raise ValueError(f"protocol version {request.get('v')!r}; this worker speaks 1")
    error = request.get("error")
    if error is not None and not isinstance(error, str):
        raise ValueError("error must be a string or null")
    return request


class _Server:
    """The listening socket: checks each caller, turns its request into an event."""

    def __init__(self, events: queue.Queue[_Call | _Exited], parent: Path | None = None) -> None:
        self.events = events
        # mode 0700; in the job's scratch folder when there is one, so the dead-runner
        # clean-up (which removes that folder) also removes a SIGKILLed runner's socket.
        self.folder = Path(tempfile.mkdtemp(prefix="datum-next-", dir=parent))
        self.path = str(self.folder / "next.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self.sock.listen(16)
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.group: int | None = None  # the process group allowed to call, and its generation
        self.generation = 0
        self.starting = False  # a process is being started: its group is not known yet
        self.closed = False
        self.refused = 0
        self.thread = threading.Thread(target=self._accept, name="datum-next", daemon=True)
        self.thread.start()

    def expect(self) -> None:
        """A process is about to start: callers wait for :meth:`allow` before they are checked.

        Its first call can arrive before ``Popen`` has returned in this process (a loaded
        machine may not run the starting thread for a while): it must not be refused for that.
        """
        with self.lock:
            self.starting = True

    def allow(self, group: int | None, generation: int) -> None:
        with self.lock:
            self.group = group
            self.generation = generation
            self.starting = False
            self.changed.notify_all()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            # Served inline: a caller outside the group is refused without reading, and one
            # inside it is the user code itself (a thread per call would cost ~1 ms a datum).
            self._serve(conn)

    def _refuse(self, conn: socket.socket, why: str) -> None:
        with self.lock:
            self.refused += 1
        _send(conn, {"error": why})
        try:  # read what the caller sent, so closing does not reset the reply away
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(0.2)
            while conn.recv(65536):
                pass
        except OSError:
            pass
        _close(conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            pid, uid = _peer(conn)
            with self.lock:
                self.changed.wait_for(lambda: not self.starting, timeout=_READ_TIMEOUT)
                group, generation = self.group, self.generation
            try:
                peer_group = os.getpgid(pid)
            except OSError:
                peer_group = -1
            if uid != os.geteuid() or group is None or peer_group != group:
                self._refuse(
                    conn,
                    f"process {pid} is not in the user code's process group; "
                    "only the user code of this datum set may call next datum",
                )
                return
            try:
                request = _read_request(conn)
            except (OSError, ValueError) as exc:
                self._refuse(conn, f"bad request: {exc}")
                return
            self.events.put(_Call(generation, conn, request.get("error")))
        except Exception:  # pragma: no cover - never let a caller kill the thread silently
            _close(conn)

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class BatchingRuntime:
    """The batching runtime of one datum set (module docstring); use as a context manager."""

    label = "cmd, datum batching"

    def __init__(
        self,
        options: RunOptions,
        *,
        root: Path,
        job: JobContext,
        use_ns: bool,
        verbose: bool = False,
    ) -> None:
        self.options = options
        self.root = root
        self.job = job
        self.use_ns = use_ns
        self.view_root = PFS if use_ns or str(root) == PFS else str(root)
        self._events: queue.Queue[_Call | _Exited] = queue.Queue()
        parent = root.parent if root.parent.name.startswith("datum-") else None
        self._server = _Server(self._events, parent)
        self._sink = LogSink(None, verbose)
        self._sink_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._token = ""
        self._generation = 0
        self._first_call = True
        self._pending: _Call | None = None
        self.starts = 0
        wd = options.working_dir
        if wd and not use_ns and (wd == PFS or wd.startswith(PFS + "/")):
            wd = str(root) + wd[len(PFS) :]
        self.working_dir = wd

    # -- the runtime interface ------------------------------------------------------------

    # Hard links to blobs are safe only behind read-only mounts or file modes; the batching
    # process's namespace has no per-input read-only mounts (datums come and go under it).
    read_only_inputs = False

    @property
    def socket_path(self) -> str:
        return self._server.path

    @property
    def refused(self) -> int:
        """How many connections were refused (callers outside the process group)."""
        return self._server.refused

    def attach(self, sink: LogSink) -> None:
        """Send the user process's output to ``sink`` (the datum about to run) from now on."""
        with self._sink_lock:
            self._sink = sink

    def run(self, run: Run) -> str | None:
        if run.kind == "err_cmd":
            return self._err_cmd(run)
        return self._transform(run)

    def close(self) -> None:
        """The set is done: kill the user process (its pending call never returns)."""
        self._stop()
        self._server.close()

    def __enter__(self) -> BatchingRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the user process -----------------------------------------------------------------

    def _base_env(self) -> dict[str, str]:
        variables = dict(self.options.env)
        variables["PPS_PIPELINE_NAME"] = self.job.pipeline
        variables["PACH_JOB_ID"] = self.job.job_id
        variables["PACH_OUTPUT_COMMIT_ID"] = self.job.output_commit
        variables["PFS_ROOT"] = self.view_root
        variables.update(self.job.env)
        variables[SOCKET_ENV] = self._server.path
        env = datum_env(variables)
        env[RUN_MARKER_ENV] = self._token
        return env

    def _start(self) -> str | None:
        self._generation += 1
        self._token = secrets.token_hex(16)
        self._first_call = True
        argv: list[str] = list(self.options.cmd)
        cwd: str | None = self.working_dir or None
        if self.use_ns:
            argv = wrap_command(argv, scratch_root=self.root, working_dir=self.working_dir)
            cwd = None
        stdin = self.options.stdin
        self._server.expect()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self._base_env(),
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException as exc:
            self._server.allow(None, self._generation)  # nothing started: stop expecting it
            if isinstance(exc, OSError):
                return f"cannot run {argv[0]!r}: {exc.strerror or exc}"
            raise
        self.starts += 1
        self._proc = proc
        self._server.allow(proc.pid, self._generation)
        assert proc.stdout is not None
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()
        if stdin:
            assert proc.stdin is not None
            data = ("\n".join(stdin) + "\n").encode()
            threading.Thread(target=self._feed, args=(proc.stdin, data), daemon=True).start()
        threading.Thread(target=self._watch, args=(proc, self._generation), daemon=True).start()
        return None

    def _pump(self, stream: Any) -> None:
        import codecs

        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        fd = stream.fileno()
        try:
            while data := os.read(fd, 1 << 16):
                text = decoder.decode(data)
                with self._sink_lock:
                    sink = self._sink
                sink.write(text)
        except OSError:
            pass
        finally:
            stream.close()

    @staticmethod
    def _feed(stream: Any, data: bytes) -> None:
        try:
            with stream:
                stream.write(data)
        except OSError:
            pass

    def _watch(self, proc: subprocess.Popen[bytes], generation: int) -> None:
        # Wait without reaping, so the group id cannot be reused before it is killed.
        # Reaping is _stop's, after it killed the group.
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            return  # already reaped by _stop: the event would be stale anyway
        if info is None:  # pragma: no cover - only with WNOHANG
            return
        exited = info.si_code == os.CLD_EXITED
        self._events.put(_Exited(generation, info.si_status if exited else -info.si_status))

    def _stop(self) -> None:
        """Kill the user process group and its escapees; drop its pending call."""
        self._server.allow(None, self._generation + 1)
        proc, self._proc = self._proc, None
        if self._pending is not None:
            _close(self._pending.conn)
            self._pending = None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        kill_marked(RUN_MARKER_ENV, self._token)
        self._generation += 1  # events of the dead process are stale from now on
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            if isinstance(event, _Call):
                _close(event.conn)

    def _next_event(self, until: float | None) -> _Call | _Exited | None:
        """The current process's next call or exit; ``None`` once ``until`` has passed."""
        while True:
            wait = None if until is None else until - time.monotonic()
            if wait is not None and wait <= 0:
                return None
            try:
                event = self._events.get(timeout=wait)
            except queue.Empty:
                return None
            if event.generation == self._generation:
                return event
            if isinstance(event, _Call):
                _close(event.conn)

    def _exit_reason(self, code: int) -> str:
        self._stop()
        if code == 0 or code in self.options.accept_return_code:
            return PREMATURE_EXIT
        if code < 0:
            try:
                name = signal.strsignal(-code) or f"signal {-code}"
            except ValueError:
                name = f"signal {-code}"
            return f"signal: {name.lower()}"
        return f"exit status {code}"

    def _await_call(self) -> str | None:
        """Wait for the process's pending call (bounded by the job's deadline only)."""
        while self._pending is None:
            event = self._next_event(self.job.deadline)
            if event is None:
                self._stop()
                return JOB_TIMEOUT_REASON
            if isinstance(event, _Exited):
                return self._exit_reason(event.code)
            if self._first_call:
                self._first_call = False  # its error, if any, is ignored
            self._pending = event
        return None

    def _transform(self, run: Run) -> str | None:
        if self._proc is None:
            failure = self._start()
            if failure is not None:
                return failure
        failure = self._await_call()
        if failure is not None:
            return failure
        call = self._pending
        assert call is not None
        self._pending = None
        timeout = run.timeout
        until = None if timeout is None else time.monotonic() + timeout
        _send(
            call.conn,
            {"datum": run.datum.id, "env_file": f"{self.view_root}/.env"},
        )
        _close(call.conn)
        event = self._next_event(until)
        if event is None:
            self._stop()
            return f"datum timed out after {timeout or 0:g}s"
        if isinstance(event, _Exited):
            return self._exit_reason(event.code)
        if event.error is not None:
            self._stop()
            return event.error or "user code reported an error"
        self._pending = event
        return None

    def _err_cmd(self, run: Run) -> str | None:
        self._stop()  # the failed attempt already stopped it; never two user processes
        variables = datum_variables(
            run.datum,
            root=self.view_root,
            job_id=self.job.job_id,
            output_commit_id=self.job.output_commit,
            pipeline=self.job.pipeline,
            transform_env=self.options.env,
        )
        variables.update(self.job.env)
        argv = self.options.err_cmd
        cwd: str | None = self.working_dir or None
        if self.use_ns:
            names = [inp.name for inp in run.datum.inputs]
            argv = tuple(
                wrap_command(
                    argv, scratch_root=self.root, read_only=names, working_dir=self.working_dir
                )
            )
            cwd = None
        with self._sink_lock:
            sink = self._sink
        ended = run_command(
            argv,
            env=datum_env(variables),
            cwd=cwd,
            stdin_lines=self.options.err_stdin,
            timeout=run.timeout,
            sink=sink,
        )
        from airflow_datum_provider.core.worker.runtime import _exit_reason

        return _exit_reason(ended, self.options.accept_return_code, run.timeout)


def batching_runtime(
    options: RunOptions, *, root: Path, job: JobContext, verbose: bool = False
) -> BatchingRuntime:
    """The :class:`BatchingRuntime` for a set run in ``root``, ``/pfs`` decided as for a datum."""
    real = Path(os.path.realpath(root))
    use_ns = str(real) != PFS and options.use_pfs_mount is not False and pfs_namespace_available()
    return BatchingRuntime(options, root=real, job=job, use_ns=use_ns, verbose=verbose)
