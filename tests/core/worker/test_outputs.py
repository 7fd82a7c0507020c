from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_datum_provider.core.store.store import Store
from airflow_datum_provider.core.worker import OutputRejected, collect_outputs

from .conftest import FILES, MODES, World

BAD_NAME = (
    "cannot upload file produced by the user code because its name cannot be represented in PFS"
)


def _sh(world: World, script: str, namespace: bool = False, **kw: object):  # type: ignore[no-untyped-def]
    return world.run(
        world.datum(world.input("in", "/a.txt"), world.input("dir", "/dirA/")),
        cmd=("sh", "-c", script),
        use_pfs_mount=namespace,
        **kw,
    )


@pytest.mark.parametrize(
    "name", ["bad(1).txt", "star*.txt", "q?", "brace{x}", "tab\there", "sub/at@sign"]
)
def test_invalid_output_name_fails_datum(world: World, name: str) -> None:
    script = f'cd "$PFS_ROOT/out" && echo ok > good.txt && mkdir -p sub && printf x > "{name}"'
    result = _sh(world, script)
    assert result.state == "failed"
    assert result.reason.startswith(BAD_NAME)
    assert repr(name.split("/")[-1])[1:-1] in result.reason
    assert result.outputs == ()


def test_invalid_name_uploads_nothing(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    out = tmp_path / "root" / "out"
    out.mkdir(parents=True)
    (out / "fine.txt").write_bytes(b"never stored")
    (out / "no+plus").write_bytes(b"x")
    with pytest.raises(OutputRejected) as info:
        collect_outputs(store, tmp_path / "root", tag="d")
    assert info.value.path == "/no+plus"
    blobs = [
        p for p in (tmp_path / "store").rglob("*") if p.is_file() and b"never" in p.read_bytes()
    ]
    assert blobs == []


@pytest.mark.parametrize("namespace", MODES)
def test_symlinks_into_the_root_are_stored_as_content(world: World, namespace: bool) -> None:
    script = """
    cd "$PFS_ROOT/out"
    ln -s "$in" abs.txt
    ln -s ../in/a.txt rel.txt
    ln -s "$dir" tree
    ln -s ../.env env
    echo own > own.txt
    ln -s own.txt again.txt
    mkdir d && ln -s ../../in/a.txt d/deep.txt
    """
    result = _sh(world, script, namespace)
    assert result.state == "success", result.reason
    files = world.read(result)
    env = files.pop("/env").decode()
    assert f"PACH_DATUM_ID={result.datum_id}" in env
    assert files == {
        "/abs.txt": FILES["/a.txt"],
        "/again.txt": b"own\n",
        "/d/deep.txt": FILES["/a.txt"],
        "/own.txt": b"own\n",
        "/rel.txt": FILES["/a.txt"],
        "/tree/sub/y.txt": FILES["/dirA/sub/y.txt"],
        "/tree/x.txt": FILES["/dirA/x.txt"],
    }
    assert [e.path for e in result.outputs] == sorted(e.path for e in result.outputs)
    assert {e.tag for e in result.outputs} == {result.datum_id}


@pytest.mark.parametrize("namespace", MODES)
@pytest.mark.parametrize(
    "target",
    [
        "/etc/passwd",
        "../../../../../../../../etc/passwd",
        "/etc",
        "../in/../../../../../../../etc/hostname",
        "/pfs/../etc/passwd",
        "/pfs/in/../../etc/passwd",
        "../in/a.txt/../../../outside",
        "/nonexistent/file",
    ],
    ids=[
        "absolute",
        "relative",
        "dir",
        "climb-via-input",
        "pfs-dotdot",
        "pfs-in-dotdot",
        "through-file",
        "dangling",
    ],
)
def test_symlink_escape_is_refused(world: World, namespace: bool, target: str) -> None:
    outside = world.tmp / "outside"
    outside.write_text("secret")
    result = _sh(
        world, f'ln -s "{target}" "$PFS_ROOT/out/leak"; echo ok > "$PFS_ROOT/out/ok"', namespace
    )
    assert result.state == "failed"
    assert "leak" in result.reason
    assert "symlink" in result.reason
    assert result.outputs == ()


def test_symlink_to_scratch_parent_refused_even_if_real_path_exists(world: World) -> None:
    (world.tmp / "sibling.txt").write_text("not yours")
    result = _sh(world, 'ln -s "$PFS_ROOT/../sibling.txt" "$PFS_ROOT/out/s"')
    assert result.state == "failed"
    assert "points outside" in result.reason


def test_symlink_loop_is_refused(world: World) -> None:
    result = _sh(world, 'cd "$PFS_ROOT/out" && mkdir d && ln -s .. d/up && echo x > f')
    assert result.state == "failed"
    assert "loop" in result.reason


def test_self_referencing_symlink_is_refused(world: World) -> None:
    result = _sh(world, 'cd "$PFS_ROOT/out" && ln -s me me')
    assert result.state == "failed"
    assert "dangles or loops" in result.reason


def test_out_replaced_by_symlink_outside_is_refused(world: World) -> None:
    result = _sh(world, 'rm -rf "$PFS_ROOT/out" && ln -s /etc "$PFS_ROOT/out"')
    assert result.state == "failed"
    assert "symlink" in result.reason


def test_out_removed_means_no_outputs(world: World) -> None:
    result = _sh(world, 'rm -rf "$PFS_ROOT/out"')
    assert (result.state, result.outputs) == ("success", ())


def test_empty_directories_produce_nothing(world: World) -> None:
    result = _sh(
        world, 'mkdir -p "$PFS_ROOT/out/a/b/c" "$PFS_ROOT/out/e" && echo f > "$PFS_ROOT/out/e/f"'
    )
    assert result.state == "success", result.reason
    assert [e.path for e in result.outputs] == ["/e/f"]


def test_fifo_is_refused(world: World) -> None:
    result = _sh(world, 'mkfifo "$PFS_ROOT/out/pipe"')
    assert result.state == "failed"
    assert "not a regular file" in result.reason


def test_outputs_sorted_by_full_path(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    out = tmp_path / "root" / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "z").write_text("1")
    (out / "a-b").write_text("2")
    entries, total = collect_outputs(store, tmp_path / "root", tag="T")
    assert [(e.path, e.tag) for e in entries] == [("/a-b", "T"), ("/a/z", "T")]
    assert total == 2


def test_hard_link_count_does_not_matter(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    out = tmp_path / "root" / "out"
    out.mkdir(parents=True)
    (out / "one").write_text("same")
    os.link(out / "one", out / "two")
    entries, _ = collect_outputs(store, tmp_path / "root", tag="T")
    assert [e.path for e in entries] == ["/one", "/two"]
    assert entries[0].hash == entries[1].hash
