"""The writer lock inside a store: one clear error for a second writer, stale locks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from _store_helpers import ROOT, small_cube

from firesmoke.cube.build import open_cube, write_cube
from firesmoke.store import StoreLock, StoreLockedError


def test_second_writer_gets_one_clear_error(tmp_path):
    store = tmp_path / "c.zarr"
    with StoreLock(store, purpose="firesmoke cube"):
        with pytest.raises(StoreLockedError, match=rf"firesmoke cube on host .* pid {os.getpid()}"):
            StoreLock(store).acquire()
        with pytest.raises(StoreLockedError):
            write_cube(small_cube(4), store)
    write_cube(small_cube(4), store)  # released: works
    assert not (store / ".firesmoke" / "lock").exists()


def _dead_holders_lock(store):
    """A lock in ``store`` left by a process of this host that has exited."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (store / ".firesmoke").mkdir(parents=True)
    (store / ".firesmoke" / "lock").write_text(json.dumps(
        {"host": socket.gethostname(), "pid": dead.pid, "since": "2026-01-01T00:00:00Z"}))


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    store = tmp_path / "c.zarr"
    _dead_holders_lock(store)
    write_cube(small_cube(4), store)
    assert open_cube(store).sizes["time"] == 4


def test_lock_of_another_host_is_respected(tmp_path):
    store = tmp_path / "c.zarr"
    (store / ".firesmoke").mkdir(parents=True)
    (store / ".firesmoke" / "lock").write_text(json.dumps(
        {"host": "some-other-node", "pid": 1, "since": "2026-01-01T00:00:00Z"}))
    with pytest.raises(StoreLockedError, match="some-other-node"):
        write_cube(small_cube(4), store)


def test_two_concurrent_cli_style_writers(tmp_path):
    """Two processes writing one store: one finishes, the other gets StoreLockedError."""
    store = tmp_path / "c.zarr"
    go = tmp_path / "go"
    code = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        from _store_helpers import small_cube
        from firesmoke.cube.build import write_cube
        from firesmoke.store import StoreLockedError
        def hold(done, total, what):  # the first writer waits until the second has tried
            for _ in range(600):
                if os.path.exists({str(go)!r}):
                    return
                time.sleep(0.1)
        try:
            write_cube(small_cube(12), {str(store)!r}, progress=hold)
        except StoreLockedError as exc:
            print("LOCKED", exc); sys.exit(3)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    a = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    for _ in range(200):  # wait until the first writer holds the lock
        if (store / ".firesmoke" / "lock").exists():
            break
        time.sleep(0.05)
    b = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
    go.touch()
    assert a.wait(timeout=120) == 0
    assert b.returncode == 3, b.stderr
    assert "LOCKED" in b.stdout and "Traceback" not in b.stderr
    assert open_cube(store).sizes["time"] == 12


@pytest.mark.parametrize(("content", "match"), [
    ("[1, 2, 3]", "damaged .not a JSON object"),
    ('{"host": "h", "pid": 1000000000000000000000000000000}', "damaged .implausible pid"),
    ('{"host": "h", "pid": "12"}', "damaged .implausible pid"),
    ("\x00garbage", "damaged"),
])
def test_damaged_lock_files_are_clean_errors(tmp_path, content, match):
    store = tmp_path / "c.zarr"
    (store / ".firesmoke").mkdir(parents=True)
    (store / ".firesmoke" / "lock").write_text(content)
    with pytest.raises(StoreLockedError, match=match) as info:
        StoreLock(store).acquire()
    assert "delete it" in str(info.value)
    assert (store / ".firesmoke" / "lock").read_text() == content  # never taken over


def test_a_lock_that_is_a_folder_is_a_clean_error(tmp_path):
    from firesmoke.errors import InputError

    store = tmp_path / "c.zarr"
    (store / ".firesmoke" / "lock").mkdir(parents=True)
    with pytest.raises(InputError, match="not a regular file"):
        StoreLock(store).acquire()
    assert (store / ".firesmoke" / "lock").is_dir()


def test_stale_lock_takeover_does_not_race(tmp_path):
    """Four processes find the same dead holder at once; reading it and removing it are far
    apart (0.5 s). Exactly one may take the lock; the others see the live new holder."""
    store = tmp_path / "c.zarr"
    _dead_holders_lock(store)
    code = textwrap.dedent(f"""
        import os, sys, time
        import firesmoke.store.ledger as ledger
        from firesmoke.store import StoreLock, StoreLockedError
        alive = ledger._pid_alive
        def slow(pid):  # a slow disk between reading the holder and removing it
            time.sleep(0.5)
            return alive(pid)
        ledger._pid_alive = slow
        open(os.path.join({str(tmp_path)!r}, f"ready.{{os.getpid()}}"), "w").close()
        while len([n for n in os.listdir({str(tmp_path)!r}) if n.startswith("ready.")]) < 4:
            time.sleep(0.01)  # all four imported: go together
        try:
            lock = StoreLock({str(store)!r}).acquire()
        except StoreLockedError:
            print("LOCKED"); sys.exit(0)
        print("GOT", flush=True)
        time.sleep(3)
        lock.release()
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    got = [o for o, _ in outs if o.startswith("GOT")]
    assert len(got) == 1, outs
    assert all(o.startswith(("GOT", "LOCKED")) and "Traceback" not in e for o, e in outs), outs
    assert not (store / ".firesmoke" / "lock").exists()
    assert not list((store / ".firesmoke").glob("lock.stale.*"))
