"""The agent that runs as PID 1 inside a test PID+network namespace (see nslib.py).

It is started by nslib.Namespace through
    unshare --pid --fork --mount-proc --net --kill-child [--user --map-root-user] python -u agent.py
and talks JSON lines: one request per line on stdin, one answer per line on stdout.
Strings that came from bytes (command lines, output) are decoded as UTF-8 with
'surrogateescape'; json keeps the lone surrogates as \\udcXX escapes, so nothing is lost.

It refuses to do anything unless it really is PID 1 of a fresh namespace: nothing it starts can
ever see, let alone signal, the machine's real processes.
"""
import json
import os
import pwd
import select
import signal
import socket
import struct
import subprocess
import sys
import time

ENC = "utf-8"
ERR = "surrogateescape"


def dec(b):
    return b.decode(ENC, ERR)


def enc(s):
    return s.encode(ENC, ERR)


# ---------------------------------------------------------------------------------------------
# process table and reaping

JOBS = {}        # pid -> {"status": None|int, "out": path, "err": path, "started": t}
EXITED = {}      # pid -> wait status, for jobs


def reap():
    """Reap every exited child of PID 1 (orphans are reparented to us)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if pid == 0:
            return
        if pid in JOBS:
            JOBS[pid]["status"] = status


def proc_stat(pid):
    """(state, ppid, uid) of pid from /proc, or None when it does not exist."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    state = dec(rest[0])
    ppid = int(rest[1])
    try:
        uid = os.stat("/proc/%d" % pid).st_uid
    except OSError:
        uid = None
    return state, ppid, uid


def is_alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X", "x")


def ps():
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        st = proc_stat(pid)
        if st is None:
            continue
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                raw = f.read()
        except OSError:
            raw = b""
        argv = [dec(a) for a in raw.split(b"\0")[:-1]] if raw else []
        try:
            with open("/proc/%d/comm" % pid, "rb") as f:
                comm = dec(f.read().rstrip(b"\n"))
        except OSError:
            comm = ""
        out.append({"pid": pid, "ppid": st[1], "state": st[0], "uid": st[2],
                    "argv": argv, "comm": comm})
    out.sort(key=lambda p: p["pid"])
    return out


def descendants(pid):
    table = ps()
    kids = {}
    for p in table:
        kids.setdefault(p["ppid"], []).append(p["pid"])
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, ()):
            if c not in found:
                found.append(c)
                todo.append(c)
    return found


# ---------------------------------------------------------------------------------------------
# starting things

def _ids(user):
    if user is None:
        return None
    if isinstance(user, int):
        pw = pwd.getpwuid(user)
    else:
        pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


def _preexec(ids, new_session=False):
    def fn():
        if new_session:
            os.setsid()
        if ids is not None:
            try:
                os.setgroups([])
            except PermissionError:
                pass
            os.setgid(ids[1])
            os.setuid(ids[0])
    return fn


def _forget(p):
    # We reap with waitpid(-1) ourselves: keep Popen's own bookkeeping from ever waiting on a
    # PID that may since have been reused.
    p.returncode = 0


def esc(v):
    return (v.replace("\\", "\\\\").replace("\n", "\\n"))


def write_spec(specdir, node, ready):
    """Write the spec files for node and its children; return node ids in walk order."""
    order = []

    def walk(n, started=True):
        nid = "n%d" % walk.counter
        walk.counter += 1
        n["id"] = nid
        if started:
            order.append(n)
        child_files = [walk(c, started) for c in n.get("children", ())]
        onterm_files = [walk(c, False) for c in n.get("onterm") or ()]
        lines = ["id=" + nid, "ready=" + ready]
        if n.get("term"):
            lines.append("term=" + n["term"])
        for a in n.get("listen") or ():
            lines.append("listen=" + a)
        for a in n.get("connect") or ():
            lines.append("connect=" + a)
        if n.get("inherit"):
            lines.append("inherit=1")
        if n.get("http"):
            lines.append("http=%d" % int(n["http"]))
        if n.get("reap") is False or n.get("reap") == 0:
            lines.append("reap=0")
        if n.get("exit_now"):
            lines.append("exit=now")
        if n.get("cwd"):
            lines.append("cwd=" + esc(n["cwd"]))
        if n.get("comm"):
            lines.append("comm=" + esc(n["comm"]))
        if n.get("path"):
            lines.append("path=" + esc(n["path"]))
        ids = _ids(n.get("user"))
        if ids is not None:
            lines.append("uid=%d" % ids[0])
            lines.append("gid=%d" % ids[1])
        for a in n["argv"]:
            lines.append("arg=" + esc(a))
        for cf in child_files:
            lines.append("child=" + cf)
        for cf in onterm_files:
            lines.append("onterm=" + cf)
        if n.get("respawn"):
            lines.append("respawn=1")
        path = os.path.join(specdir, nid + ".spec")
        with open(path, "w", encoding=ENC, errors=ERR) as f:
            f.write("\n".join(lines) + "\n")
        return path

    walk.counter = write_spec.counter
    root_file = walk(node)
    write_spec.counter = walk.counter
    return root_file, order


write_spec.counter = 0


def op_spawn(req):
    standin = req["standin"]
    specdir = req["specdir"]
    ready = os.path.join(specdir, "ready")
    os.makedirs(ready, exist_ok=True)
    os.chmod(ready, 0o777)
    results = []
    for node in req["nodes"]:
        root_file, order = write_spec(specdir, node, ready)
        env = dict(req["env"])
        if node.get("env"):
            env.update(node["env"])
        env["STANDIN_SPEC"] = root_file
        real = node.get("path")
        if real and node.get("children"):
            raise ValueError("a node with path= cannot have stand-in children")
        if real:
            # a real program: it cannot read the spec, so no listen/connect/term either
            env.pop("STANDIN_SPEC", None)
        p = subprocess.Popen(
            [enc(a) for a in node["argv"]], executable=enc(real or standin),
            cwd=node.get("cwd") or req.get("cwd"), env={enc(k): enc(v) for k, v in env.items()},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if not req.get("stderr") else None,
            preexec_fn=_preexec(_ids(node.get("user")), node.get("session", False)),
            close_fds=True)
        _forget(p)
        pids = {order[0]["id"]: p.pid} if real else {}
        want = [n["id"] for n in order if n["id"] not in pids]
        deadline = time.time() + req.get("timeout", 20)
        while True:
            reap()
            missing = [w for w in want if not os.path.exists(os.path.join(ready, w))]
            if not missing:
                break
            if time.time() > deadline:
                raise RuntimeError("stand-in tree did not get ready: missing %s (root pid %d, "
                                   "alive=%s)" % (missing, p.pid, is_alive(p.pid)))
            time.sleep(0.002)
        for w in want:
            with open(os.path.join(ready, w)) as f:
                pids[w] = int(f.read().strip())
        results.append([pids[n["id"]] for n in order])
    return {"pids": results}


def op_spawn_many(req):
    """Many flat stand-ins, children of PID 1, as fast as possible (posix_spawn)."""
    standin = enc(req["standin"])
    base_env = {enc(k): enc(v) for k, v in req["env"].items() if k != "STANDIN_SPEC"}
    specdir = req["specdir"]
    spec_for_term = {}
    pids = []
    have_spawn = hasattr(os, "posix_spawn")
    home = os.getcwd()
    if req.get("cwd"):
        os.chdir(req["cwd"])        # posix_spawn has no cwd: the children inherit ours
    try:
        _spawn_items(req, standin, base_env, specdir, spec_for_term, pids, have_spawn)
    finally:
        os.chdir(home)
    _wait_exec(req, pids)
    return {"pids": pids}


def _spawn_items(req, standin, base_env, specdir, spec_for_term, pids, have_spawn):
    for item in req["procs"]:
        env = dict(base_env)
        term = item.get("term") or "default"
        if term != "default":
            if term not in spec_for_term:
                path = os.path.join(specdir, "many-%d.spec" % len(spec_for_term))
                with open(path, "w") as f:
                    f.write("term=%s\n" % term)
                spec_for_term[term] = path
            env[b"STANDIN_SPEC"] = enc(spec_for_term[term])
        argv = [enc(a) for a in item["argv"]]
        if have_spawn:
            pid = os.posix_spawn(standin, argv, env, setsigdef=(signal.SIGPIPE,))
        else:
            p = subprocess.Popen(argv, executable=standin,
                                 env=env,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            _forget(p)
            pid = p.pid
        pids.append(pid)
        if len(pids) % 256 == 0:
            reap()


def _wait_exec(req, pids):
    # posix_spawn returns once the exec has begun (vfork semantics in glibc): the new exe is
    # set, but the kernel fills in argv a moment later; until then /proc/PID/cmdline is empty
    # and `ps -ef` shows "[standin]", which no pattern matches (on a busy machine a caller's
    # `ps` got there first). Wait for both.
    deadline = time.time() + req.get("timeout", 60)
    target = enc(req["standin"])
    for pid in pids:
        while True:
            try:
                if os.readlink("/proc/%d/exe" % pid) == dec(target):
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        if f.read(1):
                            break
            except OSError:
                break  # gone already: the caller will see it dead
            if time.time() > deadline:
                raise RuntimeError("spawn_many: pid %d did not exec" % pid)
            time.sleep(0.001)
    return {"pids": pids}


def op_start(req):
    jobdir = req["jobdir"]
    os.makedirs(jobdir, exist_ok=True)
    os.chmod(jobdir, 0o777)
    n = op_start.counter = op_start.counter + 1
    out = os.path.join(jobdir, "job%d.out" % n)
    err = os.path.join(jobdir, "job%d.err" % n)
    if req.get("input") is not None:
        inp = os.path.join(jobdir, "job%d.in" % n)
        with open(inp, "wb") as f:
            f.write(enc(req["input"]))
        stdin = open(inp, "rb")
    else:
        stdin = open(os.devnull, "rb")
    with stdin, open(out, "wb") as fo, open(err, "wb") as fe:
        p = subprocess.Popen([enc(a) for a in req["argv"]], cwd=req.get("cwd"),
                             env={enc(k): enc(v) for k, v in req["env"].items()},
                             stdin=stdin, stdout=fo, stderr=fe,
                             preexec_fn=_preexec(_ids(req.get("user")),
                                                 req.get("session", False)),
                             close_fds=True)
    _forget(p)
    JOBS[p.pid] = {"status": None, "out": out, "err": err, "started": time.time()}
    return {"pid": p.pid}


op_start.counter = 0


def op_wait(req):
    pid = req["pid"]
    job = JOBS[pid]
    deadline = time.time() + req.get("timeout", 60)
    timed_out = False
    while True:
        reap()
        if job["status"] is not None:
            break
        if time.time() > deadline:
            timed_out = True
            for p in [pid] + descendants(pid):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            while job["status"] is None:
                reap()
                time.sleep(0.005)
            break
        time.sleep(0.003)
    status = job["status"]
    if os.WIFEXITED(status):
        rc = os.WEXITSTATUS(status)
    else:
        rc = -os.WTERMSIG(status)
    with open(job["out"], "rb") as f:
        out = f.read()
    with open(job["err"], "rb") as f:
        err = f.read()
    del JOBS[pid]
    return {"rc": rc, "stdout": dec(out), "stderr": dec(err), "timed_out": timed_out,
            "elapsed": time.time() - job["started"]}


def op_kill(req):
    res = {}
    for pid in req["pids"]:
        if pid <= 1:
            raise ValueError("refusing to signal pid %r" % pid)
        try:
            os.kill(pid, req.get("sig", signal.SIGKILL))
            res[str(pid)] = "ok"
        except ProcessLookupError:
            res[str(pid)] = "ESRCH"
        except PermissionError:
            res[str(pid)] = "EPERM"
    return {"result": res}


def op_alive(req):
    reap()
    return {"alive": [p for p in req["pids"] if is_alive(p)]}


def op_states(req):
    reap()
    out = {}
    for p in req["pids"]:
        st = proc_stat(p)
        out[str(p)] = st[0] if st else None
    return {"states": out}


def op_ps(req):
    reap()
    return {"ps": ps()}


def op_connect(req):
    """Try a TCP connection from inside the namespace."""
    host, port = req["host"], req["port"]
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(req.get("timeout", 2))
    try:
        s.connect((host, port))
        return {"connected": True}
    except OSError as e:
        return {"connected": False, "error": str(e)}
    finally:
        s.close()


OPS = {"spawn": op_spawn, "spawn_many": op_spawn_many, "start": op_start, "wait": op_wait,
       "kill": op_kill, "alive": op_alive, "states": op_states, "ps": op_ps,
       "connect": op_connect}


def loopback_up():
    for cmd in (["ip", "link", "set", "lo", "up"], ["/sbin/ip", "link", "set", "lo", "up"],
                ["/usr/sbin/ip", "link", "set", "lo", "up"], ["ifconfig", "lo", "up"],
                ["/sbin/ifconfig", "lo", "up"]):
        try:
            if subprocess.call(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
                return "ip"
        except OSError:
            continue
    # ioctl SIOCSIFFLAGS, IFF_UP|IFF_LOOPBACK|IFF_RUNNING
    try:
        import fcntl
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
        ifr = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s, SIOCGIFFLAGS, ifr))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | 0x1 | 0x40))
        s.close()
        return "ioctl"
    except Exception as e:  # best effort
        return "failed: %s" % e


def main():
    # protocol channel on private fds; 0/1 become /dev/null so nothing we start inherits them
    rfd = os.dup(0)
    wfd = os.dup(1)
    os.set_inheritable(rfd, False)
    os.set_inheritable(wfd, False)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    rin = os.fdopen(rfd, "rb", buffering=0)
    wout = os.fdopen(wfd, "wb", buffering=0)

    def send(obj):
        wout.write(json.dumps(obj).encode("ascii") + b"\n")

    if os.getpid() != 1:
        send({"ok": False, "error": "ns_agent: not PID 1 of a new PID namespace; refusing"})
        return 3
    # As PID 1 we cannot be killed from inside the namespace except by signals we handle;
    # Python's SIGINT handler would be one, so drop it (children get SIG_DFL after exec).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # A suite run under nohup (or by a CI runner that ignores SIGHUP) must not hand that
    # on: an ignored signal stays ignored across exec, and `procclean dev` reads an
    # ignored SIGHUP as nohup's "outlive the terminal" (then its hang-up tests fail).
    # What runs in here starts as from a fresh terminal.
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)
    lo = loopback_up()
    send({"ok": True, "hello": True, "pid": os.getpid(), "loopback": lo,
          "euid": os.geteuid()})
    buf = b""
    while True:
        reap()
        r, _, _ = select.select([rin], [], [], 0.01)
        if not r:
            continue
        chunk = rin.read(65536)
        if not chunk:
            return 0  # the test process went away: PID 1 exits, the kernel kills the rest
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if not line.strip():
                continue
            req = json.loads(line.decode("ascii"))
            if req.get("op") == "exit":
                send({"ok": True})
                return 0
            try:
                res = OPS[req["op"]](req)
                res["ok"] = True
            except Exception as e:
                import traceback
                res = {"ok": False, "error": "%s: %s" % (type(e).__name__, e),
                       "traceback": traceback.format_exc()}
            send(res)


if __name__ == "__main__":
    sys.exit(main())
