"""A developer's day as make runs it (start, status, stop, dev, clean), black-box inside PID
namespaces: what a real app does that the other files' stand-ins did not (an app whose
start-up takes its time before it fails, ...). Every assertion is on what the user sees:
exit codes, messages, pidfiles, processes; events awaited, never slept for."""
import json
import re
import shutil
import signal

import pytest

import os

from integ_helpers import (as_test_user, assert_alive, assert_dead, no_traceback,
                           nothing_left, read, wait_until, write)
from nslib import Proc
from test_int_checkouts import make_project
from test_int_dev import TIMEOUT, Dev, app_pids, assert_all_gone, two_services

DEV_FILES = ("backend.dev.pid", "backend.dev.pid.start", "frontend.dev.pid",
             "frontend.dev.pid.start")

# The seed's backend/main.py as a real app behaves when it cannot start: it computes
# (imports FastAPI and the app: a second of CPU, more on a busy machine), then fails
# without listening.
DIES_AFTER_ITS_IMPORTS = r'''
import sys, time
print("importing the app", flush=True)
end = time.process_time() + 1.0
while time.process_time() < end:
    pass
print("boom-daily: DATABASE_URL is not set", file=sys.stderr, flush=True)
sys.exit(3)
'''

# A backend that waits (for a database, say) before it listens, using no CPU meanwhile.
WAITS_QUIETLY = r'''
import time
print("waiting for the database", flush=True)
time.sleep(3600)
'''


def test_plain_start_of_an_app_that_dies_during_its_start_up_fails(ns, tmp_path,
                                                                    python_edge):
    """`make start-backend` (no --wait) of an app that dies after its imports: exit 1 with
    the log's last lines, nothing left, no pidfile; not `started` because it outlived the
    first half second."""
    (tmp_path / "backend").mkdir()
    write(tmp_path / "backend" / "main.py", DIES_AFTER_ITS_IMPORTS)
    r = ns.procclean("start-backend", python=python_edge)
    assert r.rc == 1, r
    no_traceback(r)
    assert "backend exited at once (status 3)" in r.stderr, r
    assert "boom-daily: DATABASE_URL is not set" in r.stderr, r       # the log's last lines
    assert "started backend" not in r.stdout, r
    assert nothing_left(ns) == []
    assert not (tmp_path / "backend.pid").exists()


def test_plain_start_of_an_app_that_waits_before_listening_says_so(ns, tmp_path,
                                                                    python_edge):
    """An app alive and idle, not listening yet: started (exit 0), with a line saying that
    its port does not listen yet; status tells the same."""
    (tmp_path / "backend").mkdir()
    write(tmp_path / "backend" / "main.py", WAITS_QUIETLY)
    r = ns.procclean("start-backend", python=python_edge)
    assert r.rc == 0, r
    assert "started backend PID" in r.stdout, r
    assert "backend is still starting: it does not listen on port 8000 yet" in r.stdout, r
    r = ns.procclean("status", "backend", python=python_edge)
    assert "backend: starting, PID" in r.stdout, r
    assert ns.procclean("stop", python=python_edge).rc == 0
    assert nothing_left(ns) == []


# A worker (no port) that connects, then loses its broker a second later and exits.
DIES_A_SECOND_LATER = r'''
import sys, time
print("worker: connecting to the broker", flush=True)
time.sleep(1.0)
print("worker-daily: lost the broker connection", file=sys.stderr, flush=True)
sys.exit(4)
'''

# An app that compiles (Angular's `ng serve`: seconds of CPU) before it listens on $PORT.
COMPILES_THEN_LISTENS = r'''
import os, socket, time
print("compiling", flush=True)
end = time.process_time() + 3.0
while time.process_time() < end:
    pass
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(os.environ["PORT"])))
server.listen(5)
time.sleep(3600)
'''

WORKER_INI = """
[procclean]
services = backend worker

[worker]
pattern = python.*worker\\.py
command = {python} worker.py
"""


@pytest.mark.parametrize("names", [("worker",), ()], ids=["alone", "with-backend"])
def test_plain_start_of_a_worker_that_dies_a_second_later_fails(ns, tmp_path, python_edge,
                                                                  names):
    """A worker (no port to listen on) that exits a second after `make start`, alone or
    beside a backend that starts meanwhile, was reported started: its outcome was taken
    after half a second.  It now fails as one with a port that dies before it listens:
    exit 1, the log's last lines, no pidfile, nothing of it left; the backend runs on."""
    make_project(tmp_path, WORKER_INI)
    write(tmp_path / "worker.py", DIES_A_SECOND_LATER)
    r = ns.procclean("start", *names, python=python_edge)
    assert r.rc == 1, r
    no_traceback(r)
    assert "worker exited at once (status 4)" in r.stderr, r
    assert "worker-daily: lost the broker connection" in r.stderr, r
    assert "started worker" not in r.stdout, r
    assert not (tmp_path / "worker.pid").exists()
    if names:
        assert nothing_left(ns) == []
        return
    assert "started backend PID" in r.stdout, r
    r = ns.procclean("status", "--json", python=python_edge)
    states = dict((s["name"], s["state"]) for s in json.loads(r.stdout)["services"])
    assert states["worker"] == "stopped" and states["backend"] != "stopped", r
    assert ns.procclean("stop", python=python_edge).rc == 0
    assert nothing_left(ns) == []


# A worker whose command puts itself in the background (redis-server --daemonize yes,
# pg_ctl start, gunicorn -D): it forks, the fork leaves the session, and the command exits 0.
DAEMONIZES = r'''
import os, time
if os.fork():
    os._exit(0)
os.setsid()
print("worker-daily: daemon up", flush=True)
time.sleep(3600)
'''


def test_plain_start_of_a_command_that_daemonizes_says_to_keep_it_in_the_foreground(
        ns, tmp_path, python_edge):
    """A command that exits 0 at once, leaving a daemon behind: start fails (its PID is
    gone, so it cannot be watched) and says why in the user's terms: leave out the
    daemon flag.  The daemon it left carries the service's tag and is stopped too."""
    make_project(tmp_path, WORKER_INI)
    write(tmp_path / "worker.py", DAEMONIZES)
    r = ns.procclean("start", "worker", python=python_edge)
    assert r.rc == 1, r
    no_traceback(r)
    assert "worker exited at once (status 0)" in r.stderr, r
    assert "may have put itself in the background: procclean runs worker in the " \
        "background itself" in r.stderr, r
    assert "started worker" not in r.stdout, r
    assert not (tmp_path / "worker.pid").exists()
    assert nothing_left(ns) == []


def test_dev_of_a_command_that_daemonizes_says_to_keep_it_in_the_foreground(
        ns, tmp_path, python_edge):
    """The same command under `make dev`: its exit (status 0) ends the session, and dev
    says why in the user's terms; the daemon it left is stopped with the session."""
    make_project(tmp_path, WORKER_INI)
    write(tmp_path / "worker.py", DAEMONIZES)
    r = ns.procclean("dev", "worker", python=python_edge, timeout=TIMEOUT)
    assert r.rc == 1, r
    no_traceback(r)
    assert "worker exited by itself (status 0)" in r.stderr, r
    assert "may have put itself in the background: dev runs worker and watches it " \
        "itself" in r.stderr, r
    assert nothing_left(ns) == []


def test_plain_start_of_a_worker_that_computes_its_start_up_says_it_waits(ns, tmp_path,
                                                                          python_edge):
    """A worker importing for seconds (a Django app's): start waits until it settles, and
    says so after 2 s, then that it started (it did not die meanwhile)."""
    make_project(tmp_path, WORKER_INI)
    write(tmp_path / "worker.py", COMPILES_THEN_LISTENS.split("server =")[0]
          + "time.sleep(3600)\n")
    r = ns.procclean("start", "worker", python=python_edge)
    assert r.rc == 0, r
    pid = int(read(tmp_path / "worker.pid"))
    assert "worker (PID %d) is starting: waiting for it to settle (10 s at most)" % pid \
        in r.stdout, r
    assert "started worker PID %d" % pid in r.stdout, r
    assert ns.procclean("stop", python=python_edge).rc == 0
    assert nothing_left(ns) == []


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "json"])
def test_plain_start_of_an_app_that_dies_soon_after_it_listens_fails(ns, tmp_path,
                                                                     python_edge, json_out):
    """An app that listens, then exits on a bad setting (1.2 s later: past its own watch,
    START_CHECK) while start still watches a worker's 3 s start-up: it stayed reported
    `started` (exit 0).  What exited before the
    start ends now fails it: its log's last lines, exit 1, its pidfile removed; the
    worker runs on.  --json's `started` names the worker alone (it named both)."""
    make_project(tmp_path, WORKER_INI)
    write(tmp_path / "backend" / "main.py", COMPILES_THEN_LISTENS.replace("3.0", "0.0")
          .replace("time.sleep(3600)", "time.sleep(1.2)\nraise SystemExit('boom-soon')"))
    write(tmp_path / "worker.py", COMPILES_THEN_LISTENS.split("server =")[0]
          + "time.sleep(3600)\n")
    r = ns.procclean("start", *(["--json"] if json_out else []), python=python_edge)
    assert r.rc == 1, r
    no_traceback(r)
    assert "backend exited at once (status 1)" in r.stderr, r
    assert "boom-soon" in r.stderr, r
    assert not (tmp_path / "backend.pid").exists()
    worker = int(read(tmp_path / "worker.pid"))
    if json_out:
        started = json.loads(r.stdout)["started"]
        assert [(s["service"], s["pid"]) for s in started] == [("worker", worker)], r
    else:
        assert "started worker PID %d" % worker in r.stdout, r
    assert ns.procclean("stop", python=python_edge).rc == 0
    assert nothing_left(ns) == []


def test_plain_start_of_an_app_that_compiles_before_it_listens_says_it_waits(
        ns, tmp_path, python_edge):
    """`make start` of an app that compiles for seconds before it listens (Angular) waited
    without a word.  It now says what it waits for, then that it started; status agrees."""
    (tmp_path / "backend").mkdir()
    write(tmp_path / "backend" / "main.py", COMPILES_THEN_LISTENS)
    r = ns.procclean("start-backend", python=python_edge)
    assert r.rc == 0, r
    pid = int(read(tmp_path / "backend.pid"))
    assert "backend (PID %d) is starting: waiting for it to listen on port 8000 (10 s at " \
        "most)" % pid in r.stdout, r
    assert "started backend PID %d" % pid in r.stdout, r
    listening = "backend is still starting" not in r.stdout
    r = ns.procclean("status", "backend", python=python_edge)
    # still starting when start returned, it may listen by the time status looks (a
    # loaded machine): either is the truth then; listening, it stays running
    states = ("running",) if listening else ("starting", "running")
    assert any("backend: %s, PID" % state in r.stdout for state in states), r
    assert ns.procclean("stop", python=python_edge).rc == 0
    assert nothing_left(ns) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_start_interrupted_while_it_waits_stops_what_it_launched(ns, tmp_path,
                                                                   python_edge, sig):
    """Ctrl-C (or an IDE's SIGTERM) while `make start` waits for an app that compiles: it
    said `interrupted` and left the app and the worker beside it running with their
    pidfiles (SIGTERM ended it without a word).  It now stops what it launched, says so,
    removes their pidfiles and ends by the signal, as dev does.  (--wait: a plain start
    may judge the app idle and return when a loaded machine gives its compiling no CPU for
    START_IDLE, before it says it waits; --wait waits for the port whatever the CPU.)"""
    make_project(tmp_path, WORKER_INI)
    write(tmp_path / "backend" / "main.py", COMPILES_THEN_LISTENS.replace("3.0", "600.0"))
    write(tmp_path / "worker.py", WAITS_QUIETLY)
    job = ns.start(["/bin/sh", "-c", 'exec "$@" >start.out 2>start.err', "sh"]
                   + ns.procclean_argv("start", "--wait", "--timeout", "300",
                                       python=python_edge))
    assert wait_until(lambda: "is starting: waiting" in read(tmp_path / "start.out"),
                      TIMEOUT), (read(tmp_path / "start.out"), read(tmp_path / "start.err"))
    launched = [int(read(tmp_path / n)) for n in ("backend.pid", "worker.pid")]
    job.signal(sig)
    assert job.wait(TIMEOUT).rc == -sig, read(tmp_path / "start.err")
    err = read(tmp_path / "start.err")
    assert "Traceback" not in err, err
    for name in ("backend", "worker"):
        assert "%s: stopped what this start left running; %s.pid removed" % (name, name) \
            in err, err
        assert not (tmp_path / (name + ".pid")).exists()
    assert_dead(ns, launched, err)
    assert nothing_left(ns) == []


# ...with a child that ignores SIGTERM: a stop waits its whole grace for it.
WAITS_WITH_A_STUBBORN_CHILD = r'''
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import signal, time; "
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"])
time.sleep(3600)
'''


@pytest.mark.parametrize("app,grace", [(WAITS_QUIETLY, "2"),
                                       (WAITS_WITH_A_STUBBORN_CHILD, "8")],
                         ids=["plain", "stop-outlasts-the-lock-wait"])
def test_a_start_stopped_from_another_terminal_says_so(ns, tmp_path, python_edge, app,
                                                       grace):
    """`make stop` in a second terminal while `make start` waits for the backend to
    listen: start said `backend exited at once (status -15)` with the log's last lines,
    as if the app had failed; with a stop longer than a lock wait (a child that ignores
    SIGTERM), `busy: PID ... holds its lock`.  It now says that another terminal
    stopped it."""
    (tmp_path / "backend").mkdir()
    write(tmp_path / "backend" / "main.py", app)
    job = ns.start(["/bin/sh", "-c", 'exec "$@" >start.out 2>start.err', "sh"]
                   + ns.procclean_argv("start-backend", "--wait", "--timeout", "300",
                                       python=python_edge))
    assert wait_until(lambda: "is starting: waiting" in read(tmp_path / "start.out"),
                      TIMEOUT), (read(tmp_path / "start.out"), read(tmp_path / "start.err"))
    pid = int(read(tmp_path / "backend.pid"))
    assert ns.procclean("stop", "--grace", grace, python=python_edge).rc == 0
    assert job.wait(TIMEOUT).rc == 1, read(tmp_path / "start.err")
    err = read(tmp_path / "start.err")
    assert "backend (PID %d) was stopped from another terminal (a stop or restart) before " \
        "it was up" % pid in err, err
    assert "exited at once" not in err, err
    assert sorted(p.name for p in tmp_path.glob("*.pid*")) == [], err
    assert nothing_left(ns) == []


def test_a_start_whose_app_is_killed_by_a_signal_names_the_signal(ns, tmp_path,
                                                                   python_edge):
    """An app that a signal ends at once (the OOM killer's SIGKILL, a crash) is said to
    be killed by it, not to have `status -9`; its pidfile, still naming it, tells it
    from a stop in another terminal."""
    (tmp_path / "backend").mkdir()
    write(tmp_path / "backend" / "main.py", "import os, signal\n"
          "print('boom-signal', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n")
    r = ns.procclean("start-backend", python=python_edge)
    assert r.rc == 1, r
    assert "backend exited at once (killed by SIGKILL); last lines of backend.log:" \
        in r.stderr, r
    assert "boom-signal" in r.stderr, r
    assert nothing_left(ns) == []


# A server on another port than its service's (Vite on 5173 under the built-in 3000).
LISTENS_ELSEWHERE = r"""
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8123))
s.listen(5)
print("listening on 8123", flush=True)
time.sleep(3600)
"""


def test_start_wait_says_where_its_app_listens_instead(ns, tmp_path, python_edge):
    """`start --wait` of a frontend that listens on 5173 (Vite's own port) where procclean
    waits for 3000 (the built-in's; no init yet): it waited out its 30 s with no word of
    the port the app had opened in its first second, then stopped it.  It now says at
    once where the app listens and how to set that port, and goes on waiting."""
    make_project(tmp_path)
    write(tmp_path / "backend" / "main.py", LISTENS_ELSEWHERE)
    job = ns.start(["/bin/sh", "-c", 'exec "$@" >start.out 2>start.err', "sh"]
                   + ns.procclean_argv("start-backend", "--wait", "--timeout", "300",
                                       python=python_edge))
    said = "backend listens on port 8123, not on 8000: if 8123 is its port, set port = " \
        "8123 under [backend] in procclean.ini (or run init); still waiting for port 8000"
    assert wait_until(lambda: said in read(tmp_path / "start.err"), TIMEOUT), (
        read(tmp_path / "start.out"), read(tmp_path / "start.err"))
    job.signal(signal.SIGINT)
    assert job.wait(TIMEOUT).rc == -signal.SIGINT, read(tmp_path / "start.err")
    assert read(tmp_path / "start.err").count(said) == 1
    assert nothing_left(ns) == []


# A backend whose shutdown takes long: it notes the SIGTERM, and goes on.
SLOW_TO_STOP = r"""
import signal, time
signal.signal(signal.SIGTERM, lambda *a: open("got-term", "w").close())
print("serving", flush=True)
while True:
    time.sleep(3600)
"""


@pytest.mark.parametrize("sig,lang", [(signal.SIGINT, "en"), (signal.SIGTERM, "en"),
                                      (signal.SIGTERM, "zh")],
                         ids=["ctrl-c", "sigterm", "sigterm-zh"])
def test_a_stop_interrupted_in_its_grace_says_what_may_still_run(ns, tmp_path, python_edge,
                                                                  sig, lang):
    """Ctrl-C (make passes it on) or SIGTERM to `make stop` while it waits the grace for a
    backend slow to shut down: SIGTERM ended it without a word, its *.pid.lock files left
    behind; Ctrl-C said only `interrupted`.  Each now says which process got SIGTERM and
    may still run (in the user's language), keeps that one's pidfile, removes the lock
    files and ends by the signal (SPEC: an interrupt, not an error)."""
    (tmp_path / "backend").mkdir()
    write(tmp_path / "backend" / "main.py", SLOW_TO_STOP)
    assert ns.procclean("start-backend", python=python_edge).rc == 0
    pid = int(read(tmp_path / "backend.pid"))
    job = ns.start(["/bin/sh", "-c", 'exec "$@" >stop.out 2>stop.err', "sh"]
                   + ns.procclean_argv("stop", "--grace", "600", python=python_edge),
                   env={"PROCCLEAN_LANG": lang})
    assert wait_until(lambda: (tmp_path / "backend" / "got-term").exists(), TIMEOUT)
    job.signal(sig)
    assert job.wait(TIMEOUT).rc == -sig, read(tmp_path / "stop.err")
    err = read(tmp_path / "stop.err")
    assert "Traceback" not in err, err
    line = {"en": "backend PID %d got SIGTERM and may still run",
            "zh": "后端进程已收到 SIGTERM, 可能仍在运行 (PID: %d)"}[lang]
    assert line % pid in err, err
    assert_alive(ns, [pid], err)
    assert read(tmp_path / "backend.pid").strip() == str(pid)
    assert sorted(p.name for p in tmp_path.glob("*.lock")) == [], err
    assert ns.procclean("force-clean", python=python_edge).rc == 0
    assert nothing_left(ns) == []


def test_dev_replace_interrupted_while_it_stops_the_old_run_is_an_interrupt(
        ns, tmp_path, python_edge):
    """`make dev --replace` stops what runs in the background first; Ctrl-C while that
    stop waits its grace ended dev with 1, an error to make, not by SIGINT."""
    (tmp_path / "backend").mkdir()
    write(tmp_path / "backend" / "main.py", SLOW_TO_STOP)
    assert ns.procclean("start-backend", python=python_edge).rc == 0
    job = ns.start(["/bin/sh", "-c", 'exec "$@" >dev.out 2>dev.err', "sh"]
                   + ns.procclean_argv("dev", "backend", "--replace", "--grace", "600",
                                       python=python_edge))
    assert wait_until(lambda: (tmp_path / "backend" / "got-term").exists(), TIMEOUT)
    job.signal(signal.SIGINT)
    assert job.wait(TIMEOUT).rc == -signal.SIGINT, read(tmp_path / "dev.err")
    assert ns.procclean("force-clean", python=python_edge).rc == 0
    assert nothing_left(ns) == []


def test_a_kill_port_interrupted_in_its_grace_says_what_may_still_run(ns, tmp_path,
                                                                       python_edge):
    """SIGTERM to `make kill-port` while it waits the grace for a server slow to shut
    down ended it without a word.  It now says which process got SIGTERM and may still
    run, and ends by the signal."""
    write(tmp_path / "server.py", SLOW_TO_STOP.replace(
        'print("serving", flush=True)', 'import socket\nserver = socket.socket()\n'
        'server.bind(("127.0.0.1", 8000))\nserver.listen(5)\nprint("serving", flush=True)'))
    server = ns.start([python_edge, "server.py"], cwd=tmp_path)
    assert wait_until(lambda: ns.procclean("kill-port", "8000", "--dry-run",
                                           python=python_edge).stdout.count("would send"),
                      TIMEOUT)
    job = ns.start(["/bin/sh", "-c", 'exec "$@" >kill.out 2>kill.err', "sh"]
                   + ns.procclean_argv("kill-port", "8000", "--grace", "600",
                                       python=python_edge))
    assert wait_until(lambda: (tmp_path / "got-term").exists(), TIMEOUT)
    job.signal(signal.SIGTERM)
    assert job.wait(TIMEOUT).rc == -signal.SIGTERM, read(tmp_path / "kill.err")
    err = read(tmp_path / "kill.err")
    assert "port 8000 PID %d got SIGTERM and may still run" % server.pid in err, err
    assert_alive(ns, [server.pid], err)
    assert ns.procclean("kill-port", "8000", "--force", python=python_edge).rc == 0
    assert nothing_left(ns) == []


def test_plain_start_of_an_app_that_names_its_own_port_says_where_it_listens(
        ns, tmp_path, python_edge):
    """`PROCCLEAN_BACKEND_PORT=8001 make start-backend` of an app that listens on the 8000
    its code names: start said it was `still starting` on 8001, and status `starting`
    for half a minute.  Both now say where it listens; status says `not listening`."""
    (tmp_path / "backend").mkdir()
    write(tmp_path / "backend" / "main.py",
          COMPILES_THEN_LISTENS.replace("3.0", "0.0").replace('os.environ["PORT"]', "8000"))
    env = {"PROCCLEAN_BACKEND_PORT": "8001"}
    r = ns.procclean("start-backend", env=env, python=python_edge)
    assert r.rc == 0, r
    assert "backend listens on port 8000" in r.stdout, r
    assert "still starting" not in r.stdout, r
    r = ns.procclean("status", "backend", env=env, python=python_edge)
    assert "backend: not listening, PID" in r.stdout, r
    assert "backend listens on port 8000" in r.stdout, r
    assert ns.procclean("stop", env=env, python=python_edge).rc == 0
    assert nothing_left(ns) == []


# A server's CLI as uvicorn's and flask's are: its port from --port, else its variable.
CLI_SERVER = r'''
import os, socket, sys, time
program = os.path.basename(sys.argv[0])
variable = {"uvicorn": "UVICORN_PORT", "flask": "FLASK_RUN_PORT"}[program]
port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv \
    else int(os.environ.get(variable, "8000"))
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(5)
time.sleep(3600)
'''


@pytest.mark.parametrize("command", ["bin/uvicorn main:app --reload",
                                     "bin/flask --app app run"])
def test_a_port_setting_moves_uvicorn_and_flask_run_without_a_port_in_the_command(
        ns, tmp_path, python_edge, command):
    """`PROCCLEAN_BACKEND_PORT=8001 make start-backend` with `uvicorn main:app` (or `flask
    run`) as the command, no --port: it listened on 8000, with a warning that the setting
    does not move it.  Each reads a variable of its own (UVICORN_PORT, FLASK_RUN_PORT),
    which procclean now sets as PORT: it listens on 8001, without the warning."""
    (tmp_path / "bin").mkdir()
    for name in ("uvicorn", "flask"):
        write(tmp_path / "bin" / name, CLI_SERVER)
    write(tmp_path / "procclean.ini", "[backend]\ncommand = {python} %s\n" % command)
    env = {"PROCCLEAN_BACKEND_PORT": "8001"}
    r = ns.procclean("start", "backend", env=env, python=python_edge)
    assert r.rc == 0, r
    assert "will listen on the port its command" not in r.stderr, r
    r = ns.procclean("status", "backend", env=env, python=python_edge)
    assert "backend: running" in r.stdout and "port 8001: listening" in r.stdout, r
    assert ns.procclean("stop", env=env, python=python_edge).rc == 0
    assert nothing_left(ns) == []


def test_status_and_stop_follow_the_port_the_backend_was_started_on(ns, tmp_path,
                                                                     python_edge):
    """`PROCCLEAN_BACKEND_PORT=8001 make start-backend`, then in another terminal without
    the variable: `make status` said `starting`, port 8000 taken by a stranger, while the
    backend answered on 8001.  It now looks where the backend was launched to listen:
    running on 8001, `--check` passes, `stop` stops it and leaves 8000's holder alone."""
    make_project(tmp_path)
    stranger = ns.spawn(Proc(["python3", "-m", "http.server", "8000"], cwd="/",
                             listen="127.0.0.1:8000"))
    r = ns.procclean("start", "--wait", "backend", env={"PROCCLEAN_BACKEND_PORT": "8001"},
                     python=python_edge)
    assert r.rc == 0 and "backend listens on port 8001" in r.stdout, r
    pid = int(read(tmp_path / "backend.pid"))
    r = ns.procclean("status", "backend", python=python_edge)
    assert r.rc == 0 and "backend: running, PID %d" % pid in r.stdout, r
    assert "port 8001: listening, PID %d" % pid in r.stdout, r
    assert "8000" not in r.stdout, r
    r = ns.procclean("status", "--check", "backend", python=python_edge)
    assert r.rc == 0, r
    r = ns.procclean("stop", "backend", python=python_edge)
    assert r.rc == 0, r
    no_traceback(r)
    assert "port 8000" not in r.stdout + r.stderr, r
    assert_dead(ns, [pid], r)
    assert_alive(ns, [stranger.pid], r)
    assert not (tmp_path / "backend.pid").exists()
    r = ns.procclean("status", "backend", python=python_edge)
    assert "backend: not running" in r.stdout, r
    assert "port 8000: taken by PID %d" % stranger.pid in r.stdout, r


def killed_dev(ns, tmp_path, python, backend_fields=None):
    """`make dev` whose procclean got SIGKILL (an IDE's stop button after its timeout, the
    OOM killer): its services run on, headless, and its dev files stay; their PIDs."""
    two_services(tmp_path, backend_fields=backend_fields)
    dev = Dev(ns, tmp_path, python)
    dev.up("worker", "frontend")
    ns.kill([dev.pid], signal.SIGKILL)
    assert not dev.job.wait(TIMEOUT).timed_out
    left = app_pids(ns)
    assert len(left) == 3, ns.ps()                      # reloader, worker, frontend
    assert all((tmp_path / name).exists() for name in DEV_FILES)
    return dev.pid, left


def test_the_next_dev_takes_over_what_a_killed_dev_left(ns, tmp_path, python_edge):
    """After `kill -9` of dev, the next `make dev` said `already runs in the background`
    and started nothing.  It now stops what the killed session left (said, with that
    session's PID) and runs the stack in this terminal."""
    killed, left = killed_dev(ns, tmp_path, python_edge)
    for name in ("dev.out", "dev.err"):         # the killed session's output
        (tmp_path / name).unlink()
    dev = Dev(ns, tmp_path, python_edge)
    dev.up("worker", "frontend")
    for name in ("backend", "frontend"):
        assert "%s was left running by a dev session that was killed (procclean PID %d)" \
            % (name, killed) in dev.err, dev.err
    assert_dead(ns, left)
    assert int(read(tmp_path / "backend.dev.pid")) == dev.pid
    dev.job.signal(signal.SIGTERM)
    assert dev.finish() == -signal.SIGTERM
    assert_all_gone(ns, tmp_path, dev)
    assert [n for n in DEV_FILES if (tmp_path / n).exists()] == []


def test_the_next_dev_refuses_a_backend_run_by_hand_since_a_dev_was_killed(ns, tmp_path,
                                                                           python_edge):
    """After `kill -9` of dev, its backend was ended and the user ran one by hand in
    another terminal: the next `make dev` took that one for the killed session's and
    stopped it.  Not procclean's (no tag, no pidfile), it is now refused as a backend
    running already is: named, dev exits 1, nothing stopped, nothing started."""
    killed, left = killed_dev(ns, tmp_path, python_edge,
                              {"pattern": r"app\.py (reloader|serve 8000)"})
    backend = [p["pid"] for p in ns.ps() if "8000" in p["argv"] and p["pid"] in left]
    ns.kill(backend)
    assert not ns.wait_dead(backend, TIMEOUT), ns.ps()
    by_hand = ns.spawn(Proc(["python3", "app.py", "serve", "8000", "byhand"], cwd=tmp_path,
                            listen="127.0.0.1:8000"))
    r = ns.procclean("dev", python=python_edge)
    assert r.rc == 1, r
    no_traceback(r)
    assert "backend already runs in the background (PID %d)" % by_hand.pid in r.stderr, r
    assert "left running by a dev session" not in r.stderr, r
    assert_alive(ns, [by_hand.pid] + [p for p in left if p not in backend], r)
    assert ns.procclean("stop", "frontend", python=python_edge).rc == 0


# A service that prints a line every 50 ms.
TICKS = r'''
import itertools, time
for n in itertools.count():
    print("tick %d" % n, flush=True)
    time.sleep(0.05)
'''


def test_after_dev_is_killed_its_services_still_write_their_logs(ns, tmp_path, python_edge):
    """`kill -9` of `make dev`: its services wrote into a pipe no one read (a Python one
    died of it at its next print; `make logs` showed nothing new) until the next dev or
    stop.  A keeper beside each service writes its log on: the service lives, `make logs`
    shows what it printed since, and `make stop` leaves nothing, keepers included."""
    write(tmp_path / "ticks.py", TICKS)
    write(tmp_path / "procclean.ini", "[procclean]\nservices = ticker\n\n[ticker]\n"
          "pattern = ticks\\.py\ncommand = {python} ticks.py\n")
    dev = Dev(ns, tmp_path, python_edge)
    dev.wait_for("ticker | tick 3")
    ns.kill([dev.pid])
    assert not dev.job.wait(TIMEOUT).timed_out
    shown = max(int(n) for n in re.findall(r"tick (\d+)", dev.out))
    pid = int(read(tmp_path / "ticker.pid"))
    later = "tick %d\n" % (shown + 20)
    assert wait_until(lambda: later in read(tmp_path / "ticker.log"), TIMEOUT), \
        (read(tmp_path / "ticker.log")[-300:], ns.ps())
    r = ns.procclean("logs", "ticker", "-n", "3", python=python_edge)
    assert r.rc == 0, r
    assert int(re.findall(r"tick (\d+)", r.stdout)[-1]) >= shown + 20, r
    assert_alive(ns, [pid])
    keepers = [p["pid"] for p in ns.ps() if "keep-log" in p["argv"]]
    assert len(keepers) == 1, ns.ps()
    r = ns.procclean("stop", python=python_edge)
    assert r.rc == 0 and "stopped ticker PID %d" % pid in r.stdout, r
    assert ns.wait_dead(keepers + [pid], TIMEOUT) == [], ns.ps()


def test_stop_and_clean_after_a_killed_dev_leave_no_dev_file(ns, tmp_path, python_edge):
    """`make stop` after a killed dev stopped the stack but left backend.dev.pid (and its
    start record) for ever; now they go with the pidfiles.  `make clean` keeps a dev file
    while what its session left still runs (the next dev takes it over by it)."""
    killed, left = killed_dev(ns, tmp_path, python_edge)
    r = ns.procclean("stop", "backend", python=python_edge)
    assert r.rc == 0 and "removed backend.dev.pid" in r.stdout, r
    r = ns.procclean("clean", python=python_edge)
    assert r.rc == 0, r
    assert (tmp_path / "frontend.dev.pid").exists(), r          # frontend still runs
    assert not (tmp_path / "backend.dev.pid").exists(), r
    r = ns.procclean("stop", python=python_edge)
    assert r.rc == 0 and "removed frontend.dev.pid" in r.stdout, r
    assert_dead(ns, left, r)
    assert [n for n in DEV_FILES if (tmp_path / n).exists()] == []


def test_a_dev_file_naming_a_reused_pid_is_no_dev_session(ns, tmp_path, python_edge):
    """The killed session's PID taken since by another procclean (`status --watch` in a
    third terminal): `make restart-backend` asked that procclean to restart the backend and
    waited for it in vain; the start recorded beside the dev file tells them apart."""
    killed, left = killed_dev(ns, tmp_path, python_edge)
    watch = ns.start_procclean("status", "--watch", "1", python=python_edge)
    assert wait_until(lambda: any(p["pid"] == watch.pid and "--watch" in p["argv"]
                                  for p in ns.ps()), TIMEOUT)
    record = json.loads(read(tmp_path / "backend.dev.pid.start"))
    record["pid"] = watch.pid           # as if the kernel gave the killed PID to the watch
    write(tmp_path / "backend.dev.pid.start", json.dumps(record))
    write(tmp_path / "backend.dev.pid", "%d\n" % watch.pid)
    r = ns.procclean("restart", "backend", "--timeout", "5", python=python_edge)
    assert r.rc == 0, r
    assert "dev session" not in r.stdout + r.stderr, r
    assert "started backend PID" in r.stdout, r
    assert not (tmp_path / "backend.dev.pid").exists(), r
    watch.signal(signal.SIGTERM)
    assert not watch.wait(TIMEOUT).timed_out
    assert ns.procclean("stop", python=python_edge).rc == 0
    assert_dead(ns, left)


# An interactive bash in a terminal runs `make dev`; once both services listen, make itself
# gets SIGKILL (from htop, another terminal): bash takes the terminal back, so no Ctrl-C
# would reach dev any more.  Prints what the terminal showed until the stack was stopped.
KILL_MAKE_UNDER_BASH = r"""
import json, os, pty, select, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
out = b""


def pump(text, timeout=60):
    global out
    deadline = time.time() + timeout
    while text not in out and time.time() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                out += os.read(fd, 65536)
            except OSError:
                return


os.write(fd, b"make dev\n")
for text in (b"backend  * listening on port", b"frontend * listening on port"):
    pump(text)


def cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


make = [int(p) for p in os.listdir("/proc") if p.isdigit() and cmdline(p) == b"make\0dev\0"]
os.kill(make[0], signal.SIGKILL)
pump(b"removed frontend.pid")
os.kill(pid, signal.SIGKILL)
print(json.dumps({"make": make[0], "out": out.decode("utf-8", "replace")}))
"""


def test_make_dev_killed_with_sigkill_under_a_shell_stops_the_stack(ns, tmp_path,
                                                                    python_edge):
    """`kill -9` of `make dev` in an interactive shell: dev ran on with the terminal given
    back to the shell, its stack's output over the prompt, deaf to Ctrl-C.  It now sees its
    job gone, says so, and stops the stack as a closed terminal does (SIGTERM to each)."""
    if shutil.which("bash") is None or shutil.which("make") is None:
        pytest.skip("bash and make are needed to run make dev under a shell")
    two_services(tmp_path)
    argv = ns.procclean_argv("dev", python=python_edge)
    write(tmp_path / "Makefile", "dev:\n\t@%s\n" % " ".join(argv))
    write(tmp_path / "kill_make.py", KILL_MAKE_UNDER_BASH)
    r = ns.run([python_edge, "kill_make.py"], env={"TERM": "xterm", "NO_COLOR": "1"},
               timeout=200)
    assert r.rc == 0, r
    d = json.loads(r.stdout)
    gone = "the make that ran dev in this terminal (PID %d) is gone" % d["make"]
    assert gone in d["out"], d
    assert "removed frontend.pid" in d["out"], d
    assert wait_until(lambda: not app_pids(ns), 10), ns.ps()
    assert not (tmp_path / "backend.pid").exists()
    assert "stopped by SIGTERM" in read(tmp_path / "backend.log")


@pytest.mark.parametrize("recipe", ["%s", "cd . && %s", "{python} runner.py %s"])
def test_make_dev_killed_with_sigkill_without_a_terminal_stops_the_stack(
        ns, tmp_path, python_edge, recipe):
    """An IDE's stop button on `make dev` (a SIGINT that make does not pass on, then
    SIGKILL to make), or `kill -9` of a `make dev` a script started: dev ran on, its
    parent gone, with no terminal to watch, the stack up for no one.  It now sees its make
    gone, says so, and stops the stack as a closed terminal does; also where make runs
    it through a shell (`cd api && python3 procclean.py dev`) or a runner (`uv run`),
    which outlive make."""
    if shutil.which("make") is None:
        pytest.skip("make is needed to run make dev")
    two_services(tmp_path)
    write(tmp_path / "runner.py", "import subprocess, sys\n"          # as `uv run` runs it
          "sys.exit(subprocess.call(sys.argv[1:]))\n")
    recipe = recipe.format(python=python_edge) % " ".join(
        ns.procclean_argv("dev", python=python_edge))
    write(tmp_path / "Makefile", "dev:\n\t@%s\n" % recipe)
    make = ns.start(["/bin/sh", "-c", "exec make dev >dev.out 2>dev.err"], session=True)
    out = tmp_path / "dev.out"
    assert wait_until(lambda: "frontend * listening" in read(out), TIMEOUT), \
        read(tmp_path / "dev.err")
    below = [p["pid"] for p in ns.ps() if p["ppid"] == make.pid]
    dev = below + [p["pid"] for p in ns.ps() if p["ppid"] in below]     # (and its shell)
    make.signal(signal.SIGKILL)
    assert ns.wait_dead(dev, TIMEOUT) == [], ns.ps()
    assert "the make that ran dev (PID %d) is gone" % make.pid in read(tmp_path / "dev.err")
    assert "removed frontend.pid" in read(tmp_path / "dev.out")
    assert not app_pids(ns), ns.ps()
    assert not (tmp_path / "backend.pid").exists()
    assert "stopped by SIGTERM" in read(tmp_path / "backend.log")


def test_a_port_in_procclean_s_environment_is_said_not_to_be_passed_on(ns, tmp_path,
                                                                       python_edge):
    """`PORT=9000 make start-backend` (or a PORT the shell exports): the backend was given
    PORT=8000, its own port, without a word.  Now that is said, with the setting that
    would move it; `PORT=8000`, the backend's own, says nothing."""
    make_project(tmp_path)
    r = ns.procclean("start", "--wait", "backend", env={"PORT": "9000"}, python=python_edge)
    assert r.rc == 0 and "backend listens on port 8000" in r.stdout, r
    assert "PORT=9000 in the environment is not what the services get: each gets its own " \
        "port in PORT (backend 8000); to move backend there: PROCCLEAN_BACKEND_PORT=9000 " \
        in r.stderr, r
    r = ns.procclean("restart", "backend", env={"PORT": "8000"}, python=python_edge)
    assert r.rc == 0 and "PORT=" not in r.stderr, r
    assert ns.procclean("stop", python=python_edge).rc == 0


def test_a_log_left_by_root_names_its_owner(test_user):
    """A root's empty backend.log (a `sudo make clean start` whose start failed, say), which
    start does not keep aside as a previous log: `make start-backend` as the user said
    `backend.log: Permission denied` alone; it now says whose the file is."""
    with as_test_user("pcdaily-") as (ns, work, user, python):
        os.mkdir(os.path.join(work, "backend"))
        write(os.path.join(work, "backend", "main.py"), WAITS_QUIETLY)
        os.chmod(os.path.join(work, "backend"), 0o777)
        write(os.path.join(work, "backend.log"), "")                # root's, 0644
        r = ns.procclean("start-backend", python=python, user=user)
        assert r.rc == 1, r
        no_traceback(r)
        assert "cannot start backend: backend.log: Permission denied (owned by root, not " \
            "you: remove backend.log or chown it)" in r.stderr, r
        assert nothing_left(ns) == []


@pytest.mark.parametrize("source", ["netlink", "proc"])
def test_a_port_holder_of_another_user_is_named_by_its_owner(test_user, source):
    """A root docker-proxy on 8000 under a user's `make start`: procclean, run as the user,
    cannot read its fds, so kill-port said `held by a process procclean cannot see` (--json
    user "?") and start and status the same. The kernel's socket tables (sock_diag,
    /proc/net/tcp) give the socket's uid: each names root."""
    with as_test_user("pcdaily-") as (ns, work, user, python):
        proxy = ns.spawn(Proc(["docker-proxy", "-host-port", "8000"],
                              listen="0.0.0.0:8000"))
        env = {"PROCCLEAN_PORTS": source}
        theirs = "a process of user root that procclean cannot see"
        r = ns.procclean("kill-port", "8000", python=python, user=user, env=env)
        assert r.rc == 1 and "port 8000: held by %s" % theirs in r.stderr, r
        r = ns.procclean("kill-port", "8000", "--json", python=python, user=user, env=env)
        assert json.loads(r.stdout)["events"][0]["user"] == "root", r
        r = ns.procclean("start-backend", python=python, user=user, env=env)
        assert r.rc == 1 and "port 8000 is taken by %s" % theirs in r.stderr, r
        r = ns.procclean("status", "backend", "--lang", "zh", python=python, user=user,
                         env=env)
        assert "端口 8000: 被用户 root 的无法查看的进程占用" in r.stdout, r
        assert_alive(ns, [proxy.pid], r)


@pytest.mark.parametrize("nested", ["worktree", "procclean.ini"])
def test_a_checkout_nested_in_the_project_is_not_the_project(ns, tmp_path, python_edge,
                                                            nested):
    """`git worktree add .worktrees/feature` inside the repo (as coding agents do): its
    backend, started by hand, was in the main checkout's folder, so the main checkout's
    `make start` said `already running` and its `make stop` killed the worktree's backend.
    A folder inside the project that is a linked worktree, or has a procclean.ini of its
    own, is a checkout of its own; a submodule's folder is not."""
    main = tmp_path / "main"
    tree = main / ".worktrees" / "feature"
    os.makedirs(str(tree / "backend"))
    os.makedirs(str(main / "backend"))
    write(main / "backend" / "main.py", WAITS_QUIETLY)
    write(tree / "backend" / "main.py", WAITS_QUIETLY)
    write(main / "procclean.ini", "[procclean]\nservices = backend\n")
    if nested == "worktree":
        write(tree / ".git", "gitdir: %s/.git/worktrees/feature\n" % main)
    else:
        write(tree / "procclean.ini", "[procclean]\nservices = backend\n")
    theirs = ns.spawn(Proc(["python3", "main.py"], cwd=tree / "backend"))
    r = ns.procclean("start", "backend", python=python_edge, cwd=main)
    assert r.rc == 0 and "started backend PID" in r.stdout, r
    ours = int(read(main / "backend.pid"))
    r = ns.procclean("stop", python=python_edge, cwd=main)
    assert r.rc == 0, r
    assert "left alone outside this project: PID %d" % theirs.pid in r.stdout, r
    assert_dead(ns, [ours], r)
    assert_alive(ns, [theirs.pid], r)
    r = ns.procclean("stop", python=python_edge, cwd=tree)
    assert r.rc == 0, r
    assert_dead(ns, [theirs.pid], r)


def test_a_pidfile_a_recipe_wrote_just_after_its_command_is_trusted(ns, tmp_path,
                                                                   python_edge):
    """`CMD > LOG 2>&1 & echo $! > backend.pid`, a Makefile's start recipe, with a CMD the
    pattern does not find (a wrapper script): its pidfile's mtime, from the kernel's coarse
    clock, read as earlier than CMD's start about one time in three, so `make stop` called
    the PID reused, left CMD running and removed the pidfile.  Ten starts, ten stops."""
    write(tmp_path / "run.sh", "while :; do sleep 1; done\n")
    for attempt in range(10):
        r = ns.run(["sh", "-c", "sh run.sh > run.log 2>&1 & echo $! > backend.pid"])
        assert r.rc == 0, r
        pid = int(read(tmp_path / "backend.pid"))
        r = ns.procclean("stop-backend", python=python_edge)
        # (its command line may still be its shell's: `echo $!` runs while it execs)
        assert r.rc == 0 and "stopped backend PID %d: " % pid in r.stdout, (attempt, r)
        assert_dead(ns, [pid], r)
