"""Python-callable transforms used by the engine tests."""

from __future__ import annotations

from typing import Any


def upper(ctx: Any) -> None:
    for name, path in ctx.inputs.items():
        del name
        (ctx.out / path.name).write_bytes(path.read_bytes().upper())
