"""Process tables and listener tools of other platforms, live (issue 3), inside PID + network
namespaces (tests/nslib.py).

Each test gives procclean.py a PATH shaped like another machine, with real programs in it:
  - BusyBox `ps` first in PATH (Alpine): `ps -ef` has no PPID column, so PROCCLEAN_PS=ps must
    still come out with the same table, targets and results as procps;
  - a python:*-slim image: no ps, no lsof, no ss at all (only python and sh on PATH): stop,
    status, show-processes and kill-port work from /proc with the same results;
  - BusyBox `lsof` first in PATH: it ignores its arguments and dumps every fd of every process;
    procclean must notice and never act on it;
  - every process-table source side by side (/proc, procps `ps -ef`, procps `ps -o`, BusyBox,
    no ps) on one population: the same PIDs, PPIDs, commands, targets and status;
  - an exported environment that reshapes `ps` (COLUMNS=80, PS_FORMAT, PS_PERSONALITY=bsd,
    POSIXLY_CORRECT, CMD_ENV, I_WANT_A_BROKEN_PS, locales whose month names hold spaces) does
    not change which processes stop, including 300-character command lines that match only
    near their end.

BusyBox is Debian's `busybox` package (a test dependency that .ci/run installs); without it the
BusyBox tests skip with that reason. Debian builds BusyBox without its `lsof` applet: where the
applet is missing, a stand-in prints exactly what BusyBox's procps/lsof.c prints
("PID<TAB>EXE<TAB>LINK" for every fd of every process, arguments ignored).

Health checks are switched off (PROCCLEAN_*_HEALTH=off): they are not what these tests are
about, and the stand-in listeners do not all speak HTTP.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from integ_helpers import (assert_alive, assert_dead, no_traceback, npm_chain,
                           spawn_bystanders, write)
from nslib import Proc, clean_env

PY = sys.executable
BASE_ENV = {"PROCCLEAN_BACKEND_HEALTH": "off", "PROCCLEAN_FRONTEND_HEALTH": "off"}
FULL_PATH = clean_env()["PATH"]


def env_of(*parts):
    env = dict(BASE_ENV)
    for p in parts:
        env.update(p or {})
    return env


# --- machines: PATHs of other platforms ---------------------------------------------------------

def _busybox():
    return shutil.which("busybox")


def _mkdir(path):
    os.makedirs(str(path), exist_ok=True)
    return str(path)


@pytest.fixture
def busybox():
    bb = _busybox()
    if not bb:
        pytest.skip("busybox is not installed (Debian package `busybox`; .ci/run installs it)")
    return bb


@pytest.fixture
def busybox_ps_path(tmp_path, busybox):
    """PATH whose `ps` is BusyBox's, everything else as usual."""
    d = _mkdir(tmp_path / "busybox-ps-bin")
    os.symlink(busybox, os.path.join(d, "ps"))
    return d + ":" + FULL_PATH


@pytest.fixture
def slim_path(tmp_path):
    """PATH of a python:*-slim image: python and sh, no ps, no lsof, no ss."""
    d = _mkdir(tmp_path / "slim-bin")
    for name in ("python3", "python"):
        os.symlink(PY, os.path.join(d, name))
    os.symlink("/bin/sh", os.path.join(d, "sh"))
    return d


BUSYBOX_LSOF = r"""#!%(python)s
# What BusyBox's `lsof` applet (procps/lsof.c) prints: "PID<TAB>EXE<TAB>LINK" for every fd of
# every process but itself, whatever the arguments. Debian's busybox is built without it.
import os, sys
me = os.getpid()
out = []
for name in os.listdir("/proc"):
    if not name.isdigit() or int(name) == me:
        continue
    try:
        exe = os.readlink("/proc/%%s/exe" %% name)
    except OSError:
        exe = "(null)"
    try:
        fds = os.listdir("/proc/%%s/fd" %% name)
    except OSError:
        continue
    for fd in fds:
        try:
            out.append("%%s\t%%s\t%%s\n" %% (name, exe, os.readlink("/proc/%%s/fd/%%s" %% (name, fd))))
        except OSError:
            pass
sys.stdout.write("".join(out))
"""


def _busybox_has_lsof(bb):
    r = subprocess.run([bb, "lsof"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return r.returncode == 0 and b"applet not found" not in r.stderr


@pytest.fixture
def busybox_lsof_dir(tmp_path, busybox):
    """A folder whose `lsof` is BusyBox's (the real applet when this busybox has it)."""
    d = _mkdir(tmp_path / "busybox-lsof-bin")
    lsof = os.path.join(d, "lsof")
    if _busybox_has_lsof(busybox):
        os.symlink(busybox, lsof)
    else:
        write(lsof, BUSYBOX_LSOF % {"python": PY})
        os.chmod(lsof, 0o755)
    return d


# --- populations --------------------------------------------------------------------------------

LONG_BACKEND = ["/usr/bin/python3", "-X", "dev", "-W", "ignore::DeprecationWarning",
                "/srv/" + "/".join(["release-2026-11-28-build-%02d" % i for i in range(9)])
                + "/main.py"]
LONG_FRONTEND = ["node", "--max-old-space-size=4096", "--enable-source-maps", "/srv/"
                 + "/".join(["checkout-%02d-abcdefghij" % i for i in range(10)])
                 + "/frontend/server.js"]
assert len(" ".join(LONG_BACKEND)) >= 300 and len(" ".join(LONG_FRONTEND)) >= 300


def uvicorn_reload_plain():
    """uvicorn --reload on 127.0.0.1:8000 (reloader matches, its worker does not)."""
    return Proc(["/usr/bin/python3", "/venv/bin/uvicorn", "main:app", "--reload", "--port",
                 "8000"], listen="127.0.0.1:8000", inherit=True, children=[
        Proc(["/usr/bin/python3", "-c", "from multiprocessing.spawn import spawn_main; "
              "spawn_main(tracker_fd=5, pipe_handle=7)", "--multiprocessing-fork"])])


class Population(object):
    """The seed's stack, a client, unrelated processes, and two long command lines."""

    def __init__(self, ns, long_lines=True):
        self.bystanders = spawn_bystanders(ns)
        self.backend = ns.spawn(uvicorn_reload_plain())
        self.frontend = ns.spawn(npm_chain())            # npm -> sh -> node vite -> esbuild
        self.client = ns.spawn(Proc(["curl", "-N", "http://127.0.0.1:8000/events"],
                                    connect="127.0.0.1:8000"))
        self.browser = ns.spawn(Proc(["chromium", "--type=renderer"],
                                     connect="127.0.0.1:3000"))
        self.long = []
        if long_lines:
            self.long = [ns.spawn(Proc(LONG_BACKEND)), ns.spawn(Proc(LONG_FRONTEND))]

    @property
    def vite(self):
        return self.frontend.children[0].children[0]

    def targets(self):
        return sorted(self.backend.pids() + self.frontend.pids() + [p.pid for p in self.long])

    def keep(self):
        return [b.pid for b in self.bystanders] + [self.client.pid, self.browser.pid]


# --- what procclean sees ------------------------------------------------------------------------

def processes(ns, env, python=None):
    r = ns.procclean("show-processes", "--json", env=env, python=python)
    assert r.rc == 0, r
    no_traceback(r)
    return sorted((p["pid"], p["ppid"], p["command"], p["service"])
                  for p in json.loads(r.stdout)["processes"])


def dry_run_targets(ns, env, python=None, command="stop"):
    r = ns.procclean("--dry-run", command, env=env, python=python)
    assert r.rc == 0, r
    no_traceback(r)
    return sorted(int(p) for p in re.findall(r"would send \S+ to .*?PID (\d+)", r.stdout))


def status(ns, env, python=None):
    r = ns.procclean("status", "--json", env=env, python=python)
    assert r.rc == 0, r
    no_traceback(r)
    return {s["name"]: (s["running"], sorted(s["pids"]), s["port"], s["listening"],
                        sorted((l["pid"], l["own"]) for l in s["listeners"]))
            for s in json.loads(r.stdout)["services"]}


def expected_status(pop):
    b, f = pop.backend, pop.frontend
    return {
        "backend": (True, sorted(b.pids() + [pop.long[0].pid] if pop.long else b.pids()), 8000,
                    True, sorted((pid, True) for pid in b.pids())),
        "frontend": (True, sorted(f.pids() + [pop.long[1].pid] if pop.long else f.pids()),
                     3000, True, [(pop.vite.pid, True)]),
    }


# --- (a) BusyBox ps -----------------------------------------------------------------------------

@pytest.mark.edge_pythons
def test_busybox_ps_same_targets_and_results_as_procps(ns, python, busybox_ps_path):
    r = ns.run(["ps", "-ef"], env={"PATH": busybox_ps_path})
    header = (r.stdout.splitlines() or [""])[0].split()
    assert header[:2] == ["PID", "USER"] and "PPID" not in header, r   # it is BusyBox's
    pop = Population(ns)
    procps = env_of({"PROCCLEAN_PS": "ps"})
    bbox = env_of({"PROCCLEAN_PS": "ps", "PATH": busybox_ps_path})
    assert processes(ns, bbox, python) == processes(ns, procps, python)
    assert dry_run_targets(ns, bbox, python) == dry_run_targets(ns, procps, python) \
        == pop.targets()
    assert status(ns, bbox, python) == status(ns, procps, python) == expected_status(pop)
    # procclean really ran BusyBox's ps (not only /proc): a wrapper that logs, then execs it
    wrapdir = _mkdir(os.path.join(ns.tmp, "bbwrap"))
    log = os.path.join(ns.tmp, "ps-calls.log")
    write(os.path.join(wrapdir, "ps"), '#!/bin/sh\necho "$*" >> %s\nexec %s ps "$@"\n'
          % (log, _busybox()))
    os.chmod(os.path.join(wrapdir, "ps"), 0o755)
    logged = env_of({"PROCCLEAN_PS": "ps", "PATH": wrapdir + ":" + FULL_PATH})
    assert processes(ns, logged, python) == processes(ns, procps, python)
    with open(log) as f:
        assert "-e" in f.read(), "procclean did not run ps"
    r = ns.procclean("stop", env=bbox, python=python)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, pop.targets(), r)
    assert_alive(ns, pop.keep(), r)
    assert processes(ns, bbox, python) == []


# --- (b) no ps, no lsof, no ss ------------------------------------------------------------------

def test_slim_image_without_ps_lsof_ss(ns, python_edge, slim_path):
    r = ns.run(["/bin/sh", "-c", "command -v ps lsof ss netstat; echo end"],
               env={"PATH": slim_path})
    assert r.stdout == "end\n", r                      # nothing but python and sh
    pop = Population(ns)
    full = env_of()
    slim = env_of({"PATH": slim_path})
    assert processes(ns, slim, python_edge) == processes(ns, full, python_edge)
    assert dry_run_targets(ns, slim, python_edge) == pop.targets()
    assert status(ns, slim, python_edge) == status(ns, full, python_edge) == expected_status(pop)

    # kill-port: the listener (vite) and its child (esbuild) stop; its parents and the
    # browser connected to it do not
    r = ns.procclean("kill-port", "3000", env=slim, python=python_edge)
    assert r.rc == 0, r
    no_traceback(r)
    vite = pop.vite
    assert_dead(ns, vite.pids(), r)
    assert_alive(ns, [pop.frontend.pid, pop.frontend.children[0].pid, pop.browser.pid], r)
    assert not ns.connect("127.0.0.1", 3000)

    r = ns.procclean("stop", env=slim, python=python_edge)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, pop.targets(), r)
    assert_alive(ns, pop.keep(), r)
    st = status(ns, slim, python_edge)
    assert st["backend"] == (False, [], 8000, False, []), st
    assert st["frontend"] == (False, [], 3000, False, []), st


@pytest.mark.parametrize("forced", [{"PROCCLEAN_PORTS": "lsof"}, {"PROCCLEAN_PORTS": "ss"},
                                    {"PROCCLEAN_PS": "ps"}],
                         ids=["PORTS=lsof", "PORTS=ss", "PS=ps"])
def test_slim_image_forced_missing_tool_is_a_clear_error(ns, slim_path, forced):
    """Asked for a tool the machine lacks, procclean says so; it never acts on a guess."""
    pop = Population(ns, long_lines=False)
    cmd = ["kill-port", "8000"] if "PROCCLEAN_PORTS" in forced else ["stop"]
    r = ns.procclean(*cmd, env=env_of({"PATH": slim_path}, forced))
    no_traceback(r)
    assert r.rc == 1, r
    tool = list(forced.values())[0]
    assert tool in r.stderr, r
    assert_alive(ns, pop.targets() + pop.keep(), r)


# --- (c) BusyBox lsof ---------------------------------------------------------------------------

@pytest.mark.parametrize("others", ["with-ss", "slim"])
def test_busybox_lsof_is_never_trusted(ns, python_edge, busybox_lsof_dir, slim_path, others):
    path = busybox_lsof_dir + ":" + (FULL_PATH if others == "with-ss" else slim_path)
    r = ns.run(["lsof", "-nP", "-iTCP", "-sTCP:LISTEN", "-F", "pcn"], env={"PATH": path})
    rows = [l.split("\t") for l in r.stdout.splitlines()]
    assert rows and all(len(x) == 3 and x[0].isdigit() for x in rows), r   # BusyBox's format
    pop = Population(ns, long_lines=False)
    # a listener of nobody's on 8001 with its own client: every process has sockets open
    other = ns.spawn(Proc(["redis-server", "127.0.0.1:8001"], listen="127.0.0.1:8001"))
    other_client = ns.spawn(Proc(["redis-cli", "monitor"], connect="127.0.0.1:8001"))
    env = env_of({"PATH": path})

    # forced to lsof, procclean refuses BusyBox's output instead of acting on it
    r = ns.procclean("kill-port", "8000", env=env_of({"PATH": path, "PROCCLEAN_PORTS": "lsof"}),
                     python=python_edge)
    no_traceback(r)
    assert r.rc == 1 and "lsof" in r.stderr, r
    assert_alive(ns, pop.targets() + pop.keep() + [other.pid, other_client.pid], r)

    # auto: BusyBox lsof is passed over; status as from the kernel's own tables
    assert status(ns, env, python_edge) == status(ns, env_of({"PROCCLEAN_PORTS": "proc"}),
                                                  python_edge) == expected_status(pop)

    r = ns.procclean("kill-port", "8000", env=env, python=python_edge)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, pop.backend.pids(), r)
    assert_alive(ns, pop.frontend.pids() + pop.keep() + [other.pid, other_client.pid], r)
    assert not ns.connect("127.0.0.1", 8000)
    assert ns.connect("127.0.0.1", 8001) and ns.connect("127.0.0.1", 3000)
    st = status(ns, env, python_edge)
    assert st["backend"][3:] == (False, []), st
    assert st["frontend"][3:] == (True, [(pop.vite.pid, True)]), st


# --- (d) every table source, side by side --------------------------------------------------------

def test_every_table_source_sees_the_same_processes(ns, tmp_path, python_edge, slim_path):
    sources = {"proc": {"PROCCLEAN_PS": "proc"}, "auto": {}}
    if shutil.which("ps"):
        sources["procps ps -ef"] = {"PROCCLEAN_PS": "ps"}
        sources["procps ps -o"] = {"PROCCLEAN_PS": "pso"}
    bb = _busybox()
    if bb:
        d = _mkdir(tmp_path / "bb")
        os.symlink(bb, os.path.join(d, "ps"))
        sources["busybox ps"] = {"PROCCLEAN_PS": "ps", "PATH": d + ":" + FULL_PATH}
    sources["no ps (slim)"] = {"PATH": slim_path}
    pop = Population(ns)
    # trees the table must get right: a zombie under a matching parent, a child whose comm
    # holds spaces and parentheses, an orphan re-parented to PID 1, a deep chain
    zparent = Proc(["uvicorn", "main:app", "--reload"], reap=False, children=[
        Proc(["python3", "main.py"], exit_now=True, comm="py (main) x")])
    ns.spawn(zparent)
    deadline = time.time() + 5
    while ns.state(zparent.children[0].pid) != "Z":
        assert time.time() < deadline, "no zombie"
        time.sleep(0.005)
    orphan_parent = ns.spawn(Proc(["bash", "dev.sh"], children=[
        Proc(["python3", "main.py", "--port", "8002"], children=[Proc(["worker-x"])])]))
    ns.kill([orphan_parent.pid])
    ns.wait_dead([orphan_parent.pid])
    chain = ns.spawn(Proc(["fastapi", "dev", "main.py"], children=[Proc(["level-1"], children=[
        Proc(["level-2"], children=[Proc(["level-3"], children=[Proc(["level-4"])])])])]))
    want_targets = sorted(pop.targets() + zparent.pids() + orphan_parent.children[0].pids()
                          + chain.pids())
    seen = {}
    for name, extra in sorted(sources.items()):
        env = env_of(extra)
        seen[name] = (processes(ns, env, python_edge), dry_run_targets(ns, env, python_edge),
                      status(ns, env, python_edge))
    first = seen["proc"]
    diffs = {name: got for name, got in seen.items() if got != first}
    assert not diffs, ("sources disagree with /proc:\nproc: %r\n%s" % (
        first, "\n".join("%s: %r" % kv for kv in diffs.items())))
    procs = {p[0]: p for p in first[0]}
    assert sorted(procs) == want_targets, first[0]
    assert procs[orphan_parent.children[0].pid][1] == 1
    assert procs[zparent.children[0].pid][2] == "[py (main) x] <defunct>", procs
    r = ns.procclean("stop", env=env_of(sources.get("busybox ps", {})), python=python_edge)
    assert r.rc == 0, r
    assert_dead(ns, [p for p in want_targets if p != zparent.children[0].pid], r)
    assert_alive(ns, pop.keep(), r)


# --- (e) the caller's environment never reshapes the listing -------------------------------------

SPACED_MONTH_LOCALES = ("vi_VN", "ca_ES", "et_EE", "ja_JP")


def _installed_locales():
    try:
        out = subprocess.run(["locale", "-a"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL).stdout.decode("ascii", "replace")
    except OSError:
        return {}
    found = {}
    for name in out.split():
        base, _, enc = name.partition(".")
        if base in SPACED_MONTH_LOCALES and enc.lower().replace("-", "") == "utf8":
            found[base] = name
    return found


LOCALES = _installed_locales()

RESHAPING = {
    "COLUMNS=80+PS_FORMAT+PS_PERSONALITY=bsd+POSIXLY_CORRECT": {
        "COLUMNS": "80", "LINES": "10", "PS_FORMAT": "pid,comm", "PS_PERSONALITY": "bsd",
        "POSIXLY_CORRECT": "1"},
    "CMD_ENV=irix+I_WANT_A_BROKEN_PS+PS_PERSONALITY=sun": {
        "CMD_ENV": "irix", "I_WANT_A_BROKEN_PS": "1", "PS_PERSONALITY": "sun"},
}
for _base in SPACED_MONTH_LOCALES:
    RESHAPING["LANG+LC_TIME=%s" % _base] = ({"LANG": LOCALES[_base], "LC_TIME": LOCALES[_base],
                                              "COLUMNS": "80"} if _base in LOCALES else None)
RESHAPING["LC_ALL=%s" % SPACED_MONTH_LOCALES[0]] = (
    {"LC_ALL": LOCALES[SPACED_MONTH_LOCALES[0]]} if SPACED_MONTH_LOCALES[0] in LOCALES else None)


@pytest.mark.parametrize("table", ["ps", "busybox-ps", "auto"])
@pytest.mark.parametrize("envname", sorted(RESHAPING))
def test_exported_environment_does_not_change_what_stops(ns, tmp_path, envname, table):
    reshaping = RESHAPING[envname]
    if reshaping is None:
        pytest.skip("locale %s is not installed here (locale -a)" % envname.split("=")[-1])
    extra = {}
    if table == "ps":
        if not shutil.which("ps"):
            pytest.skip("no procps ps here")
        extra = {"PROCCLEAN_PS": "ps"}
    elif table == "busybox-ps":
        bb = _busybox()
        if not bb:
            pytest.skip("busybox is not installed (Debian package `busybox`)")
        d = _mkdir(tmp_path / "bb")
        os.symlink(bb, os.path.join(d, "ps"))
        extra = {"PROCCLEAN_PS": "ps", "PATH": d + ":" + FULL_PATH}
    pop = Population(ns)
    env = env_of(extra, reshaping)
    if "COLUMNS" in reshaping and table == "ps":
        # the hazard is real here: exported, these cut procps' own listing (the seed's
        # `ps -ef | grep` then misses both long command lines)
        listing = ns.run(["ps", "-ef"], env=reshaping).stdout
        assert "/frontend/server.js" not in listing and "/main.py" not in listing, listing
    assert dry_run_targets(ns, env) == pop.targets()
    r = ns.procclean("stop", env=env)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, pop.targets(), r)
    assert_alive(ns, pop.keep(), r)
