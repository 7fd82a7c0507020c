"""Provider metadata that Airflow reads through the ``apache_airflow_provider`` entry point.

Airflow validates the returned dict against its runtime ``provider_info.schema.json`` and
compares ``package-name`` with the installed distribution's *normalised* name, so it must be
``airflow-datum-provider`` (the underscore form makes ``airflow providers list`` fail). Keep this
module free of imports beyond the package root: discovery imports it in every Airflow process.
"""

from __future__ import annotations

from typing import Any

from airflow_datum_provider import __version__

__all__ = ["get_provider_info"]

_INTEGRATION = "Datum Store"


def get_provider_info() -> dict[str, Any]:
    """Return a fresh provider-info dict (Airflow mutates what it receives)."""
    return {
        "package-name": "airflow-datum-provider",
        "name": "Datum",
        "description": (
            "Pachyderm's datum model for Apache Airflow 3: versioned repos, glob datums, "
            "incremental processing."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://docs.pachyderm.com/latest/learn/glossary/datum/",
                "tags": ["software"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_datum_provider.hooks.store.DatumStoreHook",
                "connection-type": "datum_store",
                "hook-name": "Datum Store",
            }
        ],
        "hooks": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_datum_provider.hooks.store"],
            }
        ],
        "operators": [],
        "sensors": [],
        "triggers": [],
    }
