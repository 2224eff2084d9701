"""Allocator tuning for CPU inference (firesmoke.inference.runtime), checked in fresh processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from firesmoke.inference.runtime import inference_worker_env, worker_environment

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# allocate, touch and free a 64 MiB torch tensor several times (as the activations of a
# forward pass); count the page faults once the heap has settled.
# (numpy would not do: it asks for huge pages for large arrays itself)
_COUNT_FAULTS = r"""
import resource
import torch
def count_faults():
    for _ in range(10):  # the heap settles in the first rounds
        a = torch.ones(64 << 18)
        del a
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        a = torch.ones(64 << 18)
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
"""

_PROBE = _COUNT_FAULTS + r"""
import json, sys
from firesmoke.inference.runtime import tune_allocator
tuned = tune_allocator() if sys.argv[1] == "tune" else False
print(json.dumps({"tuned": tuned, "faults": count_faults()}))
"""


def _probe(mode: str, **env: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True,
                          env={**os.environ, **env}, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_tuned_process_reuses_freed_memory():
    plain = _probe("plain")
    tuned = _probe("tune")
    pages = 5 * (64 << 20) // 4096
    assert plain["faults"] > pages // 2  # glibc default: every block mmap'ed afresh
    assert tuned["tuned"] is True
    assert tuned["faults"] < pages // 20  # the freed block is reused


def test_tuning_can_be_switched_off():
    res = _probe("tune", FIRESMOKE_MALLOC_TUNING="0")
    assert res["tuned"] is False
    assert res["faults"] > 5 * (64 << 20) // 4096 // 2


def test_worker_environment(monkeypatch):
    env = worker_environment()
    assert env["MALLOC_MMAP_MAX_"] == "0" and env["MALLOC_ARENA_MAX"] == "1"
    monkeypatch.setenv("FIRESMOKE_MALLOC_TUNING", "off")
    assert worker_environment() == {}


def test_local_cluster_workers_start_with_the_tuned_allocator(monkeypatch):
    from distributed import Client, LocalCluster

    # what any earlier nanny leaves in the parent's environment: Dask's own setting
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.delenv("MALLOC_MMAP_MAX_", raising=False)
    with inference_worker_env():
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    with cluster, Client(cluster) as client:
        got = client.run(lambda: {k: os.environ.get(k) for k in
                                  ("MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_")})
    (env,) = got.values()
    assert env == worker_environment()
    # the parent's environment is given back as it was
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"
    assert "MALLOC_MMAP_MAX_" not in os.environ


# the same probe in a thread that allocated before the tuning (its own malloc arena), then
# the warning firesmoke logs when it builds CPU models in such a thread
_THREAD_PROBE = _COUNT_FAULTS + r"""
import io, json, logging, threading
from firesmoke.inference.runtime import tune_allocator, warn_thread_arena
stream = io.StringIO()
logging.getLogger("firesmoke").addHandler(logging.StreamHandler(stream))
out = {"main_warned": None}
def work():
    torch.ones(1000)  # this thread has an arena of its own before the tuning
    out["tuned"] = tune_allocator()
    out["faults"] = count_faults()
    out["warned"] = warn_thread_arena()
    out["warned_again"] = warn_thread_arena()
out["main_warned"] = warn_thread_arena()
t = threading.Thread(target=work)
t.start()
t.join()
out["log"] = stream.getvalue()
print(json.dumps(out))
"""


def _thread_probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    proc = subprocess.run([sys.executable, "-c", _THREAD_PROBE], capture_output=True, text=True,
                          env={**clean, **env}, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_thread_with_its_own_arena_is_not_helped_and_is_told():
    pages = 5 * (64 << 20) // 4096
    own = _thread_probe()
    assert own["tuned"] is True and own["main_warned"] is False
    assert own["faults"] > pages // 2  # every block faulted afresh: the slow path
    assert own["warned"] is True and own["warned_again"] is False  # once per process
    assert "MALLOC_ARENA_MAX=1" in own["log"]
    shared = _thread_probe(MALLOC_ARENA_MAX="1")  # the documented remedy
    assert shared["faults"] < pages // 20
    assert shared["warned"] is False


_REEXEC_PROBE = r"""
import json, os, sys
from firesmoke.inference.runtime import reexec_with_worker_environment
before = os.environ.get("FIRESMOKE_ALLOCATOR_REEXEC")
again = reexec_with_worker_environment()
print(json.dumps({"arena": os.environ.get("MALLOC_ARENA_MAX"), "guard": before,
                  "again": again, "argv": sys.argv[1:]}))
"""


def _reexec_probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k != "FIRESMOKE_ALLOCATOR_REEXEC"}
    proc = subprocess.run([sys.executable, "-c", _REEXEC_PROBE, "x", "--y"],
                          capture_output=True, text=True, env={**clean, **env}, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not worker_environment(), reason="allocator tuning needs glibc (Linux)")
def test_program_restarts_once_with_the_allocator_settings():
    got = _reexec_probe()
    # the restarted process has the settings from its start, and does not restart again
    assert got == {"arena": "1", "guard": "1", "again": False, "argv": ["x", "--y"]}
    assert _reexec_probe(MALLOC_ARENA_MAX="4")["arena"] == "4"  # the user's choice: no restart
    assert _reexec_probe(FIRESMOKE_MALLOC_TUNING="0")["arena"] is None


def test_the_command_restarts_itself_only_as_a_program(monkeypatch):
    import firesmoke.inference.runtime as runtime
    from firesmoke.cli.main import main

    calls = []
    monkeypatch.setattr(runtime, "reexec_with_worker_environment", lambda: calls.append(1))
    monkeypatch.setattr(sys, "argv", ["firesmoke"])
    assert main() == 2  # no command: help, exit status 2
    assert calls == [1]
    assert main([]) == 2  # called from Python (tests, notebooks): no restart
    assert calls == [1]


def test_library_warnings_are_never_printed_bare():
    """A process that configured no logging (e.g. a Dask worker) prints nothing of
    firesmoke's logs: no bare line without a logger name (logging's last resort)."""
    code = ("import logging, firesmoke.inference.runtime as r\n"
            "r.log.warning('a firesmoke warning')\n"
            "logging.getLogger('firesmoke.inference.model').error('an error')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stderr == ""
