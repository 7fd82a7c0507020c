"""The moto S3 fixtures work, and S3 conditional writes behave as the store relies on."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def s3fs_and_root(s3_store_url: tuple[str, dict[str, Any]]) -> tuple[Any, str]:
    import s3fs

    url, options = s3_store_url
    return s3fs.S3FileSystem(**options), url.removeprefix("s3://")


def test_each_test_gets_an_empty_bucket(s3fs_and_root: tuple[Any, str]) -> None:
    fs, root = s3fs_and_root
    bucket = root.split("/")[0]
    assert fs.ls(bucket, detail=False) == []


def test_create_mode_write_refuses_an_existing_key(s3fs_and_root: tuple[Any, str]) -> None:
    # The store moves a branch head by compare-and-swap built on `If-None-Match: *`
    # (s3fs `mode="create"`): the loser of a race must get FileExistsError, not overwrite.
    fs, root = s3fs_and_root
    key = f"{root}/refs/heads/master.1"
    fs.pipe_file(key, b"first", mode="create")

    with pytest.raises(FileExistsError, match="pre-conditions"):
        fs.pipe_file(key, b"second", mode="create")

    fs.invalidate_cache()
    assert fs.cat_file(key) == b"first"


def test_create_mode_open_refuses_an_existing_key(s3fs_and_root: tuple[Any, str]) -> None:
    fs, root = s3fs_and_root
    key = f"{root}/x"
    fs.pipe_file(key, b"first")
    with pytest.raises(FileExistsError), fs.open(key, "xb") as fh:
        fh.write(b"second")
    assert fs.cat_file(key) == b"first"


def test_overwrite_mode_still_overwrites(s3fs_and_root: tuple[Any, str]) -> None:
    fs, root = s3fs_and_root
    key = f"{root}/y"
    fs.pipe_file(key, b"first", mode="create")
    fs.pipe_file(key, b"second")
    assert fs.cat_file(key) == b"second"
