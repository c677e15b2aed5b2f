"""The daily loop with dev and supervision (issue 21 items 3-5), black-box inside PID+network
namespaces: `after` with a supervised service, a failure that ends the wait at once, a restart
from another terminal that dev keeps in its stream, closing the terminal, make interrupted.

The services are test_int_dev's APP (plus BROKEN below); every assertion is on what a user
sees (exit codes, messages, the stream, logs, pidfiles, processes, ports), with events awaited
under generous bounds, never a sleep-then-assert."""
import os
import re
import signal

import pytest

from integ_helpers import no_traceback, nothing_left, read, wait_until, write
from test_int_dev import APP, TIMEOUT, Dev, app_pids, assert_all_gone, project, \
    sigterm_stops_all, started_pids

# A reloader whose worker cannot import the app (uvicorn --reload with a typo in main.py):
# the worker prints a traceback and exits, the reloader lives on, nothing listens.
BROKEN = r'''
if mode == "broken":               # broken: a reloader whose worker fails to start
    print("reloader watching for changes")
    sys.stdout.flush()
    subprocess.call([sys.executable, "-c", "import no_such_module_for_the_app"])
    time.sleep(3600)
'''


def supervised_pair(tmp_path, backend_fields=None):
    """A slow backend (1 s to listen) and a frontend that starts after it."""
    project(tmp_path, {
        "backend": ("slow 8000 1 backend", dict({"port": "8000", "health": "off"},
                                                **(backend_fields or {}))),
        "frontend": ("serve 3000 frontend", {"port": "3000", "health": "off",
                                             "after": "backend"}),
    })


def both_answer(ns):
    return ns.connect("127.0.0.1", 8000) and ns.connect("127.0.0.1", 3000)


def stop_all(ns, python):
    r = ns.procclean("stop", python=python, timeout=TIMEOUT)
    assert r.rc == 0, r
    assert nothing_left(ns) == [], ns.ps()


# --------------------------------------------------------------------------------------------
# 3. after with supervision; a failure ends the wait at once

@pytest.mark.edge_pythons
@pytest.mark.parametrize("how", ["--supervise", "supervise = yes"])
def test_supervised_backend_and_frontend_after_it_start_together(ns, tmp_path, python, how):
    supervised_pair(tmp_path, {"supervise": "yes"} if how == "supervise = yes" else None)
    args = ["start", "--supervise"] if how == "--supervise" else ["start"]
    r = ns.procclean(*args, python=python, timeout=TIMEOUT)
    no_traceback(r)
    assert r.rc == 0, r
    assert "busy" not in r.stdout + r.stderr, r
    assert "supervising backend" in r.stdout, r
    assert re.search(r"(started|supervising) frontend", r.stdout), r
    assert wait_until(lambda: both_answer(ns), TIMEOUT), r
    # restart of the supervised backend with its frontend: the same again
    r = ns.procclean("restart", python=python, timeout=TIMEOUT)
    no_traceback(r)
    assert r.rc == 0, r
    assert "busy" not in r.stdout + r.stderr, r
    assert "supervising backend" in r.stdout, r
    assert re.search(r"(started|supervising) frontend", r.stdout), r
    assert wait_until(lambda: both_answer(ns), TIMEOUT), r
    stop_all(ns, python)


def broken_pair(tmp_path):
    project(tmp_path, {
        "backend": ("broken", {"port": "8000", "health": "off"}),
        "frontend": ("serve 3000 frontend", {"port": "3000", "health": "off",
                                             "after": "backend"}),
    })
    write(tmp_path / "app.py", APP + BROKEN)


@pytest.mark.edge_pythons
def test_dev_ends_when_the_awaited_backend_failed(ns, tmp_path, python):
    broken_pair(tmp_path)
    dev = Dev(ns, tmp_path, python)
    r = dev.job.wait(TIMEOUT)      # generous: the outcome is known a second after the traceback
    assert not r.timed_out and r.rc == 1, (dev.out, dev.err)
    assert "internal error" not in dev.err, dev.err
    assert "backend: its start-up failed, nothing listens on port 8000" in dev.err, dev.err
    assert "No module named 'no_such_module_for_the_app'" in dev.err, dev.err  # the log's tail
    assert "frontend * not started: backend failed" in dev.out, dev.out
    assert "not ready within" not in dev.err, dev.err
    assert started_pids(dev.out, "frontend") == [], dev.out
    assert_all_gone(ns, tmp_path, dev)


@pytest.mark.edge_pythons
def test_start_says_at_once_that_the_awaited_backend_failed(ns, tmp_path, python):
    broken_pair(tmp_path)
    r = ns.procclean("start", "--wait", python=python, timeout=TIMEOUT)
    assert "internal error" not in r.stderr, r       # (the app's traceback is shown)
    assert r.rc == 1, r
    assert "frontend not started: backend, which it starts after, failed" in r.stderr, r
    assert "backend: its start-up failed, nothing listens on port 8000" in r.stderr, r
    assert "not ready within" not in r.stderr, r
    assert "started frontend" not in r.stdout, r
    assert nothing_left(ns) == [], ns.ps()
