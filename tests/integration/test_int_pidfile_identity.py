"""A pidfile's process must still be this project's, and the pidfile procclean wrote is
its own whatever the file system's clock says (issue 19 items 1 and 2), black-box in
PID namespaces: two checkouts A and B side by side, procclean run in A."""
import json
import os
import time

import pytest

from integ_helpers import assert_alive, assert_dead, no_traceback, read, wait_until, write
from nslib import Proc

pytestmark = pytest.mark.edge_pythons

TIMEOUT = 60
SLEEPER = "import signal\nwhile True:\n    signal.pause()\n"


def checkout(path):
    os.makedirs(str(path / "backend"))
    write(path / "backend" / "main.py", SLEEPER)
    return path


def real(path):
    return os.path.realpath(str(path))


# --------------------------------------------------------------------------------------------
# item 1: another project's process named by this project's pidfile or state file

@pytest.mark.parametrize("how", ["started-by-procclean", "by-hand"])
def test_a_pidfile_naming_another_checkouts_backend(ns, python, tmp_path, how):
    """A's backend crashed and left backend.pid; its PID now names B's backend (tagged
    for B when procclean started it; else only its folder tells): nothing in A's stop,
    status, start or clean touches it or calls it A's."""
    a, b = checkout(tmp_path / "A"), checkout(tmp_path / "B")
    if how == "started-by-procclean":
        r = ns.procclean("start-backend", python=python, cwd=b, timeout=TIMEOUT)
        assert r.rc == 0, r
        theirs = int(read(b / "backend.pid"))
    else:
        theirs = ns.spawn(Proc(["python3", "main.py"], cwd=b / "backend")).pid
    write(a / "backend.pid", "%d\n" % theirs)
    r = ns.procclean("status", "backend", "--json", python=python, cwd=a)
    rec = json.loads(r.stdout)["services"][0]
    assert rec["running"] is False and rec["pids"] == [], r
    r = ns.procclean("stop-backend", python=python, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_alive(ns, [theirs], r)
    assert "PID %d is not this project's backend" % theirs in r.stderr, r
    assert not os.path.exists(str(a / "backend.pid")), r
    write(a / "backend.pid", "%d\n" % theirs)
    r = ns.procclean("start-backend", python=python, cwd=a, timeout=TIMEOUT)
    assert r.rc == 0 and "started backend" in r.stdout, r
    mine = int(read(a / "backend.pid"))
    assert mine != theirs
    r = ns.procclean("stop-backend", python=python, cwd=a)
    assert r.rc == 0, r
    assert_dead(ns, [mine], r)
    assert_alive(ns, [theirs], r)


WORKER_INI = """\
[procclean]
services = worker

[worker]
command = {command}
"""


def test_a_state_file_naming_another_checkouts_child(ns, python_edge, tmp_path):
    """A's worker.pid.state (its supervisor killed) names a PID that is now B's worker
    (started and tagged by procclean in B): A's stop leaves it."""
    a, b = tmp_path / "A", tmp_path / "B"
    for folder in (a, b):
        os.makedirs(str(folder))
        write(folder / "procclean.ini", WORKER_INI.format(command="%s worker.py" % python_edge))
        write(folder / "worker.py", SLEEPER)
    r = ns.procclean("start", "worker", python=python_edge, cwd=b, timeout=TIMEOUT)
    assert r.rc == 0, r
    theirs = int(read(b / "worker.pid"))
    write(a / "worker.pid.state", json.dumps({"supervisor": 99999, "child": theirs,
                                              "state": "running", "updated": time.time()}))
    r = ns.procclean("stop", "worker", python=python_edge, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_alive(ns, [theirs], r)


# --------------------------------------------------------------------------------------------
# item 2: a coarse clock

def test_the_pidfile_procclean_wrote_is_trusted_whatever_its_mtime(ns, python, tmp_path):
    """A worker with no pattern and no tag procclean can read (it clears its
    environment): only its pidfile finds it.  The file system's clock put the
    pidfile's mtime 2 s before the worker started (a 2 s FAT granularity, a coarse
    clock): start does not start a second copy, and stop stops it."""
    a = tmp_path / "A"
    os.makedirs(str(a))
    write(a / "procclean.ini", WORKER_INI.format(command="env -i %s worker.py" % python))
    write(a / "worker.py", SLEEPER)
    r = ns.procclean("start", "worker", python=python, cwd=a, timeout=TIMEOUT)
    assert r.rc == 0, r
    pid = int(read(a / "worker.pid"))
    assert read(a / "worker.pid") == "%d\n" % pid       # still one decimal number
    st = os.stat(str(a / "worker.pid"))
    os.utime(str(a / "worker.pid"), (st.st_atime - 2, st.st_mtime - 2))
    r = ns.procclean("start", "worker", python=python, cwd=a, timeout=TIMEOUT)
    assert r.rc == 0 and "already running (PID %d)" % pid in r.stdout, r
    assert int(read(a / "worker.pid")) == pid
    r = ns.procclean("stop", "worker", python=python, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [pid], r)
    assert [p["pid"] for p in ns.ps() if p["argv"][1:2] == ["worker.py"]] == [], ns.ps()
    assert not os.path.exists(str(a / "worker.pid")), r
    assert not os.path.exists(str(a / "worker.pid.start")), r


def test_kill_cat_pidfile_recipes_still_work(ns, python_edge, tmp_path):
    """The seed's `kill $(cat backend.pid)`: the pidfile procclean writes is the PID alone."""
    a = checkout(tmp_path / "A")
    r = ns.procclean("start-backend", python=python_edge, cwd=a, timeout=TIMEOUT)
    assert r.rc == 0, r
    pid = int(read(a / "backend.pid"))
    r = ns.run(["sh", "-c", "kill $(cat backend.pid)"], cwd=a)
    assert r.rc == 0, r
    assert_dead(ns, [pid], r)
    assert wait_until(lambda: not ns.is_alive(pid), 10)


def test_a_start_that_fails_leaves_no_start_record(ns, python_edge, tmp_path):
    """start --wait of a service that dies at once: its pidfile goes, and the start
    recorded beside it with it.  (It has a port, so --wait waits for it to listen and
    sees it exit, however slowly a busy machine runs it; a service without one only
    has to outlive START_CHECK, which a loaded machine's Python 3.6 did.)"""
    a = tmp_path / "A"
    os.makedirs(str(a))
    write(a / "procclean.ini", WORKER_INI.format(command="%s worker.py" % python_edge)
          + "port = 8765\n")
    write(a / "worker.py", "import sys\nsys.exit(3)\n")
    r = ns.procclean("start", "worker", "--wait", python=python_edge, cwd=a, timeout=TIMEOUT)
    assert r.rc == 1, r
    no_traceback(r)
    assert not os.path.exists(str(a / "worker.pid")), r
    assert not os.path.exists(str(a / "worker.pid.start")), (r, os.listdir(str(a)))
