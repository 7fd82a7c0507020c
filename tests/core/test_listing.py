"""The glob's listing: files plus synthesised directories, in lexicographic order."""

from __future__ import annotations

import pytest

from airflow_datum_provider.core.listing import Item, iter_listing, listing_prefix
from airflow_datum_provider.core.store import Entry


def _entries(*paths: str) -> list[Entry]:
    return [Entry(p, f"h{p}", len(p)) for p in sorted(paths)]


@pytest.mark.parametrize(
    ("files", "prefix", "expected"),
    [
        ((), "/", []),
        (("/a",), "/", ["/", "/a"]),
        (
            ("/a.txt", "/a/b", "/a/c/d", "/a0"),
            "/",
            ["/", "/a.txt", "/a/", "/a/b", "/a/c/", "/a/c/d", "/a0"],
        ),
        (("/d/e/f/g",), "/", ["/", "/d/", "/d/e/", "/d/e/f/", "/d/e/f/g"]),
        (("/.h", "/x/.y"), "/", ["/", "/.h", "/x/", "/x/.y"]),
        (("/a/b", "/a/c/d"), "/a/", ["/a/b", "/a/c/", "/a/c/d"]),
        (("/a/c/d", "/a/c/e", "/a/f/g"), "/a/", ["/a/c/", "/a/c/d", "/a/c/e", "/a/f/", "/a/f/g"]),
    ],
    ids=["empty", "one-file", "dirs-interleave", "deep", "hidden", "prefix", "prefix-dirs"],
)
def test_iter_listing(files: tuple[str, ...], prefix: str, expected: list[str]) -> None:
    listed = list(iter_listing(_entries(*files), prefix))
    assert [i.path for i in listed] == expected
    assert [i.path for i in listed] == sorted(i.path for i in listed)


def test_files_keep_size_and_hash_dirs_do_not() -> None:
    listed = list(iter_listing([Entry("/d/f", "abc", 7)]))
    assert listed == [Item("/", 0, ""), Item("/d/", 0, ""), Item("/d/f", 7, "abc")]
    assert [i.is_dir for i in listed] == [True, True, False]


@pytest.mark.parametrize(
    ("literal", "expected"),
    [("/", "/"), ("/a", "/"), ("/a/", "/a/"), ("/a/b", "/a/"), ("/a/b/c.tx", "/a/b/"), ("", "/")],
    ids=["root", "root-file", "dir", "in-dir", "deep", "empty"],
)
def test_listing_prefix(literal: str, expected: str) -> None:
    assert listing_prefix(literal) == expected
