"""Ownership (issue 11), black-box inside PID namespaces: two checkouts side by side.

Two folders A and B under tmp_path, each a checkout of the same stack (backend/main.py,
frontend/package.json); stand-ins run in them with `Proc(..., cwd=...)`, and procclean runs
in A. Everything asserted is what a user sees: who died, who lives, files, exit code and
message. Nothing is timed: events are waited for with generous deadlines."""
import json
import os
import pathlib
import re
import shutil
import signal

import pytest

import nslib
from integ_helpers import (as_test_user, assert_alive, assert_dead, no_traceback, read,
                           uvicorn_reload, wait_until, write)
from nslib import Proc
from rename_in_place import RENAME_FUNCTION

# What belongs to a project does not depend on the interpreter: the oldest and the newest
# run these (test_int_stop runs the same look at the machine on every interpreter).
pytestmark = pytest.mark.edge_pythons

BACKEND_RE = r"([Pp]ython.*main\.py|uvicorn.*main|fastapi.*main)"
FRONTEND_RE = r"(npm run dev|vite|esbuild|node.*frontend)"
TIMEOUT = 60

# A backend that just waits (what `start` runs: `<python> main.py` in backend/).
SLEEPER = "import signal\nwhile True:\n    signal.pause()\n"


# --------------------------------------------------------------------------------------------
# helpers

def checkout(path):
    """A checkout of the stack at `path`: backend/main.py and frontend/package.json."""
    os.makedirs(str(path / "backend"))
    os.makedirs(str(path / "frontend"))
    write(path / "backend" / "main.py", SLEEPER)
    write(path / "frontend" / "package.json", '{"scripts": {"dev": "vite"}}\n')
    return path


def two_checkouts(tmp_path, a="A", b="B"):
    return checkout(tmp_path / a), checkout(tmp_path / b)


def real(path):
    return os.path.realpath(str(path))


def wait_pid_file(path, timeout=20):
    text = wait_until(lambda: read(path).strip(), timeout)
    assert text, "%s never written" % path
    return int(text)


def living(ns, argv0):
    """PIDs of the living processes in the namespace whose argv[0] is `argv0`."""
    return [p["pid"] for p in ns.ps()
            if p["argv"][:1] == [argv0] and p["state"] not in ("Z", "X")]


def named(text, pids):
    """Which of pids the text names as "PID n" (small PIDs are common in a namespace)."""
    return [p for p in pids if re.search(r"PID %d(?!\d)" % p, text)]


def backend_in(folder):
    return Proc(["python3", "main.py"], cwd=folder / "backend")


def outside_line(result, svc, pids_folders):
    """stop's one line about the matches it left outside the project."""
    out = result.stdout
    m = re.search(r"^%s: left alone outside this project: (.*) \(show-processes lists them, "
                  r"--everywhere takes them\)$" % svc, out, re.M)
    assert m, result
    assert m.group(1).count("PID ") == len(pids_folders), result
    for pid, folder in pids_folders:
        assert re.search(r"PID %d \([^,]+, %s\) " % (pid, re.escape(str(folder))),
                         m.group(1)), result
    return m


# --------------------------------------------------------------------------------------------
# two repos

def test_stop_in_one_checkout_leaves_the_other(ns, python, tmp_path):
    a, b = two_checkouts(tmp_path)
    mine = ns.spawn(backend_in(a))
    vitest = ns.spawn(Proc(["node", "node_modules/.bin/vitest", "--watch"], cwd=a / "frontend"))
    editor = ns.spawn(Proc(["vim", "vite.config.ts"], cwd=a / "frontend"))
    theirs = ns.spawn(backend_in(b))
    r = ns.procclean("stop", python=python, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [mine.pid, vitest.pid], r)
    assert_alive(ns, [theirs.pid, editor.pid], r)
    assert named(r.stdout, [mine.pid, vitest.pid]) == [mine.pid, vitest.pid], r
    outside_line(r, "backend", [(theirs.pid, real(b / "backend"))])
    # the editor is no match at all: never named as one
    assert named(r.stdout, [editor.pid]) == [], r


def test_start_is_not_already_running_because_of_another_checkout(ns, python, tmp_path):
    a, b = two_checkouts(tmp_path)
    theirs = ns.spawn(backend_in(b))
    r = ns.procclean("start-backend", python=python, cwd=a, timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    assert "already running" not in r.stdout, r
    assert "started backend" in r.stdout, r
    pid = int(read(a / "backend.pid"))
    assert ns.is_alive(pid) and pid != theirs.pid, r
    assert ns.is_alive(theirs.pid)
    # and the second start in A sees its own, not B's
    r = ns.procclean("start-backend", python=python, cwd=a, timeout=TIMEOUT)
    assert r.rc == 0 and "already running (PID %d)" % pid in r.stdout, r
    r = ns.procclean("stop-backend", python=python, cwd=a)
    assert r.rc == 0, r
    assert_dead(ns, [pid], r)
    assert_alive(ns, [theirs.pid], r)
    assert not os.path.exists(str(a / "backend.pid")), r


def test_what_procclean_started_in_the_other_checkout_is_outside_with_its_folder(
        ns, python, tmp_path):
    a, b = two_checkouts(tmp_path)
    r = ns.procclean("start-backend", python=python, cwd=b, timeout=TIMEOUT)
    assert r.rc == 0, r
    theirs = int(read(b / "backend.pid"))
    r = ns.procclean("start-backend", python=python, cwd=a, timeout=TIMEOUT)
    assert r.rc == 0 and "started backend" in r.stdout, r
    mine = int(read(a / "backend.pid"))
    r = ns.procclean("status", "backend", "--json", python=python, cwd=a)
    rec = json.loads(r.stdout)["services"][0]
    assert rec["pids"] == [mine], r
    assert [(o["pid"], o["folder"]) for o in rec["outside"]] == \
        [(theirs, real(b / "backend"))], r
    r = ns.procclean("stop-backend", python=python, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [mine], r)
    assert_alive(ns, [theirs], r)
    outside_line(r, "backend", [(theirs, real(b / "backend"))])
    assert os.path.exists(str(b / "backend.pid"))
    r = ns.procclean("stop-backend", python=python, cwd=b)
    assert r.rc == 0, r
    assert_dead(ns, [theirs], r)


def test_everywhere_takes_the_other_checkouts_backend(ns, python_edge, tmp_path):
    a, b = two_checkouts(tmp_path)
    mine, theirs = ns.spawn(backend_in(a)), ns.spawn(backend_in(b))
    editor = ns.spawn(Proc(["vim", "vite.config.ts"], cwd=b / "frontend"))
    r = ns.procclean("stop", "--everywhere", python=python_edge, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [mine.pid, theirs.pid], r)
    assert_alive(ns, [editor.pid], r)
    assert "outside this project" not in r.stdout, r


def test_scope_machine_in_the_config_is_everywhere(ns, python_edge, tmp_path):
    a, b = two_checkouts(tmp_path)
    write(a / "procclean.ini", "[procclean]\nscope = machine\n")
    mine, theirs = ns.spawn(backend_in(a)), ns.spawn(backend_in(b))
    r = ns.procclean("stop-backend", python=python_edge, cwd=a)
    assert r.rc == 0, r
    assert_dead(ns, [mine.pid, theirs.pid], r)


def test_a_path_inside_the_project_named_by_absolute_name(ns, python_edge, tmp_path):
    a, b = two_checkouts(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    os.makedirs(str(elsewhere))
    ours = ns.spawn(Proc(["python3", str(a / "backend" / "main.py")], cwd=elsewhere))
    theirs = ns.spawn(Proc(["python3", str(b / "backend" / "main.py")], cwd=elsewhere))
    r = ns.procclean("stop-backend", python=python_edge, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [ours.pid], r)
    assert_alive(ns, [theirs.pid], r)
    outside_line(r, "backend", [(theirs.pid, real(elsewhere))])


def test_root_in_the_config_names_the_project(ns, python_edge, tmp_path):
    """procclean runs in A/ops (where the Makefile is); `root = ..` makes A the project."""
    a, b = two_checkouts(tmp_path)
    ops = a / "ops"
    os.makedirs(str(ops))
    mine, theirs = ns.spawn(backend_in(a)), ns.spawn(backend_in(b))
    r = ns.procclean("stop-backend", python=python_edge, cwd=ops)
    assert r.rc == 0, r
    assert_alive(ns, [mine.pid, theirs.pid], r)        # A/ops alone holds neither
    write(ops / "procclean.ini", "[procclean]\nroot = ..\n")
    r = ns.procclean("stop-backend", python=python_edge, cwd=ops)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [mine.pid], r)
    assert_alive(ns, [theirs.pid], r)
    outside_line(r, "backend", [(theirs.pid, real(b / "backend"))])


def test_restart_in_one_checkout_leaves_the_other(ns, python_edge, tmp_path):
    a, b = two_checkouts(tmp_path)
    theirs, mine = ns.spawn(backend_in(b)), ns.spawn(backend_in(a))
    r = ns.procclean("restart-backend", python=python_edge, cwd=a, timeout=TIMEOUT)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [mine.pid], r)
    assert_alive(ns, [theirs.pid], r)
    assert "started backend" in r.stdout, r
    pid = int(read(a / "backend.pid"))
    # --everywhere widens the stop; what starts is still this checkout's
    r = ns.procclean("restart-backend", "--everywhere", python=python_edge, cwd=a,
                     timeout=TIMEOUT)
    assert r.rc == 0, r
    assert_dead(ns, [pid, theirs.pid], r)
    pid = int(read(a / "backend.pid"))
    assert ns.is_alive(pid)
    r = ns.procclean("stop-backend", python=python_edge, cwd=a)
    assert r.rc == 0, r
    assert_dead(ns, [pid], r)


def test_a_checkout_reached_through_a_symlink(ns, python_edge, tmp_path):
    """The shell's $PWD names the checkout through a symlink, and so do command lines
    started from there; the working directory procclean sees is the real path."""
    a, b = two_checkouts(tmp_path)
    link = tmp_path / "link"
    os.symlink(str(a), str(link))
    elsewhere = tmp_path / "elsewhere"
    os.makedirs(str(elsewhere))
    mine = ns.spawn(Proc(["python3", str(link / "backend" / "main.py")], cwd=elsewhere))
    theirs = ns.spawn(backend_in(b))
    r = ns.procclean("stop-backend", python=python_edge, cwd=link, env={"PWD": str(link)})
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [mine.pid], r)
    assert_alive(ns, [theirs.pid], r)


# --------------------------------------------------------------------------------------------
# editors, pagers, viewers

def test_editors_and_pagers_are_never_targets_of_a_pattern(ns, python, tmp_path):
    # a checkout whose path has "python" in it: `less .../main.py` matches the backend's
    # pattern as the recipes' grep saw it
    a, b = two_checkouts(tmp_path, "python-shop-a", "python-shop-b")
    main_py = str(a / "backend" / "main.py")
    assert re.search(BACKEND_RE, "less " + main_py)
    viewers = []
    for folder in (a, b):
        viewers += [
            ns.spawn(Proc(["vim", "vite.config.ts"], cwd=folder / "frontend")),
            ns.spawn(Proc(["less", str(folder / "backend" / "main.py")], cwd=folder)),
            ns.spawn(Proc(["/usr/share/code/code", "--ms-enable-electron-run-as-node",
                           "frontend/"], cwd=folder)),
            # VS Code's server runs as `node`, in the project, naming its frontend
            ns.spawn(Proc(["node", "/root/.vscode-server/bin/0f0d87fa/out/server-main.js",
                           "--host=127.0.0.1", str(folder / "frontend")], cwd=folder)),
        ]
    assert re.search(FRONTEND_RE, "/usr/share/code/code --ms-enable-electron-run-as-node "
                                  "frontend/")
    pids = [v.pid for v in viewers]
    backend = ns.spawn(backend_in(a))
    frontend = ns.spawn(Proc(["node", "node_modules/.bin/vite"], cwd=a / "frontend"))
    r = ns.procclean("stop", python=python, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [backend.pid, frontend.pid], r)
    assert_alive(ns, pids, r)
    assert named(r.stdout, pids) == [], r
    for argv in (("stop", "--everywhere"), ("force-clean", "--everywhere")):
        other = ns.spawn(backend_in(b))
        r = ns.procclean(*argv, python=python, cwd=a)
        assert r.rc == 0, r
        assert_dead(ns, [other.pid], r)
        assert_alive(ns, pids, r)
        assert named(r.stdout, pids) == [], r
    # nor are they listed as the service's processes
    r = ns.procclean("show-processes", "--everywhere", "--json", python=python, cwd=a)
    assert r.rc == 0, r
    data = json.loads(r.stdout)
    listed = [p["pid"] for p in data["processes"]] + [p["pid"] for p in data["outside"]]
    assert [p for p in pids if p in listed] == [], r


def test_editors_added_in_the_config(ns, python_edge, tmp_path):
    a, _ = two_checkouts(tmp_path)
    write(a / "procclean.ini", "[procclean]\neditors = myedit\n")
    editor = ns.spawn(Proc(["myedit", "vite.config.ts"], cwd=a / "frontend"))
    frontend = ns.spawn(Proc(["node", "node_modules/.bin/vite"], cwd=a / "frontend"))
    r = ns.procclean("stop-frontend", python=python_edge, cwd=a)
    assert r.rc == 0, r
    assert_dead(ns, [frontend.pid], r)
    assert_alive(ns, [editor.pid], r)


def test_a_pidfile_or_the_tag_naming_an_editor_still_counts(ns, python_edge, tmp_path):
    a, _ = two_checkouts(tmp_path)
    named = ns.spawn(Proc(["vim", "vite.config.ts"], cwd=a / "frontend"))
    write(a / "frontend.pid", "%d\n" % named.pid)
    tagged = ns.spawn(Proc(["less", "+F", "server.log"], cwd="/",
                           env={"PROCCLEAN_PROJECT": real(a), "PROCCLEAN_SERVICE": "frontend"}))
    other = ns.spawn(Proc(["vim", "vite.config.ts"], cwd=a / "frontend"))
    r = ns.procclean("stop-frontend", python=python_edge, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [named.pid, tagged.pid], r)
    assert_alive(ns, [other.pid], r)
    assert not os.path.exists(str(a / "frontend.pid")), r


# --------------------------------------------------------------------------------------------
# the orphaned `uvicorn --reload` worker, and strangers on the port

def orphaned_worker(ns, folder):
    """uvicorn --reload in folder/backend, its reloader killed with SIGKILL: the worker
    (its command matches no pattern) still holds :8000. Returns the worker's PID."""
    app = uvicorn_reload()
    app.cwd = str(folder / "backend")
    ns.spawn(app)
    reloader, worker = app.pid, app.children[0].pid
    assert not re.search(BACKEND_RE, " ".join(app.children[0].argv))
    ns.kill([reloader], signal.SIGKILL)
    assert ns.wait_dead([reloader], 10) == []
    assert ns.is_alive(worker) and ns.connect("127.0.0.1", 8000)
    return worker


@pytest.mark.parametrize("command", ["stop", "force-clean"])
def test_orphaned_reload_worker_holding_the_port(ns, python, tmp_path, command):
    a, b = two_checkouts(tmp_path)
    theirs = ns.spawn(backend_in(b))
    worker = orphaned_worker(ns, a)
    r = ns.procclean(command, "backend", python=python, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert "nothing running" not in r.stdout, r
    assert_dead(ns, [worker], r)
    assert named(r.stdout, [worker]) == [worker], r
    assert not ns.connect("127.0.0.1", 8000), r
    assert_alive(ns, [theirs.pid], r)
    assert "still held" not in r.stdout + r.stderr, r
    # and the next start finds the port free
    r = ns.procclean("start-backend", python=python, cwd=a, timeout=TIMEOUT)
    assert r.rc == 0 and "started backend" in r.stdout, r
    pid = int(read(a / "backend.pid"))
    r = ns.procclean("stop-backend", python=python, cwd=a)
    assert r.rc == 0, r
    assert_dead(ns, [pid], r)


def test_a_stranger_on_the_port_is_named_not_killed(ns, python, tmp_path):
    a, b = two_checkouts(tmp_path)
    mine = ns.spawn(backend_in(a))
    stranger = ns.spawn(Proc(["uvicorn", "main:app", "--port", "8000"],
                             listen="127.0.0.1:8000", cwd=b / "backend"))
    r = ns.procclean("stop-backend", python=python, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [mine.pid], r)
    assert_alive(ns, [stranger.pid], r)
    out = r.stdout + r.stderr
    assert "port 8000 is still held by PID %d in %s" % (stranger.pid, real(b / "backend")) \
        in out, r
    assert "kill-port 8000" in out, r
    # it never makes start say "already running": the port it holds blocks start, named
    r = ns.procclean("start-backend", python=python, cwd=a, timeout=TIMEOUT)
    assert r.rc == 1, r
    no_traceback(r)
    assert "already running" not in r.stdout, r
    assert "port 8000 is taken by PID %d" % stranger.pid in r.stdout + r.stderr, r
    assert_alive(ns, [stranger.pid], r)
    assert not os.path.exists(str(a / "backend.pid")), r


def test_a_stranger_matching_no_pattern_on_the_port(ns, python_edge, tmp_path):
    a, b = two_checkouts(tmp_path)
    stranger = ns.spawn(Proc(["python3", "-m", "http.server", "8000"],
                             listen="127.0.0.1:8000", cwd=b))
    r = ns.procclean("stop", python=python_edge, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_alive(ns, [stranger.pid], r)
    out = r.stdout + r.stderr
    assert "port 8000 is still held by PID %d in %s" % (stranger.pid, real(b)) in out, r
    assert "kill-port 8000" in out, r


# --------------------------------------------------------------------------------------------
# what leaves the tree: detached daemons, session helpers

DAEMONIZE = """\
import os, signal, sys
STANDIN = {standin!r}
def helper():
    if os.fork():
        os._exit(0)
    {setsid}
    if os.fork():
        os._exit(0)
    os.chdir("/")
    with open({pidfile!r} + ".tmp", "w") as f:
        f.write("%d\\n" % os.getpid())
    os.rename({pidfile!r} + ".tmp", {pidfile!r})
    os.execve(STANDIN, [{name!r}], {env})
pid = os.fork()
if pid == 0:
    helper()
os.waitpid(pid, 0)
while True:
    signal.pause()
"""


def start_daemonizing_backend(ns, python, folder, name, setsid, keep_env, standin):
    """`start-backend` of a backend that double-forks a helper called `name` (with setsid
    or not, keeping its environment or not): (the backend's PID, the helper's)."""
    pidfile = str(folder / (name + ".pidnote"))
    write(folder / "backend" / "main.py", DAEMONIZE.format(
        standin=standin, setsid="os.setsid()" if setsid else "pass", pidfile=pidfile,
        name=name, env="dict(os.environ)" if keep_env else "{}"))
    r = ns.procclean("start-backend", python=python, cwd=folder, timeout=TIMEOUT)
    assert r.rc == 0, r
    return int(read(folder / "backend.pid")), wait_pid_file(pidfile)


def stop_takes_the_helper(ns, python, folder, main, helper, theirs, name):
    """`stop-backend` in `folder`: the service and its helper called `name` gone (the
    helper named), the other checkout's backend `theirs` alive."""
    r = ns.procclean("stop-backend", python=python, cwd=folder)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [main, helper], r)
    assert named(r.stdout, [helper]) == [helper], r
    assert_alive(ns, [theirs.pid], r)
    assert living(ns, name) == []


@pytest.mark.parametrize("main_killed", [False, True], ids=["main-running", "main-killed"])
def test_a_process_that_detaches_after_start_is_found_by_its_tag(ns, python, tmp_path,
                                                                  standin_path, main_killed):
    """The service double-forks a helper that calls setsid, chdirs to / and renames itself:
    no tree, no session, no folder, no pattern; only the tag it inherited says whose."""
    a, b = two_checkouts(tmp_path)
    theirs = ns.spawn(backend_in(b))
    main, helper = start_daemonizing_backend(ns, python, a, "detached-helper", True, True,
                                             standin_path)
    assert ns.is_alive(helper)
    if main_killed:
        ns.kill([main], signal.SIGKILL)
        assert ns.wait_dead([main], 10) == []
    stop_takes_the_helper(ns, python, a, main, helper, theirs, "detached-helper")


# The service double-forks a helper that leaves the session and folder and renames itself
# as setproctitle does (gunicorn's and celery's processes, Ruby's `$0 =`): no exec, its
# argument and environment memory rewritten, so /proc shows NULs where its tag was.
RENAME_IN_PLACE = RENAME_FUNCTION + """\
import signal
pid = os.fork()
if pid == 0:
    if os.fork():
        os._exit(0)
    os.setsid()
    os.chdir("/")
    renamed = rename(b"renamed-in-place")
    with open({pidfile!r} + ".tmp", "w") as f:
        f.write("%d\\n" % (os.getpid() if renamed else 0))
    os.rename({pidfile!r} + ".tmp", {pidfile!r})
    while True:
        signal.pause()
os.waitpid(pid, 0)
while True:
    signal.pause()
"""


@pytest.mark.parametrize("main_killed", [False, True], ids=["main-running", "main-killed"])
def test_a_helper_that_renamed_itself_in_place_is_found_by_its_programs_tag(
        ns, python, tmp_path, main_killed):
    """setproctitle's rename wipes the helper's environment, its tag with it; but it is a
    fork of the service's tagged program (the same argument and environment addresses),
    so stop takes it, whether that program still runs or was killed (start kept its
    image); the other checkout's backend lives."""
    a, b = two_checkouts(tmp_path)
    theirs = ns.spawn(backend_in(b))
    pidfile = str(a / "renamed.pidnote")
    write(a / "backend" / "main.py", RENAME_IN_PLACE.format(pidfile=pidfile))
    r = ns.procclean("start-backend", python=python, cwd=a, timeout=TIMEOUT)
    assert r.rc == 0, r
    main, helper = int(read(a / "backend.pid")), wait_pid_file(pidfile)
    if not helper:
        pytest.skip("this kernel refuses writes to /proc/self/mem")
    assert living(ns, "renamed-in-place") == [helper]
    if main_killed:
        ns.kill([main], signal.SIGKILL)
        assert ns.wait_dead([main], 10) == []
    r = ns.procclean("status", "--json", python=python, cwd=a)
    backend = [s for s in json.loads(r.stdout)["services"] if s["name"] == "backend"][0]
    assert helper in backend["pids"], r
    stop_takes_the_helper(ns, python, a, main, helper, theirs, "renamed-in-place")


@pytest.mark.parametrize("command", ["status", "show-processes", "force-clean-backend", "stop"])
def test_the_tag_alone_places_a_process_for_every_command(ns, python_edge, tmp_path,
                                                          command):
    """Environments are read only by the commands that need them, after the table
    (issue 23): a process that has nothing of the project but its tag (another name,
    folder /, no pattern, a child of PID 1) is the service's for each of them; one
    tagged for the other checkout is not."""
    a, b = two_checkouts(tmp_path)
    ours = ns.spawn(Proc(["renamed-helper", "--idle"], cwd="/", env={
        "PROCCLEAN_PROJECT": real(a), "PROCCLEAN_SERVICE": "backend"}))
    theirs = ns.spawn(Proc(["renamed-helper", "--idle"], cwd="/", env={
        "PROCCLEAN_PROJECT": real(b), "PROCCLEAN_SERVICE": "backend"}))
    json_out = ("--json",) if command in ("status", "show-processes") else ()
    r = ns.procclean(command, *json_out, python=python_edge, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    if command == "status":
        backend = json.loads(r.stdout)["services"][0]
        assert backend["running"] is True and backend["pids"] == [ours.pid], r
    elif command == "show-processes":
        assert [p["pid"] for p in json.loads(r.stdout)["processes"]] == [ours.pid], r
    else:
        assert_dead(ns, [ours.pid], r)
    assert_alive(ns, [theirs.pid], r)
    if json_out:
        assert_alive(ns, [ours.pid], r)


def test_root_finds_another_users_escapee_by_its_tag(test_user, tmp_path):
    """procclean run as root (sudo make stop): a process of another user that has nothing
    of the project but its tag (another name, folder /, no pattern) is still the
    service's, though environments of other users are skipped when not root (issue 23);
    the same user's process tagged for the other checkout is left."""
    ok, reason = nslib.Namespace.available()
    if not ok:
        pytest.skip(reason)
    a, b = two_checkouts(tmp_path)
    with nslib.Namespace(cwd=a) as ns:
        user = nslib.TEST_USER
        ours = ns.spawn(Proc(["renamed-helper", "--idle"], cwd="/", user=user, env={
            "PROCCLEAN_PROJECT": real(a), "PROCCLEAN_SERVICE": "backend"}))
        theirs = ns.spawn(Proc(["renamed-helper", "--idle"], cwd="/", user=user, env={
            "PROCCLEAN_PROJECT": real(b), "PROCCLEAN_SERVICE": "backend"}))
        uids = dict((p["pid"], p["uid"]) for p in ns.ps())
        assert uids[ours.pid] == uids[theirs.pid] == test_user[0] != 0
        r = ns.procclean("status", "backend", "--json", cwd=a)
        assert r.rc == 0, r
        assert json.loads(r.stdout)["services"][0]["pids"] == [ours.pid], r
        r = ns.procclean("stop-backend", cwd=a)
        assert r.rc == 0, r
        no_traceback(r)
        assert_dead(ns, [ours.pid], r)
        assert_alive(ns, [theirs.pid], r)


def test_a_user_finds_an_escapee_of_their_own_by_its_tag(test_user):
    """procclean run as a user: the user's own tagged process (another name, folder /)
    is read and stopped; root's process tagged for the same project cannot be read, so
    it is not the project's, and nothing tries to signal it."""
    with as_test_user("pctag-") as (ns, work, user, python):
        tag = {"PROCCLEAN_PROJECT": os.path.realpath(work), "PROCCLEAN_SERVICE": "backend"}
        ours = ns.spawn(Proc(["renamed-helper", "--idle"], cwd="/", user=user, env=tag))
        roots = ns.spawn(Proc(["renamed-helper", "--idle"], cwd="/", env=tag))
        r = ns.procclean("stop-backend", python=python, cwd=work, user=user)
        assert r.rc == 0, r
        no_traceback(r)
        assert_dead(ns, [ours.pid], r)
        assert_alive(ns, [roots.pid], r)
        assert "permission denied" not in r.stdout + r.stderr, r


@pytest.mark.parametrize("name", ["firefox", "code", "vim"])
@pytest.mark.parametrize("setsid", [True, False], ids=["detached", "in-session"])
def test_a_browser_the_service_opened_is_left_open(ns, python, tmp_path, standin_path, setsid,
                                                   name):
    """`vite --open` with no browser running starts one, "open in editor" an editor: it
    carries the service's tag (and without setsid its session), but it is the user's
    window, never a target."""
    a, _ = two_checkouts(tmp_path)
    main, browser = start_daemonizing_backend(ns, python, a, name, setsid, True,
                                              standin_path)
    r = ns.procclean("stop-backend", python=python, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [main], r)
    assert_alive(ns, [browser], r)
    assert named(r.stdout, [browser]) == [], r


def test_a_helper_daemonized_inside_the_start_session(ns, python, tmp_path, standin_path):
    """The helper double-forks but keeps the session `start` created, and drops its
    environment (no tag): the session says whose it is."""
    a, _ = two_checkouts(tmp_path)
    main, helper = start_daemonizing_backend(ns, python, a, "session-helper", False, False,
                                             standin_path)
    assert ns.is_alive(helper)
    # not in the tree: the helper's parent is the namespace's init
    assert wait_until(lambda: [p["ppid"] for p in ns.ps() if p["pid"] == helper] == [1], 20)
    r = ns.procclean("stop-backend", python=python, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [main, helper], r)
    assert living(ns, "session-helper") == []


# --------------------------------------------------------------------------------------------
# the second look: children forked and workers respawned during the grace

def test_children_forked_during_the_grace_are_found(ns, python, tmp_path):
    a, _ = two_checkouts(tmp_path)
    app = ns.spawn(Proc(["python3", "main.py"], cwd=a / "backend", term="catch",
                        onterm=[Proc(["cleanup-child"]), Proc(["cleanup-child"])]))
    # a grace long enough that what SIGTERM sets off has happened before the second look
    r = ns.procclean("stop-backend", "--grace", "3", python=python, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [app.pid], r)
    assert living(ns, "cleanup-child") == [], r
    assert "appeared while stopping" in r.stdout, r


def test_children_forked_by_a_started_service_that_then_exits(ns, python, tmp_path,
                                                              standin_path):
    """The service forks two children on SIGTERM and exits at once: they are orphans,
    out of the tree, matching no pattern; the second look finds them (tag, session)."""
    a, _ = two_checkouts(tmp_path)
    write(a / "backend" / "main.py", """\
import os, signal
def on_term(signum, frame):
    for _ in range(2):
        if os.fork() == 0:
            os.execv({standin!r}, ["cleanup-child"])
    os._exit(0)
signal.signal(signal.SIGTERM, on_term)
while True:
    signal.pause()
""".format(standin=standin_path))
    r = ns.procclean("start-backend", python=python, cwd=a, timeout=TIMEOUT)
    assert r.rc == 0, r
    main = int(read(a / "backend.pid"))
    r = ns.procclean("stop-backend", python=python, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [main], r)
    assert living(ns, "cleanup-child") == [], r
    assert "appeared while stopping" in r.stdout, r


def test_a_master_that_ignores_sigterm_and_respawns_its_worker(ns, python, tmp_path):
    a, _ = two_checkouts(tmp_path)
    worker_argv = ["/usr/bin/python3", "-c", "from multiprocessing.spawn import spawn_main; "
                   "spawn_main(tracker_fd=5, pipe_handle=7)", "--multiprocessing-fork"]
    master = ns.spawn(Proc(["uvicorn", "main:app", "--workers", "1"], cwd=a / "backend",
                           term="ignore", respawn=True, children=[Proc(worker_argv)]))
    first_worker = master.children[0].pid
    # a grace long enough that what SIGTERM sets off has happened before the second look
    r = ns.procclean("stop-backend", "--grace", "3", python=python, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [master.pid, first_worker], r)
    assert living(ns, "/usr/bin/python3") == [], (r, ns.ps())
    assert "appeared while stopping" in r.stdout, r


# --------------------------------------------------------------------------------------------
# supervisors

WORKER_INI = """\
[procclean]
services = worker

[worker]
command = {python} worker.py
"""


def supervised_worker(ns, folder, python):
    """`start --supervise worker` in folder, a service without a pattern: returns
    (supervisor PID, worker PID) once the supervisor recorded its child."""
    write(folder / "procclean.ini", WORKER_INI)
    write(folder / "worker.py", SLEEPER)
    r = ns.procclean("start", "worker", "--supervise", python=python, cwd=folder,
                     timeout=TIMEOUT)
    assert r.rc == 0, r
    sup = int(read(folder / "worker.pid"))

    def child():
        try:
            return json.loads(read(folder / "worker.pid.state") or "{}").get("child")
        except ValueError:
            return None
    pid = wait_until(child, 20)
    assert pid and ns.is_alive(pid), read(folder / "worker.log")
    return sup, pid


@pytest.mark.parametrize("records", ["files", "tag-only"])
def test_a_supervisor_killed_with_sigkill_leaves_a_child_that_is_still_found(
        ns, python, tmp_path, records):
    a, b = two_checkouts(tmp_path)
    sup, child = supervised_worker(ns, a, python)
    theirs_sup, theirs = supervised_worker(ns, b, python)
    ns.kill([sup], signal.SIGKILL)
    assert ns.wait_dead([sup], 10) == []
    assert ns.is_alive(child)
    if records == "tag-only":
        os.remove(str(a / "worker.pid"))
        os.remove(str(a / "worker.pid.state"))
    r = ns.procclean("status", "worker", "--json", python=python, cwd=a)
    rec = json.loads(r.stdout)["services"][0]
    assert rec["running"] and rec["pids"] == [child], r
    # start sees it: no second worker beside the orphaned one
    r = ns.procclean("start", "worker", python=python, cwd=a, timeout=TIMEOUT)
    assert r.rc == 0 and "already running (PID %d)" % child in r.stdout, r
    r = ns.procclean("stop", "worker", python=python, cwd=a)
    assert r.rc == 0, r
    no_traceback(r)
    assert "nothing running" not in r.stdout, r
    assert_dead(ns, [child], r)
    assert named(r.stdout, [child]) == [child], r
    assert not os.path.exists(str(a / "worker.pid"))
    assert not os.path.exists(str(a / "worker.pid.state"))
    # the other checkout's supervisor and worker: untouched, their files kept
    assert_alive(ns, [theirs_sup, theirs], r)
    assert os.path.exists(str(b / "worker.pid")) and os.path.exists(str(b / "worker.pid.state"))


def test_stop_keeps_the_record_of_a_child_it_could_not_stop(test_user):
    """The supervisor (root's) was killed with SIGKILL; a user who may not signal its child
    runs stop: the child is named, the exit is 1, and the pidfile and the state file (the
    only record of that child) are kept."""
    with as_test_user("pcown-") as (ns, work, user, python):
        folder = pathlib.Path(work)
        sup, child = supervised_worker(ns, folder, python)
        for name in os.listdir(work):
            os.chmod(os.path.join(work, name), 0o666)
        ns.kill([sup], signal.SIGKILL)
        assert ns.wait_dead([sup], 10) == []
        r = ns.procclean("stop", "worker", python=python, cwd=work, user=user)
        assert r.rc == 1, r
        no_traceback(r)
        assert "permission denied" in r.stdout + r.stderr, r
        assert named(r.stdout + r.stderr, [child]) == [child], r
        assert_alive(ns, [child], r)
        assert os.path.exists(os.path.join(work, "worker.pid")), r
        assert os.path.exists(os.path.join(work, "worker.pid.state")), r
        r = ns.procclean("stop", "worker", python=python, cwd=work)    # as root
        assert r.rc == 0, r
        assert_dead(ns, [child], r)
        assert not os.path.exists(os.path.join(work, "worker.pid.state")), r


def test_vite_project_stop_frontend_leaves_the_backends_supervisor(ns, python_edge,
                                                                   tmp_path):
    """In a folder named vite-project (Vite's default), procclean.py copied into it: the
    supervisor's command line holds the project path, so the frontend's pattern finds it;
    it is another procclean, never a target of a pattern."""
    a, _ = two_checkouts(tmp_path, "vite-project", "other")
    script = str(a / "procclean.py")
    shutil.copyfile(nslib.PROCCLEAN, script)

    def pc(*args):
        return ns.run([python_edge, script] + list(args), cwd=a, timeout=TIMEOUT)
    r = pc("start", "backend", "--supervise")
    assert r.rc == 0, r
    sup = int(read(a / "backend.pid"))
    child = wait_until(lambda: json.loads(read(a / "backend.pid.state") or "{}").get("child"),
                       20)
    assert child, read(a / "backend.log")
    sup_line = " ".join([p for p in ns.ps() if p["pid"] == sup][0]["argv"])
    assert re.search(FRONTEND_RE, sup_line), sup_line
    frontend = ns.spawn(Proc(["node", "node_modules/.bin/vite"], cwd=a / "frontend"))
    r = pc("stop", "frontend")
    assert r.rc == 0, r
    no_traceback(r)
    assert_dead(ns, [frontend.pid], r)
    assert_alive(ns, [sup, child], r)
    assert named(r.stdout, [sup, child]) == [], r
    r = pc("stop", "backend")
    assert r.rc == 0, r
    assert_dead(ns, [sup, child], r)


# --------------------------------------------------------------------------------------------
# outside matches reported

def test_outside_matches_listed_apart_by_status_and_show_processes(ns, python_edge, tmp_path):
    a, b = two_checkouts(tmp_path)
    mine, theirs = ns.spawn(backend_in(a)), ns.spawn(backend_in(b))
    folder = real(b / "backend")
    r = ns.procclean("status", "backend", "--json", python=python_edge, cwd=a)
    assert r.rc == 0, r
    rec = json.loads(r.stdout)["services"][0]
    assert rec["pids"] == [mine.pid], r
    assert [(o["pid"], o["folder"]) for o in rec["outside"]] == [(theirs.pid, folder)], r
    r = ns.procclean("status", "backend", python=python_edge, cwd=a)
    assert r.rc == 0, r
    assert "outside this project" in r.stdout and "PID %d (root, %s)" % (theirs.pid, folder) \
        in r.stdout, r
    r = ns.procclean("show-processes", "--json", python=python_edge, cwd=a)
    assert r.rc == 0, r
    data = json.loads(r.stdout)
    assert [p["pid"] for p in data["processes"]] == [mine.pid], r
    assert [(o["pid"], o["folder"], o["service"]) for o in data["outside"]] == \
        [(theirs.pid, folder, "backend")], r
    r = ns.procclean("show-processes", python=python_edge, cwd=a)
    assert r.rc == 0, r
    assert "PID %d matches but is outside this project (%s)" % (theirs.pid, folder) \
        in r.stdout, r
    # --everywhere counts it in
    r = ns.procclean("status", "backend", "--json", "--everywhere", python=python_edge, cwd=a)
    rec = json.loads(r.stdout)["services"][0]
    assert sorted(rec["pids"]) == sorted([mine.pid, theirs.pid]) and rec["outside"] == [], r
    assert_alive(ns, [mine.pid, theirs.pid])


def test_a_process_whose_folder_cannot_be_read_is_outside(test_user):
    """procclean runs as a user; root's backend runs inside the project, but its folder
    cannot be read: it is outside, left alone, reported as "folder unknown"."""
    with as_test_user("pcown-") as (ns, work, user, python):
        os.makedirs(os.path.join(work, "backend"))
        roots = ns.spawn(Proc(["python3", "main.py"], cwd=os.path.join(work, "backend")))
        ours = ns.spawn(Proc(["python3", "main.py"], user=user,
                             cwd=os.path.join(work, "backend")))
        r = ns.procclean("status", "backend", "--json", python=python, cwd=work, user=user)
        assert r.rc == 0, r
        rec = json.loads(r.stdout)["services"][0]
        assert rec["pids"] == [ours.pid], r
        assert [(o["pid"], o["folder"]) for o in rec["outside"]] == [(roots.pid, None)], r
        r = ns.procclean("stop-backend", python=python, cwd=work, user=user)
        assert r.rc == 0, r
        no_traceback(r)
        assert_dead(ns, [ours.pid], r)
        assert_alive(ns, [roots.pid], r)
        assert "PID %d (root, folder unknown)" % roots.pid in r.stdout, r


def test_doctor_reports_outside_matches_and_fix_leaves_them(ns, python_edge, tmp_path):
    """A stale pidfile in A, A's backend orphaned, B's backend running: doctor names B's
    apart (not a leftover of this project's), and --fix stops only A's."""
    a, b = two_checkouts(tmp_path)
    write(a / "backend.pid", "31999\n")
    mine, theirs = ns.spawn(backend_in(a)), ns.spawn(backend_in(b))
    editor = ns.spawn(Proc(["vim", "vite.config.ts"], cwd=a / "frontend"))
    r = ns.procclean("doctor", python=python_edge, cwd=a)
    assert r.rc == 1, r
    no_traceback(r)
    assert "PID %d matches but is outside this project (%s)" % (
        theirs.pid, real(b / "backend")) in r.stdout, r
    findings = [l for l in r.stdout.splitlines() if "PID %d " % theirs.pid in l]
    assert len(findings) == 1, r                     # named once, as outside
    assert named(r.stdout, [mine.pid]) == [mine.pid], r
    assert named(r.stdout, [editor.pid]) == [], r
    r = ns.procclean("doctor", "--fix", python=python_edge, cwd=a)
    no_traceback(r)
    assert_dead(ns, [mine.pid], r)
    assert_alive(ns, [theirs.pid, editor.pid], r)
    assert not os.path.exists(str(a / "backend.pid")), r
    # --everywhere: B's is a leftover like any other (and --fix would take it)
    write(a / "backend.pid", "31999\n")
    r = ns.procclean("doctor", "--everywhere", python=python_edge, cwd=a)
    assert r.rc == 1 and "outside this project" not in r.stdout, r
    assert named(r.stdout, [theirs.pid]) == [theirs.pid], r
