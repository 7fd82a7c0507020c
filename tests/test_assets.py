"""The ``datum://<repo>@<branch>`` Asset URI scheme: normalisation, the registry, event extras."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from airflow_datum_provider.assets import (
    commit_event_extra,
    commit_from_events,
    datum_uri,
    parse_uri,
    sanitize_uri,
)


@pytest.mark.parametrize(
    ("uri", "normal"),
    [
        ("datum://words@master", "datum://words@master"),
        ("datum://words", "datum://words@master"),
        ("datum://words/", "datum://words@master"),
        ("DATUM://my_repo@dev-1", "datum://my_repo@dev-1"),
    ],
)
def test_normaliser(uri: str, normal: str) -> None:
    assert sanitize_uri(urlsplit(uri)).geturl() == normal


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("datum://words@master/a.txt", "no path, query or fragment"),
        ("datum://words@master?x=1", "no path, query or fragment"),
        ("datum://bad.name@master", "repo name 'bad.name' is invalid"),
        ("datum://words@", "branch name '' is invalid"),
        ("s3://words", "the scheme must be datum://"),
    ],
)
def test_bad_uris_name_the_problem(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_uri(uri)


def test_airflow_uses_the_registered_normaliser(airflow_home: Path) -> None:
    from airflow.sdk import Asset

    from airflow_datum_provider.assets import DatumAsset

    assert Asset("datum://words").uri == "datum://words@master"
    with pytest.raises(ValueError, match="no path, query or fragment"):
        Asset("datum://words@master/x")
    asset = DatumAsset("words", branch="dev")
    assert (asset.uri, asset.name, asset.group) == ("datum://words@dev",) * 2 + ("datum",)
    assert parse_uri(asset.uri) == ("words", "dev")


def test_event_extra_and_pinning_from_events() -> None:
    extra = commit_event_extra(
        "out", "master", "c2", commits=["c1", "c2"], job_id="j", counters={"processed": 3}
    )
    assert extra == {
        "repo": "out",
        "branch": "master",
        "commit": "c2",
        "commits": ["c1", "c2"],
        "job_id": "j",
        "counters": {"processed": 3},
    }

    class Event:
        def __init__(self, commit: str, timestamp: str) -> None:
            self.extra = {"commit": commit}
            self.timestamp = timestamp

    class Key:
        uri = datum_uri("out")

    events = {Key(): [Event("c1", "2026-01-01T00:00:01"), Event("c2", "2026-01-01T00:00:02")]}
    assert commit_from_events(events, "out") == "c2"
    assert commit_from_events(events, "other") is None
    assert commit_from_events(None, "out") is None
    watcher = Event("ignored", "2026-01-01T00:00:03")
    watcher.extra = {"from_trigger": True, "payload": {"status": "commit", "commit": "c3"}}
    events[Key()] = [watcher]
    assert commit_from_events({Key(): [watcher]}, "out") == "c3"


def test_pipeline_assets_name_inputs_and_output(airflow_home: Path) -> None:
    from airflow_datum_provider.assets import pipeline_assets
    from airflow_datum_provider.core.spec import parse_spec

    spec = parse_spec(
        {
            "pipeline": {"name": "joined"},
            "input": {
                "cross": [
                    {"pfs": {"repo": "a", "glob": "/*"}},
                    {"pfs": {"repo": "b", "branch": "dev", "glob": "/*"}},
                    {"cron": {"name": "tick", "spec": "@daily"}},
                ]
            },
            "transform": {"cmd": ["true"]},
        }
    )
    inlets, outlets = pipeline_assets(spec)
    assert sorted(a.uri for a in inlets) == [
        "datum://a@master",
        "datum://b@dev",
        "datum://joined_tick@master",
    ]
    assert [a.uri for a in outlets] == ["datum://joined@master"]
