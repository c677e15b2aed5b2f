"""Monitoring (issue 7), black-box inside PID+network namespaces: supervise / start --supervise
with backoff and a restart limit, health checks, status --watch (pipe and pseudo-terminal),
logs [-f] [-n], log rotation and procclean's own lines in a service's log.

Every assertion is on what a user sees: exit codes, output, the log, the pidfile, and which
processes exist in the namespace. Timing is only ever checked from below (backoff gaps read
from the log's timestamps), never with tight upper bounds."""
import datetime
import json
import os
import re
import signal
import sys

import pytest

from integ_helpers import PTY_PUMP, no_traceback, nothing_left, read, wait_until, write


# --------------------------------------------------------------------------------------------
# helpers

STAMP = r"\[procclean (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\]"
TIMEOUT = 60          # generous subprocess timeout for any one procclean run


def stamps(log, message_regex):
    """[(datetime, match)] of procclean's log lines whose message matches message_regex."""
    found = []
    for line in log.splitlines():
        m = re.match(STAMP + " " + message_regex, line)
        if m:
            when = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f")
            found.append((when, m))
    return found


# --------------------------------------------------------------------------------------------
# a worker that crashes a given number of times, counting its runs in a file

WORKER = """\
import os, sys, time
n = 1 + (int(open("runs").read()) if os.path.exists("runs") else 0)
with open("runs", "w") as f:
    f.write(str(n))
print("crashy run %d pid %d" % (n, os.getpid()), flush=True)
if n <= {fails}:
    sys.exit(1)
time.sleep({then_sleep})
sys.exit({then_exit})
"""


def worker(tmp_path, fails, then_sleep=600, then_exit=0):
    write(tmp_path / "crashy.py", WORKER.format(fails=fails, then_sleep=then_sleep,
                                                then_exit=then_exit))
    return {"PROCCLEAN_SERVICES": "worker",
            "PROCCLEAN_WORKER_COMMAND": "%s crashy.py" % sys.executable,
            "PROCCLEAN_WORKER_PATTERN": r"crashy\.py"}


def runs(tmp_path):
    text = read(tmp_path / "runs").strip()
    return int(text) if text else 0


def started_lines(log):
    return stamps(log, r"supervise: started worker PID (\d+)")


def pidfile_pid(tmp_path, name="worker"):
    text = read(tmp_path / (name + ".pid")).strip()
    return int(text) if text else None


# --------------------------------------------------------------------------------------------
# supervise

def test_crashes_twice_then_stays_up(ns, tmp_path):
    env = worker(tmp_path, fails=2)
    r = ns.procclean("start", "worker", "--supervise", env=env, timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    assert "supervising worker" in r.stdout, r
    sup = pidfile_pid(tmp_path)
    assert sup and ns.is_alive(sup), r
    log_path = tmp_path / "worker.log"
    assert wait_until(lambda: len(started_lines(read(log_path))) >= 3, 30), read(log_path)
    assert wait_until(lambda: runs(tmp_path) == 3, 10), read(log_path)     # the third is up
    log = read(log_path)
    starts = started_lines(log)
    assert len(starts) == 3, log
    assert runs(tmp_path) == 3, log
    # the two restarts, each logged with its backoff
    assert "exited (status 1); restarting in 1 s (restart 1)" in log, log
    assert "exited (status 1); restarting in 2 s (restart 2)" in log, log
    # backoff seen through the timestamps: about 1 s, then about 2 s
    gap1 = (starts[1][0] - starts[0][0]).total_seconds()
    gap2 = (starts[2][0] - starts[1][0]).total_seconds()
    assert gap1 >= 0.9, (gap1, gap2, log)
    assert gap2 > gap1 and gap2 >= 1.8, (gap1, gap2, log)
    child = int(starts[2][1].group(2))
    assert ns.alive([sup, child]) == [sup, child]

    r = ns.procclean("status", "worker", env=env, timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    assert "worker: running" in r.stdout, r
    assert "supervisor PID %d: running, 2 restart(s)" % sup in r.stdout, r

    r = ns.procclean("status", "worker", "--json", env=env, timeout=TIMEOUT)
    assert r.rc == 0, r
    rec = json.loads(r.stdout)["services"][0]
    assert rec["name"] == "worker" and rec["running"], rec
    assert sup in rec["pids"] and child in rec["pids"], rec
    assert rec["supervisor"] == {"supervisor": sup, "child": child, "state": "running",
                                 "restarts": 2, "last_exit": 1}, rec

    r = ns.procclean("status", "worker", "--check", env=env, timeout=TIMEOUT)
    assert r.rc == 0, r


def test_crashes_forever_supervisor_gives_up(ns, tmp_path):
    env = worker(tmp_path, fails=10 ** 6)
    r = ns.procclean("start", "worker", "--supervise", "--max-restarts", "2", env=env,
                     timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    log_path = tmp_path / "worker.log"
    assert wait_until(lambda: "gave up" in read(log_path), 30), read(log_path)
    assert nothing_left(ns) == []
    log = read(log_path)
    assert len(started_lines(log)) == 3, log
    assert runs(tmp_path) == 3, log
    assert stamps(log, r"supervise: worker PID \d+ exited \(status 1\); gave up after 2 "
                       r"restart\(s\) within a minute"), log
    assert not os.path.exists(str(tmp_path / "worker.pid"))

    r = ns.procclean("status", "worker", env=env, timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    assert "worker: crashed, not running" in r.stdout, r
    assert "worker: gave up after 2 restart(s) within a minute (last exit: status 1)" \
        in r.stdout, r

    r = ns.procclean("status", "worker", "--check", env=env, timeout=TIMEOUT)
    assert r.rc == 3, r

    r = ns.procclean("status", "worker", "--json", env=env, timeout=TIMEOUT)
    rec = json.loads(r.stdout)["services"][0]
    assert not rec["running"] and rec["pids"] == [], rec
    assert rec["supervisor"]["state"] == "gave-up", rec
    assert rec["supervisor"]["restarts"] == 2 and rec["supervisor"]["last_exit"] == 1, rec


def test_foreground_supervisor_that_gives_up_exits_1(ns, tmp_path):
    env = worker(tmp_path, fails=10 ** 6)
    r = ns.procclean("supervise", "worker", "--max-restarts", "1", env=env, timeout=TIMEOUT)
    assert r.rc == 1, r
    no_traceback(r)
    assert "worker: gave up after 1 restart(s) within a minute (last exit: status 1)" \
        in r.stderr, r
    assert runs(tmp_path) == 2
    assert "gave up after 1 restart(s)" in read(tmp_path / "worker.log")
    assert nothing_left(ns) == []
    assert not os.path.exists(str(tmp_path / "worker.pid"))


def test_clean_exit_is_not_restarted(ns, tmp_path):
    env = worker(tmp_path, fails=0, then_sleep=0.3, then_exit=0)
    r = ns.procclean("supervise", "worker", env=env, timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    log = read(tmp_path / "worker.log")
    assert stamps(log, r"supervise: worker PID \d+ exited cleanly \(status 0\); "
                       r"not restarting"), log
    assert "restarting in" not in log, log
    # the supervisor has returned: nothing is left that could start the worker again
    assert nothing_left(ns) == []
    assert runs(tmp_path) == 1
    assert not os.path.exists(str(tmp_path / "worker.pid"))
    r = ns.procclean("status", "worker", "--check", env=env, timeout=TIMEOUT)
    assert r.rc == 3 and "worker: not running" in r.stdout, r


def test_stop_during_backoff_nothing_comes_back(ns, tmp_path):
    env = worker(tmp_path, fails=10 ** 6)
    r = ns.procclean("start", "worker", "--supervise", env=env, timeout=TIMEOUT)
    assert r.rc == 0, r
    sup = pidfile_pid(tmp_path)
    log_path = tmp_path / "worker.log"
    # The third backoff is 4 s long; the supervisor is held inside it (SIGSTOP: on a busy
    # machine stop's own start can take longer than a backoff) until stop's SIGTERM and
    # the SIGCONT stop sends after it to what it finds stopped.
    assert wait_until(lambda: "(restart 3)" in read(log_path), 30, step=0.02), \
        read(log_path)
    ns.kill([sup], signal.SIGSTOP)
    r = ns.procclean("stop", "worker", env=env, timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    assert "PID %d" % sup in r.stdout, r
    assert ns.wait_dead([sup], 5) == [], r
    # the supervisor gone and nothing left: no one can start the worker again
    assert nothing_left(ns, timeout=10) == [], read(log_path)
    assert runs(tmp_path) == 3, read(log_path)
    assert not os.path.exists(str(tmp_path / "worker.pid"))
    log = read(log_path)
    assert len(started_lines(log)) == 3, log
    assert "received SIGTERM; stopping worker" in log, log
    r = ns.procclean("status", "worker", "--check", env=env, timeout=TIMEOUT)
    assert r.rc == 3 and "worker: not running" in r.stdout, r


def test_stop_ends_supervisor_and_service_together(ns, tmp_path):
    env = worker(tmp_path, fails=0)
    r = ns.procclean("start", "worker", "--supervise", env=env, timeout=TIMEOUT)
    assert r.rc == 0, r
    sup = pidfile_pid(tmp_path)
    log_path = tmp_path / "worker.log"
    assert wait_until(lambda: started_lines(read(log_path)) and runs(tmp_path) == 1, 15), \
        read(log_path)
    child = int(started_lines(read(log_path))[0][1].group(2))
    assert ns.alive([sup, child]) == [sup, child]
    r = ns.procclean("stop", "worker", env=env, timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    assert "PID %d" % sup in r.stdout and "PID %d" % child in r.stdout, r
    assert ns.wait_dead([sup, child], 5) == [], r
    # the supervisor gone and nothing left: no one can start the worker again
    assert nothing_left(ns, timeout=10) == [], read(log_path)
    assert runs(tmp_path) == 1, read(log_path)
    assert not os.path.exists(str(tmp_path / "worker.pid"))
    log = read(log_path)
    assert len(started_lines(log)) == 1, log
    assert "restarting in" not in log, log
    assert "received SIGTERM; leaving worker to the stop under way" in log, log


# --------------------------------------------------------------------------------------------
# health

BACKEND = """\
import http.server, os, socketserver, sys, time
MODE = {mode!r}
T0 = time.time()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200
        if self.path == "/health":
            if MODE == "500":
                code = 500
            elif MODE == "hang":
                time.sleep(120)
            elif MODE == "404":
                code = 404
            elif MODE == "slow":
                code = 200 if time.time() - T0 >= 1.0 else 503
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, fmt, *args):
        sys.stdout.write("backend: " + (fmt % args) + "\\n")
        sys.stdout.flush()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = Server(("127.0.0.1", 8000), Handler)
print("backend pid %d listening" % os.getpid(), flush=True)
srv.serve_forever()
"""


def start_backend(ns, tmp_path, mode, *extra):
    """Write main.py (run by the built-in backend service) and start it."""
    write(tmp_path / "main.py", BACKEND.format(mode=mode))
    r = ns.procclean("start", "backend", *extra, timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    assert wait_until(lambda: ns.connect("127.0.0.1", 8000), 10), r
    return r


# What `status --health`, `--check` and `--json --health` say of each kind of answer: what
# status shows (and does not), --check's exit code, fields of the JSON "health" and a text in
# its "error"; "timeout": the --health-timeout given to all three.
HEALTH_ANSWERS = {
    "500-is-unhealthy": {
        "mode": "500", "check_rc": 3,
        "shown": ["health http://127.0.0.1:8000/health: unhealthy (HTTP 500",
                  "backend: unhealthy"],
        "not_shown": ["backend: running"],
        "fields": {"state": "unhealthy", "status": 500}},
    "hang-times-out": {
        "mode": "hang", "timeout": "0.5", "check_rc": 3,
        "shown": ["health http://127.0.0.1:8000/health: no answer (timed out"],
        "fields": {"state": "no answer", "status": None}, "error": "timed out"},
    "200-is-healthy": {
        "mode": "200", "check_rc": 0,
        "shown": ["health http://127.0.0.1:8000/health: healthy (HTTP 200"],
        "fields": {"state": "healthy", "status": 200, "url": "http://127.0.0.1:8000/health"}},
    "auto-falls-back-to-root-on-404": {
        "mode": "404", "check_rc": 0,
        "shown": ["health http://127.0.0.1:8000/: healthy (HTTP 200"],
        "fields": {"state": "healthy", "url": "http://127.0.0.1:8000/"}},
}


@pytest.mark.parametrize("case", list(HEALTH_ANSWERS.values()), ids=list(HEALTH_ANSWERS))
def test_health(ns, tmp_path, case):
    start_backend(ns, tmp_path, case["mode"])
    extra = ["--health-timeout", case["timeout"]] if "timeout" in case else []
    r = ns.procclean("status", "backend", "--health", *extra, timeout=TIMEOUT)
    assert not r.timed_out and r.rc == 0, r
    no_traceback(r)
    assert [t for t in case["shown"] if t not in r.stdout] == [], r
    assert [t for t in case.get("not_shown", []) if t in r.stdout] == [], r
    r = ns.procclean("status", "backend", "--check", *extra, timeout=TIMEOUT)
    assert not r.timed_out and r.rc == case["check_rc"], r
    r = ns.procclean("status", "backend", "--json", "--health", *extra, timeout=TIMEOUT)
    assert not r.timed_out and r.rc == 0, r
    health = json.loads(r.stdout)["services"][0]["health"]
    assert dict((key, health.get(key)) for key in case["fields"]) == case["fields"], health
    assert case.get("error", "") in (health["error"] or ""), health
    assert isinstance(health["latency_ms"], (int, float)), health


def test_status_alone_asks_no_health_check(ns, tmp_path):
    start_backend(ns, tmp_path, "200")
    requests = read(tmp_path / "backend.log").count("GET /health")
    r = ns.procclean("status", "backend", timeout=TIMEOUT)
    assert r.rc == 0 and "backend: running" in r.stdout, r
    assert "health" not in r.stdout, r         # nothing said of what was not asked
    # the app's log gets no request line from it
    assert read(tmp_path / "backend.log").count("GET /health") == requests


def test_start_wait_waits_for_health(ns, tmp_path):
    write(tmp_path / "main.py", BACKEND.format(mode="slow"))
    r = ns.procclean("start", "backend", "--wait", timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    assert "started backend PID" in r.stdout and "listens on port 8000" in r.stdout, r
    r = ns.procclean("status", "backend", "--check", timeout=TIMEOUT)
    assert r.rc == 0, r
    assert "health http://127.0.0.1:8000/health: healthy (HTTP 200" in r.stdout, r


# --------------------------------------------------------------------------------------------
# status --watch

def test_watch_through_a_pipe_prints_snapshots(ns, tmp_path):
    start_backend(ns, tmp_path, "200")
    r = ns.procclean("status", "backend", "--watch", "0.2", "--count", "3", timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    assert r.stdout.count("procclean status, every 0.2 s:") == 3, r
    assert r.stdout.count("backend: running") == 3, r
    assert "\x1b" not in r.stdout, r     # no terminal control on a pipe


def test_watch_json_prints_one_document_per_line(ns, tmp_path):
    start_backend(ns, tmp_path, "200")
    r = ns.procclean("status", "backend", "--watch", "0.2", "--count", "2", "--json",
                     timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    assert len(lines) == 2, r
    for line in lines:
        doc = json.loads(line)
        assert doc["time"], doc
        rec = doc["services"][0]
        assert rec["name"] == "backend" and rec["running"], doc
        assert rec["health"]["state"] == "healthy", doc


PTY_DRIVER = PTY_PUMP + r"""
redraws = pump(lambda: out.count(b"\x1b[2J") >= 3, 30)
os.write(fd, b"\x03")
eof = pump(lambda: False, 15)
rc = reap(10)
print(json.dumps({"redraws": redraws, "eof": eof, "rc": rc,
                  "out": out.decode("utf-8", "replace")}))
"""


def test_watch_on_a_terminal_redraws_and_ctrl_c_restores_the_cursor(ns, tmp_path):
    start_backend(ns, tmp_path, "200")
    write(tmp_path / "pty_driver.py", PTY_DRIVER)
    argv = ns.procclean_argv("status", "backend", "--watch", "0.2")
    r = ns.run([sys.executable, "pty_driver.py", json.dumps(argv)],
               env={"TERM": "xterm"}, timeout=90)
    assert r.rc == 0, r
    d = json.loads(r.stdout)
    out = d["out"]
    assert d["redraws"] == "done", d
    assert out.startswith("\x1b[?25l") or "\x1b[?25l" in out, d      # cursor hidden
    assert "\x1b[H\x1b[2J" in out, d                                  # clear-screen redraws
    assert "procclean status, every 0.2 s:" in out, d
    assert "backend: running" in out, d
    assert d["rc"] == -signal.SIGINT, d          # Ctrl-C: the end by SIGINT, as `watch`
    assert "\x1b[?25h" in out, d                                      # cursor restored
    assert out.rindex("\x1b[?25h") > out.rindex("\x1b[2J"), d
    assert "Traceback" not in out, d


# --------------------------------------------------------------------------------------------
# logs

def test_logs_last_n_lines(ns, tmp_path):
    write(tmp_path / "backend.log", "".join("line %d\n" % i for i in range(1, 13)))
    r = ns.procclean("logs", "backend", "-n", "5", timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    assert r.stdout.splitlines() == ["line %d" % i for i in range(8, 13)], r


def test_logs_follow_prints_appended_lines_and_ctrl_c_ends_it_by_sigint(ns, tmp_path):
    log = tmp_path / "backend.log"
    write(log, "old 1\nold 2\nold 3\n")
    argv = ns.procclean_argv("logs", "backend", "-f")
    job = ns.start(["/bin/sh", "-c", 'exec "$@" >follow.out 2>follow.err', "sh"] + argv)
    out_path = tmp_path / "follow.out"
    assert wait_until(lambda: "old 3" in read(out_path), 15), read(tmp_path / "follow.err")
    with open(str(log), "a") as f:
        f.write("new A\nnew B\n")
    assert wait_until(lambda: "new B" in read(out_path), 15), read(out_path)
    job.signal(signal.SIGINT)
    r = job.wait(15)
    assert not r.timed_out, r
    err = read(tmp_path / "follow.err")
    assert r.rc == -signal.SIGINT, (r, err)     # as tail -f: a shell sees 130, make "Interrupt"
    assert err == "", err                        # and no error line
    assert read(out_path).splitlines() == ["old 1", "old 2", "old 3", "new A", "new B"]


def test_logs_follow_through_a_restart_shows_the_old_log_s_last_lines(ns, tmp_path):
    """`make logs -f` across `make restart`: the restart's start keeps the old log as
    .log.1 and begins a new one; the follower went on to the new log at once and lost the
    old one's last lines (uvicorn's shutdown, procclean's `stop:` line).  It now reads
    the end of the old one first."""
    log = tmp_path / "backend.log"
    write(log, "old 1\n")
    argv = ns.procclean_argv("logs", "backend", "-f")
    job = ns.start(["/bin/sh", "-c", 'exec "$@" >follow.out 2>follow.err', "sh"] + argv)
    out_path = tmp_path / "follow.out"
    assert wait_until(lambda: "old 1" in read(out_path), 15), read(tmp_path / "follow.err")
    with open(str(log), "a") as f:
        f.write("INFO: Finished server process\n[procclean] stop: PID 7 stopped\n")
    os.rename(str(log), str(log) + ".1")
    write(log, "[procclean] start: backend PID 8\n")
    assert wait_until(lambda: "PID 8" in read(out_path), 15), read(out_path)
    job.signal(signal.SIGINT)
    assert not job.wait(15).timed_out
    assert read(out_path).splitlines() == ["old 1", "INFO: Finished server process",
                                           "[procclean] stop: PID 7 stopped",
                                           "[procclean] start: backend PID 8"]


def test_second_start_keeps_previous_log_and_procclean_lines(ns, tmp_path):
    write(tmp_path / "main.py", BACKEND.format(mode="200"))
    r = ns.procclean("start", "backend", timeout=TIMEOUT)
    assert r.rc == 0, r
    p1 = int(re.search(r"started backend PID (\d+)", r.stdout).group(1))
    assert wait_until(lambda: "backend pid %d listening" % p1 in read(tmp_path / "backend.log"),
                      10)
    r = ns.procclean("stop", "backend", timeout=TIMEOUT)
    assert r.rc == 0, r
    assert ns.wait_dead([p1]) == []
    r = ns.procclean("start", "backend", timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    p2 = int(re.search(r"started backend PID (\d+)", r.stdout).group(1))
    assert wait_until(lambda: "backend pid %d listening" % p2 in read(tmp_path / "backend.log"),
                      10)
    old = read(tmp_path / "backend.log.1")
    new = read(tmp_path / "backend.log")
    # the previous run's output and procclean's own lines about it are kept in .log.1
    assert "backend pid %d listening" % p1 in old, old
    assert stamps(old, r"start: backend PID %d: " % p1), old
    assert stamps(old, r"stop: PID %d stopped" % p1), old
    # the new log is the new run's
    assert "backend pid %d listening" % p2 in new, new
    assert stamps(new, r"start: backend PID %d: " % p2), new
    assert "backend pid %d" % p1 not in new, new


def test_stop_without_the_pidfile_still_ends_supervision(ns, tmp_path):
    """The pidfile is gone (deleted, or not trusted): stop still finds the service and
    its supervisor by the tag they carry; whichever of them the SIGTERM reaches first,
    supervision ends and nothing comes back."""
    env = worker(tmp_path, fails=0)
    r = ns.procclean("start", "worker", "--supervise", env=env, timeout=TIMEOUT)
    assert r.rc == 0, r
    sup = pidfile_pid(tmp_path)
    assert wait_until(lambda: started_lines(read(tmp_path / "worker.log")), 10)
    # and the worker itself has run (on a busy machine the supervisor's line comes well
    # before the worker's Python has counted its run: stopped before, it counted none)
    assert wait_until(lambda: runs(tmp_path) == 1, 10), read(tmp_path / "worker.log")
    os.remove(str(tmp_path / "worker.pid"))
    r = ns.procclean("stop", "worker", env=env, timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    assert "PID %d" % sup in r.stdout, r              # found by its tag
    # the supervisor gone and nothing left: no one can start the worker again
    assert nothing_left(ns, timeout=10) == [], read(tmp_path / "worker.log")
    assert runs(tmp_path) == 1, read(tmp_path / "worker.log")
    log = read(tmp_path / "worker.log")
    assert "exited (killed by SIGTERM); not restarting" in log or "received SIGTERM" in log


def test_supervise_a_program_that_does_not_exist(ns, tmp_path):
    env = {"PROCCLEAN_SERVICES": "worker", "PROCCLEAN_WORKER_PATTERN": "nonexistent-xyz",
           "PROCCLEAN_WORKER_COMMAND": "nonexistent-xyz --serve"}
    r = ns.procclean("supervise", "worker", env=env, timeout=TIMEOUT)
    assert r.rc == 1, r
    no_traceback(r)
    assert "internal error" not in r.stderr, r
    assert "cannot start worker: nonexistent-xyz is not installed or not on PATH" \
        in r.stderr, r
    assert not os.path.exists(str(tmp_path / "worker.pid"))


def test_two_stop_signals_at_once_stop_the_supervisor_cleanly(ns, tmp_path):
    """A terminal hang-up sends SIGHUP, and the shell resends it; a script may do
    `kill -INT; kill -TERM`: the supervisor stops its service once, and cleanly."""
    env = worker(tmp_path, fails=0)
    r = ns.procclean("start", "worker", "--supervise", env=env, timeout=TIMEOUT)
    assert r.rc == 0, r
    sup = pidfile_pid(tmp_path)
    # the worker has run (on a busy machine its start can trail the supervisor's line)
    assert wait_until(lambda: started_lines(read(tmp_path / "worker.log"))
                      and runs(tmp_path) == 1, 10), read(tmp_path / "worker.log")
    ns.kill([sup], signal.SIGINT)
    ns.kill([sup], signal.SIGTERM)
    ns.kill([sup], signal.SIGHUP)
    # The supervisor gone is the event: after it, nothing can start the worker again.
    assert nothing_left(ns, timeout=10) == [], read(tmp_path / "worker.log")
    log = read(tmp_path / "worker.log")
    assert "Traceback" not in log and "internal error" not in log, log
    # Which pending signal is handled first is the kernel's choice (Linux: the lowest
    # number, SIGHUP), not a promise: any one of them, and only one, stops it.
    handled = re.findall(r"received (SIG[A-Z]+); stopping worker", log)
    assert len(handled) == 1 and handled[0] in ("SIGINT", "SIGTERM", "SIGHUP"), log
    assert runs(tmp_path) == 1, log
    assert not os.path.exists(str(tmp_path / "worker.pid"))
