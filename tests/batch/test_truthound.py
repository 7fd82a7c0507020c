"""TruthoundEngine on the real truthound package: checks, one-time auto_schema, merged stats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_datum_provider.batch import (
    BatchConfig,
    BatchExecutor,
    CheckStatus,
    PolarsChunker,
    TruthoundEngine,
)

pl = pytest.importorskip("polars")
th = pytest.importorskip("truthound")


def test_importing_batch_imports_neither_polars_nor_truthound() -> None:
    code = (
        "import json, sys\n"
        "import airflow_datum_provider.batch as b\n"
        "b.BatchExecutor(b.TruthoundEngine(), b.DEFAULT_BATCH_CONFIG)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('polars', 'truthound', 'airflow'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout) == []


@pytest.fixture
def frame() -> Any:
    n = 20_000
    i = pl.int_range(0, n, eager=True)
    return pl.DataFrame(
        {
            "id": i,
            "price": pl.Series([None if k % 10 == 0 else float(k % 500) for k in range(n)]),
            "kind": pl.Series(["a", "b", "c", "d", "e"] * (n // 5)),
        }
    )


def test_no_workspace_is_written(
    frame: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    BatchExecutor(TruthoundEngine(), BatchConfig(batch_size=5000)).check_batch(
        frame, auto_schema=True
    )
    assert list(tmp_path.iterdir()) == []


class CountingEngine(TruthoundEngine):
    def __init__(self) -> None:
        super().__init__()
        self.learned: list[int] = []

    def learn(self, data: Any, **kwargs: Any) -> Any:
        self.learned.append(data.height)
        return super().learn(data, **kwargs)


def test_auto_schema_is_learned_once_from_the_whole_frame(frame: Any) -> None:
    engine = CountingEngine()
    result = BatchExecutor(engine, BatchConfig(batch_size=5000, max_workers=2)).check_batch(
        frame, auto_schema=True
    )
    assert engine.learned == [20_000]  # one learn, over every row, not one per chunk
    assert result.total_chunks == 4
    # the whole-frame schema applied to each chunk: the ranges hold; the nulls are reported
    assert result.status is CheckStatus.FAILED
    null_issue = next(i for i in result.value.issues if i.issue_type == "null")
    assert (null_issue.column, null_issue.count) == ("price", 2_000)


def test_a_chunk_outside_a_learned_schema_fails(frame: Any) -> None:
    engine = TruthoundEngine()
    schema = engine.learn(frame.head(10_000))
    bad = frame.with_columns(
        pl.when(pl.col("id") == 15_000).then(pl.lit("zzz")).otherwise(pl.col("kind")).alias("kind")
    )
    result = BatchExecutor(engine, BatchConfig(batch_size=5000, max_workers=1)).check_batch(
        bad, schema=schema
    )
    statuses = [c.status for c in result.chunk_results]
    assert statuses[3] is CheckStatus.FAILED
    issues = {(i.column, i.issue_type) for i in result.chunk_results[3].value.issues}
    assert ("kind", "invalid_value") in issues
    assert result.failed_chunks >= 1
    assert result.status is CheckStatus.FAILED


def test_merged_profile_statistics_match_the_whole_frame(frame: Any) -> None:
    engine = TruthoundEngine()
    result = BatchExecutor(engine, BatchConfig(batch_size=3000, max_workers=2)).profile_batch(frame)
    merged = result.value
    whole = engine.profile(frame)
    assert result.total_chunks == 7
    assert [c.name for c in merged.columns] == ["id", "price", "kind"]  # once each
    assert merged.row_count == 20_000
    assert merged.chunks == 7
    for name in ("id", "price", "kind"):
        m, w = merged.column(name), whole.column(name)
        # exact statistics
        assert (m.row_count, m.null_count, m.min, m.max) == (
            w.row_count,
            w.null_count,
            w.min,
            w.max,
        )
        assert (m.min_length, m.max_length) == (w.min_length, w.max_length)
        if w.mean is not None:
            assert m.mean == pytest.approx(w.mean, rel=1e-12)
            assert m.std == pytest.approx(w.std, rel=1e-9)
        # bounded: the true quantiles lie within the merged bounds
        if w.quantiles:
            assert m.quantiles is None
            for key, value in w.quantiles.items():
                lo, hi = m.quantile_bounds[key]
                assert lo <= value <= hi
    kind = merged.column("kind")
    assert kind.distinct_exact
    assert kind.distinct_count == 5
    assert kind.allowed_values == ("a", "b", "c", "d", "e")
    ids = merged.column("id")
    assert not ids.distinct_exact
    assert ids.distinct_count <= 20_000 <= ids.distinct_count_max


def test_merged_learned_schema(frame: Any) -> None:
    result = BatchExecutor(TruthoundEngine(), BatchConfig(batch_size=4000)).learn_batch(frame)
    schema = result.value
    assert schema.row_count == 20_000
    assert schema["price"].nullable
    assert schema["price"].null_ratio == pytest.approx(0.1)
    assert schema["kind"].allowed_values == ["a", "b", "c", "d", "e"]
    assert (schema["id"].min_value, schema["id"].max_value) == (0.0, 19_999.0)
    # the merged schema checks the whole frame without new failures beyond its nulls
    check = TruthoundEngine().check(frame, schema=schema)
    assert {i.issue_type for i in check.issues} <= {"null"}


def test_lazy_parquet_file_is_chunked_lazily(frame: Any, tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    frame.write_parquet(path)
    chunker = PolarsChunker(chunk_size=6000)
    assert chunker.count(str(path)) == 4
    assert [c.rows for c in chunker.chunks(path)] == [6000, 6000, 6000, 2000]
    result = BatchExecutor(TruthoundEngine(), BatchConfig(batch_size=6000)).check_batch(
        str(path), auto_schema=True
    )
    assert result.total_chunks == 4
    assert result.value.row_count == 20_000
