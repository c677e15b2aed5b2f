"""`doctor` (issue 8), black-box, inside throw-away PID + network namespaces.

Each finding is reproduced, then fixed by running the exact `fix:` command doctor printed (as
`sh -c` in the project folder, with procclean.py copied there the way a team vendors it), after
which doctor must no longer report it. `doctor --fix` applies only the safe fixes and never
kills a stranger on a port; `doctor --fix --dry-run` changes nothing.

Everything runs through the `ns` fixture: no procclean process ever sees this machine's real
processes.
"""
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from integ_helpers import assert_alive, assert_dead, no_traceback, npm_chain, write
from nslib import PROCCLEAN, Proc

PROG = "python3 procclean.py"


# --- harness -----------------------------------------------------------------------------------

class Report(object):
    """A doctor run, parsed: findings as (text, fix) pairs, `fixed:` lines, the summary."""

    def __init__(self, result):
        self.result = result
        self.rc = result.rc
        self.stdout = result.stdout
        self.findings = []
        self.fixed = []
        lines = result.stdout.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("    fix: "):
                self.findings.append((_unmark(lines[i - 1]), line[len("    fix: "):]))
            elif re.match(r"^\S+ fixed: ", line):
                self.fixed.append(line.split(" fixed: ", 1)[1])
        self.all_well = bool(re.search(r"^\S+ all well$", result.stdout, re.M))

    def about(self, *words):
        """The findings whose text contains every word."""
        return [(t, f) for t, f in self.findings if all(w in t for w in words)]

    def one(self, *words):
        found = self.about(*words)
        assert len(found) == 1, "expected one finding with %r:\n%r" % (words, self)
        return found[0]

    def __repr__(self):
        return repr(self.result)


def _unmark(line):
    # "<mark> text": the mark is an emoji or [warning], one token
    return line.split(None, 1)[1] if line.split(None, 1)[1:] else line


@pytest.fixture
def project(ns, tmp_path, standin_path):
    """The project folder (the namespace's working folder), with procclean.py vendored in it
    and a bin folder put first on PATH: `python3` there is the interpreter under test and
    `npm` a stub that is never run (doctor only checks it is installed)."""
    shutil.copyfile(PROCCLEAN, str(tmp_path / "procclean.py"))
    bindir = tmp_path / ".bin"
    bindir.mkdir()
    write(bindir / "npm", "#!/bin/sh\necho 'npm stub: never run by doctor' >&2\nexit 1\n")
    os.chmod(str(bindir / "npm"), 0o755)
    return Project(ns, tmp_path, bindir)


class Project(object):
    def __init__(self, ns, folder, bindir):
        self.ns = ns
        self.folder = folder
        self.bindir = bindir
        self.python = None
        self.use_python(os.path.realpath(sys.executable))

    def use_python(self, python):
        self.python = python
        link = self.bindir / "python3"
        if os.path.lexists(str(link)):
            os.remove(str(link))
        os.symlink(python, str(link))

    def env(self, extra=None):
        env = {"PATH": "%s:%s" % (self.bindir, os.environ.get("PATH", "/usr/bin:/bin"))}
        env.update(extra or {})
        return env

    def doctor(self, *args, **kw):
        # The vendored copy, as the team runs it: its fix lines name it by its real path.
        r = self.ns.run([self.python, str(self.folder / "procclean.py"), "doctor"] + list(args),
                        env=self.env(kw.get("env")))
        no_traceback(r)
        return Report(r)

    def run_fix(self, fix):
        """Run the command doctor printed, as it is, in the project folder. For advice
        ("check PID 5 is yours, then: CMD") the command after "then: "."""
        command = fix.split("then: ", 1)[1] if "then: " in fix else fix
        assert command.startswith(PROG + " ") or re.match(r"^kill \d+( \d+)*$", command), \
            "not a procclean command nor a kill by PID: %r" % fix
        r = self.ns.run(["sh", "-c", command], env=self.env())
        no_traceback(r)
        return r

    def path(self, name):
        return self.folder / name

    def pidfile(self, name, content, mode=0o644, age=None):
        path = self.path(name)
        write(path, content)
        os.chmod(str(path), mode)
        if age is not None:
            then = time.time() - age
            os.utime(str(path), (then, then))
        return path

    def dead_pid(self):
        """A PID that certainly names no process: a stand-in's, after it was killed."""
        p = self.ns.spawn(Proc(["short-lived"]))
        self.ns.kill(p.pid, signal.SIGKILL)
        assert self.ns.wait_dead([p.pid]) == []
        return p.pid


def reports(project, finding, total=1):
    """doctor exits 1 and reports `finding` ((text, fix), to the letter), among `total`
    findings in all; the report."""
    rep = project.doctor()
    assert rep.rc == 1, rep
    assert rep.one(finding[0]) == finding, rep
    assert len(rep.findings) == total, rep
    return rep


def fix_and_recheck(project, report, finding, *doctor_args):
    """Run the finding's fix command; doctor must then not report that finding again."""
    text, fix = finding
    r = project.run_fix(fix)
    after = project.doctor(*doctor_args)
    assert text not in [t for t, _ in after.findings], (r, after)
    return r, after


# --- pidfiles ----------------------------------------------------------------------------------

def test_stale_pidfile(project, python_edge):
    project.use_python(python_edge)
    pid = project.dead_pid()
    project.pidfile("backend.pid", "%d\n" % pid)
    finding = ("backend.pid: names PID %d, which is not running (stale)" % pid,
               PROG + " clean backend")
    rep = reports(project, finding)
    assert "1 finding(s) need action" in rep.stdout
    r, after = fix_and_recheck(project, rep, finding)
    assert r.rc == 0, r
    assert not project.path("backend.pid").exists()
    assert after.rc == 0 and after.all_well and after.findings == [], after


def test_pidfile_naming_a_zombie_is_stale(project):
    parent = project.ns.zombie(["zombie-keeper"], ["python3", "main.py"])
    zpid = parent.children[0].pid
    project.pidfile("backend.pid", "%d\n" % zpid)
    rep = project.doctor("backend")
    assert rep.rc == 1, rep
    finding = rep.one("backend.pid", "PID %d" % zpid, "stale")
    assert finding[1] == PROG + " clean backend"
    r, after = fix_and_recheck(project, rep, finding, "backend")
    assert after.rc == 0 and after.all_well, after
    assert_alive(project.ns, [parent.pid])


@pytest.mark.parametrize("content,shown", [
    (b"abc\n", r"'abc\n'"),
    (b"", "''"),
    (b"1\n", r"'1\n'"),                    # PID 1 (init) is never a service
    (b"-42\n", r"'-42\n'"),
    (b"12 34\n", r"'12 34\n'"),
    (b"\xff\xfe\x1b[2J\n", r"'\xff\xfe\x1b[2J\n'"),   # bytes, a terminal escape: escaped
], ids=["letters", "empty", "pid1", "negative", "two-numbers", "binary"])
def test_invalid_pidfile(project, content, shown):
    project.pidfile("frontend.pid", content)
    finding = ("frontend.pid: does not hold a valid PID (%s)" % shown, PROG + " clean frontend")
    rep = reports(project, finding)
    assert "\x1b" not in rep.stdout, rep
    r, after = fix_and_recheck(project, rep, finding)
    assert r.rc == 0, r
    assert not project.path("frontend.pid").exists()
    assert after.rc == 0 and after.all_well, after


def test_reused_pid(project, python_edge):
    """The pidfile was written an hour ago; the PID it names now belongs to a process that
    started later and does not match the pattern: not the service, never to be killed."""
    project.use_python(python_edge)
    db = project.ns.spawn(Proc(["postgres", "-D", "/var/lib/postgresql/data"]))
    project.pidfile("backend.pid", "%d\n" % db.pid, age=3600)
    finding = ("backend.pid: PID %d now belongs to a process that started after the pidfile "
               "was written (postgres -D /var/lib/postgresql/data)" % db.pid,
               PROG + " clean backend")
    rep = reports(project, finding)
    r, after = fix_and_recheck(project, rep, finding)
    assert r.rc == 0, r
    assert not project.path("backend.pid").exists()
    assert_alive(project.ns, [db.pid], r)
    assert after.rc == 0 and after.all_well, after


def test_pidfile_older_than_its_non_matching_process_is_trusted(project):
    """The other side of the reuse rule: a gunicorn started and then recorded in the pidfile
    is the service even though the pattern does not name it -- nothing to report."""
    app = project.ns.spawn(Proc(["gunicorn", "app:application", "--workers", "2"],
                                children=[Proc(["gunicorn-worker"]), Proc(["gunicorn-worker"])]))
    time.sleep(0.05)
    project.pidfile("backend.pid", "%d\n" % app.pid)
    rep = project.doctor()
    assert rep.rc == 0 and rep.all_well and rep.findings == [], rep


@pytest.fixture
def as_root():
    if os.geteuid() != 0:
        pytest.skip("the world-writable pidfile rule applies when procclean runs as root")


def test_world_writable_pidfile_as_root(project, as_root):
    """Anyone could aim a world-writable pidfile at any process (here sshd): as root doctor
    reports it, the printed fix removes it, and nothing named by it is signalled."""
    sshd = project.ns.spawn(Proc(["sshd: /usr/sbin/sshd -D [listener]"]))
    path = project.pidfile("backend.pid", "%d\n" % sshd.pid, mode=0o666)
    finding = ("backend.pid: other users can write it, so it is not trusted as root",
               PROG + " clean backend")
    rep = reports(project, finding)
    r, after = fix_and_recheck(project, rep, finding)
    assert r.rc == 0, r
    assert not path.exists()
    assert_alive(project.ns, [sshd.pid], r)
    assert after.rc == 0 and after.all_well, after
    # doctor --fix does the same: removes it, signals nothing
    path = project.pidfile("backend.pid", "%d\n" % sshd.pid, mode=0o666)
    fixed = project.doctor("--fix")
    assert fixed.rc == 0 and fixed.all_well, fixed
    assert not path.exists()
    assert_alive(project.ns, [sshd.pid], fixed)


def test_group_writable_pidfile_of_root_group_is_trusted(project, as_root):
    app = project.ns.spawn(Proc(["python3", "main.py"], listen="127.0.0.1:8000"))
    project.pidfile("backend.pid", "%d\n" % app.pid, mode=0o664)   # root:root, group root
    rep = project.doctor("backend")
    assert rep.rc == 0 and rep.all_well, rep


# --- leftovers and orphans ---------------------------------------------------------------------

def test_leftover_outside_the_pidfile_tree(project, python_edge):
    """The pidfile names a live backend; another uvicorn (started by hand, under a shell) runs
    outside its tree."""
    project.use_python(python_edge)
    live = project.ns.spawn(Proc(["python3", "main.py"], listen="127.0.0.1:8000",
                                 children=[Proc(["python3", "-c", "worker"])]))
    shell = project.ns.spawn(Proc(["-bash"], children=[
        Proc(["uvicorn", "main:app", "--port", "8001"], listen="127.0.0.1:8001")]))
    extra = shell.children[0]
    project.pidfile("backend.pid", "%d\n" % live.pid)
    # The fix names the leftover's PID: the service the pidfile tracks keeps running.
    finding = ("backend: 1 process(es) run that its pidfile does not account for "
               "(PID %d)" % extra.pid, "kill %d" % extra.pid)
    rep = reports(project, finding)
    r, after = fix_and_recheck(project, rep, finding)
    assert r.rc == 0, r
    assert_dead(project.ns, [extra.pid], r)
    assert_alive(project.ns, [shell.pid, live.pid], r)
    assert after.rc == 0 and after.all_well, after


def test_doctor_fix_stops_the_leftover_not_the_running_service(project):
    """--fix applies safe fixes only: the leftover is stopped; the backend the pidfile names
    (healthy, accounted for) keeps running and keeps its pidfile."""
    live = project.ns.spawn(Proc(["python3", "main.py"], listen="127.0.0.1:8000"))
    shell = project.ns.spawn(Proc(["-bash"], children=[
        Proc(["uvicorn", "main:app", "--port", "8001"], listen="127.0.0.1:8001")]))
    extra = shell.children[0]
    project.pidfile("backend.pid", "%d\n" % live.pid)
    rep = project.doctor("--fix")
    assert_dead(project.ns, [extra.pid], rep)
    assert rep.rc == 0 and rep.all_well, rep
    assert_alive(project.ns, [live.pid, shell.pid], rep)
    assert project.path("backend.pid").exists(), rep


def test_orphan_of_a_dead_service_still_matching(project, python_edge):
    """npm (the pidfile's PID) was SIGKILLed; vite, reparented to init, still runs."""
    project.use_python(python_edge)
    root = project.ns.spawn(Proc(["npm", "run", "dev"], children=[
        Proc(["node", "/app/frontend/node_modules/.bin/vite"], listen="127.0.0.1:3000")]))
    vite = root.children[0]
    project.pidfile("frontend.pid", "%d\n" % root.pid)
    project.ns.kill(root.pid, signal.SIGKILL)
    assert project.ns.wait_dead([root.pid]) == []
    assert {p["pid"]: p["ppid"] for p in project.ns.ps()}[vite.pid] == 1
    orphan = ("frontend: PID %d outlived its parent (now under init) and still matches the "
              "pattern: node /app/frontend/node_modules/.bin/vite" % vite.pid,
              PROG + " stop frontend")
    rep = reports(project, orphan, total=2)
    stale = rep.one("frontend.pid", "stale")
    r, after = fix_and_recheck(project, rep, orphan)
    assert r.rc == 0, r
    assert_dead(project.ns, [vite.pid], r)
    assert stale[0] not in [t for t, _ in after.findings], after   # stop removed the pidfile
    assert after.rc == 0 and after.all_well, after


def test_orphan_tree_is_one_finding(project):
    """vite orphaned with its esbuild child: the orphan's own descendants are part of the
    orphan (stopped with it), not separate "leftovers" the pidfile does not account for."""
    chain = project.ns.spawn(npm_chain())          # npm -> sh -c vite -> node vite -> esbuild
    sh = chain.children[0]
    vite = sh.children[0]
    esbuild = vite.children[0]
    project.pidfile("frontend.pid", "%d\n" % chain.pid)
    project.ns.kill([chain.pid, sh.pid], signal.SIGKILL)
    assert project.ns.wait_dead([chain.pid, sh.pid]) == []
    rep = project.doctor("frontend")
    assert rep.rc == 1, rep
    rep.one("frontend:", "PID %d outlived its parent" % vite.pid)
    assert rep.about("pidfile does not account for") == [], rep
    r = project.run_fix(rep.one("outlived")[1])
    assert_dead(project.ns, [vite.pid, esbuild.pid], r)


def test_orphaned_worker_holding_the_port(project):
    """uvicorn --reload's reloader was SIGKILLed: its worker (which the pattern does not name)
    still holds port 8000. Reported as an orphan holding the port; its fix is advice (the stop
    that takes it, as this project's listener on the port), and --fix does not kill it."""
    reloader = Proc(["/usr/bin/python3", "/venv/bin/uvicorn", "main:app", "--reload"],
                    listen="127.0.0.1:8000", inherit=True, children=[
                        Proc(["/usr/bin/python3", "-c",
                              "from multiprocessing.spawn import spawn_main; spawn_main()",
                              "--multiprocessing-fork"])])
    project.ns.spawn(reloader)
    worker = reloader.children[0]
    project.pidfile("backend.pid", "%d\n" % reloader.pid)
    project.ns.kill(reloader.pid, signal.SIGKILL)
    assert project.ns.wait_dead([reloader.pid]) == []
    rep = project.doctor("backend")
    assert rep.rc == 1, rep
    text, fix = rep.one("PID %d" % worker.pid)
    assert text.startswith("backend: PID %d outlived its parent (now under init) and still "
                           "holds port 8000: " % worker.pid), rep
    # (no "move backend to another port": its command neither has {port} nor reads PORT)
    assert fix == ("check PID %d is yours, then: %s stop backend" % (worker.pid, PROG)), rep
    fixed = project.doctor("backend", "--fix")
    assert_alive(project.ns, [worker.pid], fixed)
    assert fixed.rc == 1, fixed
    assert not project.path("backend.pid").exists()    # the stale pidfile, though, is gone
    remaining = fixed.one("PID %d" % worker.pid)
    r = project.run_fix(remaining[1])
    assert r.rc == 0, r
    assert_dead(project.ns, [worker.pid], r)
    after = project.doctor("backend")
    assert after.rc == 0 and after.all_well, after


# --- ports -------------------------------------------------------------------------------------

def test_stranger_on_the_port_is_named_and_never_killed_by_fix(project, python_edge):
    project.use_python(python_edge)
    # outside the project (one started in the project is its leftover: test_int_port_truth.py)
    term = project.ns.spawn(Proc(["-zsh"], cwd="/", children=[
        Proc(["python3", "-m", "http.server", "8000"], listen="0.0.0.0:8000", cwd="/")]))
    stranger = term.children[0]
    finding = ("port 8000 of backend is held by PID %d, which is not backend's: "
               "python3 -m http.server 8000" % stranger.pid,
               "check PID %d is yours (or move backend to another port: "
               "PROCCLEAN_BACKEND_PORT=8001 %s start backend), then: %s kill-port 8000"
               % (stranger.pid, PROG, PROG))
    # main.py reads PORT: a port setting moves the backend, so doctor suggests one
    write(project.path("main.py"), "import os\nPORT = int(os.environ.get('PORT', 8000))\n")
    rep = reports(project, finding)
    fixed = project.doctor("--fix")
    assert_alive(project.ns, [stranger.pid, term.pid], fixed)
    assert fixed.rc == 1, fixed
    assert fixed.fixed == [], fixed
    assert fixed.one("port 8000")[0] == finding[0], fixed
    dry = project.doctor("--fix", "--dry-run")
    assert_alive(project.ns, [stranger.pid], dry)
    assert "would send" not in dry.stdout, dry
    # the advice, followed: the user checked it is theirs and runs the command shown
    r, after = fix_and_recheck(project, rep, finding)
    assert r.rc == 0, r
    assert_dead(project.ns, [stranger.pid], r)
    assert_alive(project.ns, [term.pid], r)
    assert after.rc == 0 and after.all_well, after


def test_stranger_with_a_stale_pidfile_is_not_killed_by_fix(project):
    """A stale pidfile and a daemon (PPID 1) on the port: whatever doctor calls it, --fix
    removes the pidfile and leaves the daemon alone."""
    daemon = project.ns.spawn(Proc(["nginx: master process /usr/sbin/nginx"],
                                   listen="127.0.0.1:3000", cwd="/"))
    project.pidfile("frontend.pid", "%d\n" % project.dead_pid())
    rep = project.doctor("frontend")
    assert rep.rc == 1, rep
    text, fix = rep.one("PID %d" % daemon.pid)
    # (no package.json whose dev script reads PORT: no port change suggested)
    assert fix == ("check PID %d is yours, then: %s kill-port 3000" % (daemon.pid, PROG)), rep
    fixed = project.doctor("frontend", "--fix")
    assert_alive(project.ns, [daemon.pid], fixed)
    assert not project.path("frontend.pid").exists()
    assert fixed.rc == 1 and len(fixed.findings) == 1, fixed
    assert "port 3000 of frontend is held by PID %d" % daemon.pid in fixed.findings[0][0]


def test_own_service_on_its_port_is_fine(project):
    app = project.ns.spawn(Proc(["/usr/bin/python3", "/venv/bin/uvicorn", "main:app", "--reload"],
                                listen="127.0.0.1:8000", inherit=True,
                                children=[Proc(["/usr/bin/python3", "-c", "spawn_main()"])]))
    project.pidfile("backend.pid", "%d\n" % app.pid)
    rep = project.doctor("backend")
    assert rep.rc == 0 and rep.all_well, rep


# --- configuration -----------------------------------------------------------------------------

def test_config_errors_one_line_each(project):
    rep = project.doctor("--set", "backend.port=70000", "--set", "frontend.pattern=(",
                         "--set", "backend.cwd=no/such/folder")
    assert rep.rc == 1, rep
    assert len(rep.findings) == 3, rep
    port = rep.one("70000")
    pattern = rep.one("frontend", "pattern")
    folder = rep.one("no/such/folder")
    assert port[0].startswith("backend: invalid port '70000'"), rep
    assert port[1] == "correct port of [backend] in procclean.ini (or PROCCLEAN_BACKEND_PORT)"
    assert pattern[0].startswith("frontend: pattern '(' does not compile"), rep
    assert pattern[1] == ("correct pattern of [frontend] in procclean.ini "
                          "(or PROCCLEAN_FRONTEND_PATTERN)")
    assert folder[0] == "backend: start folder no/such/folder does not exist", rep
    # one line each: the finding, then its fix, nothing wrapped
    lines = rep.stdout.splitlines()
    for text, _ in rep.findings:
        assert "\n" not in text
        i = [n for n, l in enumerate(lines) if l.endswith(text)][0]
        assert lines[i + 1].startswith("    fix: ")
    assert "3 finding(s) need action" in rep.stdout


def test_config_errors_from_the_file_fixed_as_advised(project):
    write(project.path("procclean.ini"),
          "[backend]\nport = 70000\ncwd = srv\n\n[frontend]\npattern = (vite\n")
    rep = project.doctor()
    assert rep.rc == 1 and len(rep.findings) == 3, rep
    env_rep = project.doctor(env={"PROCCLEAN_BACKEND_PORT": "0"})
    assert env_rep.one("backend: invalid port '0'"), env_rep
    # follow the advice: correct the fields named, in the file named; create the folder
    assert rep.one("70000")[1].startswith("correct port of [backend] in procclean.ini")
    assert rep.one("srv")[1].startswith("create it, or set cwd of [backend] in procclean.ini")
    write(project.path("procclean.ini"),
          "[backend]\nport = 8000\ncwd = srv\n\n[frontend]\npattern = (vite|esbuild)\n")
    os.mkdir(str(project.path("srv")))
    after = project.doctor()
    assert after.rc == 0 and after.all_well, after


def test_config_error_does_not_hide_the_other_findings(project):
    project.pidfile("backend.pid", "%d\n" % project.dead_pid())
    rep = project.doctor("--set", "frontend.port=http")
    assert rep.rc == 1, rep
    rep.one("frontend: invalid port 'http'")
    rep.one("backend.pid", "stale")


# --- tools, versions, platform -----------------------------------------------------------------

def _tools_line(rep):
    lines = [l for l in rep.stdout.splitlines() if l.startswith("process table: ")]
    assert len(lines) == 1, rep
    return lines[0]


def test_environment_and_tools_lines(project, python_edge):
    project.use_python(python_edge)
    version = subprocess.run([python_edge, "-c", "import platform; "
                              "print(platform.python_version())"],
                             stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    rep = project.doctor()
    assert rep.rc == 0 and rep.all_well, rep
    head = rep.stdout.splitlines()[0]
    assert re.match(r"^procclean \S+, Python %s, %s " % (re.escape(version), platform.system()),
                    head), rep
    line = _tools_line(rep)
    m = re.match(r"^process table: (.+) \(ps: (.+)\); listeners: (.+) \(lsof: (.+); ss: (.+)\)$",
                 line)
    assert m, line
    assert m.group(2) == (shutil.which("ps") or "missing")
    assert m.group(4) == (shutil.which("lsof") or "missing")
    assert m.group(5) == (shutil.which("ss") or "missing")


def test_tools_line_without_ps_lsof_ss(project):
    """A slim container: none of ps, lsof, ss on PATH. doctor says so, names the /proc
    fallbacks, and still finds a stranger on the port through them."""
    stranger = project.ns.spawn(Proc(["-sh"], children=[
        Proc(["python3", "-m", "http.server", "8000"],
             listen="[::]:8000" if os.path.exists("/proc/net/if_inet6") else "0.0.0.0:8000")]
    )).children[0]
    rep = project.doctor("backend", env={"PATH": str(project.bindir)})
    line = _tools_line(rep)
    assert line == ("process table: /proc (ps: missing); "
                    "listeners: netlink sock_diag (lsof: missing; ss: missing)"), rep
    assert rep.one("port 8000", "PID %d" % stranger.pid), rep


def test_tools_line_names_the_source_in_use(project):
    if not shutil.which("ps"):
        pytest.skip("no ps here")
    project.ns.spawn(Proc(["python3", "-m", "http.server", "3000"], listen="127.0.0.1:3000"))
    for ports in ("lsof", "ss"):
        if not shutil.which(ports):
            continue
        rep = project.doctor("frontend", env={"PROCCLEAN_PS": "ps", "PROCCLEAN_PORTS": ports})
        line = _tools_line(rep)
        assert line.startswith("process table: ps -ef (ps: %s); listeners: %s (lsof: "
                               % (shutil.which("ps"), ports)), line
        rep.one("port 3000")


# --- all well, --fix, --fix --dry-run ----------------------------------------------------------

def test_a_healthy_stack_is_all_well(project, python_edge):
    project.use_python(python_edge)
    backend = project.ns.spawn(Proc(["python3", "main.py"], listen="127.0.0.1:8000"))
    frontend = project.ns.spawn(npm_chain())
    bystanders = [project.ns.spawn(Proc(argv)) for argv in (
        ["vim", "main.py"], ["tail", "-f", "backend.log"], ["python3", "other.py"],
        ["grep", "-rn", "vite", "src"])]
    project.pidfile("backend.pid", "%d\n" % backend.pid)
    project.pidfile("frontend.pid", "%d\n" % frontend.pid)
    rep = project.doctor()
    assert rep.rc == 0, rep
    assert rep.all_well and rep.findings == [], rep
    assert "need action" not in rep.stdout
    fixed = project.doctor("--fix")
    assert fixed.rc == 0 and fixed.all_well and fixed.fixed == [], fixed
    assert_alive(project.ns, backend.pids() + frontend.pids() + [b.pid for b in bystanders])
    assert project.path("backend.pid").exists() and project.path("frontend.pid").exists()


def test_nothing_running_nothing_recorded_is_all_well(project):
    rep = project.doctor()
    assert rep.rc == 0 and rep.all_well, rep


def _messy(project):
    """Stale backend pidfile with an orphaned backend, an invalid frontend pidfile with a
    leftover vite, a bystander: everything --fix may fix, and one thing it may not touch."""
    project.pidfile("backend.pid", "%d\n" % project.dead_pid())
    orphan = project.ns.spawn(Proc(["python3", "main.py"], term="ignore"))
    project.pidfile("frontend.pid", "not-a-pid\n")
    vite = project.ns.spawn(Proc(["-bash"], children=[
        Proc(["node", "/srv/frontend/node_modules/.bin/vite"])])).children[0]
    bystander = project.ns.spawn(Proc(["node", "server.js"]))
    return orphan, vite, bystander


def test_doctor_fix_applies_the_safe_fixes_and_says_so(project, python_edge):
    project.use_python(python_edge)
    orphan, vite, bystander = _messy(project)
    before = project.doctor()
    assert before.rc == 1, before
    stale = before.one("backend.pid", "stale")
    invalid = before.one("frontend.pid", "does not hold a valid PID")
    orphaned = before.one("backend:", "PID %d outlived its parent" % orphan.pid)
    leftover = before.one("frontend:", "PID %d" % vite.pid)
    assert len(before.findings) == 4, before
    rep = project.doctor("--fix", "--grace", "0.3")
    assert rep.rc == 0, rep
    assert rep.all_well, rep
    for finding in (stale, invalid, orphaned, leftover):
        assert finding[0] in rep.fixed, (finding, rep)
    assert "removed backend.pid" in rep.stdout and "removed frontend.pid" in rep.stdout, rep
    assert "PID %d" % orphan.pid in rep.stdout and "PID %d" % vite.pid in rep.stdout, rep
    assert not project.path("backend.pid").exists()
    assert not project.path("frontend.pid").exists()
    assert_dead(project.ns, [orphan.pid, vite.pid], rep)     # the orphan ignored SIGTERM
    assert_alive(project.ns, [bystander.pid], rep)
    after = project.doctor()
    assert after.rc == 0 and after.all_well, after


def test_doctor_fix_dry_run_changes_nothing(project):
    orphan, vite, bystander = _messy(project)
    files = {n: project.path(n).read_bytes() for n in ("backend.pid", "frontend.pid")}
    before = project.doctor()
    rep = project.doctor("--fix", "--dry-run")
    assert rep.rc == 1, rep
    assert {n: project.path(n).read_bytes() for n in files} == files
    assert_alive(project.ns, [orphan.pid, vite.pid, bystander.pid], rep)
    assert rep.fixed == [], rep
    assert "would remove backend.pid" in rep.stdout and "would remove frontend.pid" in rep.stdout
    assert "would send SIGTERM to backend PID %d" % orphan.pid in rep.stdout, rep
    assert "would send SIGTERM to frontend PID %d" % vite.pid in rep.stdout, rep
    assert "PID %d" % bystander.pid not in rep.stdout, rep
    assert sorted(rep.findings) == sorted(before.findings), rep


def test_doctor_limited_to_named_services(project):
    project.pidfile("backend.pid", "%d\n" % project.dead_pid())
    project.pidfile("frontend.pid", "garbage")
    rep = project.doctor("frontend", "--fix")
    assert rep.rc == 0, rep
    assert project.path("backend.pid").exists(), rep
    assert not project.path("frontend.pid").exists(), rep
    assert "backend" not in "".join(rep.fixed), rep


def test_a_service_started_by_procclean_is_all_well(project):
    """`start` detaches the service (own session; once procclean exits it is reparented to
    init): doctor must see it as the pidfile's service, not as an orphan or a leftover."""
    write(project.path("main.py"),
          "import http.server\n"
          "http.server.HTTPServer(('127.0.0.1', 8000), "
          "http.server.SimpleHTTPRequestHandler).serve_forever()\n")
    r = project.ns.procclean("start", "backend", "--wait", "--timeout", "10",
                             python=project.python, env=project.env())
    assert r.rc == 0, r
    pid = int(project.path("backend.pid").read_text().strip())
    assert {p["pid"]: p["ppid"] for p in project.ns.ps()}[pid] == 1
    rep = project.doctor()
    assert rep.rc == 0 and rep.all_well, rep
    fixed = project.doctor("--fix")
    assert fixed.rc == 0 and fixed.fixed == [], fixed
    assert_alive(project.ns, [pid], fixed)
    assert project.ns.connect("127.0.0.1", 8000)


# --- a diagnosis changes nothing (issue 19 item 8) ---------------------------------------------

def tree(folder):
    """Every file and folder under `folder` with its size and mtime: what a diagnosis must
    leave exactly as it was (a folder's mtime changes when an entry is added or removed)."""
    found = {}
    for root, dirs, names in os.walk(str(folder)):
        for name in dirs + names:
            path = os.path.join(root, name)
            st = os.lstat(path)
            found[os.path.relpath(path, str(folder))] = (st.st_size, st.st_mtime_ns)
    st = os.lstat(str(folder))
    found["."] = (st.st_size, st.st_mtime_ns)
    return found


# A project tool as `uv run`, `poetry run` and `pipenv run` behave on a fresh checkout: the
# environment is created (and the lock rewritten) before the command runs.
FAKE_TOOL = ("#!/bin/sh\nmkdir -p .venv/bin\necho \"$0 $*\" >> tool-ran.txt\n"
             "touch %s\nexec python3 \"$@\"\n")


@pytest.mark.parametrize("tool, lock", [("uv", "uv.lock"), ("poetry", "poetry.lock"),
                                        ("pipenv", "Pipfile.lock")])
def test_doctor_runs_no_project_tool_and_says_what_it_did_not_check(project, tool, lock):
    """`uv run` syncs (a .venv appears), `poetry run`/`pipenv run` create a virtualenv: doctor
    without --fix runs none of them; it says what it did not check and how to check it."""
    (project.folder / "backend").mkdir()
    write(project.path("backend/main.py"), "import fastapi\nimport uvicorn\n")
    write(project.path(lock), "")
    write(project.bindir / tool, FAKE_TOOL % lock)
    os.chmod(str(project.bindir / tool), 0o755)
    before = tree(project.folder)
    rep = project.doctor("backend")
    assert tree(project.folder) == before, rep
    assert rep.rc == 0 and rep.all_well, rep
    assert ("backend: not checked whether %s run python can import fastapi, uvicorn: "
            "`%s run` would create or sync its environment, and doctor changes nothing"
            % (tool, tool)) in rep.stdout, rep
    assert ("    to check it yourself: %s run python -c 'import fastapi, uvicorn'" % tool
            in rep.stdout), rep


def test_doctor_checks_a_venv_without_writing_in_it(project):
    """The import check runs the project's own .venv python; its start-up runs the venv's .pth
    hooks (virtualenv's _virtualenv.pth, editable installs), which would leave a bytecode cache
    in the venv: doctor leaves the tree as it was, and still finds what is missing."""
    (project.folder / "backend").mkdir()
    write(project.path("backend/main.py"), "import fastapi\n")
    venv = project.path("backend/.venv")
    subprocess.run([project.python, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    site = [p for p in venv.glob("lib/python*/site-packages")][0]
    write(site / "hook.pth", "import hookmod\n")
    write(site / "hookmod.py", "HOOKED = True\n")
    before = tree(project.folder)
    rep = project.doctor("backend", env={"PYTHONDONTWRITEBYTECODE": None})
    assert tree(project.folder) == before, rep
    assert rep.one("backend:", "cannot import fastapi"), rep
