"""The one place that branches on the running Airflow version.

Adapters import ``BaseHook`` (and later ``BaseOperator`` and friends) from here, never straight
from ``airflow``, so supporting a new Airflow release means editing this file only. The pattern
is the one Airflow's own providers copy into each package.
"""

from __future__ import annotations


def get_base_airflow_version_tuple() -> tuple[int, int, int]:
    """Return the running Airflow's ``(major, minor, micro)``, ignoring pre-release tags."""
    from airflow import __version__
    from packaging.version import Version

    version = Version(__version__)
    return version.major, version.minor, version.micro


AIRFLOW_V_3_0_PLUS = get_base_airflow_version_tuple() >= (3, 0, 0)
AIRFLOW_V_3_1_PLUS = get_base_airflow_version_tuple() >= (3, 1, 0)
AIRFLOW_V_3_2_PLUS = get_base_airflow_version_tuple() >= (3, 2, 0)
AIRFLOW_V_3_3_PLUS = get_base_airflow_version_tuple() >= (3, 3, 0)

if AIRFLOW_V_3_1_PLUS:
    from airflow.sdk import BaseHook
else:  # pragma: no cover - pyproject requires apache-airflow>=3.1
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "BaseHook",
    "get_base_airflow_version_tuple",
]
