from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from airflow_datum_provider.core.errors import PipelineError
from airflow_datum_provider.core.store.store import Store
from airflow_datum_provider.core.worker.env import input_path
from airflow_datum_provider.core.worker.namespace import wrap_command
from airflow_datum_provider.core.worker.scratch import lay_out, wipe

from .conftest import FILES, World, needs_namespace


def test_input_path_follows_go_path_join() -> None:
    assert input_path("/pfs", "in", "/a.txt") == "/pfs/in/a.txt"
    assert input_path("/pfs", "in", "/dirA/") == "/pfs/in/dirA"
    assert input_path("/pfs", "in", "/") == "/pfs/in"


def test_hard_links_share_the_blob_and_make_it_read_only(world: World) -> None:
    datum = world.datum(world.input("in", "/a.txt"), world.input("dir", "/dirA/"))
    scratch = lay_out(world.store, datum, world.scratch, variables={"K": "V"}, link=True)
    assert (scratch.linked, scratch.copied) == (3, 0)
    local = scratch.inputs["in"]
    blob = world.store.blob_path(datum.inputs[0].hash)
    assert blob is not None
    assert os.path.samestat(local.stat(), blob.stat())
    assert stat.S_IMODE(blob.stat().st_mode) & 0o222 == 0
    assert local.read_bytes() == FILES["/a.txt"]
    assert (world.scratch / ".env").read_text() == "K=V\n"
    assert list((world.scratch / "out").iterdir()) == []
    assert scratch.download_bytes == sum(
        len(FILES[p]) for p in ("/a.txt", "/dirA/x.txt", "/dirA/sub/y.txt")
    )
    # The store still reads (and replaces) read-only blobs.
    assert world.store.read_bytes("data", world.commit, "/a.txt") == FILES["/a.txt"]


def test_copies_are_independent_and_read_only(world: World) -> None:
    datum = world.datum(world.input("in", "/a.txt"))
    scratch = lay_out(world.store, datum, world.scratch, variables={}, link=False)
    assert (scratch.linked, scratch.copied) == (0, 1)
    local = scratch.inputs["in"]
    blob = world.store.blob_path(datum.inputs[0].hash)
    assert blob is not None
    assert not os.path.samestat(local.stat(), blob.stat())
    assert stat.S_IMODE(local.stat().st_mode) == 0o444
    assert local.read_bytes() == FILES["/a.txt"]


def test_remote_store_is_streamed(tmp_path: Path) -> None:
    store = Store.open("memory://worker-scratch-test")
    store.create_repo("data", exist_ok=True)
    with store.commit("data") as c:
        c.put_bytes("/d/f.bin", b"\x00\x01" * 1000)
    head = store.branch_head("data", "master")
    assert head is not None
    info = store.inspect_file("data", head, "/d/")
    from airflow_datum_provider.core.datum import Datum, DatumInput

    datum = Datum.of((DatumInput("in", "data", "master", head, "/d/", info.hash, info.size),), "s")
    scratch = lay_out(store, datum, tmp_path / "scratch", variables={}, link=True)
    assert (scratch.linked, scratch.copied) == (0, 1)
    assert (tmp_path / "scratch" / "in" / "d" / "f.bin").read_bytes() == b"\x00\x01" * 1000


def test_each_layout_starts_from_a_wiped_root(world: World) -> None:
    datum = world.datum(world.input("in", "/a.txt"))
    lay_out(world.store, datum, world.scratch, variables={}, link=False)
    (world.scratch / "out" / "left-over").write_text("x")
    (world.scratch / "stray").mkdir()
    lay_out(world.store, datum, world.scratch, variables={}, link=False)
    assert sorted(p.name for p in world.scratch.iterdir()) == [".env", "in", "out"]
    assert list((world.scratch / "out").iterdir()) == []


def test_wipe_handles_read_only_directories_without_touching_blobs(world: World) -> None:
    datum = world.datum(world.input("in", "/dirA/"))
    lay_out(world.store, datum, world.scratch, variables={}, link=True)
    for d in [world.scratch / "in" / "dirA" / "sub", world.scratch / "in" / "dirA"]:
        d.chmod(0o555)
    wipe(world.scratch)
    assert list(world.scratch.iterdir()) == []
    for entry in world.store.walk("data", world.commit, "/dirA/"):
        blob = world.store.blob_path(entry.hash)
        assert blob is not None
        assert stat.S_IMODE(blob.stat().st_mode) & 0o222 == 0


@pytest.mark.parametrize("root", ["/", "~"], ids=["filesystem-root", "home"])
def test_wipe_refuses_system_folders(root: str) -> None:
    with pytest.raises(PipelineError, match="dedicated folder"):
        wipe(Path(root).expanduser())


@needs_namespace
def test_wrapped_command_sees_scratch_at_pfs(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "f").write_text("data")
    argv = wrap_command(
        ["sh", "-c", 'cat /pfs/in/f; echo " $PWD"; touch /pfs/in/g 2>/dev/null || echo " ro"'],
        scratch_root=tmp_path,
        read_only=["in", "in"],
        working_dir="/pfs/in",
    )
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["data", "/pfs/in", "ro"]
    # The mount was private to that process: the host's /pfs is untouched.
    assert not os.path.exists("/pfs/in/f")


# -- .env, rewritten in place between datums ---------------------------------------------------


def _env_lines(root: Path) -> list[str]:
    return (root / ".env").read_text().splitlines()


def test_env_is_rewritten_in_place_with_only_the_new_datums_variables(world: World) -> None:
    datum = world.datum(world.input("in", "/a.txt"))
    lay_out(world.store, datum, world.scratch, variables={"LONG": "x" * 200}, link=False)
    inode = (world.scratch / ".env").stat().st_ino
    wipe(world.scratch, keep={"out", "in", ".env"})
    lay_out(world.store, datum, world.scratch, variables={"K": "V"}, link=False)
    assert _env_lines(world.scratch) == ["K=V"]  # the longer old content is cut off
    assert (world.scratch / ".env").stat().st_ino == inode


def test_env_hard_linked_to_an_input_blob_is_replaced_not_written_into(world: World) -> None:
    datum = world.datum(world.input("in", "/a.txt"))
    scratch = lay_out(world.store, datum, world.scratch, variables={}, link=True)
    blob = world.store.blob_path(datum.inputs[0].hash)
    assert blob is not None
    assert scratch.linked == 1
    env = world.scratch / ".env"
    env.unlink()
    os.link(scratch.inputs["in"], env)  # what user code could do: .env is now the store's blob
    wipe(world.scratch, keep={"out", "in", ".env"})
    lay_out(world.store, datum, world.scratch, variables={"K": "V"}, link=True)
    assert blob.read_bytes() == FILES["/a.txt"]
    assert _env_lines(world.scratch) == ["K=V"]
    assert not os.path.samestat(env.stat(), blob.stat())


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory"])
def test_env_swapped_for_something_else_is_replaced(world: World, kind: str) -> None:
    datum = world.datum(world.input("in", "/a.txt"))
    lay_out(world.store, datum, world.scratch, variables={}, link=False)
    env = world.scratch / ".env"
    env.unlink()
    target = world.tmp / "outside.txt"
    target.write_text("keep me\n")
    if kind == "fifo":
        os.mkfifo(env)  # opening it for writing would block until a reader came
    elif kind == "symlink":
        env.symlink_to(target)
    else:
        (env / "deep").mkdir(parents=True)
    wipe(world.scratch, keep={"out", "in", ".env"})
    lay_out(world.store, datum, world.scratch, variables={"K": "V"}, link=False)
    assert stat.S_ISREG(env.lstat().st_mode)
    assert _env_lines(world.scratch) == ["K=V"]
    assert target.read_text() == "keep me\n"
