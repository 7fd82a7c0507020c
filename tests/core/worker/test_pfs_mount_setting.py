from __future__ import annotations

import pytest

from airflow_datum_provider.core.errors import SpecError
from airflow_datum_provider.core.worker.namespace import pfs_mount_setting


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", None), ("auto", None), ("ON", True), ("1", True), ("off", False), ("0", False)],
    ids=["unset", "auto", "on", "one", "off", "zero"],
)
def test_setting(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool | None) -> None:
    monkeypatch.setenv("DATUM_PFS_MOUNT", raw)
    assert pfs_mount_setting() is expected


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATUM_PFS_MOUNT", "maybe")
    with pytest.raises(SpecError, match=r"\$DATUM_PFS_MOUNT: 'maybe' is not one of auto, on, off"):
        pfs_mount_setting()
