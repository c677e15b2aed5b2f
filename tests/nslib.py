"""Throw-away PID + network namespaces for procclean's tests.

    from nslib import Namespace, Proc

    with Namespace(tmp_path) as ns:
        root = ns.spawn(Proc(["uvicorn", "main:app", "--reload"],
                             children=[Proc(["python3", "-c", "from multiprocessing..."])]))
        r = ns.procclean("stop-backend")
        assert r.rc == 0 and not ns.alive(root.pids())

Everything a test starts runs inside a fresh PID namespace whose PID 1 is tests/ns_agent.py
(`unshare --pid --fork --mount-proc --net --kill-child`, plus `--user --map-root-user` when
not root). Processes in there cannot see or signal the machine's real processes, so kill-by-name
is harmless. When the namespace closes, its PID 1 exits and the kernel kills everything left.
Nothing here ever falls back to running on the host: if a namespace cannot be made, tests skip.

Stand-ins (tests/standin.c, compiled once per session with `cc`) show any argv in `ps -ef` and
behave as their Proc says (ignore SIGTERM, listen on a port, fork children...).
"""
import atexit
import hashlib
import json
import os
import pwd
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PROCCLEAN = os.path.join(REPO, "procclean.py")
AGENT_SRC = os.path.join(HERE, "ns_agent.py")
STANDIN_SRC = os.path.join(HERE, "standin.c")

# Environment that would reshape `ps` output or configure procclean from the developer's shell:
# never passed into the namespace unless a test sets it explicitly.
STRIP_ENV_PREFIXES = ("PROCCLEAN_", "PS_", "PYTEST_", "COV_")
STRIP_ENV = {"COLUMNS", "LINES", "PS_FORMAT", "PS_PERSONALITY", "POSIXLY_CORRECT",
             "CMD_ENV", "I_WANT_A_BROKEN_PS", "PYTHONSTARTUP", "PYTHONINSPECT",
             "STANDIN_SPEC", "NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE", "LC_ALL",
             "LC_TIME", "PYTHONIOENCODING", "PYTHONHOME", "PYTHONPATH",
             "VIRTUAL_ENV", "PYTHONUTF8", "PYTHONDONTWRITEBYTECODE",
             # from `make test`: a make run in a test would think itself a sub-make (printing
             # "make[1]: Entering directory") and reach for the outer make's jobserver
             "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT",
             "MAKE_TERMERR"}

TEST_USER = "procclean-test"


class NamespaceError(RuntimeError):
    pass


# One launcher per copy of procclean.py, and the interpreters its bytecode is cached for.
_LAUNCHERS = {}
_COMPILED = set()

LAUNCHER_TEXT = """# procclean.py from %(folder)r, run as `python -m procclean` runs it: the module is
# imported, so its compiled bytecode in __pycache__ is reused instead of compiling the file.
import runpy, sys
sys.path[0] = %(folder)r
runpy.run_module("procclean", run_name="__main__", alter_sys=True)
"""


def launcher(python, source=None):
    """A file named `procclean` that runs `source` (default: the checkout's procclean.py)
    with `python` from cached bytecode. Every test calls procclean this way: compiling the
    whole file costs 30-50 ms a call, the cached module a few. argv[0] and __file__ are the
    source's path, as with `python procclean.py`; the process shows as `python .../procclean
    ARGS`, which procclean knows as one of its own. The bytecode is written once per
    interpreter (py_compile writes even under PYTHONDONTWRITEBYTECODE); where it cannot
    be, the module is compiled on each call as before."""
    source = os.path.abspath(source or PROCCLEAN)
    if (python, source) not in _COMPILED:
        _COMPILED.add((python, source))
        subprocess.run([python, "-c", "import py_compile, sys; py_compile.compile(sys.argv[1])",
                        source], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120)
    path = _LAUNCHERS.get(source)
    if path is None:
        folder = tempfile.mkdtemp(prefix="procclean-launch-")
        atexit.register(shutil.rmtree, folder, True)
        os.chmod(folder, 0o755)
        path = os.path.join(folder, "procclean")
        with open(path, "w") as f:
            f.write(LAUNCHER_TEXT % {"folder": os.path.dirname(source)})
        os.chmod(path, 0o644)
        _LAUNCHERS[source] = path
    return path


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in STRIP_ENV and not k.startswith(STRIP_ENV_PREFIXES)}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    env.setdefault("LANG", "C.UTF-8")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return overlay_env(env, extra)


def overlay_env(env, changes):
    """A copy of env with changes applied: a value of None removes that variable."""
    env = dict(env)
    for k, v in (changes or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def wait_until(cond, timeout, step=0.02):
    """cond()'s first true value, or its last false one once `timeout` seconds have passed.
    For events a test awaits (a line in a log, a port that answers): never sleep-then-assert."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


# ---------------------------------------------------------------------------------------------
# the stand-in binary

_STANDIN = {}


def _tmp_base():
    # a short, neutral path: the agent and the stand-ins are visible in `ps -ef` inside the
    # namespace and must not match any pattern under test (no "main.py", "vite", "frontend").
    for d in ("/tmp", tempfile.gettempdir()):
        if os.path.isdir(d) and os.access(d, os.W_OK):
            return d
    return None


def standin_binary():
    """Path to the compiled stand-in (cached per source hash). Raises NamespaceError."""
    if "path" in _STANDIN:
        return _STANDIN["path"]
    if "error" in _STANDIN:
        raise NamespaceError(_STANDIN["error"])
    try:
        with open(STANDIN_SRC, "rb") as f:
            src = f.read()
        digest = hashlib.sha1(src).hexdigest()[:12]
        d = os.path.join(_tmp_base(), "pcstandin-%d-%s" % (os.getuid(), digest))
        out = os.path.join(d, "standin")
        if not os.access(out, os.X_OK):
            cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") \
                or shutil.which("clang")
            if not cc:
                raise NamespaceError("no C compiler (cc) to build tests/standin.c")
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
            tmp = out + ".%d.tmp" % os.getpid()
            r = subprocess.run([cc, "-O2", "-o", tmp, STANDIN_SRC], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            if r.returncode != 0:
                raise NamespaceError("cannot compile tests/standin.c: %s"
                                     % r.stdout.decode(errors="replace")[-500:])
            os.chmod(tmp, 0o755)
            os.replace(tmp, out)
        _STANDIN["path"] = out
        return out
    except NamespaceError as e:
        _STANDIN["error"] = str(e)
        raise
    except OSError as e:
        _STANDIN["error"] = "cannot build the stand-in: %s" % e
        raise NamespaceError(_STANDIN["error"])


# ---------------------------------------------------------------------------------------------
# API objects

class Proc(object):
    """A process to start in the namespace: a stand-in with this argv (or a real program with
    `path=`), its children, and its behaviour."""

    def __init__(self, argv, children=(), term="default", listen=None, connect=None, path=None,
                 cwd=None, env=None, user=None, inherit=False, reap=True, exit_now=False, comm=None,
                 http=None, onterm=(), respawn=False):
        self.argv = list(argv)
        self.children = list(children)
        self.term = term
        self.listen = [listen] if isinstance(listen, str) else list(listen or ())
        self.connect = [connect] if isinstance(connect, str) else list(connect or ())
        self.path = path
        self.cwd = None if cwd is None else str(cwd)
        self.env = env
        self.user = user
        self.inherit = inherit
        self.reap = reap
        self.exit_now = exit_now
        self.comm = comm
        self.http = http      # e.g. 200: listeners answer HTTP (health checks)
        # stand-ins forked on the first SIGTERM (needs term="catch" or "delay:MS"); not
        # started by spawn, so not in walk() or pids()
        self.onterm = list(onterm)
        self.respawn = respawn  # fork children[0] again whenever a child exits
        self.pid = None

    def walk(self):
        yield self
        for c in self.children:
            for n in c.walk():
                yield n

    def pids(self):
        """PIDs of this node and all its descendants (as spawned)."""
        return [n.pid for n in self.walk()]

    def to_json(self):
        return {"argv": self.argv, "children": [c.to_json() for c in self.children],
                "term": self.term, "listen": self.listen, "connect": self.connect,
                "path": self.path, "cwd": self.cwd, "env": self.env, "user": self.user,
                "inherit": self.inherit, "reap": self.reap, "exit_now": self.exit_now,
                "comm": self.comm, "http": self.http,
                "onterm": [c.to_json() for c in self.onterm], "respawn": self.respawn}

    def __repr__(self):
        return "Proc(%r, pid=%r)" % (self.argv, self.pid)


class Result(object):
    def __init__(self, d, argv):
        self.argv = argv
        self.rc = d["rc"]
        self.stdout = d["stdout"]
        self.stderr = d["stderr"]
        self.timed_out = d["timed_out"]
        self.elapsed = d["elapsed"]

    @property
    def stdout_bytes(self):
        return self.stdout.encode("utf-8", "surrogateescape")

    @property
    def stderr_bytes(self):
        return self.stderr.encode("utf-8", "surrogateescape")

    @property
    def output(self):
        return self.stdout + self.stderr

    def __repr__(self):
        return ("Result(argv=%r, rc=%r, timed_out=%r, elapsed=%.2f,\n--- stdout\n%s\n--- stderr\n"
                "%s)" % (self.argv, self.rc, self.timed_out, self.elapsed, self.stdout,
                         self.stderr))


class Job(object):
    """A command started with Namespace.start(): signal it, then wait()."""

    def __init__(self, ns, pid, argv):
        self.ns, self.pid, self.argv = ns, pid, argv
        self.result = None

    def signal(self, sig):
        self.ns.kill([self.pid], sig)

    def wait(self, timeout=60):
        if self.result is None:
            d = self.ns._call({"op": "wait", "pid": self.pid, "timeout": timeout},
                              timeout=timeout + 30)
            self.result = Result(d, self.argv)
        return self.result


# ---------------------------------------------------------------------------------------------

def _unshare_cmd():
    cmd = ["unshare", "--pid", "--fork", "--mount-proc", "--net", "--kill-child"]
    if os.geteuid() != 0:
        cmd[1:1] = ["--user", "--map-root-user"]
    return cmd


class Namespace(object):
    """A fresh PID + network namespace with an agent as PID 1 (a context manager)."""

    _available = None

    def __init__(self, cwd=None, env=None, timeout=30):
        self.cwd = None if cwd is None else str(cwd)
        self.procclean_file = None      # procclean_argv's copy of procclean.py (None: REPO's)
        self.base_env = clean_env(env)
        self.timeout = timeout
        self.proc = None
        self.tmp = None
        self.hello = None

    # -- availability -------------------------------------------------------------------------
    @classmethod
    def available(cls):
        """(True, "") when namespaces work here, else (False, reason). Cached."""
        if cls._available is not None:
            return cls._available
        if not sys.platform.startswith("linux"):
            cls._available = (False, "PID namespaces need Linux (this is %s)" % sys.platform)
        elif not shutil.which("unshare"):
            cls._available = (False, "no `unshare` command (util-linux)")
        else:
            try:
                standin_binary()
                with cls() as ns:
                    p = ns.spawn(Proc(["nslib-probe"]))
                    if ns.ps_pids() != sorted([1, p.pid]):
                        raise NamespaceError("namespace does not look private: %r" % ns.ps())
                cls._available = (True, "")
            except NamespaceError as e:
                cls._available = (False, "PID namespace unavailable: %s" % e)
            except OSError as e:
                cls._available = (False, "PID namespace unavailable: %s" % e)
        return cls._available

    # -- life cycle ---------------------------------------------------------------------------
    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    def open(self):
        self.standin = standin_binary()
        self.tmp = tempfile.mkdtemp(prefix="pcns-", dir=_tmp_base())
        os.chmod(self.tmp, 0o755)
        self.specdir = os.path.join(self.tmp, "spec")
        self.jobdir = os.path.join(self.tmp, "jobs")
        for d in (self.specdir, self.jobdir):
            os.mkdir(d)
            os.chmod(d, 0o777)
        agent = os.path.join(self.tmp, "agent.py")
        shutil.copyfile(AGENT_SRC, agent)
        os.chmod(agent, 0o644)
        base = _unshare_cmd()
        # util-linux older than 2.32 has no --kill-child; the agent also exits when its stdin
        # closes, so the namespace still dies with the test process.
        variants = [base, [a for a in base if a != "--kill-child"]]
        for n, unshare in enumerate(variants):
            cmd = unshare + [sys.executable, "-u", "-S", agent]
            self._buf = b""
            try:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, cwd=self.tmp,
                                             env=clean_env(), close_fds=True)
            except OSError as e:
                self._cleanup_tmp()
                raise NamespaceError("cannot run unshare: %s" % e)
            try:
                self.hello = self._read(timeout=self.timeout)
                break
            except NamespaceError:
                err = self._drain_stderr()
                p, self.proc = self.proc, None
                if p.poll() is None:
                    p.kill()            # the unshare process we started, by its PID
                    p.wait(timeout=10)
                for f in (p.stdin, p.stdout, p.stderr):
                    f.close()
                if n == 0 and "kill-child" in err:
                    continue
                self._cleanup_tmp()
                raise NamespaceError("unshare failed: %s" % err.strip()[-400:])
        if not self.hello.get("ok") or self.hello.get("pid") != 1:
            self.close()
            raise NamespaceError("agent refused: %r" % self.hello)
        return self

    def _drain_stderr(self):
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return ""
        return self.proc.stderr.read().decode("utf-8", "replace")

    def close(self):
        p, self.proc = self.proc, None
        if p is not None:
            try:
                if p.poll() is None:
                    try:
                        p.stdin.write(b'{"op": "exit"}\n')
                        p.stdin.flush()
                    except OSError:
                        pass
                    try:
                        p.stdin.close()
                    except OSError:
                        pass
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        # unshare --kill-child: its death SIGKILLs the agent, whose death ends
                        # the namespace. p.pid is the unshare process we started.
                        p.kill()
                        p.wait(timeout=10)
            finally:
                for f in (p.stdout, p.stderr, p.stdin):
                    try:
                        f.close()
                    except Exception:
                        pass
        self._cleanup_tmp()

    def _cleanup_tmp(self):
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    # -- protocol -----------------------------------------------------------------------------
    def _read(self, timeout):
        deadline = time.time() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.time()
            if left <= 0:
                raise NamespaceError("agent did not answer within %ss" % timeout)
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise NamespaceError("agent exited")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line.decode("ascii"))

    def _call(self, req, timeout=None):
        if self.proc is None:
            raise NamespaceError("namespace is closed")
        self.proc.stdin.write(json.dumps(req).encode("ascii") + b"\n")
        self.proc.stdin.flush()
        d = self._read(timeout or self.timeout + 30)
        if not d.get("ok"):
            raise NamespaceError("agent op %s failed: %s\n%s" % (req.get("op"), d.get("error"),
                                                                 d.get("traceback", "")))
        return d

    # -- processes ----------------------------------------------------------------------------
    def _env(self, env):
        return overlay_env(self.base_env, env)

    def spawn(self, proc, timeout=20):
        """Start proc (and its children) inside the namespace; fills every node's .pid."""
        self.spawn_trees([proc], timeout=timeout)
        return proc

    def spawn_trees(self, procs, timeout=20):
        nodes = []
        for p in procs:
            j = p.to_json()
            if j["env"]:
                j["env"] = self._env(j["env"])
            nodes.append(j)
        d = self._call({"op": "spawn", "nodes": nodes, "standin": self.standin,
                        "specdir": self.specdir, "env": self.base_env, "cwd": self.cwd,
                        "timeout": timeout}, timeout=timeout + 30)
        for p, pids in zip(procs, d["pids"]):
            for node, pid in zip(p.walk(), pids):
                node.pid = pid
        return procs

    def spawn_many(self, procs, timeout=120):
        """Many flat stand-ins (no children, no sockets), fast. Accepts Procs or argv lists."""
        items = []
        for p in procs:
            if isinstance(p, Proc):
                if p.children or p.listen or p.connect or p.path or p.user:
                    raise ValueError("spawn_many takes flat stand-ins only: %r" % p)
                items.append({"argv": p.argv, "term": p.term})
            else:
                items.append({"argv": list(p), "term": "default"})
        d = self._call({"op": "spawn_many", "procs": items, "standin": self.standin,
                        "specdir": self.specdir, "env": self.base_env, "timeout": timeout,
                        "cwd": self.cwd},
                       timeout=timeout + 60)
        for p, pid in zip(procs, d["pids"]):
            if isinstance(p, Proc):
                p.pid = pid
        return d["pids"]

    def zombie(self, parent_argv=("zombie-parent",), child_argv=("zombie-child",),
               timeout=10):
        """A stand-in parent that never reaps, with a child that exited: returns the parent
        Proc; parent.children[0].pid is the zombie."""
        parent = Proc(list(parent_argv), reap=False,
                      children=[Proc(list(child_argv), exit_now=True)])
        self.spawn(parent)
        zpid = parent.children[0].pid
        deadline = time.time() + timeout
        while self.state(zpid) != "Z":
            if time.time() > deadline:
                raise NamespaceError("child %d did not become a zombie (%r)"
                                     % (zpid, self.state(zpid)))
            time.sleep(0.005)
        return parent

    def start(self, argv, cwd=None, env=None, input=None, user=None, session=False):
        argv = [str(a) for a in argv]
        d = self._call({"op": "start", "argv": argv, "cwd": str(cwd or self.cwd or self.tmp),
                        "env": self._env(env), "input": input, "user": user,
                        "session": session, "jobdir": self.jobdir})
        return Job(self, d["pid"], argv)

    def run(self, argv, cwd=None, env=None, timeout=60, input=None, user=None):
        return self.start(argv, cwd=cwd, env=env, input=input, user=user).wait(timeout)

    def procclean_argv(self, *args, **kw):
        """`<python> LAUNCHER ARGS`: procclean.py run as `python -m procclean` runs it, from
        cached bytecode (see `launcher`); `self.procclean_file` picks another copy."""
        python = kw.get("python") or sys.executable
        return [python, launcher(python, self.procclean_file)] + [str(a) for a in args]

    def procclean(self, *args, **kw):
        """Run `<python> procclean.py ARGS` inside the namespace (kw: python, cwd, env,
        timeout, input, user)."""
        python = kw.pop("python", None)
        return self.run(self.procclean_argv(*args, python=python), **kw)

    def start_procclean(self, *args, **kw):
        python = kw.pop("python", None)
        return self.start(self.procclean_argv(*args, python=python), **kw)

    def kill(self, pids, sig=signal.SIGKILL):
        if isinstance(pids, int):
            pids = [pids]
        return self._call({"op": "kill", "pids": list(pids), "sig": int(sig)})["result"]

    def alive(self, pids):
        """The subset of pids still alive (zombies count as dead), in the given order."""
        if isinstance(pids, int):
            pids = [pids]
        return self._call({"op": "alive", "pids": list(pids)})["alive"]

    def is_alive(self, pid):
        return bool(self.alive([pid]))

    def dead(self, pids):
        alive = set(self.alive(pids))
        return [p for p in pids if p not in alive]

    def wait_dead(self, pids, timeout=5):
        deadline = time.time() + timeout
        while True:
            a = self.alive(pids)
            if not a or time.time() > deadline:
                return a
            time.sleep(0.01)

    def state(self, pid):
        return self._call({"op": "states", "pids": [pid]})["states"][str(pid)]

    def ps(self):
        """[{pid, ppid, state, uid, argv, comm}] of every process in the namespace."""
        return self._call({"op": "ps"})["ps"]

    def ps_pids(self):
        return sorted(p["pid"] for p in self.ps())

    def connect(self, host, port, timeout=2):
        """Can a TCP client inside the namespace connect to host:port?"""
        return self._call({"op": "connect", "host": host, "port": port,
                           "timeout": timeout})["connected"]


# ---------------------------------------------------------------------------------------------
# users

def ensure_user(name=TEST_USER):
    """Create a system user (real root only). NOTE: this changes the host's /etc/passwd; the
    name is clearly the tests'. Returns (uid, gid) or raises NamespaceError."""
    try:
        pw = pwd.getpwnam(name)
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        pass
    if os.geteuid() != 0 or not shutil.which("useradd"):
        raise NamespaceError("user %s missing and cannot be created (need root and useradd)"
                             % name)
    import fcntl
    # pytest-xdist workers (and other checkouts' runs) may all get here at once: useradd
    # fails with "cannot lock /etc/passwd" (exit 10) when another useradd holds it, so one
    # at a time, and whoever comes second finds the user made.
    with open(os.path.join(_tmp_base(), "procclean-test-useradd.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            pass
        r = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", name],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode not in (0, 9):  # 9: already exists (made by a run not taking our lock)
        raise NamespaceError("useradd %s failed: %s" % (name, r.stdout.decode(errors="replace")))
    pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid


def can_switch_users():
    """Stand-ins can run as other users only when the tests run as real root (in a
    --map-root-user namespace only our own uid is mapped)."""
    return os.geteuid() == 0
