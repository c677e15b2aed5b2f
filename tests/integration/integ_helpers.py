"""Shared pieces of the integration tests: populations of stand-ins and assertions."""
import time

from nslib import Proc

# Processes that match no default pattern: every stop must leave them running.
BYSTANDERS = (
    ["python3", "other.py"],
    ["node", "server.js"],
    ["python3", "-m", "http.server", "9000"],
    ["vim", "main.py"],                       # matches nothing: no python before main.py
    ["tail", "-f", "backend.log"],
    ["grep", "-rn", "uvicorn", "main"],       # matches, but `grep -v grep` skipped it
    ["less", "frontend/README.md"],
)


def spawn_bystanders(ns):
    return [ns.spawn(Proc(list(a))) for a in BYSTANDERS]


def uvicorn_reload():
    """uvicorn --reload: the reloader matches, its worker (multiprocessing spawn) does not."""
    return Proc(["/usr/bin/python3", "/venv/bin/uvicorn", "main:app", "--reload",
                 "--port", "8000"],
                listen="127.0.0.1:8000", inherit=True, http=200, children=[
                    Proc(["/usr/bin/python3", "-c",
                          "from multiprocessing.spawn import spawn_main; "
                          "spawn_main(tracker_fd=5, pipe_handle=7)", "--multiprocessing-fork"])])


def npm_chain():
    """npm run dev -> sh -c vite -> node .../vite -> esbuild --service."""
    return Proc(["npm", "run", "dev"], children=[
        Proc(["sh", "-c", "vite"], children=[
            Proc(["node", "/app/web/node_modules/.bin/vite"], listen="127.0.0.1:3000", http=200,
                 children=[Proc(["/app/web/node_modules/@esbuild/linux-x64/bin/esbuild",
                                 "--service=0.21.5", "--ping"])])])])


def write(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(str(path), mode) as f:
        f.write(data)


def read(path):
    """A file's text ("" when it is not there)."""
    try:
        with open(str(path), "r", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def no_traceback(result):
    assert "Traceback" not in result.stdout + result.stderr, result


def wait_until(cond, timeout, step=0.02):
    """cond()'s first true value, or its last false one once `timeout` has passed."""
    deadline = time.time() + timeout
    while True:
        value = cond()
        if value or time.time() > deadline:
            return value
        time.sleep(step)


def assert_dead(ns, pids, result=None, timeout=3):
    left = ns.wait_dead(list(pids), timeout)
    assert left == [], "still alive: %r\n%r\n%r" % (left, result, _table(ns, left))


def assert_alive(ns, pids, result=None):
    pids = list(pids)
    alive = ns.alive(pids)
    assert alive == pids, "died: %r\n%r" % (sorted(set(pids) - set(alive)), result)


def _table(ns, pids):
    return [p for p in ns.ps() if p["pid"] in pids]


def pids_in(text, pids):
    """Which of pids appear as whole words in text."""
    import re
    return [p for p in pids if re.search(r"(?<!\d)%d(?!\d)" % p, text)]


# The start of a script run under a pseudo-terminal (Ctrl-C typed at a keyboard): it forks
# argv (json in sys.argv[1]) on a pty; `pump(until, timeout)` reads its output into `out`.
PTY_PUMP = r"""
import json, os, pty, select, signal, sys, time
argv = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
out = b""


def pump(until, timeout):
    global out
    deadline = time.time() + timeout
    while time.time() < deadline and not until():
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return "eof"
            if not chunk:
                return "eof"
            out += chunk
    return "done" if until() else "timeout"
"""
