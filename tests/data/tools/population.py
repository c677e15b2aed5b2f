#!/usr/bin/env python3
"""Record the process tables and listener listings under tests/data/ from a crafted population.

Run ONLY inside a throw-away PID + mount + network namespace, as root in it:

    cc -O2 -o /tmp/pcrec/standin tests/data/tools/standin.c
    /work/shared/sandbox python3 tests/data/tools/population.py ps OUTDIR
    /work/shared/sandbox python3 tests/data/tools/population.py wide OUTDIR
    /work/shared/sandbox python3 tests/data/tools/population.py ports OUTDIR

It refuses to run unless it is PID 1 (i.e. the namespace's init), so it can never disturb the
machine's real processes. Everything it starts dies with the namespace when it exits.

Inside the namespace it mounts a tmpfs on /home (paths like /home/dev/app/backend/main.py),
bind-mounts a copy of /etc/passwd that adds `dev` (1500) and `verylongusername` (1501), starts
the stand-ins, runs the listing tools and writes their raw output (bytes) to OUTDIR, plus
OUTDIR/truth-MODE.json: what /proc says of every process (pid, ppid, uid, comm, raw cmdline),
written independently of any ps parsing, to check the hand-written expectations against.
"""
import json
import os
import pty
import shutil
import socket
import subprocess
import sys
import time

STANDIN = os.environ.get("STANDIN", "/tmp/pcrec/standin")
PY = "/usr/bin/python3"
DEV, LONG = 1500, 1501
BIN = "/tmp/pcrec/bin"


def B(name):
    """A copy of the stand-in named NAME, so that the kernel's comm is NAME."""
    return os.path.join(BIN, name)


def sh(*cmd):
    subprocess.check_call(list(cmd))


def setup_fs():
    sh("mount", "-t", "tmpfs", "tmpfs", "/home")
    with open("/etc/passwd") as f:
        pw = f.read()
    pw += ("dev:x:1500:1500:Dev:/home/dev:/bin/bash\n"
           "verylongusername:x:1501:1501::/home/verylongusername:/bin/sh\n")
    with open("/tmp/pcrec/passwd", "w") as f:
        f.write(pw)
    sh("mount", "--bind", "/tmp/pcrec/passwd", "/etc/passwd")
    for d in ("/home/dev/app/backend", "/home/dev/app/frontend/node_modules/.bin",
              "/home/dev/app/.venv/bin", "/home/verylongusername/frontend",
              "/home/dev/caf\xe9".encode("latin-1").decode("utf-8", "surrogateescape")):
        os.makedirs(d, exist_ok=True)
    os.chown("/home/dev", DEV, DEV)
    os.makedirs(BIN, exist_ok=True)
    for name in ("python3.11", "python3", "node", "sh", "esbuild", "grep", "sshd", "standin"):
        shutil.copy(STANDIN, B(name))
    # backend/main.py: burns ~1.2 s of CPU, forks a child that exits and is never reaped
    # (a zombie), then sleeps.
    with open("/home/dev/app/backend/main.py", "w") as f:
        f.write("import os, time\n"
                "if os.environ.get('ZOMBIE') and os.fork() == 0:\n"
                "    os._exit(0)\n"
                "t = time.process_time()\n"
                "while time.process_time() - t < 1.2:\n"
                "    pass\n"
                "time.sleep(600)\n")
    # a venv-style console script: the kernel runs it as `/usr/bin/python3 .../uvicorn ARGS`,
    # and its comm is "uvicorn" (the script's name), not python3.
    with open("/home/dev/app/.venv/bin/uvicorn", "w") as f:
        f.write("#!/usr/bin/python3\nimport time\ntime.sleep(600)\n")
    os.chmod("/home/dev/app/.venv/bin/uvicorn", 0o755)


def spawn(argv, exe=STANDIN, env=None, uid=None, tty=None, cwd=None, child=None):
    """fork + exec argv (list of str or bytes) with executable exe; child=(args, kwargs) is
    forked from the new process before it execs, so its PPID is the new process."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.closerange(3, 1024)
        if tty is not None:
            os.setsid()
            fd = os.open(tty, os.O_RDWR)  # first tty opened by a session leader: ctty
            for n in (0, 1, 2):
                os.dup2(fd, n)
        else:
            null = os.open("/dev/null", os.O_RDWR)
            for n in (0, 1, 2):
                os.dup2(null, n)
        if cwd:
            os.chdir(cwd)
        if child:
            spawn(*child[0], **child[1])
            time.sleep(0.05)
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        e = {"PATH": "/usr/bin:/bin", "HOME": "/home/dev"}
        e.update(env or {})
        os.execve(exe, argv, e)
    except BaseException:
        os._exit(127)


def ps_population(tty):
    """The stand-ins of the ps recordings."""
    be = "/home/dev/app/backend"
    fe = "/home/dev/app/frontend"
    # 1. python main.py (real python) with an unreaped exited child: [python3] <defunct>
    spawn(["python3", "main.py"], exe=PY, uid=DEV, cwd=be, env={"ZOMBIE": "1"})
    # 2. argv renamed through execv: uvicorn main:app --reload (comm stays python3.11)
    spawn(["uvicorn", "main:app", "--reload"], exe=B("python3.11"), uid=DEV, cwd=be)
    # 3. a venv console script run by its shebang (real python)
    spawn([PY, "/home/dev/app/.venv/bin/uvicorn", "main:app", "--port", "8001"],
          exe=PY, uid=DEV, cwd=be)
    # 4. npm run dev (title and comm rewritten, as node's process.title does) -> sh -c vite
    #    -> node .../vite (path with spaces and parentheses) -> esbuild --service
    vite = "/home/dev/My App (copy)/frontend/node_modules/.bin/vite"
    esbuild = ((["/home/dev/My App (copy)/frontend/node_modules/@esbuild/linux-x64/bin/esbuild",
                 "--service=0.21.5", "--ping"],), {"exe": B("esbuild"), "uid": DEV})
    node = ((["node", vite, "--host", "0.0.0.0"],),
            {"exe": B("node"), "uid": DEV, "child": esbuild})
    shc = ((["sh", "-c", "vite --host 0.0.0.0"],), {"exe": B("sh"), "uid": DEV, "child": node})
    spawn(["npm", "run", "dev", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"], exe=B("node"), uid=DEV,
          tty=tty, cwd=fe, env={"STANDIN_TITLE": "npm run dev", "STANDIN_COMM": "npm run dev"},
          child=shc)
    # 5. a very long command line (> 300 characters) that matches uvicorn.*main late
    spawn(["/home/dev/app/.venv/bin/python3", "-X", "dev", "-W", "default", "-m", "uvicorn",
           "--host", "0.0.0.0", "--port", "8000", "--reload",
           "--reload-dir", "/home/dev/app/backend/src/services/authentication",
           "--reload-dir", "/home/dev/app/backend/src/services/notifications",
           "--reload-dir", "/home/dev/app/backend/src/services/payments",
           "--log-config", "/home/dev/app/backend/config/logging.development.yaml",
           "--env-file", "/home/dev/app/backend/.env.development.local",
           "main:app"], exe=B("python3"), uid=DEV, cwd=be)
    # 6. non-UTF-8 bytes in argv (latin-1 e9 in a directory name, a lone ff byte)
    spawn([b"python3", b"/home/dev/caf\xe9/main.py", b"--name=\xff"], exe=B("python3"), uid=DEV)
    # 7. a user whose name is longer than 8 characters
    spawn(["node", "/home/verylongusername/frontend/server.js"], exe=B("node"), uid=LONG,
          cwd="/home/verylongusername/frontend")
    # 8. argv wiped to NUL bytes; comm chosen to hold spaces and parentheses
    spawn(["esbuild", "--service=0.21.5", "--ping"], exe=B("esbuild"), uid=DEV,
          env={"STANDIN_ZERO_ARGV": "1", "STANDIN_COMM": "esbuild (x) y"})
    # 9. comm with spaces and parentheses but a normal argv
    spawn(["vite", "build", "--watch"], exe=B("node"), uid=DEV, cwd=fe,
          env={"STANDIN_COMM": "node (watch) 2"})
    # 10. someone's grep for the pattern (the seed's recipes drop lines holding "grep")
    spawn(["grep", "-E", "uvicorn.*main"], exe=B("grep"), uid=DEV)
    # 11. a root-owned unrelated daemon-looking process
    spawn(["/usr/sbin/sshd", "-D"], exe=B("sshd"))
    # 12. users with no name in /etc/passwd: ps shows the number (a 10-digit one overflows)
    spawn(["node", "/srv/frontend/index.js"], exe=B("node"), uid=100000)
    spawn(["python3", "-m", "http.server"], exe=B("python3"), uid=1234567890)


def ports_population():
    """Listeners on 8000 (with a connected client), [::1]:3000, *:8001 inherited by a forked
    child, [::]:9000 dual-stack, [::ffff:127.0.0.1]:9001, a bound but not listening socket."""
    with open("/home/dev/app/sockets.py", "w") as f:
        f.write(SOCKETS)
    for kind in ("backend", "vite", "uvicorn", "dual", "client", "browser"):
        spawn(["python3", "/home/dev/app/sockets.py", kind], exe=PY,
              uid=DEV if kind != "dual" else None)


SOCKETS = r'''import ctypes, os, socket, sys, time
def name(n):
    ctypes.CDLL(None).prctl(15, n.encode(), 0, 0, 0)
kind = sys.argv[1]
if kind == "backend":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 8000)); s.listen(8)
    c, _ = s.accept()
elif kind == "client":
    time.sleep(0.3); c = socket.create_connection(("127.0.0.1", 8000))
elif kind == "vite":
    name("node")
    s = socket.socket(socket.AF_INET6); s.bind(("::1", 3000)); s.listen(8)
    c, _ = s.accept()
elif kind == "browser":
    name("curl")
    time.sleep(0.3); c = socket.create_connection(("::1", 3000))
elif kind == "uvicorn":
    name("uvicorn")
    s = socket.socket(); s.bind(("0.0.0.0", 8001)); s.listen(8)
    if os.fork() == 0:
        name("uvicorn-worker")
elif kind == "dual":
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", 9000)); s.listen(8)
    m = socket.socket(socket.AF_INET6); m.bind(("::ffff:127.0.0.1", 9001)); m.listen(8)
    b = socket.socket(); b.bind(("127.0.0.1", 9002))  # bound, never listening
time.sleep(600)
'''


BB_LSOF = r'''import os
for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
    if pid == os.getpid():
        continue
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        exe = "(null)"
    try:
        fds = sorted(os.listdir("/proc/%d/fd" % pid), key=int)
    except OSError:
        continue
    for fd in fds:
        try:
            print("%d\t%s\t%s" % (pid, exe, os.readlink("/proc/%d/fd/%s" % (pid, fd))))
        except OSError:
            pass
'''


def truth():
    out = []
    for d in sorted((int(x) for x in os.listdir("/proc") if x.isdigit())):
        try:
            with open("/proc/%d/stat" % d, "rb") as f:
                st = f.read()
            with open("/proc/%d/cmdline" % d, "rb") as f:
                cmd = f.read()
            uid = os.stat("/proc/%d" % d).st_uid
            fds = {}
            for fd in os.listdir("/proc/%d/fd" % d):
                try:
                    t = os.readlink("/proc/%d/fd/%s" % (d, fd))
                except OSError:
                    continue
                if t.startswith("socket:["):
                    fds[fd] = int(t[8:-1])
        except OSError:
            continue
        comm = st[st.index(b"(") + 1:st.rindex(b")")]
        rest = st[st.rindex(b")") + 2:].split()
        out.append({"pid": d, "ppid": int(rest[1]), "state": rest[0].decode(), "uid": uid,
                    "comm": comm.decode("utf-8", "backslashreplace"),
                    "cmdline": cmd.decode("utf-8", "backslashreplace"), "sockets": fds})
    return out


def snapshot_proc(dest):
    """Copy /proc/{stat,uptime} and /proc/PID/{stat,status,cmdline} (raw bytes) to DEST, for
    the parser that builds the table from /proc where there is no ps."""
    def copy(src, dst):
        try:
            with open(src, "rb") as f:
                data = f.read()
        except OSError:
            return
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as f:
            f.write(data)
    copy("/proc/stat", os.path.join(dest, "stat"))
    copy("/proc/uptime", os.path.join(dest, "uptime"))
    for p in os.listdir("/proc"):
        if p.isdigit():
            for name in ("stat", "status", "cmdline"):
                copy("/proc/%s/%s" % (p, name), os.path.join(dest, p, name))


def record(outdir, name, cmd, env=None):
    e = dict(os.environ)
    e.pop("COLUMNS", None)
    e.update(env or {})
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e)
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(r.stdout)


def fake_btime(days):
    """Make ps believe the machine booted DAYS earlier (STIME then shows a date)."""
    with open("/proc/stat") as f:
        lines = f.read().splitlines(True)
    out = []
    for line in lines:
        if line.startswith("btime "):
            line = "btime %d\n" % (int(line.split()[1]) - int(days * 86400))
        out.append(line)
    path = "/tmp/pcrec/stat-%s" % days
    with open(path, "w") as f:
        f.write("".join(out))
    sh("mount", "--bind", path, "/proc/stat")


def main():
    if os.getpid() != 1:
        sys.exit("population.py: run me only as PID 1 of a fresh namespace (/work/shared/sandbox)")
    mode, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    setup_fs()
    env = {"LANG": "C.UTF-8", "TZ": "UTC"}
    os.environ.update(env)
    if mode == "ps":
        with open("/proc/sys/kernel/pid_max", "w") as f:
            f.write("32768")
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write("21400")
    elif mode == "wide":
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write("1234500")
    else:
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write("3100")
    master, slave = pty.openpty()
    tty = os.ttyname(slave)
    if mode in ("ps", "wide"):
        ps_population(tty)
    else:
        ports_population()
    time.sleep(2.0)
    with open(os.path.join(outdir, "truth-%s.json" % mode), "w") as f:
        json.dump({"tty": tty, "processes": truth()}, f, indent=1)
    if mode == "ps":
        snapshot_proc(os.path.join(outdir, "proc"))
        record(outdir, "linux-procps-ef.txt", ["ps", "-ef"])
        record(outdir, "linux-procps-columns80.txt", ["ps", "-ef"], {"COLUMNS": "80"})
        record(outdir, "busybox-ps.txt", ["busybox", "ps"])
        record(outdir, "busybox-ps-ef.txt", ["busybox", "ps", "-ef"])
        record(outdir, "busybox-ps-o.txt", ["busybox", "ps", "-o", "pid,ppid,user,args"])
        record(outdir, "busybox-ps-o-comm.txt",
               ["busybox", "ps", "-o", "pid,ppid,user,stat,comm,args"])
        record(outdir, "linux-procps-axww-o.txt",
               ["ps", "-axww", "-o", "pid,ppid,user,stat,etime,time,rss,%cpu,command"])
        record(outdir, "linux-procps-ef-bsd-personality.txt", ["ps", "-ef"],
               {"PS_PERSONALITY": "bsd"})
        record(outdir, "busybox-ps-o-unsupported.txt",
               ["busybox", "ps", "-o", "pid,ppid,user,etime,time,args"])
        fake_btime(40)
        record(outdir, "linux-procps-ef-stime-date.txt", ["ps", "-ef"])
        for loc in ("vi_VN", "ja_JP", "ca_ES", "et_EE"):
            record(outdir, "linux-procps-ef-%s.txt" % loc, ["ps", "-ef"],
                   {"LC_TIME": loc + ".UTF-8"})
        fake_btime(400)
        record(outdir, "linux-procps-ef-stime-year.txt", ["ps", "-ef"])
    elif mode == "wide":
        record(outdir, "linux-procps-ef-wide-pid.txt", ["ps", "-ef"])
    else:
        record(outdir, "linux-lsof.txt", ["lsof", "-nP", "-iTCP", "-sTCP:LISTEN"])
        record(outdir, "linux-lsof-port8000.txt", ["lsof", "-nP", "-iTCP:8000", "-sTCP:LISTEN"])
        record(outdir, "linux-lsof-F.txt", ["lsof", "-nP", "-iTCP", "-sTCP:LISTEN", "-Fpcn"])
        record(outdir, "linux-lsof-F-full.txt",
               ["lsof", "-nP", "-iTCP", "-sTCP:LISTEN", "-FpcfPtTn"])
        record(outdir, "linux-lsof-all.txt", ["lsof", "-nP", "-iTCP"])
        record(outdir, "linux-ss.txt", ["ss", "-ltnpH"])
        record(outdir, "linux-ss-all.txt", ["ss", "-tanpH"])
        record(outdir, "linux-proc-net-tcp.txt", ["cat", "/proc/net/tcp"])
        record(outdir, "linux-proc-net-tcp6.txt", ["cat", "/proc/net/tcp6"])
        # Debian's busybox has no lsof applet: this records "lsof: applet not found".
        record(outdir, "busybox-lsof-debian.txt", ["busybox", "lsof", "-i", ":8000"])
        # What Alpine's busybox lsof prints, by the algorithm of busybox procps/lsof.c run over
        # this live population: it ignores its arguments; for every /proc/PID (ascending)
        # but its own, every fd: "PID<TAB>exe<TAB>readlink(fd)".
        record(outdir, "busybox-lsof.txt", [PY, "-c", BB_LSOF, "-i", ":8000"])
        # Debian's busybox netstat has no -p (no PIDs): -ltn / -tan only
        record(outdir, "busybox-netstat-ltn.txt", ["busybox", "netstat", "-ltn"])
        record(outdir, "busybox-netstat-tan.txt", ["busybox", "netstat", "-tan"])
        record(outdir, "ps-ef-ports.txt", ["ps", "-ef"])


if __name__ == "__main__":
    main()
