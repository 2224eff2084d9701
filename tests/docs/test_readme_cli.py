"""The README's command-line example runs, in order, through ``firesmoke.cli.main.main``.

Every line of a ```console block of the README that starts with ``firesmoke`` (with
``\\`` continuations) is one command, run in one temporary directory. Sizes: the
``demo`` region of ``firesmoke synthetic --region demo`` is replaced by a 32 x 32 px
region of the same name, so the chain (scenario -> cube -> product) stays tiny, and the
commands that start a LocalCluster get ``--scheduler`` of one in-process cluster instead
(starting worker processes costs most of the time here; ``tests/cli`` covers that path).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from firesmoke.cli.main import main
from firesmoke.grid import Region

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_commands(text: str) -> list[list[str]]:
    """The ``firesmoke`` commands of the README's console blocks, as argv lists."""
    commands = []
    for block in CONSOLE.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "firesmoke":
                commands.append(words[1:])
    return commands


def test_readme_commands_parse():
    commands = readme_commands((ROOT / "README.md").read_text())
    assert [c[0] for c in commands[:3]] == ["synthetic", "cube", "predict"]


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    with LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                      dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_readme_cli_example_runs(tmp_path, monkeypatch, capsys, scheduler):
    monkeypatch.chdir(tmp_path)
    tiny = Region.from_shape("demo", -8.0, 41.0, 0.01, 32, 32).to_json(tmp_path / "regions")
    for argv in readme_commands((ROOT / "README.md").read_text()):
        if argv[0] == "synthetic" and "--region" in argv:
            i = argv.index("--region") + 1
            if argv[i] == "demo":
                argv[i] = str(tiny)
        if argv[0] in ("cube", "predict") and "--scheduler" not in argv:
            argv += ["--scheduler", scheduler]
        code = main(argv)
        captured = capsys.readouterr()
        assert code in (0, None), f"firesmoke {shlex.join(argv)}: {captured.err}"
    assert (tmp_path / "scenario" / "R_demo.json").is_file()
    assert (tmp_path / "cube.zarr").is_dir() and (tmp_path / "ba.zarr").is_dir()
    assert list(tmp_path.glob("**/*burn_date*.tif")), sorted(p.name for p in tmp_path.rglob("*"))
