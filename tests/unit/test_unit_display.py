"""Issue 19 items 5-7 on the fake system: a service under a debugger is the service, an
editor or browser is never a target by the port rule; terminal output is inert (every
control character a process can put in its command line is shown escaped); what is left
alone is named with its PID, user and command."""
import os

import pytest

from fakes import FakeProc, FakeSystem, invoke
import procclean
from procclean import Listener, printable

# What a stranger can put in its command line to rewrite or hide lines of a report: a
# window title (OSC), clear screen by C1 CSI, C1 NEL, a Unicode line separator, a bidi
# override, a raw C0 escape, DEL, a carriage return and an undecodable byte.
HOSTILE = ("\x1b]0;owned\x07 \x9b2J\x9b1A \x85 \u2028\u2029 \u202eyppa\u202c \x1b[2K\r "
           "\x7f \udcff")



def inert(text):
    """Whether text is safe on a terminal: nothing but printable characters and newlines."""
    return all(c.isprintable() or c == "\n" for c in text)


# -- item 6: the one escaping function ----------------------------------------------------

@pytest.mark.parametrize("raw, shown", [
    ("a\x1bb", "a\\x1bb"), ("a\x7fb", "a\\x7fb"), ("\t\n\r", "\\x09\\x0a\\x0d"),
    ("\x9b2J", "\\x9b2J"), ("x\x85y", "x\\x85y"), ("\x80\x9f", "\\x80\\x9f"),
    ("a\u2028b\u2029c", "a\\u2028b\\u2029c"), ("\u202eabc\u202c", "\\u202eabc\\u202c"),
    ("\u2066\u200f", "\\u2066\\u200f"), ("\udcff\udc9b", "\\xff\\x9b"),
    (b"caf\xe9 \xc2\x9b", "caf\\xe9 \\x9b"),
    # what a terminal shows as it is stays as it is
    ("python main.py --name=caf\u00e9 \u540e\u7aef \u2705 \u26a0\ufe0f",
     "python main.py --name=caf\u00e9 \u540e\u7aef \u2705 \u26a0\ufe0f"),
])
def test_printable_escapes_what_a_terminal_acts_on(raw, shown):
    assert printable(raw) == shown
    assert printable(shown) == shown        # idempotent: escaped twice reads the same


def hostile_machine(a, b, port_holder=110):
    procs = [FakeProc(100, 1, "python3 main.py " + HOSTILE, cwd=a + "/backend"),
             FakeProc(110, 1, "python3 main.py " + HOSTILE, cwd=b + "/backend",
                      user="eve"),
             FakeProc(111, 1, "python3 main.py " + HOSTILE, user="mallory")]
    procs[2].cwd = None     # another user's: its folder cannot be read
    return procs, [Listener(8000, "127.0.0.1", "ipv4", pid=port_holder)]


COMMANDS = [["stop"], ["force-clean"], ["stop", "--dry-run"], ["status"],
            ["status", "--check"], ["show-processes"], ["doctor"], ["kill-port", "8000"],
            ["kill-port", "8000", "--dry-run"], ["start", "backend"], ["clean"]]


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(argv))
def test_every_command_shows_hostile_command_lines_escaped(in_a, argv, lang):
    a, b = in_a
    procs, listeners = hostile_machine(a, b)
    if argv[0] == "start":
        procs = procs[1:]       # not running: start meets the stranger on its port
    with open("backend.pid", "w") as f:     # a pidfile whose content is hostile too
        f.write("12\x9b2J\u2028" if argv[0] in ("stop", "clean", "doctor") else "100\n")
    code, out, err = invoke(argv + ["--lang", lang], FakeSystem(procs, listeners=listeners))
    assert inert(out) and inert(err), (argv, out, err)
    assert "\\x9b2J" in out + err, (argv, out, err)     # named, escaped


def test_dev_and_start_name_a_hostile_holder_escaped(in_a):
    a, b = in_a
    procs, listeners = hostile_machine(a, b)
    code, out, err = invoke(["dev", "backend"], FakeSystem(procs[1:], listeners=listeners))
    assert code == 1
    assert inert(out) and inert(err) and "PID 110" in err and "\\x9b2J" in err, out + err


def test_messages_escape_every_value_whoever_passes_it():
    out = procclean.Reporter(environ={})
    text = out.text("stopped", svc="backend", pid=5, cmd="main.py \x9b2J\u2028x")
    assert text.endswith("main.py \\x9b2J\\u2028x")


# -- item 5: debuggers are the service; editors and browsers never port targets ------------

VSCODE_DEBUGPY = "/home/u/.vscode/extensions/ms-python.debugpy-2024.6.0-linux-x64/bundled/libs"
DEBUGGED = [
    # VS Code: the debuggee, as the launcher starts it (the brief's form and today's)
    "python %s/debugpy/adapter/../../debugpy/launcher/../../debugpy --connect "
    "127.0.0.1:5678 --configure-qt none -- main.py" % VSCODE_DEBUGPY,
    "/p/.venv/bin/python %s/debugpy --connect 127.0.0.1:40001 --configure-qt none "
    "--adapter-access-token 5e1f main.py" % VSCODE_DEBUGPY,
    # the launcher, in the integrated terminal
    "/p/.venv/bin/python %s/debugpy/adapter/../../debugpy/launcher 41235 -- main.py"
    % VSCODE_DEBUGPY,
    # uvicorn under debugpy, from VS Code's server (remote, WSL, containers)
    "/p/.venv/bin/python /home/u/.vscode-server/extensions/ms-python.debugpy-2024.6.0-"
    "linux-x64/bundled/libs/debugpy --connect 127.0.0.1:40001 --configure-qt none "
    "--adapter-access-token 5e1f -m uvicorn main:app --reload",
    # the Python extension's own copy, and its older ptvsd
    "python /home/u/.vscode/extensions/ms-python.python-2021.1.502429796/pythonFiles/lib/"
    "python/debugpy/launcher 4444 -- main.py",
    "python /home/u/.vscode/extensions/ms-python.python-2019.11.50794/pythonFiles/"
    "ptvsd_launcher.py --default --client --host localhost --port 4321 main.py",
    # the same extension in Cursor, Windsurf and code-server; an interpreter option first
    "/p/.venv/bin/python /home/u/.cursor/extensions/ms-python.debugpy-2024.6.0-linux-x64/"
    "bundled/libs/debugpy/launcher/../../debugpy --connect 127.0.0.1:5678 main.py",
    "/p/.venv/bin/python /home/u/.windsurf/extensions/ms-python.debugpy-2024.6.0/bundled/"
    "libs/debugpy --connect 127.0.0.1:5678 main.py",
    "/p/.venv/bin/python /home/u/.local/share/code-server/extensions/ms-python.debugpy-"
    "2024.6.0-universal/bundled/libs/debugpy --connect 127.0.0.1:5678 main.py",
    "/p/.venv/bin/python -X frozen_modules=off %s/debugpy --connect 127.0.0.1:5678 main.py"
    % VSCODE_DEBUGPY,
    # a subprocess debugpy follows (uvicorn --reload's worker under pydevd's patching)
    "/p/.venv/bin/python %s/debugpy/_vendored/pydevd/pydevd.py --multiprocess --client "
    "127.0.0.1 --port 40001 --file main.py" % VSCODE_DEBUGPY,
    # debugpy from the venv
    "python -m debugpy --listen 5678 main.py",
    "python -m debugpy --listen 0.0.0.0:5678 --wait-for-client -m uvicorn main:app",
    # PyCharm's pydevd: installed in /opt, by the Toolbox, on macOS
    "/p/.venv/bin/python /opt/pycharm/plugins/python/helpers/pydev/pydevd.py --multiprocess "
    "--qt-support=auto --client 127.0.0.1 --port 39000 --file main.py",
    "/p/.venv/bin/python /home/u/.local/share/JetBrains/Toolbox/apps/pycharm-professional/"
    "plugins/python/helpers/pydev/pydevd.py --multiprocess --qt-support=auto --client "
    "127.0.0.1 --port 39000 --file main.py",
    "/p/.venv/bin/python /Users/u/Library/Application Support/JetBrains/Toolbox/apps/"
    "PyCharm-P/ch-0/plugins/python-ce/helpers/pydev/pydevd.py --multiprocess --client "
    "127.0.0.1 --port 39000 --file /p/.venv/bin/uvicorn main:app",
    # PyCharm's coverage and profiler runners
    "/p/.venv/bin/python /home/u/.local/share/JetBrains/Toolbox/apps/pycharm/plugins/python/"
    "helpers/coverage_runner/run_coverage.py run --omit=/x main.py",
    "/p/.venv/bin/python /home/u/.local/share/JetBrains/Toolbox/apps/pycharm/plugins/python/"
    "helpers/profiler/run_profiler.py 127.0.0.1 40123 main.py",
]


@pytest.mark.parametrize("command", DEBUGGED)
def test_a_service_under_a_debugger_is_the_service(in_a, command):
    a, _ = in_a
    assert not procclean.is_viewer(procclean.Process(5, 1, "dev", command))
    system = FakeSystem([FakeProc(100, 1, command, cwd=a + "/backend"),
                         FakeProc(101, 100, "python3 -c from multiprocessing.spawn import "
                                  "spawn_main", cwd=a + "/backend")])
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0, out + err
    assert sorted(set(pid for _, pid, _ in system.sent)) == [100, 101], out + err
    assert "stopped backend PID 100" in out and "nothing running" not in out


@pytest.mark.parametrize("command", [
    # the debug adapter runs no program of the user's: the editor's
    "python %s/debugpy/adapter --for-server 41235 main.py" % VSCODE_DEBUGPY,
    "node /home/u/.vscode-server/bin/0f0d87fa/out/server-main.js --host=127.0.0.1 frontend/",
    # a JetBrains IDE unpacked in /opt or from a snap runs its own Java runtime
    "/opt/pycharm-2024.1/jbr/bin/java -classpath /opt/pycharm-2024.1/lib/app.jar "
    "com.intellij.idea.Main /home/u/shop/frontend",
    "/snap/pycharm-professional/401/jbr/bin/java -Xmx2048m com.intellij.idea.Main",
])
def test_the_editors_own_processes_stay_editors(command):
    assert procclean.is_viewer(procclean.Process(5, 1, "dev", command))


VSCODE_SERVER = ("node /home/dev/.vscode-server/bin/0f0d87fa/out/server-main.js "
                 "--host=127.0.0.1 --port=0 --start-server")
FIREFOX = "/usr/lib/firefox/firefox --new-window http://localhost:8000"


@pytest.mark.parametrize("holder", [VSCODE_SERVER, "code tunnel --accept-server-license-terms",
                                    FIREFOX])
def test_an_editor_or_browser_on_the_port_is_named_and_left(in_a, holder):
    """An editor forwarding :8000 (VS Code's server, `code tunnel`), or a browser, in the
    project's folder: never taken by the port rule; named as the holder by stop,
    force-clean, kill-port, start and status."""
    a, _ = in_a
    backend = FakeProc(100, 1, "python3 main.py", cwd=a + "/backend")
    app = FakeProc(120, 1, holder, cwd=a)
    port = [Listener(8000, "127.0.0.1", "ipv4", pid=120)]
    for argv in (["stop"], ["force-clean"], ["kill-port", "8000"],
                 ["kill-port", "8000", "--force"]):
        system = FakeSystem([backend, app], listeners=port)
        code, out, err = invoke(argv, system)
        assert 120 not in [pid for _, pid, _ in system.sent], (argv, out, err)
        assert "PID 120 (dev), an editor or browser; left alone" in out + err, (argv, out, err)
        assert holder.split()[0] in out + err
        assert code == (1 if argv[0] == "kill-port" else 0), (argv, out, err)
    system = FakeSystem([app], listeners=port)
    code, out, err = invoke(["start", "backend"], system)
    assert code == 1 and system.sent == []
    assert "port 8000 is taken by PID 120" in err
    assert "PID 120 is an editor or browser" in err and "kill-port" not in err, err
    code, out, err = invoke(["status", "backend"], system)
    assert "backend: not running" in out and "taken by PID 120" in out, out
    code, out, err = invoke(["doctor"], system)
    assert "port 8000 of backend is held by PID 120 (dev), an editor or browser" in out, out
    assert "kill-port" not in out and "close it, or its port forwarding, there" in out, out
    code, out, err = invoke(["doctor", "--fix"], system)
    assert system.sent == [], out
    code, out, err = invoke(["stop", "--lang", "zh"], FakeSystem([app], listeners=port))
    assert "编辑器或浏览器" in out + err and system.sent == []


# -- item 7: what is left alone is named ---------------------------------------------------

def left_alone(a, b, n=1):
    """The project's backend, and n matches outside it: another checkout's, another
    user's whose folder cannot be read."""
    procs = [FakeProc(100, 1, "python3 main.py", cwd=a + "/backend")]
    for i in range(n):
        procs.append(FakeProc(110 + i, 1, "python3 main.py --worker %d" % i,
                              cwd=b + "/backend", user="eve"))
    procs.append(FakeProc(130, 1, "/usr/bin/python3 /srv/api/main.py", user="root"))
    procs[-1].cwd = None
    return procs


def test_stop_names_each_match_left_alone_with_user_and_command(in_a):
    a, b = in_a
    for argv in (["stop"], ["force-clean"], ["stop", "--dry-run"]):
        code, out, err = invoke(argv, FakeSystem(left_alone(a, b)))
        assert code == 0, out + err
        # one line, each match with its PID, user, folder and command
        assert "backend: left alone outside this project: " \
            "PID 110 (eve, %s/backend) python3 main.py --worker 0, " \
            "PID 130 (root, folder unknown) /usr/bin/python3 /srv/api/main.py " \
            "(show-processes lists them, --everywhere takes them)\n" % b in out, out


def test_status_show_processes_and_doctor_name_user_and_command(in_a):
    a, b = in_a
    code, out, _ = invoke(["status", "backend"], FakeSystem(left_alone(a, b)))
    assert "    outside this project, not counted: " \
        "PID 110 (eve, %s/backend) python3 main.py --worker 0, " \
        "PID 130 (root, folder unknown) /usr/bin/python3 /srv/api/main.py " \
        "(show-processes lists them, --everywhere includes them)\n" % b in out, out
    for argv in (["show-processes"], ["doctor"]):
        code, out, _ = invoke(argv, FakeSystem(left_alone(a, b)))
        assert "backend: PID 130 matches but is outside this project (folder unknown), " \
            "user root; left alone: /usr/bin/python3 /srv/api/main.py" in out, (argv, out)


def test_many_left_alone_are_bounded_and_long_commands_cut(in_a):
    a, b = in_a
    procs = left_alone(a, b, n=7)
    procs[1].command = "python3 main.py " + "--x " * 500000     # 2 MB of arguments
    for argv in (["stop"], ["status"]):
        code, out, err = invoke(argv, FakeSystem(procs))
        lines = [l for l in out.splitlines() if "PID 11" in l or "PID 13" in l]
        assert len(lines) == 1 and lines[0].count("PID 1") == 3, out
        assert ", 5 more (show-processes lists them" in out, out
        assert max(len(l) for l in out.splitlines()) < 1000, out    # the 2 MB line is cut
        assert "PID 110 (eve, %s/backend) python3 main.py --x --x" % b in out


def test_left_alone_in_chinese(in_a):
    a, b = in_a
    code, out, _ = invoke(["stop", "--lang", "zh"], FakeSystem(left_alone(a, b, n=6)))
    assert "后端: 本项目之外的匹配进程未处理: PID 110 (eve, %s/backend) python3 main.py " \
        "--worker 0, " % b in out, out
    assert ", 还有 4 个 (show-processes 可列出全部, 使用 --everywhere 可一并处理)" in out, out
    code, out, _ = invoke(["show-processes", "--lang", "zh"], FakeSystem(left_alone(a, b)))
    assert "PID 130 匹配, 但不属于本项目 (目录未知), 用户 root, 未处理: " in out, out
