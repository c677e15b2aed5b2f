"""`dev` (issue 13), black-box inside PID+network namespaces: the whole stack in the
foreground, one test (or more) per numbered point of the issue.

The services are small Python programs (APP below) run by `dev` as the configured commands,
with the interpreter under test. dev's stdout and stderr go to files (or a pipe) that the
test reads; everything is awaited as an event (a line appears, a port answers) with generous
deadlines, never a sleep-then-assert. Every assertion is on what a user sees: exit codes,
output, logs, pidfiles, which processes exist, which ports answer."""
import os
import re
import signal
import sys

import pytest

from integ_helpers import PTY_PUMP, no_traceback, read, wait_until, write
from nslib import Proc

TIMEOUT = 60

# One program, many behaviours (argv[1]); prints as a service would.
APP = r'''
import os, signal, socket, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_DFL)       # Ctrl-C: die as a C program would
mode, args = sys.argv[1], sys.argv[2:]

def serve(port, name):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(port)))
    s.listen(16)
    print("%s listening on %s" % (name, port))
    sys.stdout.flush()
    while True:
        c, _ = s.accept()
        try:
            c.recv(4096)
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            pass
        c.close()

if mode == "serve":                 # serve PORT NAME
    serve(args[0], args[1])
elif mode == "reloader":            # reloader PORT: a parent whose child holds the port
    print("reloader watching for changes")
    sys.stdout.flush()
    child = subprocess.Popen([sys.executable, __file__, "serve", args[0], "worker"])
    child.wait()
elif mode == "slow":                # slow PORT SECONDS NAME
    print("%s warming up" % args[2])
    sys.stdout.flush()
    time.sleep(float(args[1]))
    serve(args[0], args[2])
elif mode == "check":               # check PORT: is the port up when this starts?
    c = socket.socket()
    try:
        c.connect(("127.0.0.1", int(args[0])))
        up = True
    except OSError:
        up = False
    print("backend up: %s" % up)
    sys.stdout.flush()
    serve(args[1], "frontend") if len(args) > 1 else time.sleep(3600)
elif mode == "env":                 # env PORT NAME
    for key in ("PROCCLEAN_PROJECT", "PROCCLEAN_SERVICE", "PYTHONUNBUFFERED", "FORCE_COLOR"):
        print("env %s=%s" % (key, os.environ.get(key)))
    serve(args[0], args[1])
elif mode == "crash":               # crash CODE
    for i in range(3):
        print("crash line %d" % i)
    sys.stdout.flush()
    time.sleep(0.3)
    sys.exit(int(args[0]))
elif mode == "bytes":               # not UTF-8, and a last line with no newline
    while True:                     # once the backend is up (so its line is shown too)
        try:
            socket.create_connection(("127.0.0.1", 8000)).close()
            break
        except OSError:
            time.sleep(0.05)
    out = sys.stdout.buffer
    out.write(b"ok \xff\xfe bad\n")
    out.write("caf\u00e9 ok\n".encode("utf-8"))
    out.write(b"no newline at end")
    out.flush()
    time.sleep(0.5)
elif mode == "flood":               # flood N
    n = int(args[0])
    out = sys.stdout
    step = 10000
    for start in range(0, n, step):
        out.write("".join("line %d\n" % i for i in range(start, min(n, start + step))))
    out.flush()
elif mode == "stubborn":            # stubborn PORT: ignores SIGTERM and SIGINT
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(args[0], "stubborn")
elif mode == "flaky":               # flaky PORT: crashes the first time, serves after
    if not os.path.exists("flaky.marker"):
        open("flaky.marker", "w").close()
        print("flaky crashing")
        sys.stdout.flush()
        sys.exit(3)
    serve(args[0], "flaky")
elif mode == "lastwords":          # exits 1; a child it forked says the last line later
    if os.fork() == 0:
        time.sleep(0.8)
        print("lastwords: pool flushed")
        sys.stdout.flush()
        os._exit(0)
    print("lastwords: fatal error")
    sys.stdout.flush()
    os._exit(1)
'''

KILLPG = "import os, signal, sys; os.killpg(int(sys.argv[1]), int(sys.argv[2]))"


def project(tmp_path, services, extra=""):
    """procclean.ini with the services {name: (app args, fields)}, and app.py."""
    write(tmp_path / "app.py", APP)
    lines = ["[procclean]", "services = %s" % " ".join(services), extra]
    for name, (args, fields) in services.items():
        lines += ["", "[%s]" % name, "command = {python} app.py %s" % args]
        for key, value in dict({"pattern": ""}, **fields).items():
            lines.append("%s = %s" % (key, value))
    write(tmp_path / "procclean.ini", "\n".join(lines) + "\n")


def two_services(tmp_path, backend="reloader 8000", frontend="serve 3000 frontend",
                 backend_fields=None, frontend_fields=None):
    project(tmp_path, {
        "backend": (backend, dict({"port": "8000", "health": "off"}, **(backend_fields or {}))),
        "frontend": (frontend, dict({"port": "3000", "health": "off"},
                                    **(frontend_fields or {}))),
    })


class Dev(object):
    """`procclean dev` running in the namespace, its stdout and stderr in files."""

    def __init__(self, ns, tmp_path, python, *args, **kw):
        self.ns, self.tmp = ns, tmp_path
        argv = ns.procclean_argv("dev", *args, python=python)
        self.job = ns.start(["/bin/sh", "-c", 'exec "$@" >dev.out 2>dev.err', "sh"] + argv,
                            session=True, env=kw.get("env"))
        self.pid = self.job.pid     # exec: the shell's PID is dev's, and leads its group

    @property
    def out(self):
        return read(self.tmp / "dev.out")

    @property
    def err(self):
        return read(self.tmp / "dev.err")

    def wait_for(self, text, timeout=TIMEOUT):
        ok = wait_until(lambda: text in self.out or self.job.result is not None, timeout)
        assert text in self.out, "%r not shown\n--- out\n%s\n--- err\n%s" % (
            text, self.out, self.err)
        return ok

    def up(self, *names):
        for name in names:
            self.wait_for("%s listening on" % name)

    def finish(self, timeout=TIMEOUT):
        r = self.job.wait(timeout)
        assert not r.timed_out, (self.out, self.err)
        for text in (self.out, self.err):
            assert "Traceback" not in text, text
        return r.rc


def app_pids(ns):
    return [p["pid"] for p in ns.ps() if any("app.py" in a for a in p["argv"])]


def assert_all_gone(ns, tmp_path, dev):
    assert wait_until(lambda: not app_pids(ns), 10) is True or not app_pids(ns), \
        (ns.ps(), dev.out, dev.err)
    for port in (8000, 3000):
        assert not ns.connect("127.0.0.1", port), "port %d still answers\n%s" % (port, dev.out)
    for name in ("backend.pid", "frontend.pid"):
        assert not (tmp_path / name).exists(), (name, dev.out)


def sigterm_stops_all(ns, tmp_path, dev):
    """A SIGTERM to dev: it ends by SIGTERM (a shell sees 143) and nothing of the stack is
    left."""
    dev.job.signal(signal.SIGTERM)
    assert dev.finish() == -signal.SIGTERM
    assert_all_gone(ns, tmp_path, dev)


def started_pids(out, name):
    return [int(m) for m in re.findall(r"^%s +\* started PID (\d+)" % name, out, re.M)]


# --------------------------------------------------------------------------------------------
# 1. ports checked first; a background run refused or --replaced

@pytest.mark.edge_pythons
def test_busy_port_names_the_holder_and_starts_nothing(ns, tmp_path, python):
    two_services(tmp_path)
    # another project's server: its folder is outside this project
    other = tmp_path.parent / (tmp_path.name + "-elsewhere")
    other.mkdir()
    stranger = ns.spawn(Proc(["python3", "other.py"], listen="127.0.0.1:3000", cwd=other))
    r = ns.procclean("dev", python=python, timeout=TIMEOUT)
    no_traceback(r)
    assert r.rc == 1, r
    assert "port 3000 is taken by PID %d (python3 other.py, in %s)" % (stranger.pid, other) \
        in r.stderr, r
    assert "kill-port 3000" in r.stderr, r
    assert not app_pids(ns), (ns.ps(), r)
    assert not (tmp_path / "backend.pid").exists() and not (tmp_path / "frontend.pid").exists()
    assert ns.is_alive(stranger.pid)


@pytest.mark.edge_pythons
def test_running_in_the_background_refused_then_replaced(ns, tmp_path, python):
    two_services(tmp_path)
    r = ns.procclean("start", "backend", python=python, timeout=TIMEOUT)
    assert r.rc == 0, r
    old = int(read(tmp_path / "backend.pid"))
    r = ns.procclean("dev", python=python, timeout=TIMEOUT)
    assert r.rc == 1, r
    assert "backend already runs in the background (PID %d" % old in r.stderr, r
    assert "--replace" in r.stderr, r
    assert ns.is_alive(old) and not (tmp_path / "frontend.pid").exists()
    dev = Dev(ns, tmp_path, python, "--replace")
    dev.up("worker", "frontend")
    assert not ns.is_alive(old), dev.out
    assert "stopped backend PID %d" % old in dev.out, dev.out
    new = int(read(tmp_path / "backend.pid"))
    assert new != old and started_pids(dev.out, "backend") == [new]
    sigterm_stops_all(ns, tmp_path, dev)


# --------------------------------------------------------------------------------------------
# 2. after = : dependency order, for dev and for start

def after_project(tmp_path):
    project(tmp_path, {
        # listed first, started second: it waits for the slow backend's port and health
        "frontend": ("check 8000 3000", {"port": "3000", "health": "off", "after": "backend"}),
        "backend": ("slow 8000 1.5 backend", {"port": "8000", "health": "/"}),
    })


@pytest.mark.edge_pythons
def test_after_waits_for_a_slow_backend(ns, tmp_path, python):
    after_project(tmp_path)
    dev = Dev(ns, tmp_path, python)
    dev.up("backend", "frontend")
    out = dev.out
    assert "frontend | backend up: True" in out, out
    assert out.index("backend  * started PID") < out.index("frontend * waiting for backend")
    assert out.index("backend  * listening on port 8000") < out.index("frontend * started PID")
    sigterm_stops_all(ns, tmp_path, dev)


@pytest.mark.edge_pythons
def test_start_honours_after(ns, tmp_path, python):
    after_project(tmp_path)
    r = ns.procclean("start", python=python, timeout=TIMEOUT)
    assert r.rc == 0, r
    assert r.stdout.index("started backend") < r.stdout.index("started frontend"), r
    assert wait_until(lambda: "backend up:" in read(tmp_path / "frontend.log"), TIMEOUT)
    assert "backend up: True" in read(tmp_path / "frontend.log")
    r = ns.procclean("stop", python=python, timeout=TIMEOUT)
    assert r.rc == 0, r


@pytest.mark.edge_pythons
def test_after_naming_an_unknown_service_is_a_config_error(ns, tmp_path, python):
    project(tmp_path, {"frontend": ("serve 3000 frontend", {"after": "bakend"})})
    r = ns.procclean("dev", python=python, timeout=TIMEOUT)
    assert r.rc == 2, r
    assert "frontend: after names unknown service 'bakend'" in r.stderr, r


# --------------------------------------------------------------------------------------------
# 3. the relay: prefixes, plain on a pipe, logfiles, partial lines, bytes, the flood

@pytest.mark.edge_pythons
def test_lines_prefixed_plain_on_a_pipe_logged_escaped_and_flushed(ns, tmp_path, python):
    two_services(tmp_path, backend="serve 8000 backend", frontend="bytes")
    argv = ns.procclean_argv("dev", python=python)
    r = ns.run(["/bin/sh", "-c", '"$@" 2>dev.err | cat >dev.out', "sh"] + argv,
               timeout=TIMEOUT)
    assert not r.timed_out, r
    out, err = read(tmp_path / "dev.out"), read(tmp_path / "dev.err")
    assert "Traceback" not in out + err
    assert "\033" not in out + err, out          # a pipe: no colour
    lines = out.splitlines()
    assert "backend  | backend listening on 8000" in lines, out     # padded to the longest
    assert "frontend | ok \\xff\\xfe bad" in lines, out              # escaped, not a crash
    assert "frontend | caf\u00e9 ok" in lines, out
    assert "frontend | no newline at end" in lines, out             # flushed at the exit
    assert "frontend exited by itself (status 0)" in err, err
    with open(str(tmp_path / "frontend.log"), "rb") as f:
        log = f.read()
    assert b"ok \xff\xfe bad\ncaf\xc3\xa9 ok\nno newline at end\n" in log, log
    assert b"backend listening on 8000\n" in open(str(tmp_path / "backend.log"), "rb").read()
    assert not app_pids(ns)


@pytest.mark.edge_pythons
def test_flood_every_line_in_order(ns, tmp_path, python):
    n = 200000
    project(tmp_path, {"flood": ("flood %d" % n, {})})
    argv = ns.procclean_argv("dev", python=python)
    r = ns.run(["/bin/sh", "-c", '"$@" 2>dev.err | cat >dev.out', "sh"] + argv,
               timeout=TIMEOUT * 2)
    assert not r.timed_out, r
    with open(str(tmp_path / "dev.out"), "rb") as f:
        lines = [l for l in f.read().split(b"\n") if l.startswith(b"flood | ")]
    assert lines == [b"flood | line %d" % i for i in range(n)]
    with open(str(tmp_path / "flood.log"), "rb") as f:
        log = f.read()
    assert log.count(b"\nline ") == n and b"line %d\n" % (n - 1) in log


# --------------------------------------------------------------------------------------------
# 4. pidfiles and tags: status from another terminal, and stop from another terminal

@pytest.mark.edge_pythons
def test_stop_from_another_terminal_ends_dev_with_0(ns, tmp_path, python):
    two_services(tmp_path, frontend="env 3000 frontend")
    dev = Dev(ns, tmp_path, python)
    dev.up("worker", "frontend")
    pids = dict((name, int(read(tmp_path / ("%s.pid" % name)))) for name in ("backend",
                                                                               "frontend"))
    assert started_pids(dev.out, "backend") == [pids["backend"]]
    assert started_pids(dev.out, "frontend") == [pids["frontend"]]
    assert "frontend | env PROCCLEAN_PROJECT=%s" % os.path.realpath(str(tmp_path)) in dev.out
    assert "frontend | env PROCCLEAN_SERVICE=frontend" in dev.out
    assert "frontend | env PYTHONUNBUFFERED=1" in dev.out
    assert "frontend | env FORCE_COLOR=None" in dev.out          # not on a terminal
    r = ns.procclean("status", python=python, timeout=TIMEOUT)
    assert "backend: running, PID %d" % pids["backend"] in r.stdout, r
    assert "frontend: running, PID %d" % pids["frontend"] in r.stdout, r
    assert "run by the dev session of procclean PID %d, in another terminal" % dev.pid \
        in r.stdout, r
    # `make start` beside it: running, and where its output shows
    r = ns.procclean("start", python=python, timeout=TIMEOUT)
    assert r.rc == 0, r
    assert "frontend is already running (PID %d) in the dev session of another terminal " \
        "(procclean PID %d): its output shows there" % (pids["frontend"], dev.pid) in r.stdout
    r = ns.procclean("stop", python=python, timeout=TIMEOUT)
    assert r.rc == 0, r
    assert dev.finish() == 0
    assert "backend  * stopped from another terminal" in dev.out, dev.out
    assert "frontend * stopped from another terminal" in dev.out, dev.out
    assert "every service was stopped from another terminal" in dev.out, dev.out
    assert_all_gone(ns, tmp_path, dev)


@pytest.mark.edge_pythons
def test_kill_port_from_another_terminal_stops_a_service_run_by_a_wrapper(ns, tmp_path,
                                                                          python):
    """`procclean kill-port 3000` beside dev, the frontend run by a wrapper (npm run dev:
    npm exits 143 once its vite is stopped): kill-port stopped vite but kept frontend.pid
    (npm's), so dev took npm's 143 for the frontend's own end and ended the session.
    The wrapper ended with its listener: its pidfile goes, as a stop's, and dev says the
    frontend was stopped from another terminal, the backend running on."""
    two_services(tmp_path)
    ini = read(tmp_path / "procclean.ini").replace(
        "command = {python} app.py serve 3000 frontend",
        "command = sh -c '{python} app.py serve 3000 frontend || exit 143'")
    write(tmp_path / "procclean.ini", ini)
    dev = Dev(ns, tmp_path, python)
    dev.up("worker", "frontend")
    r = ns.procclean("kill-port", "3000", python=python, timeout=TIMEOUT)
    assert r.rc == 0 and "removed frontend.pid" in r.stdout, r
    dev.wait_for("frontend * stopped from another terminal")
    assert ns.connect("127.0.0.1", 8000), dev.out
    sigterm_stops_all(ns, tmp_path, dev)


# --------------------------------------------------------------------------------------------
# 5. Ctrl-C, SIGINT, SIGTERM, SIGHUP: every tree stopped, ports free, exit 128+N

# dev cleans up, then ends by the signal it got (a shell sees 128+N): rc is -N.
SIGNALS = [("ctrl-c", signal.SIGINT, -2), ("sigint", signal.SIGINT, -2),
           ("sigterm", signal.SIGTERM, -15), ("sighup", signal.SIGHUP, -1)]


def pytest_generate_tests(metafunc):
    if "how" in metafunc.fixturenames:
        metafunc.parametrize("how,signum,code", SIGNALS, ids=[s[0] for s in SIGNALS])


def test_signal_stops_every_tree_and_frees_the_ports(ns, tmp_path, python, how, signum, code):
    two_services(tmp_path)          # backend: a reloader whose child holds port 8000
    dev = Dev(ns, tmp_path, python)
    dev.up("worker", "frontend")
    tree = app_pids(ns)
    assert len(tree) == 3, ns.ps()
    if how == "ctrl-c":             # what a terminal does: the whole foreground group
        r = ns.run([sys.executable, "-c", KILLPG, dev.pid, int(signum)])
        assert r.rc == 0, r
    else:
        dev.job.signal(signum)
    assert dev.finish() == code
    name = signal.Signals(signum).name
    assert "%s: stopping every service" % name in dev.out, dev.out
    # procclean alone got it (the services run in sessions of their own, out of the
    # terminal's reach): dev stopped both trees with SIGTERM, the reloader's worker too
    assert re.search(r"^backend: [23] process\(es\) stopped$", dev.out, re.M), dev.out
    assert re.search(r"^frontend: 1 process\(es\) stopped$", dev.out, re.M), dev.out
    assert ns.wait_dead(tree) == []
    assert_all_gone(ns, tmp_path, dev)


@pytest.mark.edge_pythons
def test_second_ctrl_c_kills_at_once(ns, tmp_path, python):
    project(tmp_path, {"backend": ("stubborn 8000", {"port": "8000", "health": "off"})})
    dev = Dev(ns, tmp_path, python, "--grace", "600")
    dev.up("stubborn")
    pid = int(read(tmp_path / "backend.pid"))
    dev.job.signal(signal.SIGINT)
    dev.wait_for("SIGINT: stopping every service")
    dev.job.signal(signal.SIGINT)
    assert dev.finish(timeout=120) == -signal.SIGINT     # long before the 600 s grace
    assert "killed backend PID %d with SIGKILL" % pid in dev.out, dev.out
    # the summary says when and why: not "after 600 s", the grace it never waited out
    assert re.search(r"^backend: 1 process\(es\) stopped, 1 of them with SIGKILL after "
                     r"[\d.]+ s \(Ctrl-C again\)$", dev.out, re.M), dev.out
    assert "after 600 s" not in dev.out, dev.out
    assert not ns.is_alive(pid)


# --------------------------------------------------------------------------------------------
# 6. a service that exits by itself: the session ends, unless supervised

@pytest.mark.edge_pythons
def test_crash_with_code_3_stops_the_rest_and_exits_1(ns, tmp_path, python):
    two_services(tmp_path, frontend="crash 3")
    dev = Dev(ns, tmp_path, python)
    rc = dev.finish()
    assert rc == 1, (dev.out, dev.err)
    assert "frontend * exited by itself (status 3)" in dev.out, dev.out
    assert "frontend exited by itself (status 3); last lines of frontend.log:" in dev.err
    assert "    crash line 2" in dev.err, dev.err
    assert_all_gone(ns, tmp_path, dev)


@pytest.mark.edge_pythons
def test_a_service_s_last_lines_come_before_its_end_in_the_stream_and_log(ns, tmp_path,
                                                                          python):
    """A Python backend failing its import: `backend * exited by itself` came before its
    traceback, on the terminal and in its log (the log's keeper had not written it yet),
    so the log's tail read as if the traceback came after the end.  Its output ends (its
    pipe closed, 1 s at most) before its end is said."""
    two_services(tmp_path, frontend="lastwords")
    dev = Dev(ns, tmp_path, python)
    assert dev.finish() == 1, (dev.out, dev.err)
    out, log = dev.out, read(tmp_path / "frontend.log")
    assert out.index("frontend | lastwords: pool flushed") < \
        out.index("frontend * exited by itself (status 1)"), out
    assert log.index("lastwords: pool flushed") < log.index("exited by itself"), log


@pytest.mark.edge_pythons
def test_service_killed_from_outside_is_said_killed_not_exited(ns, tmp_path, python):
    """`npx kill-port 3000` or `fuser -k 3000/tcp` (a SIGKILL to the listener) under dev:
    the session ends as for any service gone, and says who ended it."""
    two_services(tmp_path)
    dev = Dev(ns, tmp_path, python)
    dev.up("worker", "frontend")
    ns.kill(started_pids(dev.out, "frontend"), signal.SIGKILL)
    assert dev.finish() == 1, (dev.out, dev.err)
    assert "frontend * killed by SIGKILL, from outside dev" in dev.out, dev.out
    assert "frontend: killed by SIGKILL, from outside dev (kill-port, fuser -k, kill, " \
        "the OOM killer); last lines of frontend.log:" in dev.err, dev.err
    assert "frontend listening on 3000" in dev.err, dev.err      # the log's tail
    assert "exited by itself" not in dev.out + dev.err + read(tmp_path / "frontend.log")
    assert_all_gone(ns, tmp_path, dev)


@pytest.mark.edge_pythons
def test_supervised_service_killed_from_outside_is_said_killed_and_restarted(ns, tmp_path,
                                                                          python):
    two_services(tmp_path, frontend_fields={"supervise": "yes"})
    dev = Dev(ns, tmp_path, python)
    dev.up("worker", "frontend")
    first = started_pids(dev.out, "frontend")
    ns.kill(first, signal.SIGKILL)
    dev.wait_for("frontend * killed by SIGKILL, from outside dev; restarting in 1 s "
                 "(restart 1)")
    assert wait_until(lambda: len(started_pids(dev.out, "frontend")) == 2, TIMEOUT), dev.out
    sigterm_stops_all(ns, tmp_path, dev)


@pytest.mark.edge_pythons
def test_supervised_service_is_restarted_in_the_stream(ns, tmp_path, python):
    two_services(tmp_path, backend="serve 8000 backend", frontend="flaky 3000",
                 frontend_fields={"supervise": "yes"})
    dev = Dev(ns, tmp_path, python)
    dev.up("backend", "flaky")
    out = dev.out
    assert "frontend | flaky crashing" in out, out
    assert "frontend * exited by itself (status 3); restarting in 1 s (restart 1)" in out, out
    assert len(started_pids(out, "frontend")) == 2, out
    assert started_pids(out, "frontend")[1] == int(read(tmp_path / "frontend.pid"))
    sigterm_stops_all(ns, tmp_path, dev)


# --------------------------------------------------------------------------------------------
# 7. logs -f: several services merged, as dev shows them

@pytest.mark.edge_pythons
def test_logs_follow_merges_every_service(ns, tmp_path, python):
    two_services(tmp_path)
    write(tmp_path / "backend.log", "b old\n")
    write(tmp_path / "frontend.log", "f old\n")
    argv = ns.procclean_argv("logs", "-f", python=python)
    job = ns.start(["/bin/sh", "-c", 'exec "$@" >follow.out 2>follow.err', "sh"] + argv)
    out = tmp_path / "follow.out"
    assert wait_until(lambda: "f old" in read(out), TIMEOUT), read(tmp_path / "follow.err")
    with open(str(tmp_path / "backend.log"), "a") as f:
        f.write("b new\n")
    with open(str(tmp_path / "frontend.log"), "a") as f:
        f.write("f new\n")
    assert wait_until(lambda: "b new" in read(out) and "f new" in read(out), TIMEOUT), \
        read(out)
    job.signal(signal.SIGINT)
    r = job.wait(TIMEOUT)
    assert r.rc == -signal.SIGINT, (r, read(tmp_path / "follow.err"))     # as tail -f
    lines = read(out).splitlines()
    assert lines[:2] == ["backend  | b old", "frontend | f old"], lines
    assert sorted(lines[2:]) == ["backend  | b new", "frontend | f new"], lines


# --------------------------------------------------------------------------------------------
# 3 and 5 on a real terminal: colours (NO_COLOR honoured) and Ctrl-C typed at the keyboard

PTY_DEV = PTY_PUMP + r"""
wait_for = [(text.encode(), n) for text, n in json.loads(sys.argv[2])]
up = pump(lambda: all(out.count(text) >= n for text, n in wait_for), 60)
os.write(fd, b"\x03")                # Ctrl-C: the terminal signals the foreground group
pump(lambda: False, 30)
rc = reap(30)
print(json.dumps({"up": up, "rc": rc, "out": out.decode("utf-8", "replace")}))
"""


def run_on_a_terminal(ns, tmp_path, python, env, wait_for=(("listening on", 2),)):
    """dev on a terminal, Ctrl-C typed once each (text, n) of wait_for was shown n times."""
    import json
    write(tmp_path / "pty_dev.py", PTY_DEV)
    argv = ns.procclean_argv("dev", python=python)
    r = ns.run([sys.executable, "pty_dev.py", json.dumps(argv), json.dumps(wait_for)],
               env=dict({"TERM": "xterm"}, **env), timeout=150)
    assert r.rc == 0, r
    return json.loads(r.stdout)


# Both apps said they serve (the frontend prints its environment first): two lines of
# "listening on" could be the backend's own and dev's note about it, the frontend unheard.
BOTH_SERVE = (("worker listening on 8000", 1), ("frontend listening on 3000", 1))


def test_on_a_terminal_coloured_and_ctrl_c_stops_all(ns, tmp_path, python):
    two_services(tmp_path, frontend="env 3000 frontend")
    d = run_on_a_terminal(ns, tmp_path, python, {}, BOTH_SERVE)
    out = d["out"]
    assert d["up"] == "done", d
    assert "\x1b[36mbackend  |\x1b[0m reloader watching" in out, out
    assert "\x1b[33mfrontend |\x1b[0m env FORCE_COLOR=1" in out, out
    assert d["rc"] == -signal.SIGINT, d
    assert "Traceback" not in out
    assert not app_pids(ns), ns.ps()
    for port in (8000, 3000):
        assert not ns.connect("127.0.0.1", port)


def test_on_a_terminal_no_color_is_honoured(ns, tmp_path, python_edge):
    two_services(tmp_path, frontend="env 3000 frontend")
    d = run_on_a_terminal(ns, tmp_path, python_edge, {"NO_COLOR": "1"}, BOTH_SERVE)
    out = d["out"]
    assert d["up"] == "done", d
    assert "\x1b[" not in out, out
    assert "frontend | env FORCE_COLOR=None" in out, out
    assert d["rc"] == -signal.SIGINT, d
    assert not app_pids(ns), ns.ps()
