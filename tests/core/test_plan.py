"""The planner over a real store: glob rules, combinators, datum inputs, pins, streaming.

Every case runs ``list_datums`` against a local store built from ``{repo: {path: bytes}}``, and
compares the datums' shape, ``name:path`` per input, in datum order.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.listing import glob_files
from airflow_datum_provider.core.plan import list_datums
from airflow_datum_provider.core.spec import Input, cross, group, join, pfs, union
from airflow_datum_provider.core.store import Entry, Store

Files = Mapping[str, bytes]

REPOS: dict[str, Files | None] = {
    # None: a branch without commits; {}: one empty commit.
    "files": {
        "/a.txt": b"a",
        "/b.csv": b"bb",
        "/.hidden": b"h",
        "/d/x.txt": b"x",
        "/d/y.csv": b"yy",
        "/d/e/z.txt": b"zzz",
        "/f/w.txt": b"w",
    },
    "A": {"/a1": b"a1", "/a2": b"a2"},
    "B": {"/b1": b"b1", "/b2": b"b2", "/b3": b"b3"},
    "C": {"/c1": b"c1"},
    "E": {},
    "N": None,
    "L": {"/1.txt": b"l1", "/2.txt": b"l2", "/3.txt": b"l3"},
    "M": {"/1.md": b"m1"},
    "R": {"/1.csv": b"r1", "/2.csv": b"r2", "/4.csv": b"r4"},
    "G": {"/a-1.txt": b"g1", "/a-2.txt": b"g2", "/b-1.txt": b"g3"},
    "H": {"/a-x.csv": b"h1", "/c-x.csv": b"h2"},
}


def make_repos(store: Store, repos: Mapping[str, Files | None]) -> dict[str, str | None]:
    """Create one repo per entry with one commit on master (or none); return the heads."""
    heads: dict[str, str | None] = {}
    for repo, files in repos.items():
        store.create_repo(repo)
        if files is None:
            store.create_branch(repo, "master")
            heads[repo] = None
            continue
        heads[repo] = put_commit(store, repo, files)
    return heads


def put_commit(store: Store, repo: str, files: Files, branch: str = "master") -> str:
    commit = store.start_commit(repo, branch)
    for path, data in files.items():
        commit.put_bytes(path, data)
    return commit.finish().id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store.open(str(tmp_path_factory.mktemp("plan") / "store"))
    make_repos(s, REPOS)
    return s


def shape(datums: list[Datum]) -> list[tuple[str, ...]]:
    return [tuple(f"{i.name}:{i.path}" for i in d.inputs) for d in datums]


def paths(datums: list[Datum]) -> list[str]:
    assert all(len(d.inputs) == 1 for d in datums)
    return [d.inputs[0].path for d in datums]


# --- glob rules over a real listing -------------------------------------------------------

GLOB_CASES = [
    ("star", "/*", ["/.hidden", "/a.txt", "/b.csv", "/d/", "/f/"]),
    ("star-uncleaned", "*", ["/.hidden", "/a.txt", "/b.csv", "/d/", "/f/"]),
    ("root", "/", ["/"]),
    ("root-double-slash", "//", ["/"]),
    ("root-dot", "/.", ["/"]),
    (
        "double-star-every-entry",
        "/**",
        [
            "/.hidden",
            "/a.txt",
            "/b.csv",
            "/d/",
            "/d/e/",
            "/d/e/z.txt",
            "/d/x.txt",
            "/d/y.csv",
            "/f/",
            "/f/w.txt",
        ],
    ),
    ("depth-two-only", "/*/*", ["/d/e/", "/d/x.txt", "/d/y.csv", "/f/w.txt"]),
    ("depth-three", "/*/*/*", ["/d/e/z.txt"]),
    ("globstar-txt-not-root", "/**/*.txt", ["/d/e/z.txt", "/d/x.txt", "/f/w.txt"]),
    ("suffix", "/*.txt", ["/a.txt"]),
    ("hidden-by-star", "/.*", ["/.hidden"]),
    ("dir-literal", "/d", ["/d/"]),
    ("dir-trailing-slash-cleaned", "/d/", ["/d/"]),
    ("dir-children", "/d/*", ["/d/e/", "/d/x.txt", "/d/y.csv"]),
    ("file-literal-deep", "/d/e/z.txt", ["/d/e/z.txt"]),
    ("dotdot-cleaned", "/d/../a.txt", ["/a.txt"]),
    ("question", "/?.txt", ["/a.txt"]),
    ("class", "/[ab].*", ["/a.txt", "/b.csv"]),
    ("class-range", "/[a-c].*", ["/a.txt", "/b.csv"]),
    ("negated-class", "/[!a.]*", ["/b.csv", "/d/", "/f/"]),
    ("negated-class-crosses-slash", "/d[!a]e", ["/d/e/"]),
    ("alternation", "/{a.txt,f}", ["/a.txt", "/f/"]),
    ("alternation-nested", "/{a,{b,q}}.*", ["/a.txt", "/b.csv"]),
    ("capture", "/(*).txt", ["/a.txt"]),
    ("extglob-one-or-more", "/+(a|b).*", ["/a.txt", "/b.csv"]),
    ("extglob-optional", "/d/x?(.txt)", ["/d/x.txt"]),
    ("extglob-negation", "/!(a.txt)", ["/.hidden", "/b.csv", "/d/", "/f/"]),
    ("escape", "/a\\.txt", ["/a.txt"]),
    ("nested-depth-csv", "/*/*.csv", ["/d/y.csv"]),
    ("zero-datums", "/nomatch*", []),
    ("zero-datums-literal", "/d/nothing", []),
]


@pytest.mark.parametrize(
    ("pattern", "expected"), [c[1:] for c in GLOB_CASES], ids=[c[0] for c in GLOB_CASES]
)
def test_glob_over_listing(store: Store, pattern: str, expected: list[str]) -> None:
    assert paths(list(list_datums(store, pfs("files", pattern)))) == expected


@pytest.mark.parametrize(
    ("pattern", "expected"), [c[1:] for c in GLOB_CASES], ids=[c[0] for c in GLOB_CASES]
)
def test_glob_agrees_with_store_glob_files(store: Store, pattern: str, expected: list[str]) -> None:
    """``datumctl glob file`` (``core.listing.glob_files``) and the planner select the same paths."""
    listed = [f.path for f in glob_files(store, "files", "master", pattern)]
    assert listed == paths(list(list_datums(store, pfs("files", pattern))))


@pytest.mark.parametrize("pattern", ["/", "/*", "/**", "/*/*"], ids=["root", "star", "all", "d2"])
@pytest.mark.parametrize("repo", ["E", "N"], ids=["empty-commit", "empty-branch"])
def test_empty_commit_or_branch_gives_zero_datums(store: Store, repo: str, pattern: str) -> None:
    assert list(list_datums(store, pfs(repo, pattern))) == []


def test_directory_datum_carries_subtree_size_and_hash(store: Store) -> None:
    by_path = {d.inputs[0].path: d.inputs[0] for d in list_datums(store, pfs("files", "/**"))}
    d = by_path["/d/"]
    assert d.is_dir
    assert d.size == len(b"x") + len(b"yy") + len(b"zzz")
    assert d.hash == store.inspect_file("files", "master", "/d/").hash
    assert by_path["/d/e/"].hash == store.inspect_file("files", "master", "/d/e/").hash
    assert by_path["/a.txt"].hash == store.inspect_file("files", "master", "/a.txt").hash
    (root,) = list(list_datums(store, pfs("files", "/")))
    assert root.inputs[0].size == sum(len(v) for v in (REPOS["files"] or {}).values())
    assert root.inputs[0].hash == store.inspect_file("files", "master", "/").hash


# --- combinators ----------------------------------------------------------------------------


def _l(outer: bool = False, template: str = "$1") -> Input:
    return pfs("L", "/(*).txt", join_on=template, outer_join=outer)


def _r(outer: bool = False, template: str = "$1") -> Input:
    return pfs("R", "/(*).csv", join_on=template, outer_join=outer)


def _m(outer: bool = False) -> Input:
    return pfs("M", "/(*).md", join_on="$1", outer_join=outer)


_LR_CROSS: list[tuple[str, ...]] = [(f"L:/{a}.txt", f"R:/{b}.csv") for a in "123" for b in "124"]

COMBINATOR_CASES: list[tuple[str, Callable[[], Input], list[tuple[str, ...]]]] = [
    (
        "cross-first-child-outermost",
        lambda: cross(pfs("A", "/*"), pfs("B", "/*")),
        [(f"A:/a{i}", f"B:/b{j}") for i in (1, 2) for j in (1, 2, 3)],
    ),
    (
        "cross-children-ordered-by-name",
        lambda: cross(pfs("B", "/*", name="zeta"), pfs("A", "/*", name="alpha")),
        [(f"alpha:/a{i}", f"zeta:/b{j}") for i in (1, 2) for j in (1, 2, 3)],
    ),
    (
        "cross-three-way",
        lambda: cross(pfs("C", "/*"), pfs("A", "/*"), pfs("B", "/b1")),
        [("A:/a1", "B:/b1", "C:/c1"), ("A:/a2", "B:/b1", "C:/c1")],
    ),
    ("cross-empty-second", lambda: cross(pfs("A", "/*"), pfs("E", "/*")), []),
    ("cross-empty-first", lambda: cross(pfs("A", "/*", name="z"), pfs("E", "/*")), []),
    ("cross-empty-branch", lambda: cross(pfs("A", "/*"), pfs("N", "/*")), []),
    ("cross-no-match-side", lambda: cross(pfs("A", "/*"), pfs("B", "/zzz")), []),
    (
        "cross-nested-empty",
        lambda: cross(pfs("A", "/*"), cross(pfs("B", "/*"), pfs("E", "/"))),
        [],
    ),
    (
        "cross-of-unions",
        lambda: cross(union(pfs("A", "/a1"), pfs("B", "/b1")), union(pfs("C", "/*"))),
        [("A:/a1", "C:/c1"), ("B:/b1", "C:/c1")],
    ),
    (
        "union-concatenation",
        lambda: union(pfs("B", "/*"), pfs("A", "/*")),
        [("A:/a1",), ("A:/a2",), ("B:/b1",), ("B:/b2",), ("B:/b3",)],
    ),
    (
        "union-shared-name",
        lambda: union(pfs("A", "/*", name="in"), pfs("B", "/b1", name="in")),
        [("in:/a1",), ("in:/a2",), ("in:/b1",)],
    ),
    (
        "union-identical-datums-collapse",
        lambda: union(pfs("A", "/*"), pfs("A", "/a1")),
        [("A:/a1",), ("A:/a2",)],
    ),
    (
        "union-same-path-other-name-kept",
        lambda: union(pfs("A", "/a1", name="x"), pfs("A", "/a1", name="y")),
        [("x:/a1",), ("y:/a1",)],
    ),
    ("union-empty-side", lambda: union(pfs("A", "/*"), pfs("E", "/*")), [("A:/a1",), ("A:/a2",)]),
    ("union-all-empty", lambda: union(pfs("E", "/*"), pfs("N", "/*")), []),
    (
        "union-of-crosses",
        lambda: union(
            cross(pfs("A", "/a1"), pfs("C", "/*")), cross(pfs("B", "/b2"), pfs("C", "/*"))
        ),
        [("A:/a1", "C:/c1"), ("B:/b2", "C:/c1")],
    ),
    (
        "join-inner",
        lambda: join(_l(), _r()),
        [("L:/1.txt", "R:/1.csv"), ("L:/2.txt", "R:/2.csv")],
    ),
    (
        "join-outer-left",
        lambda: join(_l(outer=True), _r()),
        [("L:/1.txt", "R:/1.csv"), ("L:/2.txt", "R:/2.csv"), ("L:/3.txt",)],
    ),
    (
        "join-outer-right",
        lambda: join(_l(), _r(outer=True)),
        [("L:/1.txt", "R:/1.csv"), ("L:/2.txt", "R:/2.csv"), ("R:/4.csv",)],
    ),
    (
        "join-outer-both",
        lambda: join(_l(outer=True), _r(outer=True)),
        [("L:/1.txt", "R:/1.csv"), ("L:/2.txt", "R:/2.csv"), ("L:/3.txt",), ("R:/4.csv",)],
    ),
    (
        # Pachyderm: a key missing from an inner child keeps only the outer children's entries,
        # so R's /2.csv is dropped from key 2 (M lacks it) and key 4 (only R) is dropped.
        "join-three-way-outer",
        lambda: join(_l(outer=True), _m(), _r()),
        [("L:/1.txt", "M:/1.md", "R:/1.csv"), ("L:/2.txt",), ("L:/3.txt",)],
    ),
    ("join-three-way-inner", lambda: join(_l(), _m(), _r()), [("L:/1.txt", "M:/1.md", "R:/1.csv")]),
    (
        "join-braced-template",
        lambda: join(_l(template="${1}"), _r()),
        [("L:/1.txt", "R:/1.csv"), ("L:/2.txt", "R:/2.csv")],
    ),
    (
        "join-dollar-dollar-all-share-key",
        lambda: join(_l(template="$$"), _r(template="$$")),
        _LR_CROSS,
    ),
    (
        "join-group-past-last-is-empty",
        lambda: join(_l(template="$2"), _r(template="$7")),
        _LR_CROSS,
    ),
    (
        "join-no-join-on-is-cross",
        lambda: join(pfs("L", "/*.txt"), pfs("R", "/*.csv")),
        _LR_CROSS,
    ),
    ("join-whole-path-keys-differ", lambda: join(_l(template="$0"), _r(template="$0")), []),
    ("join-empty-side", lambda: join(_l(), pfs("E", "/(*)", join_on="$1")), []),
    (
        "join-empty-side-outer",
        lambda: join(_l(outer=True), pfs("E", "/(*)", join_on="$1")),
        [("L:/1.txt",), ("L:/2.txt",), ("L:/3.txt",)],
    ),
    (
        "join-product-per-key",
        lambda: join(pfs("G", "/(*)-*.txt", join_on="$1"), pfs("H", "/(*)-x.csv", join_on="$1")),
        [("G:/a-1.txt", "H:/a-x.csv"), ("G:/a-2.txt", "H:/a-x.csv")],
    ),
    (
        "group-by-key",
        lambda: group(pfs("G", "/(*)-*.txt", group_by="$1")),
        [("G:/a-1.txt", "G:/a-2.txt"), ("G:/b-1.txt",)],
    ),
    (
        "group-across-children",
        lambda: group(pfs("H", "/(*)-x.csv", group_by="$1"), pfs("G", "/(*)-*.txt", group_by="$1")),
        [("G:/a-1.txt", "G:/a-2.txt", "H:/a-x.csv"), ("G:/b-1.txt",), ("H:/c-x.csv",)],
    ),
    (
        "group-no-group-by-one-datum",
        lambda: group(pfs("A", "/*"), pfs("B", "/*")),
        [("A:/a1", "A:/a2", "B:/b1", "B:/b2", "B:/b3")],
    ),
    ("group-empty", lambda: group(pfs("E", "/*", group_by="$1")), []),
    (
        "group-over-join",
        lambda: group(
            join(
                pfs("L", "/(*).txt", join_on="$1", group_by="k"),
                pfs("R", "/(*).csv", join_on="$1", group_by="k"),
            )
        ),
        [("L:/1.txt", "R:/1.csv", "L:/2.txt", "R:/2.csv")],
    ),
    (
        "group-over-join-regroups-by-own-key",
        lambda: group(
            join(
                pfs("L", "/(*).txt", join_on="$1", group_by="$1", outer_join=True),
                pfs("R", "/(*).csv", join_on="$1", group_by="$1"),
            )
        ),
        [("L:/1.txt", "R:/1.csv"), ("L:/2.txt", "R:/2.csv"), ("L:/3.txt",)],
    ),
    (
        "cross-of-join-and-pfs",
        lambda: cross(join(_l(), _r()), pfs("C", "/*")),
        # The join's input name is its first child's ("L"), so C sorts first.
        [("C:/c1", "L:/1.txt", "R:/1.csv"), ("C:/c1", "L:/2.txt", "R:/2.csv")],
    ),
]


@pytest.mark.parametrize(
    ("build", "expected"),
    [c[1:] for c in COMBINATOR_CASES],
    ids=[c[0] for c in COMBINATOR_CASES],
)
def test_combinators(
    store: Store, build: Callable[[], Input], expected: list[tuple[str, ...]]
) -> None:
    assert shape(list(list_datums(store, build(), salt="s"))) == expected


def test_join_and_group_keys_are_recorded_on_inputs(store: Store) -> None:
    datums = list(list_datums(store, join(_l(template="k${1}"), _r(template="k$1"))))
    assert [[i.join_on for i in d.inputs] for d in datums] == [["k1", "k1"], ["k2", "k2"]]
    grouped = list(list_datums(store, group(pfs("G", "/(*)-(*).txt", group_by="$1-$$-$9"))))
    assert [[i.group_by for i in d.inputs] for d in grouped] == [["a-$-", "a-$-"], ["b-$-"]]


def test_datum_input_fields(store: Store) -> None:
    head = store.branch_head("L", "master")
    (datum, *_) = list(list_datums(store, join(_l(), _r())))
    left = datum.inputs[0]
    info = store.inspect_file("L", "master", "/1.txt")
    assert (left.name, left.repo, left.branch, left.commit, left.path) == (
        "L",
        "L",
        "master",
        head,
        "/1.txt",
    )
    assert (left.hash, left.size, left.join_on, left.group_by) == (info.hash, 2, "1", "")
    assert datum.size == 4


def test_pinned_commits_plan_against_older_commit(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    store.create_repo("in")
    old = put_commit(store, "in", {"/a": b"1", "/b": b"2"})
    new = put_commit(store, "in", {"/a": b"changed", "/c": b"3"})
    spec = pfs("in", "/*")
    at_head = list(list_datums(store, spec))
    assert [(d.inputs[0].path, d.inputs[0].commit) for d in at_head] == [
        ("/a", new),
        ("/b", new),
        ("/c", new),
    ]
    pinned = list(list_datums(store, spec, {("in", "master"): old}))
    assert [(d.inputs[0].path, d.inputs[0].commit) for d in pinned] == [("/a", old), ("/b", old)]
    assert pinned[0].id == at_head[0].id
    assert pinned[0].hash != at_head[0].hash
    assert list(list_datums(store, spec, {("in", "master"): None})) == []


def test_other_branch(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    store.create_repo("in")
    put_commit(store, "in", {"/a": b"1"})
    dev = put_commit(store, "in", {"/z": b"1"}, branch="dev")
    (datum,) = list(list_datums(store, pfs("in", "/*", branch="dev")))
    assert (datum.inputs[0].branch, datum.inputs[0].commit, datum.inputs[0].path) == (
        "dev",
        dev,
        "/z",
    )


# --- streaming ------------------------------------------------------------------------------


def test_large_cross_streams(tmp_path: Path) -> None:
    """A 1,000 x 1,000 cross yields its first datums without building the product."""
    store = Store.open(str(tmp_path / "store"))
    for repo in ("left", "right"):
        store.create_repo(repo)
        commit = store.start_commit(repo)
        blob = commit.put_bytes("/seed", b"x")
        for i in range(1000):
            commit.put_entry(Entry(f"/f{i:04d}", blob, 1))
        commit.finish()
    start = time.perf_counter()
    first = list(
        itertools.islice(list_datums(store, cross(pfs("left", "/*"), pfs("right", "/*"))), 5)
    )
    assert time.perf_counter() - start < 2.0
    assert shape(first)[:2] == [("left:/f0000", "right:/f0000"), ("left:/f0000", "right:/f0001")]


# --- properties -----------------------------------------------------------------------------

_names = st.lists(
    st.text(alphabet="abcxyz", min_size=1, max_size=3), min_size=0, max_size=5, unique=True
)


def _fresh_store(tmp_path_factory: pytest.TempPathFactory, repos: Mapping[str, list[str]]) -> Store:
    store = Store.open(str(tmp_path_factory.mktemp("prop") / "store"))
    make_repos(store, {r: {f"/{n}": n.encode() for n in names} for r, names in repos.items()})
    return store


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sides=st.lists(_names, min_size=1, max_size=3))
def test_cross_cardinality_is_the_product(
    tmp_path_factory: pytest.TempPathFactory, sides: list[list[str]]
) -> None:
    repos = {f"r{i}": names for i, names in enumerate(sides)}
    store = _fresh_store(tmp_path_factory, repos)
    datums = list(list_datums(store, cross(*(pfs(r, "/*") for r in repos))))
    expected = 1
    for names in sides:
        expected *= len(names)
    assert len(datums) == expected
    assert len({d.id for d in datums}) == expected


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sides=st.lists(_names, min_size=1, max_size=3))
def test_union_cardinality_is_the_sum(
    tmp_path_factory: pytest.TempPathFactory, sides: list[list[str]]
) -> None:
    repos = {f"r{i}": names for i, names in enumerate(sides)}
    store = _fresh_store(tmp_path_factory, repos)
    datums = list(list_datums(store, union(*(pfs(r, "/*") for r in repos))))
    assert len(datums) == sum(len(names) for names in sides)
    assert shape(datums) == [(f"{r}:/{n}",) for r, names in repos.items() for n in sorted(names)]


# --- planning is bounded by the job's deadline ---------------------------------------------------


def test_planning_past_its_deadline_raises_job_killed(tmp_path: Path) -> None:
    from airflow_datum_provider.core.errors import JobKilled
    from airflow_datum_provider.core.plan import PLAN_TIMEOUT_REASON

    store = Store.open(tmp_path / "store")
    make_repos(store, {"A": {f"/f{i}": b"x" for i in range(600)}})
    past = time.monotonic() - 1
    with pytest.raises(JobKilled, match=PLAN_TIMEOUT_REASON):
        next(list_datums(store, pfs("A", "/*"), deadline=past))
    with pytest.raises(JobKilled, match=PLAN_TIMEOUT_REASON):
        list(list_datums(store, cross(pfs("A", "/*"), pfs("A", "/*", name="B")), deadline=past))
    future = time.monotonic() + 3600
    assert len(list(list_datums(store, pfs("A", "/*"), deadline=future))) == 600


def test_job_timeout_covers_planning(tmp_path: Path) -> None:
    from airflow_datum_provider.core.engine import create_pipeline, run_pipeline
    from airflow_datum_provider.core.plan import PLAN_TIMEOUT_REASON
    from airflow_datum_provider.core.spec import parse_spec

    store = Store.open(tmp_path / "store")
    make_repos(store, {"data": {"/a": b"a"}})
    spec = parse_spec(
        {
            "pipeline": {"name": "p"},
            "input": {"pfs": {"repo": "data", "glob": "/*"}},
            "transform": {"cmd": ["true"]},
            "job_timeout": "0.000001s",  # over before the first datum is listed
        }
    )
    create_pipeline(store, spec)
    job = run_pipeline(store, "p")
    assert (job.state, job.reason) == ("killed", PLAN_TIMEOUT_REASON)
    assert store.branch_head("p", "master") is None
    assert store.list_open_commits("p") == []
