"""End-to-end: procclean.py against the real stacks of issue 5, inside a PID + network namespace.

The fixture project (tests/e2e/project) is copied into a temporary folder with procclean.py
beside it, as a team vendors it; every procclean run and every "by hand" start happens inside
a fresh namespace made by the test (tests/nslib.py: its PID 1 is tests/ns_agent.py, which
reaps orphans as init would), where the only processes are the ones the test started. Nothing
here ever runs on the host's process table: without namespaces the tests skip with a reason
(PROCCLEAN_E2E_STRICT=1, set by .ci/run, turns those skips into failures).

Stacks:
  backend  main_py  -> `<venv python> main.py`         (procclean's default command)
  backend  reload   -> `uvicorn main:app --reload`     (reloader + a worker matching no pattern)
  backend  workers  -> `uvicorn main:app --workers 2`  (supervisor + two spawned workers)
  frontend vite     -> `npm run dev`                   (npm -> sh -> node vite -> esbuild)
"""
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

# tests/nslib.py (tests/conftest.py puts tests/ on sys.path)
from nslib import Namespace, Proc, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROCCLEAN = os.path.join(ROOT, "procclean.py")
PROJECT = os.path.join(HERE, "project")
PREPARE = os.path.join(HERE, "prepare_frontend.sh")
PY = sys.executable
STRICT = os.environ.get("PROCCLEAN_E2E_STRICT") == "1"

BACKEND_PORT, FRONTEND_PORT = 8000, 3000
START_TIMEOUT = 60.0   # generous: 2 cores, CI under load

# How each way of running is started: by procclean (the COMMAND env override, None = default)
# and by hand (argv, folder under the project).
BACKEND_MODES = {
    "main_py": {"command": None, "argv": [PY, "main.py"]},
    "reload": {"command": "uvicorn main:app --reload",
               "argv": ["uvicorn", "main:app", "--reload"]},
    "workers": {"command": "uvicorn main:app --workers 2",
                "argv": ["uvicorn", "main:app", "--workers", "2"]},
}
# Processes each way must show once up (proves the "nothing left" checks mean something).
BACKEND_MARKERS = {
    "main_py": ["main.py"],
    "reload": ["--reload", "spawn_main"],
    "workers": ["--workers", "spawn_main"],
}
FRONTEND_MARKERS = ["npm run dev", "bin/vite", "esbuild"]


def unavailable(reason):
    if STRICT:
        pytest.fail("e2e prerequisite missing (PROCCLEAN_E2E_STRICT=1): " + reason)
    pytest.skip(reason)


# --------------------------------------------------------------------------- namespace

# One-shot helpers run inside the namespace with the venv's python (the agent has no HTTP op).
HTTP_WAIT = r"""
import json, sys, time, urllib.request, urllib.error
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            res = {"status": r.status, "body": r.read(2048).decode("utf-8", "replace")}
    except urllib.error.HTTPError as e:
        res = {"status": e.code, "error": str(e)}
    except Exception as e:
        res = {"status": None, "error": "%s: %s" % (type(e).__name__, e)}
    if res["status"] == 200 or time.monotonic() > deadline:
        break
    time.sleep(0.1)
print(json.dumps(res))
"""
# SO_REUSEADDR as every server sets it (uvicorn, node): on Linux the bind still fails while any
# socket LISTENs on the port, but not for the TIME_WAIT entries our own HTTP checks leave.
CAN_BIND = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); print("ok")
except OSError as e:
    print("%s: %s" % (type(e).__name__, e))
"""


CAN_CONNECT = r"""
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close(); print("ok")
except OSError as e:
    print("%s: %s" % (type(e).__name__, e))
"""


class Stack:
    """The project copy and the namespace it runs in, with the operations the tests need."""

    def __init__(self, ns, root, env):
        self.ns, self.root, self.env = ns, root, env

    def _env(self, extra):
        e = dict(self.env)
        e.update(extra or {})
        return e

    # procclean -----------------------------------------------------------------
    def procclean(self, *args, env=None, timeout=120):
        r = self.ns.run([PY, "procclean.py"] + list(args), cwd=self.root, env=self._env(env),
                        timeout=timeout)
        return {"args": args, "rc": None if r.timed_out else r.rc, "stdout": r.stdout,
                "stderr": r.stderr + ("\n[timed out after %s s]" % timeout
                                      if r.timed_out else ""),
                "seconds": r.elapsed}

    def ok(self, *args, **kw):
        res = self.procclean(*args, **kw)
        assert res["rc"] == 0, describe("procclean %s" % " ".join(args), res, self)
        return res

    def status(self, *services):
        res = self.ok("status", "--json", *services)
        try:
            data = json.loads(res["stdout"])
        except ValueError:
            raise AssertionError(describe("status --json printed no JSON", res, self))
        return {s["name"]: s for s in data["services"]}

    # by hand -------------------------------------------------------------------
    def by_hand(self, argv, folder, env=None):
        """Start argv as a user would in a terminal: no pidfile, nothing from procclean."""
        exe = shutil.which(argv[0], path=self._env(env)["PATH"])
        assert exe, "%s not found on PATH" % argv[0]
        p = self.ns.spawn(Proc(argv, path=exe, cwd=os.path.join(self.root, folder),
                               env=self._env(env)))
        return p.pid

    # observation ---------------------------------------------------------------
    def procs(self):
        """Every live (non-zombie) process of the namespace but its PID 1, as
        (pid, ppid, state, command line)."""
        return [(p["pid"], p["ppid"], p["state"], " ".join(p["argv"]))
                for p in self.ns.ps() if p["pid"] != 1 and p["state"] not in ("Z", "X")]

    def _py(self, code, *args, timeout=30):
        r = self.ns.run([PY, "-c", code] + [str(a) for a in args], env=self.env,
                        timeout=timeout)
        assert r.rc == 0 and not r.timed_out, r
        return r.stdout.strip()

    def can_bind(self, port):
        out = self._py(CAN_BIND, port)
        return {"ok": out == "ok", "error": out}

    def listens(self, port):
        """Whether something accepts on 127.0.0.1:port (a connect: a probe that binds the
        port could take it from a server starting at that moment)."""
        return self._py(CAN_CONNECT, port) == "ok"

    def wait_http(self, url, timeout=START_TIMEOUT):
        return json.loads(self._py(HTTP_WAIT, url, timeout, timeout=timeout + 30))

    def wait_gone(self, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            left = self.procs()
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.05)

    def read(self, name):
        try:
            with open(os.path.join(self.root, name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return None


def describe(what, res, stack):
    lines = ["%s: exit %s after %.2f s" % (what, res.get("rc"), res.get("seconds", 0)),
             "--- stdout\n" + res.get("stdout", ""), "--- stderr\n" + res.get("stderr", "")]
    try:
        lines.append("--- processes\n" + "\n".join("%d %d %s %s" % p for p in stack.procs()))
        for log in ("backend.log", "frontend.log"):
            text = stack.read(log)
            if text:
                lines.append("--- %s (tail)\n%s" % (log, "\n".join(text.splitlines()[-15:])))
    except Exception as e:  # the description must never hide the real failure
        lines.append("(could not describe the namespace: %s)" % e)
    return "\n".join(lines)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def e2e_env():
    ok, reason = Namespace.available()
    if not ok:
        unavailable(reason)
    if not os.path.isfile(PROCCLEAN):
        unavailable("procclean.py not found at %s" % PROCCLEAN)
    r = subprocess.run([PY, "-c", "import fastapi, uvicorn"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if r.returncode != 0:
        unavailable("fastapi/uvicorn not importable by %s (make test installs "
                    "requirements-dev.txt into .venv)" % PY)
    # The venv's bin first on PATH, so `uvicorn main:app` and the backend's imports resolve to
    # what requirements-dev.txt installed (procclean's default backend command is its own
    # interpreter, which is this one too).
    path = os.pathsep.join([os.path.dirname(PY), os.environ.get("PATH", "/usr/bin:/bin")])
    return {"PATH": path, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="session")
def frontend_modules():
    """node_modules of the fixture frontend, from the cache prepare_frontend.sh keeps."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        unavailable("node/npm not found: the Vite frontend cannot run")
    r = subprocess.run(["bash", PREPARE], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=600)
    if r.returncode != 0:
        pytest.fail("prepare_frontend.sh failed:\n" + r.stderr.decode("utf-8", "replace"))
    path = os.path.join(r.stdout.decode().strip().splitlines()[-1], "node_modules")
    assert os.path.isdir(path), path
    return path


def _project(tmp_path, node_modules=None):
    root = str(tmp_path / "proj")
    shutil.copytree(PROJECT, root, symlinks=True,
                    ignore=shutil.ignore_patterns("node_modules", "__pycache__", "*.pid",
                                                  "*.log", ".vite"))
    shutil.copy2(PROCCLEAN, os.path.join(root, "procclean.py"))
    if node_modules:
        # A private copy (20 MB, ~0.05 s): vite writes its dep cache under node_modules/.vite.
        shutil.copytree(node_modules, os.path.join(root, "frontend", "node_modules"),
                        symlinks=True)
    return root


@pytest.fixture
def stack(tmp_path, e2e_env):
    root = _project(tmp_path)
    with Namespace(cwd=root, env=e2e_env) as ns:
        yield Stack(ns, root, e2e_env)


@pytest.fixture
def fstack(tmp_path, e2e_env, frontend_modules):
    root = _project(tmp_path, frontend_modules)
    try:
        with Namespace(cwd=root, env=e2e_env) as ns:
            yield Stack(ns, root, e2e_env)
    finally:
        # pytest keeps the last runs' tmp folders: don't keep 20 MB per test with them.
        shutil.rmtree(os.path.join(root, "frontend", "node_modules"), ignore_errors=True)


# --------------------------------------------------------------------------- checks

def backend_env(mode, **extra):
    env = dict(extra)
    if BACKEND_MODES[mode]["command"]:
        env["PROCCLEAN_BACKEND_COMMAND"] = BACKEND_MODES[mode]["command"]
    return env


def assert_up(st, name, port, url, markers):
    r = st.wait_http(url)
    assert r["status"] == 200, "GET %s: %r\n%s" % (url, r, describe("stack", {}, st))
    deadline = time.monotonic() + 15  # vite may start its esbuild service just after listening
    while True:
        cmds = [p[3] for p in st.procs()]
        missing = [m for m in markers if not any(m in c for c in cmds)]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not missing, "no process with %r once up:\n%s" % (missing, "\n".join(cmds))
    svc = st.status(name)[name]
    assert svc["running"] is True, svc
    assert svc["pids"], svc
    assert svc["port"] == port, svc
    assert svc["listening"] is True, svc
    assert svc["listeners"], svc
    assert any(l.get("own") for l in svc["listeners"]), (
        "the listener on %d is not counted as %s's own: %r" % (port, name, svc))
    assert svc["state"] == "running", svc
    return svc


def assert_all_gone(st, res, ports):
    left = st.wait_gone(timeout=3)
    assert not left, "processes left after procclean %s:\n%s\n%s" % (
        " ".join(res["args"]), "\n".join("%d %d %s %s" % tuple(p) for p in left),
        describe("procclean", res, st))
    for port in ports:
        b = st.can_bind(port)
        assert b["ok"], "port %d still taken after procclean %s: %s" % (
            port, " ".join(res["args"]), b["error"])


def start_backend(st, mode, env):
    """start --wait backend: up, listening and healthy; its status record."""
    st.ok("start", "--wait", "backend", env=env)
    return assert_up(st, "backend", BACKEND_PORT, "http://127.0.0.1:8000/health",
                     BACKEND_MARKERS[mode])


def pidfile_pid(st, name):
    text = st.read(name + ".pid")
    assert text is not None, "%s.pid missing after start" % name
    assert text.strip().isdigit(), "%s.pid holds %r" % (name, text)
    return int(text)


# --------------------------------------------------------------------------- backend

@pytest.mark.parametrize("mode", sorted(BACKEND_MODES))
def test_backend_start_status_stop(stack, mode):
    env = backend_env(mode)
    svc = start_backend(stack, mode, env)
    pid = pidfile_pid(stack, "backend")
    assert pid in svc["pids"], (pid, svc)
    # Already running: start says so and exits 0, starts nothing new.
    before = {p[0] for p in stack.procs()}
    stack.ok("start", "backend", env=env)
    assert {p[0] for p in stack.procs()} == before
    res = stack.ok("stop", "backend", env=env)
    assert_all_gone(stack, res, [BACKEND_PORT])
    assert stack.read("backend.pid") is None, "backend.pid left after stop"
    assert stack.status("backend")["backend"]["running"] is False
    # A graceful stop: stop holds its targets with SIGSTOP before its last look, and
    # SIGTERM reaches them after SIGCONT: the app's lifespan shutdown still runs.
    log = stack.read("backend.log") or ""
    assert "Application shutdown complete" in log, log[-2000:]


@pytest.mark.parametrize("mode", sorted(BACKEND_MODES))
def test_backend_force_clean(stack, mode):
    env = backend_env(mode)
    start_backend(stack, mode, env)
    res = stack.ok("force-clean", "backend", env=env)
    assert_all_gone(stack, res, [BACKEND_PORT])
    assert stack.read("backend.pid") is None, "backend.pid left after force-clean"
    assert stack.read("backend.log") is None, "backend.log left after force-clean"


@pytest.mark.parametrize("mode", sorted(BACKEND_MODES))
def test_backend_restart(stack, mode):
    env = backend_env(mode)
    start_backend(stack, mode, env)
    old = {p[0] for p in stack.procs()}
    old_pid = pidfile_pid(stack, "backend")
    stack.ok("restart", "backend", env=env)
    svc = assert_up(stack, "backend", BACKEND_PORT, "http://127.0.0.1:8000/health",
                    BACKEND_MARKERS[mode])
    now = {p[0] for p in stack.procs()}
    assert not old & now, "processes from before the restart still alive: %s" % (old & now)
    new_pid = pidfile_pid(stack, "backend")
    assert new_pid != old_pid and new_pid in svc["pids"], (old_pid, new_pid, svc)
    res = stack.ok("stop", "backend", env=env)
    assert_all_gone(stack, res, [BACKEND_PORT])


@pytest.mark.parametrize("how", ["stop", "force-clean"])
@pytest.mark.parametrize("mode", sorted(BACKEND_MODES))
def test_backend_by_hand(stack, mode, how):
    """Started in a terminal, not by procclean: no pidfile, found by pattern (+ children)."""
    stack.by_hand(BACKEND_MODES[mode]["argv"], "backend")
    assert_up(stack, "backend", BACKEND_PORT, "http://127.0.0.1:8000/health",
              BACKEND_MARKERS[mode])
    assert stack.read("backend.pid") is None
    res = stack.ok(how, "backend")
    assert_all_gone(stack, res, [BACKEND_PORT])


@pytest.mark.parametrize("started", ["procclean", "by_hand"])
@pytest.mark.parametrize("mode", ["main_py", "reload"])
def test_backend_ignoring_sigterm_is_killed(stack, mode, started):
    """A backend that ignores SIGTERM: after --grace, SIGKILL; nothing left; exit 0."""
    grace = 1.0
    env = backend_env(mode, IGNORE_SIGTERM="1")
    if started == "procclean":
        stack.ok("start", "--wait", "backend", env=env)
    else:
        stack.by_hand(BACKEND_MODES[mode]["argv"], "backend", env={"IGNORE_SIGTERM": "1"})
    assert_up(stack, "backend", BACKEND_PORT, "http://127.0.0.1:8000/health",
              BACKEND_MARKERS[mode])
    res = stack.ok("stop", "--grace", str(grace), "backend", env=env)
    assert_all_gone(stack, res, [BACKEND_PORT])
    # It took the grace (TERM was ignored), and not much more (one shared wait).
    assert grace - 0.1 <= res["seconds"] <= grace + 5, describe("stop", res, stack)
    assert stack.read("backend.pid") is None


# --------------------------------------------------------------------------- frontend

def test_frontend_start_status_stop(fstack):
    fstack.ok("start", "--wait", "frontend")
    svc = assert_up(fstack, "frontend", FRONTEND_PORT, "http://127.0.0.1:3000/",
                    FRONTEND_MARKERS)
    assert pidfile_pid(fstack, "frontend") in svc["pids"]
    res = fstack.ok("stop", "frontend")
    assert_all_gone(fstack, res, [FRONTEND_PORT])
    assert fstack.read("frontend.pid") is None


def test_frontend_force_clean(fstack):
    fstack.ok("start", "--wait", "frontend")
    assert_up(fstack, "frontend", FRONTEND_PORT, "http://127.0.0.1:3000/", FRONTEND_MARKERS)
    res = fstack.ok("force-clean", "frontend")
    assert_all_gone(fstack, res, [FRONTEND_PORT])
    assert fstack.read("frontend.pid") is None
    assert fstack.read("frontend.log") is None


def test_frontend_restart(fstack):
    fstack.ok("start", "--wait", "frontend")
    assert_up(fstack, "frontend", FRONTEND_PORT, "http://127.0.0.1:3000/", FRONTEND_MARKERS)
    old = {p[0] for p in fstack.procs()}
    fstack.ok("restart", "frontend")
    assert_up(fstack, "frontend", FRONTEND_PORT, "http://127.0.0.1:3000/", FRONTEND_MARKERS)
    assert not old & {p[0] for p in fstack.procs()}, "old frontend processes survived restart"
    res = fstack.ok("stop", "frontend")
    assert_all_gone(fstack, res, [FRONTEND_PORT])


@pytest.mark.parametrize("how", ["stop", "force-clean"])
def test_frontend_by_hand(fstack, how):
    fstack.by_hand(["npm", "run", "dev"], "frontend")
    assert_up(fstack, "frontend", FRONTEND_PORT, "http://127.0.0.1:3000/", FRONTEND_MARKERS)
    res = fstack.ok(how, "frontend")
    assert_all_gone(fstack, res, [FRONTEND_PORT])


# --------------------------------------------------------------------------- whole stack

@pytest.mark.parametrize("mode", ["main_py", "reload"])
def test_whole_stack_start_stop(fstack, mode):
    """`start` with no service starts both; `stop` with none leaves nothing and both ports free."""
    env = backend_env(mode)
    fstack.ok("start", "--wait", env=env)
    assert_up(fstack, "backend", BACKEND_PORT, "http://127.0.0.1:8000/health",
              BACKEND_MARKERS[mode])
    assert_up(fstack, "frontend", FRONTEND_PORT, "http://127.0.0.1:3000/", FRONTEND_MARKERS)
    both = fstack.status()
    assert both["backend"]["running"] and both["frontend"]["running"], both
    # The two services' process sets are disjoint (no pattern grabs the other's processes).
    assert not set(both["backend"]["pids"]) & set(both["frontend"]["pids"]), both
    res = fstack.ok("stop", env=env)
    assert_all_gone(fstack, res, [BACKEND_PORT, FRONTEND_PORT])
    assert fstack.read("backend.pid") is None and fstack.read("frontend.pid") is None


def test_whole_stack_by_hand_force_clean(fstack):
    fstack.by_hand(["uvicorn", "main:app", "--reload"], "backend")
    fstack.by_hand(["npm", "run", "dev"], "frontend")
    assert_up(fstack, "backend", BACKEND_PORT, "http://127.0.0.1:8000/health",
              BACKEND_MARKERS["reload"])
    assert_up(fstack, "frontend", FRONTEND_PORT, "http://127.0.0.1:3000/", FRONTEND_MARKERS)
    res = fstack.ok("force-clean")
    assert_all_gone(fstack, res, [BACKEND_PORT, FRONTEND_PORT])


# --------------------------------------------------------------------------- the project's venv

def _bare_python():
    """An interpreter without fastapi (procclean run by the machine's python), or None."""
    from pythons import interpreters_under_test
    for python in interpreters_under_test():
        r = subprocess.run([python, "-c", "import fastapi"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            return python
    return None


def test_backend_runs_with_the_projects_venv(stack):
    """Issue 14: procclean run by a python that lacks fastapi, in a project whose .venv has
    it: `{python} main.py` runs with the venv's python, doctor says all is well; without the
    venv doctor names what the interpreter lacks (instead of `start` failing later)."""
    bare = _bare_python()
    if bare is None:
        pytest.skip("every interpreter under test has fastapi: no bare python to run procclean")
    venv = os.path.join(stack.root, ".venv")
    os.symlink(os.path.dirname(os.path.dirname(PY)), venv)     # the venv requirements-dev made
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}               # the venv not on PATH

    def run(*args):
        r = stack.ns.run([bare, "procclean.py"] + list(args), cwd=stack.root,
                         env=stack._env(env), timeout=120)
        return {"args": args, "rc": r.rc, "stdout": r.stdout, "stderr": r.stderr}

    res = run("doctor", "backend")
    assert res["rc"] == 0 and "cannot import" not in res["stdout"], describe("doctor", res, stack)
    res = run("start", "--wait", "backend")
    assert res["rc"] == 0, describe("start", res, stack)
    assert "%s/bin/python main.py" % venv in res["stdout"], res
    assert_up(stack, "backend", BACKEND_PORT, "http://127.0.0.1:8000/health",
              ["%s/bin/python main.py" % venv])
    res = run("stop", "backend")
    assert res["rc"] == 0, describe("stop", res, stack)
    assert_all_gone(stack, res, [BACKEND_PORT])
    os.unlink(venv)
    res = run("doctor", "backend")
    assert res["rc"] == 1, describe("doctor", res, stack)
    assert "backend: %s cannot import fastapi" % bare in res["stdout"], res
    assert "fix: python3 -m venv .venv && .venv/bin/python -m pip install" in res["stdout"], res


# --------------------------------------------------------------------------- dev (issue 13)

KILLPG = "import os, signal, sys; os.killpg(int(sys.argv[1]), signal.SIGINT)"


def test_dev_reload_and_vite_ctrl_c_frees_both_ports(fstack):
    """`dev` runs uvicorn --reload and Vite in the foreground with prefixed output; Ctrl-C
    (SIGINT to the whole foreground group, as a terminal sends it) leaves nothing behind."""
    st = fstack
    job = st.ns.start(["/bin/sh", "-c", 'exec "$@" >dev.out 2>dev.err', "sh", PY,
                       "procclean.py", "dev"], cwd=st.root, env=st._env(backend_env("reload")),
                      session=True)

    def res():
        return {"args": ("dev",), "rc": job.result and job.result.rc,
                "stdout": st.read("dev.out") or "", "stderr": st.read("dev.err") or ""}

    assert_up(st, "backend", BACKEND_PORT, "http://127.0.0.1:8000/health",
              BACKEND_MARKERS["reload"])
    assert_up(st, "frontend", FRONTEND_PORT, "http://127.0.0.1:3000/", FRONTEND_MARKERS)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and not (
            "backend  | " in (st.read("dev.out") or "")
            and "frontend | " in (st.read("dev.out") or "")):
        time.sleep(0.1)
    out = st.read("dev.out") or ""
    assert re.search(r"^backend  \| .*Uvicorn running on", out, re.M), describe("dev", res(), st)
    assert re.search(r"^frontend \| .*VITE", out, re.M), describe("dev", res(), st)
    assert st.read("backend.pid") and st.read("frontend.pid")
    r = st.ns.run([PY, "-c", KILLPG, str(job.pid)], env=st.env)
    assert r.rc == 0, r
    result = job.wait(120)
    assert not result.timed_out, describe("dev", res(), st)
    assert result.rc == -2, describe("dev", res(), st)     # by SIGINT: a shell sees 130
    assert "Traceback" not in (st.read("dev.out") or "") + (st.read("dev.err") or "")
    assert_all_gone(st, res(), [BACKEND_PORT, FRONTEND_PORT])
    assert st.read("backend.pid") is None and st.read("frontend.pid") is None
    assert re.search(r"^backend: \d+ process\(es\) stopped|^backend: nothing running",
                     st.read("dev.out"), re.M), describe("dev", res(), st)


# A team's `dev:` as RyanDur/Barking-Polka writes it: the API in the background, the frontend
# in the foreground on the next line.
TEAM_DEV = """\
dev:
\tcd backend && uvicorn main:app --reload --port 8000 &
\tcd frontend && npm run dev
"""


def test_a_teams_dev_target_replaced_by_init_ends_with_ctrl_c(fstack):
    """`init --makefile --replace` makes that `dev:` `procclean dev`: `make dev` then serves
    the real uvicorn --reload and Vite, and one Ctrl-C to make's group leaves nothing (sh
    starts the `&` job with SIGINT ignored; uvicorn catches it anyway, a server that does
    not stayed up: tests/integration/test_int_init_makefile.py)."""
    st = fstack
    with open(os.path.join(st.root, "Makefile"), "w") as f:
        f.write(TEAM_DEV)
    res = st.ok("init", "--makefile", "--replace")
    assert "replaced dev (line 1" in res["stdout"], describe("init", res, st)
    job = st.ns.start(["/bin/sh", "-c", 'exec make dev >dev.out 2>dev.err'], cwd=st.root,
                      env=st.env, session=True)

    def res():
        return {"args": ("make dev",), "rc": job.result and job.result.rc,
                "stdout": st.read("dev.out") or "", "stderr": st.read("dev.err") or ""}

    assert_up(st, "backend", BACKEND_PORT, "http://127.0.0.1:8000/health",
              BACKEND_MARKERS["reload"])
    assert_up(st, "frontend", FRONTEND_PORT, "http://127.0.0.1:3000/", FRONTEND_MARKERS)
    r = st.ns.run([PY, "-c", KILLPG, str(job.pid)], env=st.env)
    assert r.rc == 0, r
    result = job.wait(120)
    assert not result.timed_out, describe("make dev", res(), st)
    assert "Traceback" not in (st.read("dev.out") or "") + (st.read("dev.err") or "")
    assert_all_gone(st, res(), [BACKEND_PORT, FRONTEND_PORT])


# --------------------------------------------------------------------------- issue 14: honest
# status, supervision under --reload, start --wait that fails fast

# Each look runs something in the namespace (procclean status, a process listing): a slower
# poll than the other tiers'.
wait_for = functools.partial(wait_until, step=0.1)


def worker_pids(st):
    """The uvicorn --reload workers (multiprocessing spawn) that run."""
    return [p[0] for p in st.procs() if "spawn_main" in p[3]]


def health_requests(st):
    return (st.read("backend.log") or "").count("GET /health")


def test_plain_status_sends_no_health_request_status_health_does(stack):
    env = backend_env("reload")
    stack.ok("start", "--wait", "backend", env=env)
    before = health_requests(stack)
    for _ in range(3):
        res = stack.ok("status", "backend", env=env)
        assert "backend: running" in res["stdout"], describe("status", res, stack)
    assert health_requests(stack) == before, stack.read("backend.log")
    res = stack.ok("status", "--health", "backend", env=env)
    assert "health http://127.0.0.1:8000/health: healthy" in res["stdout"], res
    assert wait_for(lambda: health_requests(stack) == before + 1, 10), stack.read("backend.log")
    res = stack.ok("stop", "backend", env=env)
    assert_all_gone(stack, res, [BACKEND_PORT])


def test_reload_worker_killed_status_is_not_ok(stack):
    """uvicorn --reload, worker SIGKILLed: it stays <defunct>, the reloader lives on; status
    must not say running, and --check fails."""
    env = backend_env("reload")
    stack.ok("start", "--wait", "backend", env=env)
    workers = worker_pids(stack)
    assert workers, describe("after start", {}, stack)
    stack.ns.kill(workers)
    svc = wait_for(lambda: (lambda s: s if s["state"] != "running" else None)(
        stack.status("backend")["backend"]), 20)
    assert svc and svc["state"] in ("crashed", "not listening", "unhealthy"), svc
    res = stack.procclean("status", "--check", "backend", env=env)
    assert res["rc"] == 3, describe("status --check", res, stack)
    assert "[ok]" not in res["stdout"], res
    res = stack.ok("stop", "backend", env=env)
    assert_all_gone(stack, res, [BACKEND_PORT])


def test_supervision_restarts_a_reload_worker_killed_with_sigkill(stack):
    """supervise = yes by the environment, unhealthy_after 2 s: the supervisor sees the
    worker gone (the reloader alive, nothing answering) and restarts the whole service."""
    env = backend_env("reload", PROCCLEAN_BACKEND_SUPERVISE="yes",
                      PROCCLEAN_BACKEND_UNHEALTHY_AFTER="2")
    res = stack.ok("start", "--wait", "backend", env=env)
    assert "supervising backend" in res["stdout"], res
    assert stack.wait_http("http://127.0.0.1:8000/health")["status"] == 200
    supervisor = pidfile_pid(stack, "backend")
    old = worker_pids(stack)
    assert old, describe("after start", {}, stack)
    # the supervisor has seen it healthy before the kill (else it waits for health first)
    assert wait_for(lambda: '"healthy": true' in (stack.read("backend.pid.state") or ""), 30), \
        stack.read("backend.pid.state")
    stack.ns.kill(old)
    assert wait_for(lambda: "unhealthy for" in (stack.read("backend.log") or ""), 60), \
        describe("no restart", {}, stack)
    new = wait_for(lambda: [w for w in worker_pids(stack) if w not in old], 60)
    assert new, describe("no new worker", {}, stack)
    assert stack.wait_http("http://127.0.0.1:8000/health")["status"] == 200
    svc = stack.status("backend")["backend"]
    assert svc["supervisor"]["supervisor"] == supervisor and svc["supervisor"]["restarts"] >= 1
    # restart keeps it supervised
    res = stack.ok("restart", "backend", env=backend_env("reload"))
    assert "supervising backend" in res["stdout"], res
    res = stack.ok("stop", "backend", env=env)
    assert_all_gone(stack, res, [BACKEND_PORT])
    assert stack.read("backend.pid") is None


@pytest.mark.parametrize("how", ["lifespan", "import"])
def test_start_wait_fails_fast_when_startup_fails_under_reload(stack, how):
    """The app's start-up fails under --reload (the reloader lives on): start --wait says so
    long before its timeout, shows the log, and leaves nothing running and no pidfile."""
    if how == "lifespan":
        env = backend_env("reload", FAIL_STARTUP="1")
    else:
        env = {"PROCCLEAN_BACKEND_COMMAND": "uvicorn main:no_such_app --reload"}
    res = stack.procclean("start", "--wait", "--timeout", "900", "backend", env=env,
                          timeout=120)
    assert res["rc"] == 1, describe("start --wait", res, stack)
    assert "last lines of backend.log" in res["stderr"], res
    assert "stopped what this start left running" in res["stderr"], res
    assert ("Application startup failed" if how == "lifespan" else "Error loading ASGI app") \
        in res["stderr"], res
    assert_all_gone(stack, res, [BACKEND_PORT])
    assert stack.read("backend.pid") is None


@pytest.mark.parametrize("how", ["lifespan", "import"])
def test_plain_start_of_a_backend_that_dies_at_once_fails_with_its_log(stack, how):
    """`make start-backend` without --wait: uvicorn dies after importing FastAPI and the
    app, later than start's first half second on a busy machine; start still says it
    exited (exit 1, the log's last lines), not `started`, and nothing is left."""
    if how == "lifespan":
        env = backend_env("main_py", FAIL_STARTUP="1")
    else:
        env = {"PROCCLEAN_BACKEND_COMMAND": "uvicorn main:no_such_app"}
    res = stack.procclean("start", "backend", env=env, timeout=120)
    assert res["rc"] == 1, describe("start", res, stack)
    assert "backend exited at once" in res["stderr"], res
    assert ("Application startup failed" if how == "lifespan" else "Error loading ASGI app") \
        in res["stderr"], res
    assert "started backend" not in res["stdout"], res
    assert_all_gone(stack, res, [BACKEND_PORT])
    assert stack.read("backend.pid") is None


def test_supervised_start_wait_on_a_crashing_app_fails_fast_and_leaves_nothing(stack):
    env = {"PROCCLEAN_BACKEND_COMMAND": "uvicorn main:no_such_app"}
    res = stack.procclean("start", "--supervise", "--wait", "--timeout", "900", "backend",
                          env=env, timeout=120)
    assert res["rc"] == 1, describe("start --supervise --wait", res, stack)
    assert "Error loading ASGI app" in res["stderr"], res
    assert_all_gone(stack, res, [BACKEND_PORT])
    assert stack.read("backend.pid") is None


def test_frontend_wait_yes_on_a_broken_vite_fails_fast_and_leaves_nothing(fstack):
    """`wait = yes` by the environment; Vite's config does not load, so npm's chain exits:
    start says so well before its timeout, with the log, and nothing is left."""
    with open(os.path.join(fstack.root, "frontend", "vite.config.js"), "w") as f:
        f.write("throw new Error('broken config on purpose')\n")
    res = fstack.procclean("start", "--timeout", "900", "frontend",
                           env={"PROCCLEAN_FRONTEND_WAIT": "yes"}, timeout=120)
    assert res["rc"] == 1, describe("start frontend", res, fstack)
    assert "broken config on purpose" in res["stderr"], res
    assert_all_gone(fstack, res, [FRONTEND_PORT])
    assert fstack.read("frontend.pid") is None
    res = fstack.ok("status", "frontend")
    assert "frontend: not running" in res["stdout"], res


# --------------------------------------------------------------------------- issue 21: dev
# keeps its promises when the terminal closes

def test_terminal_closed_under_dev_runs_the_lifespan_shutdown(fstack):
    """`make dev` in a terminal that is closed (tmux kill-session: the kernel hangs up the
    terminal, SIGHUP to the shell and to dev, and the shell resends SIGHUP to its jobs):
    uvicorn --reload's worker runs FastAPI's lifespan shutdown, Vite stops, every process
    is stopped by SIGTERM (no SIGKILL for the second SIGHUP), nothing is left."""
    st = fstack
    if shutil.which("tmux") is None or shutil.which("bash") is None:
        unavailable("tmux and bash are needed to close a terminal under dev")
    marker = os.path.join(st.root, "lifespan.shutdown")
    env = st._env(backend_env("reload", SHUTDOWN_MARKER=marker, TERM="xterm"))
    tmux = ["tmux", "-S", os.path.join(st.root, "tmux.sock"), "-f", "/dev/null"]
    r = st.ns.run(tmux + ["new-session", "-d", "-s", "dev", "-x", "200", "-y", "50",
                          "bash --norc --noprofile -i"], cwd=st.root, env=env, timeout=30)
    assert r.rc == 0, r
    r = st.ns.run(tmux + ["send-keys", "-t", "dev", "%s procclean.py dev" % PY, "Enter"],
                  cwd=st.root, env=env, timeout=30)
    assert r.rc == 0, r
    assert_up(st, "backend", BACKEND_PORT, "http://127.0.0.1:8000/health",
              BACKEND_MARKERS["reload"])
    assert_up(st, "frontend", FRONTEND_PORT, "http://127.0.0.1:3000/", FRONTEND_MARKERS)
    r = st.ns.run(tmux + ["kill-session", "-t", "dev"], cwd=st.root, env=env, timeout=30)
    assert r.rc == 0, r
    res = {"args": ("dev", "(terminal closed)"), "rc": None, "stdout": "", "stderr": ""}
    wait_for(lambda: not st.procs(), 60)        # dev, the stack and the tmux server end
    assert_all_gone(st, res, [BACKEND_PORT, FRONTEND_PORT])
    assert "lifespan shutdown in PID" in (st.read("lifespan.shutdown") or ""), \
        describe("dev", res, st)
    for log in ("backend.log", "frontend.log"):
        text = st.read(log) or ""
        assert re.search(r"stop: PID \d+ stopped by SIGTERM", text), describe("dev", res, st)
        assert "SIGKILL" not in text, describe("dev", res, st)
    assert st.read("backend.pid") is None and st.read("frontend.pid") is None


def test_restart_backend_from_another_terminal_stays_in_dev(fstack):
    """`make restart-backend` in another terminal while `make dev` runs uvicorn and Vite:
    the dev session restarts the backend itself, the new backend's output keeps appearing
    in dev's stream, the old one ran its lifespan shutdown, dev runs on."""
    st = fstack
    marker = os.path.join(st.root, "lifespan.shutdown")
    job = st.ns.start(["/bin/sh", "-c", 'exec "$@" >dev.out 2>dev.err', "sh", PY,
                       "procclean.py", "dev"], cwd=st.root,
                      env=st._env(backend_env("main_py", SHUTDOWN_MARKER=marker)), session=True)

    def res():
        return {"args": ("dev",), "rc": job.result and job.result.rc,
                "stdout": st.read("dev.out") or "", "stderr": st.read("dev.err") or ""}

    def startups():
        return len(re.findall(r"^backend  \| .*Application startup complete",
                              st.read("dev.out") or "", re.M))

    assert_up(st, "backend", BACKEND_PORT, "http://127.0.0.1:8000/health",
              BACKEND_MARKERS["main_py"])
    assert_up(st, "frontend", FRONTEND_PORT, "http://127.0.0.1:3000/", FRONTEND_MARKERS)
    assert wait_for(lambda: startups() == 1, START_TIMEOUT), describe("dev", res(), st)
    old = pidfile_pid(st, "backend")
    restart = st.ok("restart-backend", env=backend_env("main_py", SHUTDOWN_MARKER=marker))
    assert "restarted by its dev session" in restart["stdout"], describe("restart", restart, st)
    assert wait_for(lambda: startups() == 2, START_TIMEOUT), describe("dev", res(), st)
    assert pidfile_pid(st, "backend") != old
    assert st.wait_http("http://127.0.0.1:8000/health")["status"] == 200
    assert "lifespan shutdown in PID %d" % old in (st.read("lifespan.shutdown") or ""), \
        describe("dev", res(), st)
    assert job.result is None, describe("dev", res(), st)
    assert "stopped from another terminal" not in st.read("dev.out"), describe("dev", res(), st)
    job.signal(15)
    result = job.wait(120)
    assert not result.timed_out and result.rc == -15, describe("dev", res(), st)
    assert_all_gone(st, res(), [BACKEND_PORT, FRONTEND_PORT])


# --------------------------------------------------------------------------- issue 21:
# `after` with supervision, and a wait that ends with the awaited service's outcome

def test_supervised_backend_and_vite_after_it_start_together(fstack):
    """uvicorn --reload under a supervisor (`supervise = yes`) and Vite with `after =
    backend`, started together, then restarted together: no lock held against the
    supervisor, both up."""
    st = fstack
    env = backend_env("reload", PROCCLEAN_BACKEND_SUPERVISE="yes",
                      PROCCLEAN_FRONTEND_AFTER="backend")
    for command in ("start", "restart"):
        res = st.ok(command, "--wait", env=env)
        assert "busy" not in res["stdout"] + res["stderr"], describe(command, res, st)
        assert "supervising backend" in res["stdout"], describe(command, res, st)
        assert "started frontend" in res["stdout"], describe(command, res, st)
        assert st.wait_http("http://127.0.0.1:8000/health")["status"] == 200
        assert st.wait_http("http://127.0.0.1:3000/")["status"] == 200
    res = st.ok("stop", env=env)
    assert_all_gone(st, res, [BACKEND_PORT, FRONTEND_PORT])


def test_dev_ends_when_the_backend_vite_waits_for_failed(fstack):
    """The app's start-up fails under --reload (the reloader lives on) and Vite starts after
    the backend: dev says at once that the backend failed, with its log, never starts Vite,
    and leaves nothing running."""
    st = fstack
    env = st._env(backend_env("reload", FAIL_STARTUP="1", PROCCLEAN_FRONTEND_AFTER="backend"))
    job = st.ns.start(["/bin/sh", "-c", 'exec "$@" >dev.out 2>dev.err', "sh", PY,
                       "procclean.py", "dev", "--timeout", "900"], cwd=st.root, env=env,
                      session=True)
    result = job.wait(180)      # generous; the outcome is known a second after the failure

    def res():
        return {"args": ("dev",), "rc": result.rc, "stdout": st.read("dev.out") or "",
                "stderr": st.read("dev.err") or ""}

    assert not result.timed_out and result.rc == 1, describe("dev", res(), st)
    out, err = res()["stdout"], res()["stderr"]
    assert "frontend * not started: backend failed" in out, describe("dev", res(), st)
    assert "backend: its start-up failed, nothing listens on port 8000" in err, \
        describe("dev", res(), st)
    assert "Application startup failed" in err, describe("dev", res(), st)
    assert "frontend * started" not in out, describe("dev", res(), st)
    assert_all_gone(st, res(), [BACKEND_PORT, FRONTEND_PORT])
