"""RunDir: the files of a run named in one place, and its one-writer lock."""

from __future__ import annotations

import subprocess
import sys

import pytest

from netc.diagnostics import UsageError
from netc.runner.rundir import RunDir


def test_names_and_lookup(tmp_path):
    rd = RunDir(tmp_path / "r")
    assert rd.config.name == "config.json" and rd.last_old.name == ".last.old" and rd.plot("loss").name == "loss.png"
    assert rd.is_empty() and not rd.has_last() and rd.read("config") == {}
    (rd.best).mkdir(parents=True)
    rd.config.write_text('{"objective": "gan"}')
    assert RunDir.around(rd.root) == rd and RunDir.around(rd.best) == rd and RunDir.around(rd.best / "x") == rd
    assert RunDir.around(tmp_path) is None and rd.read("config")["objective"] == "gan"


def test_the_lock_refuses_a_second_holder_and_dies_with_its_process(tmp_path):
    rd = RunDir(tmp_path / "r")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom netc.runner.rundir import RunDir\n"
                               f"with RunDir({str(rd.root)!r}).lock():\n    print('held', flush=True)\n"
                               "    time.sleep(60)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UsageError, match=rf"being written by another netc train \(pid {holder.pid}\)"):
            with rd.lock():
                pass
    finally:
        holder.kill()  # as kill -9 would: the kernel drops the lock
        holder.wait()
    with rd.lock():
        assert rd.is_empty()  # the lock file alone does not make a run
