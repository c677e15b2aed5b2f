"""Issue 19 items 5-7, black-box inside PID namespaces: a service run under a debugger
(debugpy, pydevd) is the service; an editor or browser on a service's port is named and
left; whatever a process puts in its command line reaches the terminal escaped; what is
left alone is named with its PID, user and command."""
import os

import pytest

from integ_helpers import as_test_user, assert_alive, assert_dead, no_traceback, write
from nslib import Proc

pytestmark = pytest.mark.edge_pythons

SLEEPER = "import signal\nwhile True:\n    signal.pause()\n"
DEBUGPY = "/root/.vscode/extensions/ms-python.debugpy-2024.6.0-linux-x64/bundled/libs/debugpy"


def project(tmp_path):
    os.makedirs(str(tmp_path / "backend"))
    write(tmp_path / "backend" / "main.py", SLEEPER)
    return tmp_path


def inert(text):
    """Nothing a terminal acts on or hides: printable characters and newlines only."""
    return all(c.isprintable() or c == "\n" for c in text)


# -- item 5 ------------------------------------------------------------------------------

def test_a_service_under_a_debugger_is_the_service(ns, python, tmp_path):
    """VS Code's launcher and the debuggee it starts (debugpy installed in the editor's
    folder), PyCharm's pydevd, `python -m debugpy`: each is the backend, stopped and
    named; the debug adapter, which runs no program of the user's, is the editor's."""
    backend = project(tmp_path) / "backend"
    vscode = ns.spawn(Proc(
        ["/usr/bin/python3", DEBUGPY + "/adapter/../../debugpy/launcher", "41235", "--",
         str(backend / "main.py")], cwd=backend, children=[
            Proc(["/usr/bin/python3", DEBUGPY + "/adapter/../../debugpy/launcher/../../debugpy",
                  "--connect", "127.0.0.1:5678", "--configure-qt", "none", "--", "main.py"],
                 cwd=backend)]))
    adapter = ns.spawn(Proc(["/usr/bin/python3", DEBUGPY + "/adapter", "--for-server", "41235",
                             "main.py"], cwd=backend))
    pycharm = ns.spawn(Proc(["python", "/opt/pycharm/plugins/python/helpers/pydev/pydevd.py",
                             "--multiprocess", "--qt-support=auto", "--client", "127.0.0.1",
                             "--port", "39000", "--file", "main.py"], cwd=backend))
    toolbox = ns.spawn(Proc(["python", "/root/.local/share/JetBrains/Toolbox/apps/pycharm/"
                             "plugins/python/helpers/pydev/pydevd.py", "--multiprocess",
                             "--client", "127.0.0.1", "--port", "39001", "--file",
                             "/venv/bin/uvicorn", "main:app"], cwd=backend))
    module = ns.spawn(Proc(["python", "-m", "debugpy", "--listen", "5678", "main.py"],
                           cwd=backend))
    services = vscode.pids() + [pycharm.pid, toolbox.pid, module.pid]
    r = ns.procclean("show-processes", python=python)
    assert r.rc == 0, r
    assert all("PID %d" % pid in r.stdout or " %d " % pid in r.stdout
               for pid in services), r
    r = ns.procclean("stop", "backend", python=python)
    assert r.rc == 0, r
    no_traceback(r)
    assert "nothing running" not in r.stdout, r
    assert_dead(ns, services, r)
    assert_alive(ns, [adapter.pid], r)
    for pid in services:
        assert "PID %d:" % pid in r.stdout, r


@pytest.mark.parametrize("argv", [
    ["node", "/root/.vscode-server/bin/0f0d87fa/out/server-main.js", "--host=127.0.0.1",
     "--port=0", "--start-server"],
    ["code", "tunnel", "--accept-server-license-terms"],
    ["firefox", "--new-window", "http://localhost:8000"],
], ids=["vscode-server", "code-tunnel", "browser"])
def test_an_editor_or_browser_on_the_port_is_named_and_left(ns, python, tmp_path, argv):
    """An editor forwarding :8000 from the project's folder (or a browser holding it):
    stop, force-clean, kill-port and start name it as the holder and leave it."""
    project(tmp_path)
    app = ns.spawn(Proc(argv, listen="127.0.0.1:8000", cwd=tmp_path))
    backend = ns.spawn(Proc(["python3", "main.py"], cwd=tmp_path / "backend"))
    for cmd in (["stop"], ["force-clean"], ["kill-port", "8000"], ["kill-port", "8000",
                                                                   "--force"]):
        r = ns.procclean(*cmd, python=python)
        no_traceback(r)
        assert r.rc == (1 if cmd[0] == "kill-port" else 0), r
        assert_alive(ns, [app.pid], r)
        assert "PID %d (root), an editor or browser; left alone" % app.pid \
            in r.stdout + r.stderr, r
    assert_dead(ns, [backend.pid])
    r = ns.procclean("start-backend", python=python)
    assert r.rc == 1, r
    assert "port 8000 is taken by PID %d (%s" % (app.pid, argv[0]) in r.stderr, r
    assert "PID %d is an editor or browser" % app.pid in r.stderr, r
    r = ns.procclean("doctor", "--fix", python=python)
    assert "held by PID %d (root), an editor or browser" % app.pid in r.stdout, r
    assert "kill-port" not in r.stdout, r
    assert_alive(ns, [app.pid], r)


# -- item 6 ------------------------------------------------------------------------------

# A window title (OSC), C1 CSI clearing the screen and moving up, C1 NEL, a line and a
# paragraph separator, a bidi override, a raw erase-line, a carriage return, DEL, a byte
# that is not UTF-8.
HOSTILE = ["\x1b]0;owned\x07", "\x9b2J\x9b1A", "\x85", "\u2028\u2029", "\u202eyppa",
           "\x1b[2K\r", "\x7f", "\udcff"]


def test_command_lines_reach_the_terminal_escaped(ns, python, tmp_path):
    """A process of the project's and a stranger on the port, both with hostile command
    lines: every command's text output shows them escaped, in both languages."""
    project(tmp_path)
    other = tmp_path.parent / (tmp_path.name + "-other")
    os.makedirs(str(other))
    ns.spawn(Proc(["python3", "main.py"] + HOSTILE, cwd=other, listen="127.0.0.1:8000"))
    write(tmp_path / "backend.pid", "12\x9b2J\u2028\n")
    commands = [["status"], ["show-processes"], ["doctor"], ["stop", "--dry-run"],
                ["start-backend"], ["kill-port", "8000", "--dry-run"]]
    for lang in ("en", "zh"):
        for cmd in commands:
            r = ns.procclean(*cmd + ["--lang", lang], python=python)
            no_traceback(r)
            assert inert(r.stdout) and inert(r.stderr), r
            assert "\\x9b2J" in r.stdout + r.stderr, r
        mine = ns.spawn(Proc(["python3", "main.py"] + HOSTILE, cwd=tmp_path / "backend"))
        r = ns.procclean("stop", "--lang", lang, python=python)
        assert r.rc == 0, r
        assert_dead(ns, [mine.pid], r)
        assert inert(r.stdout) and inert(r.stderr), r
        assert "\\x9b2J\\x9b1A \\x85 \\u2028\\u2029 \\u202eyppa \\x1b[2K\\x0d \\x7f \\xff" \
            in r.stdout, r


# -- item 7 ------------------------------------------------------------------------------

def test_what_is_left_alone_is_named_with_its_user_and_command(test_user):
    """procclean runs as a user: root's backend in the project (its folder cannot be
    read) and backends of another checkout are left alone, each named with its PID,
    user and command, the first five of them, then how many more."""
    with as_test_user("pcdisp-") as (ns, work, user, python):
        project(__import__("pathlib").Path(work))
        other = "/"         # outside the project, readable
        roots = ns.spawn(Proc(["python3", "main.py", "--root"],
                              cwd=os.path.join(work, "backend")))
        theirs = [ns.spawn(Proc(["python3", "main.py", "--n", str(i)], user=user, cwd=other))
                  for i in range(6)]
        ours = ns.spawn(Proc(["python3", "main.py"], user=user,
                             cwd=os.path.join(work, "backend")))
        r = ns.procclean("status", "backend", python=python, cwd=work, user=user)
        assert r.rc == 0, r
        assert "PID %d (root, folder unknown) python3 main.py --root" % roots.pid \
            in r.stdout, r
        r = ns.procclean("stop-backend", python=python, cwd=work, user=user)
        assert r.rc == 0, r
        no_traceback(r)
        assert_dead(ns, [ours.pid], r)
        assert_alive(ns, [roots.pid] + [t.pid for t in theirs], r)
        line = [l for l in r.stdout.splitlines()
                if l.startswith("backend: left alone outside this project: ")]
        assert len(line) == 1 and line[0].count("PID ") == 3, r
        assert line[0].endswith(", 4 more (show-processes lists them, --everywhere takes them)"), r
        assert "PID %d (root, folder unknown) python3 main.py --root" % roots.pid in line[0], r
        assert "PID %d (%s, %s) python3 main.py --n 0" % (theirs[0].pid, user, other) \
            in line[0], r
