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
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "Store URL",
                        "login": "Access key ID (S3)",
                        "password": "Secret access key (S3)",
                    },
                    "placeholders": {
                        "host": "s3://bucket/prefix, /data/datum-store or memory://scratch",
                        "login": "empty: local store, the AWS connection below, or ambient AWS",
                        "password": "the secret of the access key above",
                    },
                },
                "conn-fields": {
                    "conn_id": {
                        "label": "AWS connection",
                        "description": (
                            "Id of an aws-type connection that supplies the S3 credentials and "
                            "endpoint (instead of login/password here), e.g. aws_default"
                        ),
                        "schema": {"type": ["string", "null"]},
                    },
                    "endpoint_url": {
                        "label": "S3 endpoint URL",
                        "description": "S3-compatible endpoint, e.g. http://minio:9000",
                        "schema": {"type": ["string", "null"]},
                    },
                    "region_name": {
                        "label": "Region",
                        "description": "AWS region of the bucket, e.g. eu-west-1",
                        "schema": {"type": ["string", "null"]},
                    },
                    "session_token": {
                        "label": "Session token",
                        "description": "Temporary-credentials session token (with login/password)",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "anon": {
                        "label": "Anonymous",
                        "description": "Read a public bucket without credentials",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                },
            }
        ],
        "hooks": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_datum_provider.hooks.store"],
            }
        ],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": [
                    "airflow_datum_provider.operators.datum",
                    "airflow_datum_provider.operators.put_files",
                    "airflow_datum_provider.operators.kubernetes",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_datum_provider.sensors.commit"],
            }
        ],
        "triggers": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_datum_provider.triggers.commit"],
            }
        ],
        "task-decorators": [
            {
                "name": "datum",
                "class-name": "airflow_datum_provider.decorators.datum.datum_task",
            }
        ],
        "asset-uris": [
            {
                "schemes": ["datum"],
                "handler": "airflow_datum_provider.assets.sanitize_uri",
                "factory": "airflow_datum_provider.assets.create_asset",
            }
        ],
    }
