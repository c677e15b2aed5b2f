"""Shared pieces of the integration tests: populations of stand-ins and assertions."""
import contextlib
import os
import shutil
import sys
import tempfile

import pytest

import nslib
from nslib import Namespace, Proc, wait_until  # noqa: F401  (wait_until: for the tests)

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


def assert_dead(ns, pids, result=None, timeout=3):
    left = ns.wait_dead(list(pids), timeout)
    assert left == [], "still alive: %r\n%r\n%r" % (left, result, _table(ns, left))


def assert_alive(ns, pids, result=None):
    pids = list(pids)
    alive = ns.alive(pids)
    assert alive == pids, "died: %r\n%r" % (sorted(set(pids) - set(alive)), result)


def _table(ns, pids):
    return [p for p in ns.ps() if p["pid"] in pids]


def others(ns):
    """Every process in the namespace but its agent (PID 1)."""
    return [p for p in ns.ps() if p["pid"] != 1]


def nothing_left(ns, timeout=10):
    """Wait until only the agent is left; what was left otherwise."""
    wait_until(lambda: not others(ns), timeout)
    return others(ns)


def user_python(ns, user):
    """A python3 that `user` can run, inside ns (else the test skips): the interpreters
    under /root/.pyenv are often not readable by other users."""
    for cand in (os.environ.get("PROCCLEAN_TEST_USER_PYTHON"), "/usr/bin/python3",
                 "/usr/local/bin/python3", sys.executable):
        if cand and os.path.isfile(cand) and ns.run([cand, "-c", "pass"], user=user).rc == 0:
            return cand
    pytest.skip("no python3 that user %s can run" % user)


def readable_copy(folder):
    """procclean.py copied into `folder` (made readable by everyone): the checkout itself
    may lie in a folder only its owner can enter (a home folder of mode 0700)."""
    os.chmod(folder, 0o755)
    path = os.path.join(folder, "procclean.py")
    shutil.copyfile(nslib.PROCCLEAN, path)
    os.chmod(path, 0o644)
    return path


@contextlib.contextmanager
def as_test_user(prefix):
    """For tests where procclean runs as the unprivileged test user (take the `test_user`
    fixture too): a namespace whose working folder is a fresh folder under /tmp that everyone
    may write, removed afterwards. Yields (ns, folder, user, that user's python); skips when
    namespaces or such a python are missing."""
    ok, reason = Namespace.available()
    if not ok:
        pytest.skip(reason)
    user = nslib.TEST_USER
    work = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    source = tempfile.mkdtemp(prefix=prefix + "src-", dir="/tmp")
    try:
        os.chmod(work, 0o777)
        with Namespace(cwd=work) as ns:
            ns.procclean_file = readable_copy(source)
            yield ns, work, user, user_python(ns, user)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(source, ignore_errors=True)


def pids_in(text, pids):
    """Which of pids appear as whole words in text."""
    import re
    return [p for p in pids if re.search(r"(?<!\d)%d(?!\d)" % p, text)]


# The start of a script run under a pseudo-terminal (Ctrl-C typed at a keyboard): it forks
# argv (json in sys.argv[1]) on a pty; `pump(until, timeout)` reads its output into `out`;
# `reap(timeout)` is the child's exit code (-signal), SIGKILLed if it has not ended by then;
# `stuck` is then what each thread in the namespace was waiting in (ps), for the report.
PTY_PUMP = r"""
import json, os, pty, select, signal, subprocess, sys, time
argv = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
out = b""
stuck = None


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


def reap(timeout):
    global stuck
    deadline = time.time() + timeout
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
        time.sleep(0.05)
    try:
        stuck = subprocess.check_output(
            ["ps", "-eLo", "pid,tid,ppid,sid,tpgid,stat,wchan:28,args"], universal_newlines=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        stuck = str(exc)
    os.kill(pid, signal.SIGKILL)     # our own child, by its PID
    os.waitpid(pid, 0)
    return None
"""
