"""Children forked between the table read and the signals (issue 19 item 3), black-box in
PID namespaces: a task runner forking a job every 2 ms, each job in a session of its own
(out of the runner's group) and long-lived once its parent is gone; after `stop` none of
them runs.  And what stop's SIGSTOP must not change: a SIGTERM handler (a FastAPI
lifespan's shutdown) still runs."""
import os

import pytest

from integ_helpers import assert_alive, assert_dead, no_traceback, read, wait_until, write
from nslib import Proc

pytestmark = pytest.mark.edge_pythons

# Forks a job every 2 ms; each job leaves the runner's session and sleeps; the runner
# keeps 40 of them, ending the oldest itself.  Orphans (its death) live on for 300 s.
RUNNER = """\
import collections, os, signal, time
jobs = collections.deque()
while True:
    pid = os.fork()
    if pid == 0:
        os.setsid()
        os.execv("/bin/sleep", ["sleep", "300"])
    jobs.append(pid)
    if len(jobs) > 40:
        old = jobs.popleft()
        os.kill(old, signal.SIGKILL)
        os.waitpid(old, 0)
    time.sleep(0.002)
"""

# Shuts down in its SIGTERM handler, as uvicorn runs a FastAPI lifespan's shutdown.
GRACEFUL = """\
import signal, sys, time
def on_term(signum, frame):
    time.sleep(0.2)
    with open("shutdown.txt", "w") as f:
        f.write("lifespan shutdown ran\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
while True:
    signal.pause()
"""


def jobs_alive(ns):
    return [p["pid"] for p in ns.ps()
            if p["argv"][:2] == ["sleep", "300"] and p["state"] not in ("Z", "X")]


@pytest.mark.parametrize("command", ["stop-backend", "force-clean-backend"])
def test_a_task_runner_forking_every_2ms_leaves_no_job(ns, python, tmp_path, command):
    os.makedirs(str(tmp_path / "backend"))
    write(tmp_path / "backend" / "main.py", RUNNER)
    bystander = ns.spawn(Proc(["sleep", "300"], cwd="/"))      # not the project's
    runner = ns.spawn(Proc(["python3", "main.py"], path=python, cwd=tmp_path / "backend"))
    assert wait_until(lambda: len(jobs_alive(ns)) > 20, 30), ns.ps()
    r = ns.procclean(command, python=python)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [runner.pid], r)
    left = [pid for pid in jobs_alive(ns) if pid != bystander.pid]
    assert left == [], (r, [p for p in ns.ps() if p["pid"] in left])
    assert_alive(ns, [bystander.pid], r)


def test_a_term_handler_still_runs_its_shutdown(ns, python, tmp_path):
    os.makedirs(str(tmp_path / "backend"))
    write(tmp_path / "backend" / "main.py", GRACEFUL)
    app = ns.spawn(Proc(["python3", "main.py"], path=python, cwd=tmp_path / "backend"))
    assert wait_until(lambda: ns.state(app.pid) == "S", 10)
    r = ns.procclean("stop-backend", python=python)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [app.pid], r)
    assert read(tmp_path / "backend" / "shutdown.txt") == "lifespan shutdown ran\n", r
    assert "SIGKILL" not in r.stdout, r
