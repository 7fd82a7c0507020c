"""Row-range datums (``input.pfs.rows_per_datum``): planning, identity, skipping, and real runs."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest

from airflow_datum_provider.batch import RowCountChunker
from airflow_datum_provider.batch.rows import count_rows, read_rows
from airflow_datum_provider.core import create_pipeline, finish_job, plan_job, run_set, start_job
from airflow_datum_provider.core.datum import datum_id
from airflow_datum_provider.core.engine import run_pipeline
from airflow_datum_provider.core.errors import ChunkingError, SpecError
from airflow_datum_provider.core.plan import describe, list_datums
from airflow_datum_provider.core.spec import parse_spec, pfs
from airflow_datum_provider.core.store import Store


def _csv(rows: int, *, start: int = 0) -> bytes:
    lines = ["id,amount,note"] + [f"{i},{i * 3 + 1},n{i}" for i in range(start, start + rows)]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "store")
    store.create_repo("sales")
    return store


def _put(store: Store, files: dict[str, bytes]) -> str:
    with store.commit("sales") as c:
        for path, data in files.items():
            c.put_bytes(path, data)
    return c.id


def _ranges(store: Store, rows_per_datum: int, glob: str = "/*") -> list[tuple[str, Any]]:
    spec = pfs("sales", glob, rows_per_datum=rows_per_datum)
    return [(d.inputs[0].path, d.inputs[0].rows) for d in list_datums(store, spec)]


# --- the chunker's ranges -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "size", "expected"),
    [
        (10, 5, [(0, 5), (5, 10)]),  # an exact multiple
        (11, 5, [(0, 5), (5, 10), (10, 11)]),  # a remainder
        (3, 5, [(0, 3)]),
        (0, 5, []),  # an empty table: no ranges
        (1, 1, [(0, 1)]),
    ],
)
def test_row_count_chunker_row_ranges(total: int, size: int, expected: list[Any]) -> None:
    assert list(RowCountChunker(chunk_size=size).row_ranges(total)) == expected


@pytest.mark.parametrize("size", [0, -1, 2.5, True, "5"])
def test_bad_chunk_size_is_refused(size: Any) -> None:
    with pytest.raises(ChunkingError, match=r"^chunk_size must be a positive integer, got "):
        RowCountChunker(chunk_size=size)


@pytest.mark.parametrize("value", [0, -3, 2.5, "x", True])
def test_bad_rows_per_datum_is_one_line_naming_the_field(value: Any) -> None:
    spec = {
        "pipeline": {"name": "p"},
        "input": {"pfs": {"repo": "sales", "glob": "/*", "rows_per_datum": value}},
        "transform": {"cmd": ["true"]},
    }
    with pytest.raises(SpecError, match=r"^input\.pfs\.rows_per_datum: ") as caught:
        parse_spec(spec)
    assert "\n" not in str(caught.value)


def test_rows_per_datum_round_trips_and_camel_case_is_accepted() -> None:
    spec = parse_spec(
        {
            "pipeline": {"name": "p"},
            "input": {"pfs": {"repo": "sales", "glob": "/*", "rowsPerDatum": "4"}},
            "transform": {"cmd": ["true"]},
        }
    )
    assert spec.input == pfs("sales", "/*", rows_per_datum=4)
    assert spec.to_dict()["input"]["pfs"]["rows_per_datum"] == 4
    assert parse_spec(spec.to_dict()) == spec
    plain = parse_spec({**spec.to_dict(), "input": {"pfs": {"repo": "sales", "glob": "/*"}}})
    assert "rows_per_datum" not in plain.to_dict()["input"]["pfs"]  # Pachyderm specs unchanged


@pytest.mark.parametrize("flag", ["empty_files", "reference"])
def test_rows_per_datum_refuses_inputs_without_rows_to_hash(flag: str) -> None:
    spec = {
        "pipeline": {"name": "p"},
        "input": {"pfs": {"repo": "sales", "glob": "/*", "rows_per_datum": 2, flag: True}},
        "transform": {"cmd": ["true"]},
    }
    with pytest.raises(
        SpecError, match=rf"^input\.pfs\.rows_per_datum: cannot be used with {flag}: "
    ):
        parse_spec(spec)


def test_only_one_input_may_split_rows() -> None:
    with pytest.raises(SpecError, match=r"^input\.rows_per_datum: set on inputs a, b; at most"):
        parse_spec(
            {
                "pipeline": {"name": "p"},
                "input": {
                    "cross": [
                        {"pfs": {"repo": "a", "glob": "/*", "rows_per_datum": 2}},
                        {"pfs": {"repo": "b", "glob": "/*", "rows_per_datum": 2}},
                    ]
                },
                "transform": {"cmd": ["true"]},
            }
        )


# --- planning -----------------------------------------------------------------------------


def test_planning_splits_each_table_into_row_ranges(store: Store) -> None:
    _put(store, {"/a.csv": _csv(10), "/b.csv": _csv(11), "/empty.csv": _csv(0), "/z.csv": b""})
    assert _ranges(store, 5) == [
        ("/a.csv", (0, 5)),
        ("/a.csv", (5, 10)),
        ("/b.csv", (0, 5)),
        ("/b.csv", (5, 10)),
        ("/b.csv", (10, 11)),
    ]  # the header-only and the empty file have no rows, so no datums
    assert len(_ranges(store, 100)) == 2
    assert len(_ranges(store, 1)) == 21


def test_range_ids_are_distinct_stable_and_plain_ids_are_pachyderms(store: Store) -> None:
    first = _put(store, {"/a.csv": _csv(10)})
    spec = pfs("sales", "/*.csv", rows_per_datum=4)
    datums = list(list_datums(store, spec))
    assert [d.inputs[0].rows for d in datums] == [(0, 4), (4, 8), (8, 10)]
    assert len({d.id for d in datums}) == 3
    assert len({d.hash for d in datums}) == 3
    # Another commit that leaves the table alone: same ids and hashes (so: skipped).
    _put(store, {"/other.txt": b"not matched by the glob"})
    again = list(list_datums(store, spec))
    assert [(d.id, d.hash) for d in again] == [(d.id, d.hash) for d in datums]
    # A changed table: the ids of the same ranges stay, every hash changes.
    _put(store, {"/a.csv": _csv(10, start=100)})
    changed = list(list_datums(store, spec))
    assert [d.id for d in changed] == [d.id for d in datums]
    assert not {d.hash for d in changed} & {d.hash for d in datums}
    # Without rows_per_datum the datum is Pachyderm's: the id of the path alone.
    (plain,) = list_datums(store, pfs("sales", "/*.csv"), {("sales", "master"): first})
    assert plain.id == datum_id(plain.inputs)
    assert plain.inputs[0].rows is None
    assert plain.id not in {d.id for d in datums}
    assert describe(datums[1]).endswith(":/a.csv[4:8]")
    assert datums[1].from_dict(datums[1].to_dict()) == datums[1]
    assert "rows" not in plain.to_dict()["inputs"][0]


def test_quoted_newlines_ndjson_and_parquet_count_rows(tmp_path: Path) -> None:
    quoted = tmp_path / "q.csv"
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "text"])
    writer.writerows([[1, "one\nline two"], [2, 'say "hi"'], [3, "x"]])
    quoted.write_text(buf.getvalue() + "\n\n")  # trailing blank lines are not rows
    assert count_rows(quoted) == 3
    assert [r["text"] for r in read_rows(quoted, 0, 2)] == ["one\nline two", 'say "hi"']
    nd = tmp_path / "t.ndjson"
    nd.write_text("\n".join(json.dumps({"v": i}) for i in range(7)) + "\n\n")
    assert count_rows(nd) == 7
    assert [r["v"] for r in read_rows(nd, 5, 9)] == [5, 6]
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a\tb\n1\t2\n3\t4\n")
    assert count_rows(tsv) == 2
    assert list(read_rows(tsv, 1, 2)) == [{"a": "3", "b": "4"}]
    pl = pytest.importorskip("polars")
    pq = tmp_path / "t.parquet"
    pl.DataFrame({"v": list(range(12))}).write_parquet(pq)
    assert count_rows(pq) == 12
    assert [r["v"] for r in read_rows(pq, 10, 12)] == [10, 11]


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
def test_the_newline_count_agrees_with_the_csv_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """Plain files are counted by newlines (in blocks); the count is the csv module's."""
    from airflow_datum_provider.batch import rows

    monkeypatch.setattr(rows, "_BLOCK", block)  # block boundaries inside and between lines
    rng = random.Random(block)
    texts = ["", "\n", "h\n", "h", "\n\nh\n\n", "h\n1\n\n\n2", " \n", "h\n,\n"]
    texts += [
        "".join(rng.choice(["a", ",", "\n", "\n", " ", "bc"]) for _ in range(rng.randint(0, 40)))
        for _ in range(200)
    ]
    path = tmp_path / "t.csv"
    for text in texts:
        path.write_text(text)
        with path.open(newline="") as fh:
            expected = max(sum(1 for r in csv.reader(fh) if r) - 1, 0)
        assert count_rows(path) == expected, repr(text)
        assert len(list(read_rows(path, 0, 10**6))) == expected, repr(text)


def test_a_file_that_is_not_a_table_fails_the_job_with_one_line(store: Store) -> None:
    _put(store, {"/a.csv": _csv(3), "/notes.bin": b"\x00\x01"})
    spec = parse_spec(
        {
            "pipeline": {"name": "sums"},
            "input": {"pfs": {"repo": "sales", "glob": "/*", "rows_per_datum": 2}},
            "transform": {"cmd": ["true"]},
        }
    )
    create_pipeline(store, spec)
    job = run_pipeline(store, "sums")
    assert job.state == "failure"
    assert job.reason.startswith(
        f"input.pfs.rows_per_datum: sales@{store.branch_head('sales', 'master')}:/notes.bin: "
        "cannot split a '.bin' file into rows; allowed: .csv, .jsonl, .ndjson, .parquet, .pq, .tsv"
    )
    assert "\n" not in job.reason


# --- real runs ----------------------------------------------------------------------------

# Sum column 2 of the datum's rows: data rows are lines 2.. of the file (no quotes, no blanks).
SUM_CMD = (
    'awk -F, -v s="$DATUM_ROW_START" -v e="$DATUM_ROW_END" '
    "'NR > 1 && NR - 2 >= s && NR - 2 < e { t += $2; n++ } END { print t + 0, n + 0 }' "
    '"$sales" > "$PFS_ROOT/out/$(basename "$sales").$DATUM_ROW_START-$DATUM_ROW_END"; '
    'echo "$DATUM_ROW_START" >> "$RAN"'
)
MERGE_CMD = (
    'cat "$sums"/* | awk \'{ t += $1; n += $2 } END { print t, n }\' > "$PFS_ROOT/out/total"'
)


def _sum_specs(store: Store, ran: Path) -> None:
    create_pipeline(
        store,
        parse_spec(
            {
                "pipeline": {"name": "sums"},
                "input": {"pfs": {"repo": "sales", "glob": "/*.csv", "rows_per_datum": 1000}},
                "transform": {"cmd": ["sh", "-c", SUM_CMD], "env": {"RAN": str(ran)}},
            }
        ),
    )
    create_pipeline(
        store,
        parse_spec(
            {
                "pipeline": {"name": "total"},
                "input": {"pfs": {"repo": "sums", "glob": "/"}},
                "transform": {"cmd": ["sh", "-c", MERGE_CMD]},
            }
        ),
    )


def test_a_large_csv_summed_per_range_then_merged(store: Store, tmp_path: Path) -> None:
    rows = 10_500
    _put(store, {"/big.csv": _csv(rows)})
    ran = tmp_path / "ran"
    _sum_specs(store, ran)
    job = run_pipeline(store, "sums", batch_config={"max_workers": 2})
    assert (job.state, job.processed, job.skipped) == ("success", 11, 0)
    parts = {
        e.path: store.read_bytes("sums", "master", e.path) for e in store.walk("sums", "master")
    }
    assert sorted(parts) == sorted(
        f"/big.csv.{s}-{min(s + 1000, rows)}" for s in range(0, rows, 1000)
    )
    assert (
        parts["/big.csv.10000-10500"]
        == f"{sum(i * 3 + 1 for i in range(10000, rows))} 500\n".encode()
    )
    assert run_pipeline(store, "total").state == "success"
    expected = sum(i * 3 + 1 for i in range(rows))
    assert store.read_bytes("total", "master", "/total") == f"{expected} {rows}\n".encode()

    # Unchanged table (another file changed): every range is skipped.
    _put(store, {"/readme.txt": b"hi"})
    job = run_pipeline(store, "sums")
    assert (job.state, job.processed, job.skipped) == ("success", 0, 11)
    assert len(ran.read_text().split()) == 11
    # A changed table: all its ranges run again; a range that disappeared drops its output.
    _put(store, {"/big.csv": _csv(9_000, start=1)})
    job = run_pipeline(store, "sums")
    assert (job.state, job.processed, job.skipped) == ("success", 9, 0)
    assert len(ran.read_text().split()) == 20
    assert sorted(e.path for e in store.walk("sums", "master")) == sorted(
        f"/big.csv.{s}-{s + 1000}" for s in range(0, 9000, 1000)
    )
    assert run_pipeline(store, "total").state == "success"
    expected = sum(i * 3 + 1 for i in range(1, 9001))
    assert store.read_bytes("total", "master", "/total") == f"{expected} 9000\n".encode()


def test_a_python_transform_sees_its_range_in_ctx_and_env(store: Store) -> None:
    _put(store, {"/t.csv": _csv(25)})
    create_pipeline(
        store,
        parse_spec(
            {
                "pipeline": {"name": "py"},
                "input": {"pfs": {"repo": "sales", "glob": "/*", "rows_per_datum": 10}},
                "transform": {"cmd": ["true"]},
            }
        ),
    )
    seen: list[tuple[Any, str, str]] = []

    def total(ctx: Any) -> None:
        seen.append((ctx.rows, ctx.env["DATUM_ROW_START"], ctx.env["DATUM_ROW_END"]))
        amounts = [int(r["amount"]) for r in read_rows(ctx.inputs["sales"], *ctx.rows)]
        (ctx.out / f"{ctx.rows[0]:05d}").write_text(f"{sum(amounts)} {len(amounts)}\n")

    plan = plan_job(store, start_job(store, "py"))
    for ref in plan.sets:
        run_set(store, ref, python=total)
    assert finish_job(store, plan.job).state == "success"
    assert sorted(seen) == [((0, 10), "0", "10"), ((10, 20), "10", "20"), ((20, 25), "20", "25")]
    out = [store.read_bytes("py", "master", f"/{s:05d}").split() for s in (0, 10, 20)]
    assert [int(n) for _, n in out] == [10, 10, 5]
    assert sum(int(t) for t, _ in out) == sum(i * 3 + 1 for i in range(25))
