"""Issue 12 (reliability), black-box inside PID namespaces: files that block or are not what
they seem, per-service locks, read-only folders, status --check, early Ctrl-C, and the ends
of `logs -f` and `status --watch`.

Races are made deterministic by holding a service's lock from a helper inside the namespace:
whatever procclean does next has to wait for the helper, whose release the test controls.
Every run has a generous timeout; a hang shows up as `timed_out`, never as a slow pass."""
import os
import re
import signal
import time

import pytest

from integ_helpers import assert_dead, no_traceback, read, wait_until, write
from nslib import Proc

TIMEOUT = 60


def finished(r):
    assert not r.timed_out, "hung: %r" % (r,)
    no_traceback(r)
    assert "internal error" not in r.output, r


# --------------------------------------------------------------------------------------------
# files that block, or are not what they seem

def test_a_fifo_backend_log_hangs_neither_stop_nor_start(ns, tmp_path, python_edge):
    app = ns.spawn(Proc(["uvicorn", "main:app"]))
    write(tmp_path / "backend.pid", "%d\n" % app.pid)
    os.mkfifo(str(tmp_path / "backend.log"))
    r = ns.procclean("stop", "backend", python=python_edge, timeout=TIMEOUT)
    finished(r)
    assert r.rc == 0, r
    assert_dead(ns, [app.pid], r)
    assert not os.path.exists(str(tmp_path / "backend.pid")), r
    assert "backend.log: a FIFO, not a regular file" in r.stderr, r
    assert len(r.stderr.strip().splitlines()) == 1, r

    write(tmp_path / "main.py", "import time\ntime.sleep(600)\n")
    r = ns.procclean("start", "backend", python=python_edge, timeout=TIMEOUT)
    finished(r)
    assert r.rc == 1, r
    assert "cannot start backend: backend.log: a FIFO, not a regular file" in r.stderr, r
    assert len(r.stderr.strip().splitlines()) == 1, r
    assert not os.path.exists(str(tmp_path / "backend.pid")), r
    assert [p for p in ns.ps() if p["pid"] != 1] == [], "nothing may have started"

    for args in (["logs", "backend"], ["logs", "backend", "-f"]):
        r = ns.procclean(*args, python=python_edge, timeout=TIMEOUT)
        finished(r)
        assert r.rc == 1 and "backend.log: a FIFO, not a regular file" in r.stderr, r


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_odd_state_config_and_project_files_never_hang(ns, tmp_path, kind):
    def odd(name):
        path = str(tmp_path / name)
        if kind == "fifo":
            os.mkfifo(path)
        else:
            os.mkdir(path)

    odd("backend.pid.state")
    app = ns.spawn(Proc(["uvicorn", "main:app"], listen="127.0.0.1:8000"))
    r = ns.procclean("status", "backend", timeout=TIMEOUT)
    finished(r)
    assert r.rc == 0 and "backend: running" in r.stdout, r
    what = "a FIFO" if kind == "fifo" else "a folder"
    assert "backend.pid.state: %s, not a regular file" % what in r.stderr, r
    r = ns.procclean("force-clean", "backend", timeout=TIMEOUT)
    finished(r)
    assert_dead(ns, [app.pid], r)

    # init reads main.py, package.json, requirements.txt: odd ones are skipped, not waited on
    write(tmp_path / "main.py", "from http.server import HTTPServer\n\n"
          "if __name__ == '__main__':\n    pass\n")      # a script that serves
    odd("requirements.txt")
    os.mkdir(str(tmp_path / "frontend"))
    if kind == "fifo":
        os.mkfifo(str(tmp_path / "frontend" / "package.json"))
    else:
        os.mkdir(str(tmp_path / "frontend" / "package.json"))
    r = ns.procclean("init", "--dry-run", timeout=TIMEOUT)
    finished(r)
    assert r.rc == 0 and "found backend" in r.stdout and "found frontend" not in r.stdout, r

    odd("procclean.ini")
    r = ns.procclean("status", timeout=TIMEOUT)
    finished(r)
    assert r.rc == 2, r
    assert "procclean.ini: %s, not a regular file" % what in r.stderr, r


def test_a_config_saved_with_a_byte_order_mark_is_read(ns, tmp_path):
    with open(str(tmp_path / "procclean.ini"), "wb") as f:
        f.write(b"\xef\xbb\xbf[backend]\nport = 8123\n")
    r = ns.procclean("status", "backend", "--json", timeout=TIMEOUT)
    finished(r)
    assert r.rc == 0 and '"port": 8123' in r.stdout, r


def test_logs_follow_ends_with_one_line_when_the_log_becomes_a_folder(ns, tmp_path):
    log = tmp_path / "backend.log"
    write(log, "first\n")
    argv = ns.procclean_argv("logs", "backend", "-f")
    job = ns.start(["/bin/sh", "-c", 'exec "$@" >follow.out 2>follow.err', "sh"] + argv)
    assert wait_until(lambda: "first" in read(tmp_path / "follow.out"), 20), \
        read(tmp_path / "follow.err")
    os.rename(str(log), str(tmp_path / "old.log"))
    os.mkdir(str(log))
    r = job.wait(30)
    assert not r.timed_out, r
    err = read(tmp_path / "follow.err")
    assert r.rc == 1, (r, err)
    assert err.strip() == "procclean: cannot follow backend.log: a folder, not a regular file", err


# --------------------------------------------------------------------------------------------
# locks

HOLDER = """\
import fcntl, os, time
fd = os.open("worker.pid.lock", os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, ("%d\\n" % os.getpid()).encode())
open("locked", "w").close()
while not os.path.exists("release"):
    time.sleep(0.01)
"""
WORKER = "import time\ntime.sleep(600)\n"


def worker_env(tmp_path):
    write(tmp_path / "lock_holder.py", HOLDER)
    write(tmp_path / "wk.py", WORKER)
    return {"PROCCLEAN_SERVICES": "worker", "PROCCLEAN_WORKER_COMMAND": "{python} wk.py",
            "PROCCLEAN_WORKER_PATTERN": r"wk\.py"}


def hold_lock(ns, tmp_path):
    """A process in the namespace holding worker's lock until release(); its Job."""
    holder = ns.start(["python3", "lock_holder.py"])
    assert wait_until(lambda: os.path.exists(str(tmp_path / "locked")), 20), holder.wait(1)
    return holder


def release(tmp_path, holder):
    write(tmp_path / "release", "")
    assert holder.wait(20).rc == 0


def workers(ns):
    return [p for p in ns.ps() if "wk.py" in " ".join(p["argv"])]


def start_logged(ns, tmp_path, name, *args, **kw):
    """procclean in the background, its output in NAME.out and NAME.err; its Job."""
    argv = ns.procclean_argv(*args, python=kw.pop("python", None))
    return ns.start(["/bin/sh", "-c", 'exec "$@" >%s.out 2>%s.err' % (name, name), "sh"]
                    + argv, **kw)


def waiting_for(tmp_path, name, holder):
    """Wait until job NAME says it waits for the holder's lock (the event that shows it
    reached the lock); False if it never does."""
    line = "waiting for PID %d" % holder.pid
    return wait_until(lambda: line in read(tmp_path / (name + ".err")), 30)


def outputs(tmp_path, name):
    return read(tmp_path / (name + ".out")), read(tmp_path / (name + ".err"))


def test_a_second_caller_waits_then_names_the_lock_holder(ns, tmp_path):
    env = worker_env(tmp_path)
    holder = hold_lock(ns, tmp_path)
    for command in ("start", "stop", "restart"):
        r = ns.procclean(command, "worker", env=env, timeout=TIMEOUT)
        finished(r)
        assert r.rc == 1, r
        assert "worker: waiting for PID %d" % holder.pid in r.stderr, r
        assert re.search(r"worker: busy: PID %d \(\S*python3 lock_holder\.py\) holds its "
                         r"lock worker\.pid\.lock; waited 5 s" % holder.pid, r.stderr), r
        assert workers(ns) == [], r
        assert not os.path.exists(str(tmp_path / "worker.pid")), r
    release(tmp_path, holder)
    r = ns.procclean("start", "worker", env=env, timeout=TIMEOUT)
    finished(r)
    assert r.rc == 0 and len(workers(ns)) == 1, r
    assert not os.path.exists(str(tmp_path / "worker.pid.lock")), "a lock file left behind"


def test_two_starts_at_once_launch_one_worker(ns, tmp_path, python_edge):
    env = worker_env(tmp_path)
    holder = hold_lock(ns, tmp_path)
    jobs = [start_logged(ns, tmp_path, name, "start", "worker", env=env, python=python_edge)
            for name in ("first", "second")]
    for name in ("first", "second"):
        assert waiting_for(tmp_path, name, holder), outputs(tmp_path, name)
    assert workers(ns) == [], "nothing starts while the lock is held"
    release(tmp_path, holder)           # both were waiting: now they go one at a time
    results = [job.wait(TIMEOUT) for job in jobs]
    for r, name in zip(results, ("first", "second")):
        assert not r.timed_out and r.rc == 0, (r, outputs(tmp_path, name))
    out = outputs(tmp_path, "first")[0] + outputs(tmp_path, "second")[0]
    assert out.count("started worker") == 1 and out.count("already running") == 1, out
    running = workers(ns)
    assert len(running) == 1, (running, results)
    assert read(tmp_path / "worker.pid").strip() == str(running[0]["pid"]), results
    r = ns.procclean("stop", "worker", env=env, python=python_edge, timeout=TIMEOUT)
    finished(r)
    assert r.rc == 0 and workers(ns) == [], r


def test_a_stop_racing_a_start_never_deletes_the_new_pidfile(ns, tmp_path):
    """The race: stop reads a stale pidfile; a start removes it, starts the worker and
    writes a new one; stop then removes that one, leaving an untracked worker.  Here the
    test plays the start, inside the lock, between the stop's launch and its look."""
    env = worker_env(tmp_path)
    write(tmp_path / "worker.pid", "99999\n")              # stale
    holder = hold_lock(ns, tmp_path)
    stop = start_logged(ns, tmp_path, "stop", "stop", "worker", env=env)
    assert waiting_for(tmp_path, "stop", holder), outputs(tmp_path, "stop")
    fresh = ns.spawn(Proc(["python3", "wk.py"]))            # "start": the new worker...
    write(tmp_path / "worker.pid", "%d\n" % fresh.pid)      # ...and its pidfile
    release(tmp_path, holder)
    r = stop.wait(TIMEOUT)
    out, err = outputs(tmp_path, "stop")
    assert not r.timed_out and r.rc == 0, (r, out, err)
    assert "Traceback" not in err, err
    # The stop came after the start: it saw the new pidfile and stopped that worker.
    assert "stopped worker PID %d" % fresh.pid in out, (out, err)
    assert_dead(ns, [fresh.pid], out)
    assert not os.path.exists(str(tmp_path / "worker.pid")), r


# --------------------------------------------------------------------------------------------
# read-only folders

def test_stop_in_a_read_only_folder_reports_everything(ns, tmp_path):
    back = ns.spawn(Proc(["uvicorn", "main:app"]))
    front = ns.spawn(Proc(["npm", "run", "dev"]))
    write(tmp_path / "backend.pid", "%d\n" % back.pid)
    # The namespace has its own mounts: the folder is read-only in there only.
    r = ns.run(["sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0"',
                str(tmp_path)])
    if r.rc != 0:
        pytest.skip("cannot make a read-only bind mount here: %s" % r.stderr.strip())
    r = ns.procclean("stop", timeout=TIMEOUT)
    finished(r)
    assert r.rc == 0, r
    assert_dead(ns, [back.pid, front.pid], r)
    assert "backend: 1 process(es) stopped" in r.stdout, r
    assert "frontend: 1 process(es) stopped" in r.stdout, r
    # One line: the pidfile that stays; nothing about files that were never there.
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot remove backend.pid: Read-only file system" in lines[0], r
    r = ns.procclean("force-clean", timeout=TIMEOUT)
    finished(r)
    assert r.rc == 0 and "frontend: nothing running" in r.stdout, r


# --------------------------------------------------------------------------------------------
# status --check

def test_check_needs_the_service_s_own_listener_and_health(ns, tmp_path):
    app = ns.spawn(Proc(["uvicorn", "main:app"]))           # runs, listens nowhere
    r = ns.procclean("status", "backend", "--check", timeout=TIMEOUT)
    finished(r)
    assert r.rc == 3, r
    assert "backend: runs, but nothing listens on its port 8000" in r.stderr, r
    stranger = ns.spawn(Proc(["java", "-jar", "other.jar"], listen="127.0.0.1:8000",
                             cwd="/"))
    r = ns.procclean("status", "backend", "--check", timeout=TIMEOUT)
    finished(r)
    assert r.rc == 3, r
    assert "port 8000 is held by PID %d (java -jar other.jar), not by backend" \
        % stranger.pid in r.stderr, r
    ns.kill([stranger.pid, app.pid])
    ns.wait_dead([stranger.pid, app.pid])
    ns.spawn(Proc(["uvicorn", "main:app"], listen="127.0.0.1:8000", http=200))
    r = ns.procclean("status", "backend", "--check", timeout=TIMEOUT)
    finished(r)
    assert r.rc == 0, r


# --------------------------------------------------------------------------------------------
# interrupts

INTERRUPTER = """\
import os, runpy, signal, sys
when, script = sys.argv[1], sys.argv[2]


class Interrupt(object):
    # Ctrl-C exactly when procclean imports `when`: deterministic, not a timing guess.
    def find_spec(self, name, path=None, target=None):
        if name == when:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.modules.pop(when, None)
sys.meta_path.insert(0, Interrupt())
sys.argv = [script] + sys.argv[3:]
runpy.run_path(script, run_name="__main__")
"""


# (LANG=zh_CN.UTF-8 with PYTHONIOENCODING: a machine without that locale, as CI's, gives
# Python 3.6 an ASCII stderr, which writes the line as \u escapes)
@pytest.mark.parametrize("env,line", [
    ({}, "interrupted"), ({"PROCCLEAN_LANG": "zh"}, "已中断"),
    ({"LANG": "zh_CN.UTF-8", "PYTHONIOENCODING": "utf-8"}, "已中断")],
    ids=["en", "procclean-lang-zh", "lang-zh"])
@pytest.mark.parametrize("when", ["errno", "hashlib"], ids=["while-loading", "inside-main"])
def test_ctrl_c_at_start_up_is_one_line_and_130(ns, tmp_path, python, when, env, line):
    """errno: imported by the file's first lines, before main() exists; hashlib: imported
    by --version inside main().  The line is in the user's language in both (it was
    English while loading)."""
    write(tmp_path / "interrupter.py", INTERRUPTER)
    argv = ns.procclean_argv("--version", python=python)
    r = ns.run([python, "interrupter.py", when, argv[1], "--version"], env=env,
               timeout=TIMEOUT)
    finished(r)
    assert r.rc == -signal.SIGINT, r      # ends by SIGINT itself: a shell sees 130
    assert r.stderr == "procclean: %s\n" % line, r
    assert r.stdout == "", r


# --------------------------------------------------------------------------------------------
# status --watch ends

def test_watch_count_0_is_a_usage_error(ns):
    r = ns.procclean("status", "--watch", "1", "--count", "0", timeout=TIMEOUT)
    finished(r)
    assert r.rc == 2 and "--count takes a number of views above 0" in r.stderr, r


def test_watch_ends_when_its_reader_goes_away(ns, tmp_path):
    script = 'exec "$@" | head -3'
    argv = ns.procclean_argv("status", "--watch", "0.2")
    r = ns.run(["/bin/sh", "-c", script, "sh"] + argv, timeout=TIMEOUT)
    finished(r)
    assert r.rc == 0, r
    assert len(r.stdout.splitlines()) == 3, r
