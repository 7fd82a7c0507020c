"""Row-range datums through the installed ``datumctl``: put a table, run, list the ranges."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.conftest import Run
from tests.cli.test_datumctl import json_lines

SUM = (
    'awk -F, -v s="$DATUM_ROW_START" -v e="$DATUM_ROW_END" '
    "'NR > 1 && NR - 2 >= s && NR - 2 < e { t += $2 } END { print t + 0 }' "
    '"$sales" > "$PFS_ROOT/out/part-$DATUM_ROW_START"'
)


def test_put_a_table_run_it_in_ranges_and_list_them(run: Run, tmp_path: Path) -> None:
    table = tmp_path / "big.csv"
    table.write_text("id,amount\n" + "".join(f"{i},{i}\n" for i in range(25)))
    run("create", "repo", "sales")
    run("put", "file", "sales@master:/big.csv", "-f", str(table))
    spec = {
        "pipeline": {"name": "sums"},
        "input": {"pfs": {"repo": "sales", "glob": "/*.csv", "rows_per_datum": 10}},
        "transform": {"cmd": ["sh", "-c", SUM]},
    }
    path = tmp_path / "sums.json"
    path.write_text(json.dumps(spec))
    run("create", "pipeline", "-f", str(path))
    done = run("run", "pipeline", "sums", "--batch-config", "parallel")
    job = re.search(rb"^([0-9a-f]{32}) success 3 \+ 0 / 3$", done.stdout, re.M)
    assert job is not None, done.stdout
    parts = {p: run("get", "file", f"sums@master:/part-{p}").stdout for p in ("0", "10", "20")}
    assert parts == {"0": b"45\n", "10": b"145\n", "20": b"110\n"}  # sum(0..9), (10..19), (20..24)
    listed = run("list", "datum", f"sums@{job.group(1).decode()}").stdout.decode()
    for rows in ("[0:10]", "[10:20]", "[20:25]"):
        assert f"sales:/big.csv{rows}" in listed, listed
    preview = json_lines(run("list", "datum", "-f", str(path), "-o", "json"))
    assert [r["inputs"][0]["rows"] for r in preview] == [[0, 10], [10, 20], [20, 25]]
    rerun = run("run", "pipeline", "sums")
    assert re.search(rb" success 0 \+ 3 / 3$", rerun.stdout, re.M)  # unchanged table: skipped
