"""Honest status, supervision settings and start --wait that fails fast (issue 14, items 4-6),
black-box inside PID+network namespaces with a stand-in app (app.py below) whose behaviour a
variable chooses: it serves, never listens, says its start-up failed and stays (as a reloader
does), crashes at once, or forks a worker that serves while the parent never reaps it (the
uvicorn --reload case: a killed worker stays <defunct>).

Assertions are on what a user sees: exit codes, messages, the log, the pidfile, and which
processes are left in the namespace; every wait is for an event, with a generous deadline."""
import json
import os
import signal

import pytest

from integ_helpers import no_traceback, nothing_left, read, wait_until, write

PORT = 8765
TIMEOUT = 120         # generous subprocess timeout for any one procclean run

APP = """\
import http.server, os, sys, time
MODE = os.environ.get("MODE", "ok")
print("app pid %d mode %s" % (os.getpid(), MODE), flush=True)
if MODE == "crash":
    print("boom: crashing at start", flush=True)
    sys.exit(1)
if MODE == "fail":
    print("ERROR:    Application startup failed. Exiting.", flush=True)
if MODE == "deaf":
    import signal
    signal.signal(signal.SIGTERM, lambda *args: print("SIGTERM ignored", flush=True))
if MODE in ("fail", "never"):
    while True:
        time.sleep(60)      # alive, never listening (a reloader whose worker failed)


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, fmt, *args):
        print("request " + fmt % args, flush=True)


def serve():
    http.server.HTTPServer(("127.0.0.1", APP_PORT), H).serve_forever()


if MODE == "fork":
    if os.fork() == 0:
        print("worker pid %d" % os.getpid(), flush=True)
        serve()
    while True:
        time.sleep(60)      # never reaps: a killed worker stays <defunct>
serve()
""".replace("APP_PORT", str(PORT))


def setup(tmp_path, python, mode, **extra):
    write(tmp_path / "app.py", APP)
    env = {"PROCCLEAN_SERVICES": "app", "PROCCLEAN_APP_COMMAND": "%s app.py" % python,
           "PROCCLEAN_APP_PATTERN": r"app\.py", "PROCCLEAN_APP_PORT": str(PORT),
           "PROCCLEAN_APP_HEALTH": "/health", "MODE": mode}
    env.update(extra)
    return env


def state_of(ns, env, python):
    r = ns.procclean("status", "--json", "app", env=env, python=python, timeout=TIMEOUT)
    assert r.rc == 0, r
    return json.loads(r.stdout)["services"][0]


# -- status states -----------------------------------------------------------------------

def test_a_service_not_listening_yet_is_starting_and_fails_check(ns, tmp_path, python_edge):
    env = setup(tmp_path, python_edge, "never")
    r = ns.procclean("start", "app", env=env, python=python_edge, timeout=TIMEOUT)
    assert r.rc == 0, r
    r = ns.procclean("status", "app", env=env, python=python_edge, timeout=TIMEOUT)
    assert r.rc == 0 and "app: starting, PID" in r.stdout, r
    assert "app: running" not in r.stdout, r
    assert state_of(ns, env, python_edge)["state"] == "starting"
    r = ns.procclean("status", "--check", "app", env=env, python=python_edge, timeout=TIMEOUT)
    assert r.rc == 3 and "runs, but nothing listens on its port %d" % PORT in r.stderr, r
    assert ns.procclean("stop", "app", env=env, python=python_edge, timeout=TIMEOUT).rc == 0


def test_a_start_up_failure_in_the_log_is_crashed(ns, tmp_path, python_edge):
    env = setup(tmp_path, python_edge, "fail")
    assert ns.procclean("start", "app", env=env, python=python_edge, timeout=TIMEOUT).rc == 0
    assert wait_until(lambda: "startup failed" in read(tmp_path / "app.log"), 30)
    r = ns.procclean("status", "app", env=env, python=python_edge, timeout=TIMEOUT)
    assert "app: crashed, PID" in r.stdout, r
    assert state_of(ns, env, python_edge)["state"] == "crashed"
    r = ns.procclean("status", "--check", "app", env=env, python=python_edge, timeout=TIMEOUT)
    assert r.rc == 3, r
    assert ns.procclean("stop", "app", env=env, python=python_edge, timeout=TIMEOUT).rc == 0


def test_listening_and_healthy_is_running_and_passes_check(ns, tmp_path, python):
    env = setup(tmp_path, python, "ok")
    r = ns.procclean("start", "--wait", "app", env=env, python=python, timeout=TIMEOUT)
    assert r.rc == 0 and "app listens on port %d" % PORT in r.stdout, r
    requests = read(tmp_path / "app.log").count("request ")
    r = ns.procclean("status", "app", env=env, python=python, timeout=TIMEOUT)
    assert "app: running, PID" in r.stdout, r
    assert read(tmp_path / "app.log").count("request ") == requests     # nothing asked
    r = ns.procclean("status", "--check", "app", env=env, python=python, timeout=TIMEOUT)
    assert r.rc == 0 and "health http://127.0.0.1:%d/health: healthy" % PORT in r.stdout, r
    assert state_of(ns, env, python)["state"] == "running"
    assert ns.procclean("stop", "app", env=env, python=python, timeout=TIMEOUT).rc == 0


def test_a_worker_left_defunct_is_crashed(ns, tmp_path, python_edge):
    env = setup(tmp_path, python_edge, "fork")
    r = ns.procclean("start", "--wait", "app", env=env, python=python_edge, timeout=TIMEOUT)
    assert r.rc == 0, r
    worker = int(wait_until(lambda: [l for l in read(tmp_path / "app.log").splitlines()
                                     if l.startswith("worker pid")], 30)[0].split()[-1])
    ns.kill([worker])
    assert wait_until(lambda: ns.state(worker) == "Z", 30)
    r = ns.procclean("status", "app", env=env, python=python_edge, timeout=TIMEOUT)
    assert "app: crashed" in r.stdout and "worker PID %d exited" % worker in r.stdout, r
    r = ns.procclean("status", "--check", "app", env=env, python=python_edge, timeout=TIMEOUT)
    assert r.rc == 3, r
    assert ns.procclean("stop", "app", env=env, python=python_edge, timeout=TIMEOUT).rc == 0
    assert nothing_left(ns) == []


# -- start --wait that fails fast ------------------------------------------------------------

@pytest.mark.edge_pythons
def test_wait_yes_in_the_ini_fails_fast_and_leaves_nothing(ns, tmp_path, python):
    """`wait = yes` makes a plain start wait; the log says the start-up failed while the app
    lives on: start says so well before its (huge) timeout, stops it, removes the pidfile."""
    env = setup(tmp_path, python, "fail")
    with open(str(tmp_path / "procclean.ini"), "w") as f:
        f.write("[app]\nwait = yes\n")
    r = ns.procclean("start", "--timeout", "900", "app", env=env, python=python,
                     timeout=TIMEOUT)
    assert not r.timed_out and r.rc == 1, r
    no_traceback(r)
    assert "app: its start-up failed, nothing listens on port %d" % PORT in r.stderr, r
    assert "Application startup failed" in r.stderr, r              # the log's last lines
    assert "app: stopped what this start left running; app.pid removed" in r.stderr, r
    assert nothing_left(ns) == []
    assert not os.path.exists(str(tmp_path / "app.pid"))


def test_start_wait_on_a_worker_that_dies_fails_fast(ns, tmp_path, python_edge):
    """Under a parent that stays (a reloader), the worker exits before listening."""
    env = setup(tmp_path, python_edge, "fork", PROCCLEAN_APP_WAIT="yes",
                PROCCLEAN_APP_COMMAND="%s -c \"import os,time\nif os.fork()==0: os._exit(3)\n"
                                      "time.sleep(600)\" app.py" % python_edge)
    r = ns.procclean("start", "--timeout", "900", "app", env=env, python=python_edge,
                     timeout=TIMEOUT)
    assert not r.timed_out and r.rc == 1, r
    assert "exited, nothing listens on port %d" % PORT in r.stderr, r
    assert nothing_left(ns) == []
    assert not os.path.exists(str(tmp_path / "app.pid"))


# -- supervision settings ---------------------------------------------------------------------

def test_supervise_yes_by_ini_or_environment_and_restart_keeps_it(ns, tmp_path, python_edge):
    env = setup(tmp_path, python_edge, "ok", PROCCLEAN_APP_SUPERVISE="yes")
    r = ns.procclean("start", "--wait", "app", env=env, python=python_edge, timeout=TIMEOUT)
    assert r.rc == 0 and "supervising app" in r.stdout, r
    first = int(read(tmp_path / "app.pid"))
    plain = dict(env)
    del plain["PROCCLEAN_APP_SUPERVISE"]
    r = ns.procclean("restart", "app", env=plain, python=python_edge, timeout=TIMEOUT)
    assert r.rc == 0 and "supervising app" in r.stdout, r                   # kept
    second = int(read(tmp_path / "app.pid"))
    assert second != first and ns.is_alive(second) and not ns.is_alive(first)
    assert ns.procclean("stop", "app", env=plain, python=python_edge, timeout=TIMEOUT).rc == 0
    assert nothing_left(ns) == []
    # not supervised before: restart does not start supervising
    r = ns.procclean("start", "app", env=plain, python=python_edge, timeout=TIMEOUT)
    assert r.rc == 0 and "supervising" not in r.stdout, r
    r = ns.procclean("restart", "app", env=plain, python=python_edge, timeout=TIMEOUT)
    assert r.rc == 0 and "supervising" not in r.stdout and "started app" in r.stdout, r
    # the ini form
    with open(str(tmp_path / "procclean.ini"), "w") as f:
        f.write("[app]\nsupervise = yes\n")
    r = ns.procclean("restart", "app", env=plain, python=python_edge, timeout=TIMEOUT)
    assert r.rc == 0 and "supervising app" in r.stdout, r
    assert ns.procclean("stop", "app", env=plain, python=python_edge, timeout=TIMEOUT).rc == 0
    assert nothing_left(ns) == []


def test_a_supervised_app_deaf_to_sigterm_is_killed_by_the_stop_not_its_supervisor(
        ns, tmp_path, python_edge):
    """The supervisor's grace (stopping its app) and stop's ended together: stop SIGKILLed
    the supervisor too, and the log said so.  The supervisor leaves its app to the stop
    under way and exits on its SIGTERM; a plain SIGTERM to it still stops its app."""
    env = setup(tmp_path, python_edge, "deaf")
    for how in ("stop", "restart", "kill"):
        r = ns.procclean("start", "--supervise", "--wait", "app", env=env,
                         python=python_edge, timeout=TIMEOUT)
        assert r.rc == 0, r
        supervisor = int(read(tmp_path / "app.pid"))
        if how == "kill":
            ns.kill([supervisor], signal.SIGTERM)
            assert wait_until(lambda: nothing_left(ns) == [], 60), ns.ps()
            assert "supervise: received SIGTERM; stopping app" in read(tmp_path / "app.log")
            break
        r = ns.procclean(how, "app", env=env, python=python_edge, timeout=TIMEOUT)
        assert r.rc == 0 and "stopped app PID %d" % supervisor in r.stdout, r
        assert "1 of them with SIGKILL" in r.stdout, r
        log = read(tmp_path / "app.log.1") + read(tmp_path / "app.log")    # restart: rotated
        assert "leaving app to the stop under way (PID" in log, log
        assert "PID %d stopped by SIGTERM" % supervisor in log, log
        if how == "restart":
            assert ns.procclean("stop", "app", env=env, python=python_edge,
                                timeout=TIMEOUT).rc == 0
        assert nothing_left(ns) == []


@pytest.mark.edge_pythons
def test_supervised_start_wait_on_a_crash_loop_fails_fast_and_leaves_nothing(
        ns, tmp_path, python):
    env = setup(tmp_path, python, "crash")
    r = ns.procclean("start", "--supervise", "--wait", "--timeout", "900", "app", env=env,
                     python=python, timeout=TIMEOUT)
    assert not r.timed_out and r.rc == 1, r
    no_traceback(r)
    assert "app exited under its supervisor (status 1)" in r.stderr, r
    assert "boom: crashing at start" in r.stderr, r
    assert nothing_left(ns) == []
    assert not os.path.exists(str(tmp_path / "app.pid"))


def test_foreground_crash_loop_gives_up_with_the_log_s_last_lines(ns, tmp_path, python_edge):
    env = setup(tmp_path, python_edge, "crash")
    r = ns.procclean("supervise", "app", "--max-restarts", "1", env=env, python=python_edge,
                     timeout=TIMEOUT)
    assert r.rc == 1, r
    assert "app: gave up after 1 restart(s)" in r.stderr, r
    assert "boom: crashing at start" in r.stderr, r
    assert nothing_left(ns) == []


def test_supervisor_restarts_a_worker_left_defunct(ns, tmp_path, python_edge):
    """The reloader case: the worker killed with SIGKILL stays <defunct> under a parent that
    lives on; once healthy before, the service is restarted after `unhealthy_after`."""
    env = setup(tmp_path, python_edge, "fork", PROCCLEAN_APP_UNHEALTHY_AFTER="1")
    r = ns.procclean("start", "--supervise", "--wait", "app", env=env, python=python_edge,
                     timeout=TIMEOUT)
    assert r.rc == 0, r
    assert wait_until(lambda: '"healthy": true' in read(tmp_path / "app.pid.state"), 30)

    def workers():
        return [int(l.split()[-1]) for l in read(tmp_path / "app.log").splitlines()
                if l.startswith("worker pid")]
    old = wait_until(workers, 30)
    ns.kill(old)
    assert wait_until(lambda: len(workers()) > len(old), 60), read(tmp_path / "app.log")
    log = read(tmp_path / "app.log")
    assert "unhealthy for" in log and "restarting in" in log, log
    assert wait_until(lambda: ns.connect("127.0.0.1", PORT), 30)
    rec = state_of(ns, env, python_edge)
    assert rec["supervisor"]["restarts"] >= 1, rec
    assert ns.procclean("stop", "app", env=env, python=python_edge, timeout=TIMEOUT).rc == 0
    assert nothing_left(ns) == []
