"""Named crash points for crash-safety tests.

``DATUM_FAILPOINT=<name>[:<n>]`` makes the process SIGKILL itself the n-th time (default 1st)
it reaches ``failpoint(<name>)``. Unset (the normal case) it costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["failpoint"]

_hits: dict[str, int] = {}


def failpoint(name: str) -> None:
    """SIGKILL this process here if ``DATUM_FAILPOINT`` names this point."""
    wanted = os.environ.get("DATUM_FAILPOINT")
    if not wanted:
        return
    target, _, count = wanted.partition(":")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
