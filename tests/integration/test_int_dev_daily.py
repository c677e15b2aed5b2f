"""The daily loop with dev and supervision (issue 21 items 3-5), black-box inside PID+network
namespaces: `after` with a supervised service, a failure that ends the wait at once, a restart
from another terminal that dev keeps in its stream, closing the terminal, make interrupted.

The services are test_int_dev's APP (plus BROKEN below); every assertion is on what a user
sees (exit codes, messages, the stream, logs, pidfiles, processes, ports), with events awaited
under generous bounds, never a sleep-then-assert."""
import json
import re
import signal
import sys

import pytest

from integ_helpers import PTY_PUMP, no_traceback, nothing_left, read, wait_until, write
from test_int_dev import APP, KILLPG, TIMEOUT, Dev, app_pids, assert_all_gone, project, \
    started_pids

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


# --------------------------------------------------------------------------------------------
# 5. closing the terminal is a graceful stop; procclean ends by the signal it got

# A server whose shutdown takes a second (a FastAPI lifespan closing its pools) and leaves a
# marker; SIGHUP keeps its default action, as in uvicorn: a hang-up would kill it unfinished.
GRACEFUL = r'''
if mode == "graceful":             # graceful PORT NAME
    def shutdown(signum, frame):
        time.sleep(1.0)
        open(args[1] + ".shutdown", "w").close()
        sys.exit(0)
    signal.signal(signal.SIGTERM, shutdown)
    serve(args[0], args[1])
'''

PTY_HANGUP = PTY_PUMP + r"""
wait_for = sys.argv[2].encode()
up = pump(lambda: out.count(wait_for) >= 2, 60)
os.close(fd)                    # the terminal closes: the kernel hangs up dev's session
os.kill(pid, signal.SIGHUP)     # and the shell resends SIGHUP to its jobs
rc = reap(60)
print(json.dumps({"up": up, "rc": rc, "out": out.decode("utf-8", "replace"),
                  "stuck": stuck}))
"""


def graceful_pair(tmp_path):
    project(tmp_path, {
        "backend": ("graceful 8000 backend", {"port": "8000", "health": "off"}),
        "frontend": ("graceful 3000 frontend", {"port": "3000", "health": "off"}),
    }, extra="grace = 30")
    write(tmp_path / "app.py", APP + GRACEFUL)


def test_terminal_closed_under_dev_is_a_graceful_stop(ns, tmp_path, python_edge):
    graceful_pair(tmp_path)
    write(tmp_path / "pty_hangup.py", PTY_HANGUP)
    argv = ns.procclean_argv("dev", python=python_edge)
    # dev says "listening on port N" once per service (the apps print "NAME listening on")
    r = ns.run([python_edge, "pty_hangup.py", json.dumps(argv), "listening on port"],
               env={"TERM": "xterm"}, timeout=150)
    assert r.rc == 0, r
    d = json.loads(r.stdout)
    assert d["up"] == "done", d
    assert d["rc"] == -signal.SIGHUP, d         # dev ended by SIGHUP: a shell sees 129
    for name in ("backend", "frontend"):
        log = read(tmp_path / (name + ".log"))
        # each service ran its shutdown to the end: dev's SIGTERM, not the hang-up, nor a
        # SIGKILL for the shell's second SIGHUP
        assert (tmp_path / (name + ".shutdown")).exists(), (name, log, d["out"])
        assert re.search(r"stop: PID \d+ stopped by SIGTERM$", log, re.M), log
        assert "SIGKILL" not in log, log
    assert wait_until(lambda: not app_pids(ns), 10), ns.ps()
    for name in ("backend.pid", "frontend.pid"):
        assert not (tmp_path / name).exists()


def test_second_sighup_does_not_hurry_the_stop(ns, tmp_path, python_edge):
    graceful_pair(tmp_path)
    dev = Dev(ns, tmp_path, python_edge)
    dev.up("backend", "frontend")
    dev.job.signal(signal.SIGHUP)
    dev.wait_for("SIGHUP: stopping every service")
    dev.job.signal(signal.SIGHUP)
    assert dev.finish() == -signal.SIGHUP
    # the terminal is gone: no one can press Ctrl-C, so it is not offered
    assert "Ctrl-C" not in dev.out, dev.out
    assert "with SIGKILL" not in dev.out and "killed" not in dev.out, dev.out
    assert re.search(r"^backend: 1 process\(es\) stopped$", dev.out, re.M), dev.out
    for name in ("backend", "frontend"):
        assert (tmp_path / (name + ".shutdown")).exists(), (name, dev.out)
    assert_all_gone(ns, tmp_path, dev)


def test_make_dev_interrupted_is_an_interrupt_for_make(ns, tmp_path, python_edge):
    graceful_pair(tmp_path)
    argv = ns.procclean_argv("dev", python=python_edge)
    write(tmp_path / "Makefile", "dev:\n\t@%s\n" % " ".join(argv))
    job = ns.start(["/bin/sh", "-c", 'exec make dev >make.out 2>make.err'], session=True)
    assert wait_until(lambda: read(tmp_path / "make.out").count("listening on port") >= 2,
                      TIMEOUT), (read(tmp_path / "make.out"), read(tmp_path / "make.err"))
    # Ctrl-C: the terminal sends SIGINT to the foreground group, make and procclean
    r = ns.run([sys.executable, "-c", KILLPG, job.pid, int(signal.SIGINT)])
    assert r.rc == 0, r
    r = job.wait(TIMEOUT)
    out, err = read(tmp_path / "make.out"), read(tmp_path / "make.err")
    assert not r.timed_out, (out, err)
    assert "Interrupt" in err and "Error 130" not in err, (out, err)
    assert r.rc == -signal.SIGINT, (r, out, err)
    for name in ("backend", "frontend"):
        assert (tmp_path / (name + ".shutdown")).exists(), (name, out)
    assert wait_until(lambda: not app_pids(ns), 10), ns.ps()


def test_foreground_supervise_ends_by_the_signal_it_got(ns, tmp_path, python_edge):
    graceful_pair(tmp_path)
    job = ns.start_procclean("supervise", "backend", python=python_edge)
    assert wait_until(lambda: ns.connect("127.0.0.1", 8000), TIMEOUT), \
        read(tmp_path / "backend.log")
    job.signal(signal.SIGTERM)
    r = job.wait(TIMEOUT)
    assert not r.timed_out, r
    assert r.rc == -signal.SIGTERM, r             # a shell sees 143, make "Terminated"
    assert "received SIGTERM; stopping backend" in read(tmp_path / "backend.log")
    assert (tmp_path / "backend.shutdown").exists(), read(tmp_path / "backend.log")
    assert nothing_left(ns) == [], ns.ps()


# --------------------------------------------------------------------------------------------
# 4. dev keeps the stack in one terminal

# A reloader that never reaps its worker (uvicorn --reload's case: a worker killed stays
# <defunct>, the reloader lives on, nothing listens); and a server that prints in colour
# when FORCE_COLOR asks for it.
MORE = r'''
if mode == "lazyreloader":         # lazyreloader PORT
    print("reloader watching for changes")
    sys.stdout.flush()
    worker = subprocess.Popen([sys.executable, __file__, "serve", args[0], "worker"])
    time.sleep(3600)
elif mode == "reloading":          # reloading PORT: a new worker once ./reload appears
    print("reloader watching for changes")
    sys.stdout.flush()
    worker = subprocess.Popen([sys.executable, __file__, "serve", args[0], "worker"])
    while not os.path.exists("reload"):
        time.sleep(0.1)         # (a worker that died stays <defunct> until then)
    worker.wait()
    worker = subprocess.Popen([sys.executable, __file__, "serve", args[0], "worker"])
    time.sleep(3600)
elif mode == "forking":            # forking PORT: children it reaps 0.1 s after they end
    for n in range(30):
        child = subprocess.Popen(["true"])
        time.sleep(0.1)
        child.wait()
    serve(args[0], "forking")
elif mode == "subprocs":           # subprocs PORT: a subprocess.run each 5 ms, in a thread,
    import threading               # and a Popen it reaps after a 5 ms sleep
    def run_children():
        while True:
            subprocess.run(["true"])
            time.sleep(0.005)
            child = subprocess.Popen(["true"])
            time.sleep(0.005)
            child.wait()
    threading.Thread(target=run_children, daemon=True).start()
    serve(args[0], "subprocs")
elif mode == "colour":             # colour PORT NAME
    if os.environ.get("FORCE_COLOR"):
        print("\x1b[32mgreen\x1b[0m and \x1b[1;31mbold red\x1b[0m text")
    serve(args[0], args[1])
'''


def plain_pair(tmp_path, backend="serve 8000 backend", backend_fields=None):
    project(tmp_path, {
        "backend": (backend, dict({"port": "8000", "health": "off"},
                                  **(backend_fields or {}))),
        "frontend": ("serve 3000 frontend", {"port": "3000", "health": "off"}),
    })
    write(tmp_path / "app.py", APP + MORE)


def test_restart_from_another_terminal_stays_in_the_dev_stream(ns, tmp_path, python_edge):
    plain_pair(tmp_path)
    dev = Dev(ns, tmp_path, python_edge)
    dev.up("backend", "frontend")
    old = int(read(tmp_path / "backend.pid"))
    r = ns.procclean("restart-backend", "--dry-run", python=python_edge, timeout=TIMEOUT)
    assert r.rc == 0 and "would ask backend's dev session (procclean PID %d)" % dev.pid \
        in r.stdout, r
    assert int(read(tmp_path / "backend.pid")) == old
    r = ns.procclean("restart-backend", python=python_edge, timeout=TIMEOUT)
    no_traceback(r)
    assert r.rc == 0, r
    assert "backend restarted by its dev session (procclean PID %d)" % dev.pid in r.stdout, r
    # the new backend's output keeps appearing in dev's stream
    assert wait_until(lambda: dev.out.count("backend  | backend listening on 8000") == 2,
                      TIMEOUT), dev.out
    new = started_pids(dev.out, "backend")
    assert len(new) == 2 and new[0] == old and new[1] != old, dev.out
    assert int(read(tmp_path / "backend.pid")) == new[1]
    assert "backend  * restarting (asked from another terminal" in dev.out, dev.out
    # each process stopped, then the summary stop gives (it had none: qa-daily-30's day28)
    assert re.search(r"stopped backend PID %d: .*\n(.*\n)*backend: 1 process\(es\) "
                     r"stopped\n" % old, dev.out), dev.out
    assert "stopped from another terminal" not in dev.out, dev.out
    assert not ns.is_alive(old) and ns.is_alive(new[1])
    assert dev.job.result is None, (dev.out, dev.err)          # dev runs on
    assert started_pids(dev.out, "frontend") and len(started_pids(dev.out, "frontend")) == 1
    dev.job.signal(signal.SIGTERM)
    assert dev.finish() == -signal.SIGTERM
    assert_all_gone(ns, tmp_path, dev)
    # dev's files go with their start records: the restart's request and the session's
    left = sorted(p.name for p in tmp_path.iterdir() if ".dev." in p.name
                  or ".restart." in p.name)
    assert left == [], left


def test_second_dev_says_the_stack_runs_in_another_terminal(ns, tmp_path, python_edge):
    plain_pair(tmp_path)
    dev = Dev(ns, tmp_path, python_edge)
    dev.up("backend", "frontend")
    r = ns.procclean("dev", python=python_edge, timeout=TIMEOUT)
    no_traceback(r)
    assert r.rc == 1, r
    assert ("backend already runs in the dev session of another terminal (procclean PID %d"
            % dev.pid) in r.stderr, r
    assert "in the background" not in r.stderr, r
    assert dev.job.result is None, dev.out
    dev.job.signal(signal.SIGTERM)
    assert dev.finish() == -signal.SIGTERM
    assert_all_gone(ns, tmp_path, dev)


def test_logfile_has_no_colour_codes_the_terminal_shows(ns, tmp_path, python_edge):
    from test_int_dev import run_on_a_terminal
    plain_pair(tmp_path, backend="colour 8000 backend")
    d = run_on_a_terminal(ns, tmp_path, python_edge, {})
    assert d["up"] == "done", d
    assert "\x1b[32mgreen\x1b[0m and \x1b[1;31mbold red\x1b[0m text" in d["out"], d
    log = read(tmp_path / "backend.log")
    assert "green and bold red text\n" in log, repr(log)
    assert "\x1b" not in log, repr(log)


def test_supervised_worker_death_is_shown_and_restarted(ns, tmp_path, python_edge):
    plain_pair(tmp_path, backend="lazyreloader 8000",
               backend_fields={"supervise": "yes", "unhealthy_after": "1"})
    dev = Dev(ns, tmp_path, python_edge)
    dev.up("worker", "frontend")
    dev.wait_for("backend  * listening on port 8000")      # dev saw it healthy
    reloader = int(read(tmp_path / "backend.pid"))
    worker = [p["pid"] for p in ns.ps() if p["ppid"] == reloader]
    assert len(worker) == 1, ns.ps()
    ns.kill(worker, signal.SIGKILL)
    dev.wait_for("backend  * its worker PID %d exited; nothing of it listens on port 8000"
                 % worker[0])
    dev.wait_for("backend  * unhealthy for")
    assert wait_until(lambda: dev.out.count("backend  | worker listening on 8000") == 2,
                      TIMEOUT), dev.out
    assert len(started_pids(dev.out, "backend")) == 2, dev.out
    # dev restarted it: no "exited by itself" (f8e1dce's words for a crash), there or in
    # its log
    assert "backend  * restarted: unhealthy; restarting in" in dev.out, dev.out
    assert "exited by itself" not in dev.out + read(tmp_path / "backend.log"), dev.out
    assert not ns.is_alive(reloader)
    assert dev.job.result is None, (dev.out, dev.err)
    dev.job.signal(signal.SIGTERM)
    assert dev.finish() == -signal.SIGTERM
    assert_all_gone(ns, tmp_path, dev)


def test_a_worker_back_after_a_reload_is_said_to_listen_again(ns, tmp_path, python_edge):
    """uvicorn --reload under `make dev`, an edit that breaks the app, then the fix: the
    stream said `its worker PID 75 exited; nothing of it listens on port 8000` and,
    once the next worker listened, nothing: its last word on the backend was that it was
    down.  It now says `listening on port 8000` again."""
    plain_pair(tmp_path, backend="reloading 8000")
    dev = Dev(ns, tmp_path, python_edge)
    dev.up("worker", "frontend")
    dev.wait_for("backend  * listening on port 8000")
    reloader = int(read(tmp_path / "backend.pid"))
    worker = [p["pid"] for p in ns.ps() if p["ppid"] == reloader]
    assert len(worker) == 1, ns.ps()
    ns.kill(worker, signal.SIGKILL)
    dev.wait_for("backend  * its worker PID %d exited; nothing of it listens on port 8000"
                 % worker[0])
    write(tmp_path / "reload", "")
    assert wait_until(lambda: dev.out.count("backend  * listening on port 8000") == 2,
                      TIMEOUT), dev.out
    assert dev.job.result is None, (dev.out, dev.err)
    dev.job.signal(signal.SIGTERM)
    assert dev.finish() == -signal.SIGTERM
    assert_all_gone(ns, tmp_path, dev)


def test_a_child_not_reaped_yet_is_no_worker_that_exited(ns, tmp_path, python_edge):
    """`make restart goapi` under dev, goapi run by a script that copies the program before
    it runs it (as `go run` builds it): the stream said `goapi * its worker PID 52 exited;
    nothing of it listens on port 8080`, and then `listening on port 8080`: PID 52 was a
    `cp` its shell had not reaped yet at dev's look.  A <defunct> counts once it is seen
    at two looks (uvicorn's dead worker stays so until the next reload)."""
    plain_pair(tmp_path, backend="forking 8000")
    dev = Dev(ns, tmp_path, python_edge)
    dev.up("forking", "frontend")
    dev.wait_for("backend  * listening on port 8000")
    assert "exited" not in dev.out, dev.out
    dev.job.signal(signal.SIGTERM)
    assert dev.finish() == -signal.SIGTERM
    assert_all_gone(ns, tmp_path, dev)


def test_status_is_not_fooled_by_a_child_its_parent_is_reaping(ns, tmp_path, python_edge):
    """An app that runs a subprocess per request in a worker thread: a status that read the
    table between a child's exit and its reaping said `crashed, worker PID 52 exited
    (<defunct>)` (status --check: 3), about one status in ten here. A <defunct> whose
    parent has a runnable thread (woken by the exit to reap it), gone at a second look, or
    that exited 0 (its parent asleep before it reaps it: Popen, then a poll) is no worker
    that exited; uvicorn --reload's dead worker still is (unit tests)."""
    plain_pair(tmp_path, backend="subprocs 8000")
    r = ns.procclean("start", "--wait", "backend", python=python_edge, timeout=TIMEOUT)
    assert r.rc == 0, r
    states = []
    for _ in range(60):
        r = ns.procclean("status", "--json", "backend", python=python_edge)
        states.append(json.loads(r.stdout)["services"][0]["state"])
    assert set(states) == {"running"}, states
    assert ns.procclean("stop", python=python_edge).rc == 0


def test_start_wait_is_not_fooled_by_children_reaped_late(ns, tmp_path, python_edge):
    """An app that runs children before it listens (Popen, reaped 0.1 s after they end):
    start --wait read each <defunct> as a worker that exited and failed the start (exit 1,
    the app stopped). A child that exited 0 is no failed worker."""
    plain_pair(tmp_path, backend="forking 8000")
    r = ns.procclean("start", "--wait", "backend", python=python_edge, timeout=TIMEOUT)
    assert r.rc == 0 and "backend listens on port 8000" in r.stdout, r
    assert ns.procclean("stop", python=python_edge).rc == 0


# Found by trying `tmux new -d 'make dev'; tmux kill-server` on a real FastAPI repo: the
# terminal's hang-up reaches only its session's leader, make, which waits for dev without
# passing it on; dev and the servers ran on with no terminal, for ever.
PTY_HANGUP_LEADER = PTY_PUMP + r"""
wait_for = sys.argv[2].encode()
up = pump(lambda: out.count(wait_for) >= 2, 60)
os.kill(pid, signal.SIGHUP)     # tmux kill-server: SIGHUP to the pane's process (make)...
os.close(fd)                    # ...and the terminal closes under dev
rc = reap(90)
print(json.dumps({"up": up, "rc": rc, "out": out.decode("utf-8", "replace"),
                  "stuck": stuck}))
"""


def test_terminal_closed_under_make_dev_stops_the_stack(ns, tmp_path, python_edge):
    graceful_pair(tmp_path)
    argv = ns.procclean_argv("dev", python=python_edge)
    write(tmp_path / "Makefile", "dev:\n\t@%s\n" % " ".join(argv))
    write(tmp_path / "pty_hangup.py", PTY_HANGUP_LEADER)
    r = ns.run([python_edge, "pty_hangup.py", json.dumps(["/usr/bin/make", "dev"]),
                "listening on port"], env={"TERM": "xterm"}, timeout=200)
    assert r.rc == 0, r
    d = json.loads(r.stdout)
    assert d["up"] == "done", d
    assert d["rc"] == -signal.SIGHUP, d         # make, then the shell, see the hang-up
    for name in ("backend", "frontend"):
        log = read(tmp_path / (name + ".log"))
        assert (tmp_path / (name + ".shutdown")).exists(), (name, log, d["out"])
        assert re.search(r"stop: PID \d+ stopped by SIGTERM$", log, re.M), log
    assert wait_until(lambda: not app_pids(ns), 10), ns.ps()
    assert nothing_left(ns) == [], ns.ps()


def test_dev_that_started_nothing_does_not_say_it_stops_everything(ns, tmp_path, python_edge):
    """fastapi/full-stack-fastapi-template without uv installed: `make dev` said `stopping
    every service...` before `cannot start backend: uv: No such file or directory`, when
    nothing had started. Only the failure is said."""
    project(tmp_path, {
        "backend": ("serve 8000 backend", {"port": "8000", "health": "off"}),
        "frontend": ("serve 3000 frontend", {"port": "3000", "health": "off"}),
    })
    ini = read(tmp_path / "procclean.ini").replace(
        "command = {python} app.py serve 8000 backend", "command = no-such-tool-qa run dev")
    write(tmp_path / "procclean.ini", ini)
    dev = Dev(ns, tmp_path, python_edge)
    r = dev.job.wait(TIMEOUT)
    assert not r.timed_out and r.rc == 1, (dev.out, dev.err)
    assert "cannot start backend: no-such-tool-qa is not installed or not on PATH" \
        in dev.err, dev.err
    assert "stopping every service" not in dev.out + dev.err, (dev.out, dev.err)
    assert_all_gone(ns, tmp_path, dev)


# dev started on a terminal that has already hung up (closed while make or dev was still
# starting): isatty() is False on it, yet it is the terminal dev must watch.
DEV_ON_A_HUNG_UP_TERMINAL = r"""
import json, os, subprocess, sys, time
master, slave = os.openpty()
os.close(master)                    # the terminal window closes before dev looks at it
child = subprocess.Popen(json.loads(sys.argv[1]), stdin=slave, stdout=slave, stderr=slave,
                         start_new_session=True)
os.close(slave)
deadline = time.time() + 60
while child.poll() is None and time.time() < deadline:
    time.sleep(0.05)
rc = child.poll()
if rc is None:
    os.killpg(child.pid, 9)
print(json.dumps({"rc": rc}))
"""


def test_dev_on_a_terminal_already_hung_up_stops_the_stack(ns, tmp_path, python_edge):
    graceful_pair(tmp_path)
    write(tmp_path / "hung_up.py", DEV_ON_A_HUNG_UP_TERMINAL)
    argv = ns.procclean_argv("dev", python=python_edge)
    r = ns.run([python_edge, "hung_up.py", json.dumps(argv)], timeout=150)
    assert r.rc == 0, r
    assert json.loads(r.stdout)["rc"] == -signal.SIGHUP, r     # it ended by itself
    assert wait_until(lambda: not app_pids(ns), 10), ns.ps()
    assert nothing_left(ns) == [], ns.ps()
