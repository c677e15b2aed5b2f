"""Ownership (issue 11) on the fake system and the pure helpers: what belongs to the project
(tag, folder, named paths, port holders), editors and other procclean processes never by
pattern, the second look, and the macOS/BSD sources of tags and folders (recorded-style
outputs in tests/data/scope)."""
import json
import os
import signal
import subprocess
import sys

import pytest

from fakes import FakeProc, FakeSystem, invoke
import procclean
from procclean import (Listener, Process, Project, Service, is_procclean, is_viewer,
                       named_paths, parse_lsof_cwd, parse_ps_environ, path_inside,
                       plan_targets, scope_roots, tag_in_environ)

TERM, KILL = signal.SIGTERM, signal.SIGKILL
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                    "scope")
BACKEND = Service("backend", r"([Pp]ython.*main\.py|uvicorn.*main|fastapi.*main)",
                  "backend.pid", "backend.log", 8000, "", ".")
FRONTEND = Service("frontend", r"(npm run dev|vite|esbuild|node.*frontend)",
                   "frontend.pid", "frontend.log", 3000, "", ".")
A = "/work/shop-a"
B = "/work/shop-b"


@pytest.fixture
def in_a(tmp_path, monkeypatch):
    """The project folder A (a real folder: the fakes' default cwd), with B beside it."""
    a, b = tmp_path / "A", tmp_path / "B"
    for folder in (a, b):
        os.makedirs(str(folder / "backend"))
        os.makedirs(str(folder / "frontend"))
    monkeypatch.chdir(str(a))
    return os.path.realpath(str(a)), os.path.realpath(str(b))


def proc(pid, command, ppid=1, sid=None, pgid=None):
    return Process(pid, ppid, "dev", command, sid=sid, pgid=pgid)


def table_of(*procs):
    return dict((p.pid, p) for p in procs)


def signalled(system):
    return sorted(set(pid for _, pid, _ in system.sent))


def load(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def expected(name):
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


# --------------------------------------------------------------------------------------------
# pure helpers

def test_path_inside_takes_the_folder_and_what_is_under_it_only():
    assert path_inside(A, [A])
    assert path_inside(A + "/backend/app", [A])
    assert path_inside(A + "/backend/../frontend", [A])
    assert not path_inside(A + "-old/backend", [A])        # a sibling sharing a prefix
    assert not path_inside("/work", [A])
    assert not path_inside(A + "/../shop-b", [A])
    assert not path_inside(None, [A]) and not path_inside("", [A])
    assert path_inside("/anything", ["/"])
    assert path_inside(B + "/x", [A, B])


def test_named_paths_absolute_option_values_and_relative_words_with_a_slash():
    cmd = ("python3 /srv/a/main.py --config=/etc/a.ini -c x main.py backend/app.py "
           "--reload-dir=src/app http://localhost:8000/x -m uvicorn")
    found = list(named_paths(cmd, cwd="/home/u/p"))
    assert "/srv/a/main.py" in found
    assert "/etc/a.ini" in found
    assert "/home/u/p/backend/app.py" in found
    assert "/home/u/p/src/app" in found
    assert not [p for p in found if "localhost" in p or p.endswith("/main.py") and
                p.startswith("/home")]       # a bare word and a URL name no path
    # without a folder, only absolute names count
    assert list(named_paths("node frontend/x.js /a/b", None)) == ["/a/b"]


@pytest.mark.parametrize("command", [
    "vim vite.config.ts", "/usr/bin/nvim main.py", "less main.py", "view frontend/x",
    "code frontend/", "/usr/share/code/code --ms-enable-electron-run-as-node frontend/",
    "cursor .", "tail -f backend.log", "emacsclient -t main.py", "/usr/bin/less -R main.py", "hx vite.config.ts",
    "subl frontend", "nano main.py", "bat main.py", "head main.py",
    # log followers: `journalctl -fu uvicorn-main` is found by the seed's `uvicorn.*main`
    "journalctl -fu uvicorn-main", "lnav backend.log", "multitail backend.log frontend.log",
    "stern uvicorn-main",
    # editors told by where they are installed: argv[0] is node, Electron or a helper
    "node /home/u/.vscode-server/bin/0f0d87fa/out/server-main.js --host=127.0.0.1 "
    "--port=0 /home/u/p/frontend",
    "/home/u/.vscode-server/bin/0f0d87fa/node /home/u/.vscode-server/bin/0f0d87fa/extensions/"
    "node_modules/typescript/lib/tsserver.js --serverMode partialSemantic /home/u/p/frontend",
    "/home/u/.cursor-server/bin/1a2b/node /home/u/.cursor-server/bin/1a2b/out/"
    "bootstrap-fork --type=extensionHost frontend",
    "/Applications/Visual Studio Code.app/Contents/Frameworks/Code Helper (Plugin).app/"
    "Contents/MacOS/Code Helper (Plugin) --type=utility /Users/u/p/frontend",
    "/usr/lib/code-server/lib/node /usr/lib/code-server --bind-addr 127.0.0.1:8080 frontend",
    "/usr/bin/node /home/u/.local/share/JetBrains/Toolbox/apps/webstorm/plugins/"
    "javascript-impl/jsLanguageServicesImpl/js-language-service.js -id=1 frontend"])
def test_editors_pagers_and_viewers(command):
    assert is_viewer(proc(10, command))


@pytest.mark.parametrize("command", [
    "python3 main.py", "node node_modules/.bin/vite", "npm run dev", "uvicorn main:app",
    "/usr/bin/python3 /srv/vim/main.py", "vite", "lesspipe main.py", "codegen frontend",
    # a dev server whose options name an editor's folder is still a dev server
    "node /home/u/p/frontend/node_modules/.bin/vite --config /home/u/.vscode/vite.config.ts",
    "node /home/u/code-servers/frontend/node_modules/.bin/vite",
    "/home/u/p/.venv/bin/python /home/u/p/backend/main.py --reload-dir /home/u/.cursor/x"])
def test_not_viewers(command):
    assert not is_viewer(proc(10, command))


def test_editors_the_user_adds():
    viewers = procclean.VIEWERS.union(["myedit"])
    assert is_viewer(proc(10, "/opt/bin/myedit vite.config.ts"), viewers)
    assert not is_viewer(proc(10, "/opt/bin/myedit vite.config.ts"))


@pytest.mark.parametrize("command", [
    "python3 procclean.py supervise backend",
    "/usr/bin/python3 /home/u/vite-project/procclean.py supervise frontend --grace 2.0",
    "python3 -m procclean dev", "python -mprocclean stop", "procclean stop",
    "/usr/local/bin/procclean status",
    # vendored in tools/ and run as a module, as init's Makefile line does
    "python3 -m tools.procclean dev", "/usr/bin/python3 -m scripts.procclean supervise worker",
    # with -S (no site), as init's Makefile line runs it
    "python3 -S -m procclean dev", "python3 -S -m tools.procclean stop",
    "python3 -S tools/procclean.py status"])
def test_another_procclean(command):
    assert is_procclean(proc(10, command))


@pytest.mark.parametrize("command", [
    "node procclean-watch.js", "python3 main.py --name procclean.pyc",
    "vim /home/u/vite-project/procclean.py.orig", "python3 myprocclean.py",
    "node tools.procclean.js", "python3 -m tools.procclean_helper"])
def test_not_procclean(command):
    assert not is_procclean(proc(10, command))


def test_tag_in_environ():
    env = b"HOME=/root\0PROCCLEAN_PROJECT=/work/shop a\0PROCCLEAN_SERVICE=backend\0PATH=/bin\0"
    assert tag_in_environ(env) == ("/work/shop a", "backend")
    assert tag_in_environ(b"PROCCLEAN_PROJECT=/p\0") == ("/p", "")      # first, no service
    assert tag_in_environ(b"HOME=/root\0PATH=/bin\0") is None
    assert tag_in_environ(b"") is None
    # a look-alike name, or the text inside another value, is no tag
    assert tag_in_environ(b"MY_PROCCLEAN_PROJECT=/p\0") is None
    assert tag_in_environ(b"CMD=env PROCCLEAN_PROJECT=/p\0") is None
    # non-UTF-8 bytes in the path survive as they decode
    tag = tag_in_environ(b"PROCCLEAN_PROJECT=/w/caf\xe9\0PROCCLEAN_SERVICE=web\0")
    assert tag is not None and tag[1] == "web" and tag[0].startswith("/w/caf")


def test_tag_in_environ_of_a_real_child(tmp_path):
    """On Linux the tag comes from /proc/PID/environ: a child we start (and that ends when
    its stdin closes) is read by process_tags."""
    system = procclean.System()
    if not system.has_proc():
        pytest.skip("no /proc here")
    env = dict(os.environ, PROCCLEAN_PROJECT=str(tmp_path), PROCCLEAN_SERVICE="worker")
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE, env=env)
    try:
        table = system.process_table()
        tags = system.process_tags(table)
        assert tags.get(child.pid) == (str(tmp_path), "worker")
        assert os.getpid() not in tags or tags[os.getpid()][1] != "worker"
    finally:
        child.stdin.close()
        child.wait()


# --------------------------------------------------------------------------------------------
# macOS / BSD sources (recorded-style outputs)

@pytest.mark.parametrize("name", ["macos-ps-E", "freebsd-ps-e"])
def test_parse_ps_environ_recorded(name):
    data = expected(name + ".json")
    commands = dict((int(pid), cmd) for pid, cmd in data["commands"].items())
    tags = parse_ps_environ(load(name + ".txt"), commands)
    assert dict((str(pid), list(tag)) for pid, tag in tags.items()) == data["tags"]


def test_parse_ps_environ_without_the_commands_still_reads_macos_tags():
    tags = parse_ps_environ(load("macos-ps-E.txt").decode())
    assert tags[4242] == ("/Users/dev/shop", "backend")
    assert tags[4301] == ("/Users/dev/My Projects/web app", "frontend")
    assert 5100 not in tags and 1 not in tags


@pytest.mark.parametrize("name", ["macos-lsof-cwd", "freebsd-lsof-cwd"])
def test_parse_lsof_cwd_recorded(name):
    folders = parse_lsof_cwd(load(name + ".txt"))
    want = expected(name + ".json")["folders"]
    assert dict((str(pid), path) for pid, path in folders.items()) == want


def test_parse_lsof_cwd_takes_the_first_name_of_each_process_and_str_input():
    assert parse_lsof_cwd("p12\nfcwd\nn/a b/c\np13\nfcwd\nn/d\nn/e\n") == {12: "/a b/c",
                                                                        13: "/d"}
    assert parse_lsof_cwd(b"") == {}


def without_proc(monkeypatch, recorded=None):
    """A System on a machine with no /proc; every command it runs prints the recorded output
    (a file in tests/data/scope). Returns (system, the argv of each command it ran)."""
    system = procclean.System()
    system._has_proc = False
    calls = []

    def fake_run(argv, table=False):
        calls.append(argv)
        return load(recorded)
    monkeypatch.setattr(system, "_run", fake_run)
    return system, calls


def test_process_cwds_without_proc_is_one_lsof_call(monkeypatch):
    system, calls = without_proc(monkeypatch, "macos-lsof-cwd.txt")
    monkeypatch.setattr(procclean, "_which", lambda name: "/usr/sbin/" + name)
    folders = system.process_cwds([4242, 501, 4242, 99999])
    assert calls == [["lsof", "-a", "-d", "cwd", "-Fn", "-p", "501,4242,99999"]]
    want = expected("macos-lsof-cwd.json")["folders"]
    assert folders == {501: want.get("501"), 4242: want["4242"], 99999: None}


def test_process_cwds_without_proc_or_lsof_knows_no_folder(monkeypatch):
    system, calls = without_proc(monkeypatch)
    monkeypatch.setattr(procclean, "_which", lambda name: None)
    assert system.process_cwds([10, 11]) == {10: None, 11: None}
    assert calls == []


# macOS's `ps -E` prints the environment after the command, FreeBSD's `ps -e` before it.
@pytest.mark.parametrize("platform,flag,recorded", [
    ("darwin", "-E", "macos-ps-E"),
    ("freebsd14", "-e", "freebsd-ps-e"),
], ids=["macos", "freebsd"])
def test_process_tags_without_proc_is_one_ps_call(monkeypatch, platform, flag, recorded):
    system, calls = without_proc(monkeypatch, recorded + ".txt")
    monkeypatch.setattr(procclean.sys, "platform", platform)
    data = expected(recorded + ".json")
    table = dict((int(pid), proc(int(pid), cmd)) for pid, cmd in data["commands"].items())
    tags = system.process_tags(table)
    assert calls == [["ps", "-A", "-ww", flag, "-o", "pid=", "-o", "command="]]
    assert dict((str(p), list(t)) for p, t in tags.items()) == data["tags"]


# --------------------------------------------------------------------------------------------
# scope_roots and plan_targets

def project(tags=None, cwds=None, path=A):
    p = Project(path, tags, cwds)
    p.path = path                   # the fake folders need not exist
    p.paths = (path,)
    return p


def test_scope_roots_by_folder_named_path_tag_and_port():
    t = table_of(
        proc(10, "python3 main.py"),                       # in A/backend
        proc(11, "python3 main.py"),                       # in B/backend
        proc(12, "python3 %s/backend/main.py" % A),        # elsewhere, names A
        proc(13, "python3 main.py"),                       # folder unknown
        proc(14, "renamed-daemon"),                        # tagged A backend, cwd /
        proc(15, "python3 main.py"),                       # tagged B: outside, cwd in A!
        proc(16, "python3 -c spawn_main"),                 # port holder in A
        proc(17, "node server.js"),                        # port holder in B
        proc(18, "python3 main.py --frontend-helper"),     # tagged A frontend
    )
    pr = project(tags={14: (A, "backend"), 15: (B, "backend"), 18: (A, "frontend")},
                 cwds={10: A + "/backend", 11: B + "/backend", 12: "/tmp", 13: None,
                       15: A + "/backend", 16: A + "/backend", 17: B})
    matched = [t[p] for p in (10, 11, 12, 13, 15, 18)]
    roots, outside = scope_roots(t, BACKEND, pr, matched, [t[16], t[17]])
    got = sorted((p.pid, via) for p, s, via in roots)
    assert got == [(10, "pattern"), (12, "pattern"), (14, "tag"), (16, "port")]
    assert sorted((o.process.pid, o.folder) for o in outside) == \
        [(11, B + "/backend"), (13, None), (15, A + "/backend")]
    # everywhere: every match is a root, the other service's tagged process too
    roots, outside = scope_roots(t, BACKEND, pr, matched, [t[16], t[17]], everywhere=True)
    assert sorted(p.pid for p, s, via in roots if via == "pattern") == [10, 11, 12, 13, 15, 18]
    assert outside == []


def test_plan_targets_takes_descendants_sessions_and_groups_not_protected():
    t = table_of(
        proc(100, "python3 main.py", sid=100, pgid=100),         # started by start: leader
        proc(101, "worker", ppid=100, sid=100, pgid=100),
        proc(102, "session-helper", ppid=1, sid=100, pgid=102),  # double-forked, no setsid
        proc(103, "group-helper", ppid=1, sid=50, pgid=100),
        proc(104, "detached", ppid=1, sid=104, pgid=104),        # setsid: gone from both
        proc(200, "bash", ppid=1, sid=200, pgid=200),
        proc(201, "make stop", ppid=200, sid=200, pgid=201),
    )
    targets = plan_targets(t, [(t[100], BACKEND, "pidfile")], {0, 1, 201})
    got = sorted((x.pid, x.via, x.origin) for x in targets)
    assert got == [(100, "pidfile", "pidfile"), (101, "child", "pidfile"),
                   (102, "session", "pidfile"), (103, "session", "pidfile")]
    # a root that leads the session procclean runs in: its other members are taken, never
    # procclean's ancestors
    targets = plan_targets(t, [(t[200], BACKEND, "pattern")], {0, 1, 200, 201})
    assert [x.pid for x in targets] == []


def test_plan_targets_with_the_session_of_a_leader_that_exited():
    t = table_of(proc(102, "session-helper", ppid=1, sid=100, pgid=102),
                 proc(300, "unrelated", ppid=1, sid=300, pgid=300))
    targets = plan_targets(t, [], {0, 1}, look=1, sessions=[(100, BACKEND)])
    assert [(x.pid, x.via, x.look) for x in targets] == [(102, "session", 1)]


def test_plan_targets_leaves_the_browser_a_service_opened():
    t = table_of(
        proc(100, "node node_modules/.bin/vite --open", sid=100, pgid=100),
        proc(101, "/usr/lib/node/esbuild --service", ppid=100, sid=100, pgid=100),
        proc(102, "/bin/sh /usr/bin/xdg-open http://localhost:5173", ppid=100, sid=100,
             pgid=100),
        proc(103, "/usr/lib/firefox/firefox http://localhost:5173", ppid=102, sid=100,
             pgid=100),
        proc(104, "/usr/lib/firefox/firefox -contentproc -childID 1", ppid=103, sid=100,
             pgid=100),
        proc(105, "/snap/chromium/x/chrome --headless=new --remote-debugging-port=0",
             ppid=100, sid=100, pgid=100),                     # a test's browser
        proc(106, "google-chrome http://localhost:5173", sid=106, pgid=106),   # tag only
        proc(107, "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome", sid=107,
             pgid=107),
        proc(108, "firefox --kiosk http://localhost:5173", sid=108, pgid=108),
    )
    roots = [(t[100], FRONTEND, "pidfile"), (t[106], FRONTEND, "tag"),
             (t[107], FRONTEND, "tag")]
    got = sorted(x.pid for x in plan_targets(t, roots, {0, 1}))
    assert got == [100, 101, 102, 105]
    # a browser that is the service itself, by its pidfile, is stopped with its children
    got = sorted(x.pid for x in plan_targets(t, [(t[103], FRONTEND, "pidfile")], {0, 1}))
    assert got == [103, 104]
    assert sorted(x.pid for x in plan_targets(t, [(t[108], FRONTEND, "pattern")],
                                              {0, 1})) == []



def test_plan_targets_leaves_the_editor_a_service_opened_and_its_terminals():
    """Vite's and Next's "open in editor" run `code`: with no VS Code running, it starts
    one that carries the service's tag, and so does every terminal the user opens in it.
    A tmux server the service starts is its own (overmind runs a Procfile in one)."""
    t = table_of(
        proc(100, "node node_modules/.bin/vite", sid=100, pgid=100),
        proc(101, "/usr/lib/node/esbuild --service", ppid=100, sid=100, pgid=100),
        proc(102, "vim src/App.tsx", ppid=100, sid=100, pgid=100),
        proc(103, "/usr/share/code/code --unity-launch src/App.tsx", sid=103, pgid=103),
        proc(104, "/usr/share/code/code --type=utility --utility-sub-type=node.mojom",
             ppid=103, sid=103, pgid=103),
        proc(105, "/bin/bash --init-file shellIntegration-bash.sh", ppid=104, sid=105,
             pgid=105),
        proc(106, "python3 main.py", ppid=105, sid=105, pgid=106),
        proc(107, "tmux new-session -d -s logs", sid=107, pgid=107),
        proc(108, "-bash", ppid=107, sid=108, pgid=108),
        proc(109, "/usr/lib/node/esbuild --service", sid=109, pgid=109),    # detached
        proc(110, "sleep 1000", ppid=102, sid=100, pgid=100),
    )
    tagged = [(t[pid], FRONTEND, "tag") for pid in (103, 104, 105, 106, 107, 108, 109)]
    roots = [(t[100], FRONTEND, "pidfile")] + tagged
    got = sorted(x.pid for x in plan_targets(t, roots, {0, 1}))
    assert got == [100, 101, 107, 108, 109]
    # found by tag alone (no pidfile), the session leader still brings its session
    got = sorted(x.pid for x in plan_targets(t, [(t[100], FRONTEND, "tag")] + tagged,
                                             {0, 1}))
    assert got == [100, 101, 107, 108, 109]
    # `make dev` in the terminal of an editor the user opened: the editor has no tag
    t[120] = proc(120, "node node_modules/.bin/vite", ppid=105, sid=105, pgid=120)
    got = plan_targets(t, [(t[120], FRONTEND, "tag")], {0, 1})
    assert [x.pid for x in got] == [120]
    # ...and in a terminal of the one the service opened: what procclean starts is its
    t[121] = proc(121, "python3 procclean.py dev", ppid=105, sid=105, pgid=121)
    t[122] = proc(122, "/usr/lib/node/esbuild --service", ppid=121, sid=122, pgid=122)
    got = plan_targets(t, [(t[122], FRONTEND, "tag")] + tagged, {0, 1})
    assert sorted(x.pid for x in got) == [107, 108, 109, 122]


# --------------------------------------------------------------------------------------------
# commands on the fake system: two checkouts

def two_checkouts(a, b):
    return [
        FakeProc(100, 1, "python3 main.py", cwd=a + "/backend"),
        FakeProc(101, 100, "python3 -c from multiprocessing.spawn import spawn_main",
                 cwd=a + "/backend"),
        FakeProc(110, 1, "python3 main.py", cwd=b + "/backend"),
        FakeProc(200, 1, "node node_modules/.bin/vitest --watch", cwd=a + "/frontend"),
        FakeProc(201, 1, "vim vite.config.ts", cwd=a + "/frontend"),
        FakeProc(202, 1, "/usr/bin/python3 /usr/bin/procclean.py supervise frontend", cwd=a),
        FakeProc(210, 1, "node node_modules/.bin/vite", cwd=b + "/frontend"),
        FakeProc(899, 1, "make stop", cwd=a),
        FakeProc(900, 899, "python3 procclean.py stop", cwd=a),
    ]


def test_stop_takes_this_checkouts_processes_only(in_a):
    a, b = in_a
    system = FakeSystem(two_checkouts(a, b))
    code, out, err = invoke(["stop"], system)
    assert code == 0, out + err
    assert signalled(system) == [100, 101, 200]
    assert "backend: left alone outside this project: PID 110 (dev, %s/backend) python3 " \
        "main.py (show-processes lists them, --everywhere takes them)\n" % b in out
    assert "frontend: left alone outside this project: PID 210 (dev, %s/frontend) node " \
        "node_modules/.bin/vite (show-processes lists them, --everywhere takes them)\n" % b in out
    assert "PID 201" not in out and "PID 202" not in out


def test_stop_everywhere_takes_the_other_checkout_never_editors_or_procclean(in_a):
    a, b = in_a
    system = FakeSystem(two_checkouts(a, b))
    code, out, err = invoke(["stop", "--everywhere"], system)
    assert code == 0, out + err
    assert signalled(system) == [100, 101, 110, 200, 210]
    assert "outside this project" not in out


def test_status_and_show_processes_list_outside_matches_apart(in_a):
    a, b = in_a
    system = FakeSystem(two_checkouts(a, b))
    code, out, _ = invoke(["status", "backend", "--json"], system)
    assert code == 0
    rec = json.loads(out)["services"][0]
    assert rec["pids"] == [100, 101]
    assert [(o["pid"], o["folder"]) for o in rec["outside"]] == [(110, b + "/backend")]
    code, out, _ = invoke(["show-processes", "--json"], system)
    data = json.loads(out)
    assert sorted(p["pid"] for p in data["processes"]) == [100, 101, 200]
    assert sorted((o["pid"], o["service"]) for o in data["outside"]) == \
        [(110, "backend"), (210, "frontend")]
    assert system.sent == []


def test_folder_unknown_is_outside(in_a):
    a, b = in_a
    procs = two_checkouts(a, b)
    procs[2].cwd = None
    system = FakeSystem(procs)
    code, out, _ = invoke(["stop", "backend"], system)
    assert code == 0
    assert 110 not in signalled(system)
    assert "PID 110 (dev, folder unknown)" in out


def test_start_is_not_already_running_because_of_an_outside_match(in_a):
    a, b = in_a
    procs = [p for p in two_checkouts(a, b) if p.pid not in (100, 101)]
    system = FakeSystem(procs)
    code, out, err = invoke(["start", "backend", "--dry-run"], system)
    assert code == 0, out + err
    assert "already running" not in out
    assert "would start backend" in out or "backend" in out


def test_a_stranger_on_the_port_is_named_after_stop(in_a):
    a, b = in_a
    procs = two_checkouts(a, b)
    system = FakeSystem(procs, listeners=[Listener(8000, "127.0.0.1", "ipv4", pid=110)])
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0, out + err
    assert 110 not in signalled(system)
    assert "port 8000 is still held by PID 110 in %s/backend" % b in out + err
    assert "kill-port 8000" in out + err


def test_an_orphaned_worker_on_the_port_is_a_target_in_the_folder(in_a):
    a, b = in_a
    system = FakeSystem([FakeProc(101, 1, "/usr/bin/python3 -c from multiprocessing.spawn "
                                  "import spawn_main", cwd=a + "/backend"),
                         FakeProc(110, 1, "node server.js", cwd=b)],
                        listeners=[Listener(8000, "127.0.0.1", "ipv4", pid=101),
                                   Listener(3000, "127.0.0.1", "ipv4", pid=110)])
    code, out, err = invoke(["stop"], system)
    assert code == 0, out + err
    assert signalled(system) == [101]
    assert "nothing running" in out      # frontend: nothing of this project
    assert "port 3000 is still held by PID 110" in out + err


@pytest.mark.parametrize("command", [
    "ssh -L 8000:localhost:8000 devbox", "/usr/bin/ssh -N -L 127.0.0.1:8000:db:8000 bastion",
    "kubectl port-forward svc/api 8000:8000", "socat TCP-LISTEN:8000,fork TCP:10.0.0.5:80"])
def test_a_tunnel_run_in_the_folder_on_the_port_is_named_not_stopped(in_a, command):
    """The user's tunnel, run from the project's folder, forwards the backend's port to
    another machine: no leftover of the backend's (an ssh one holds a remote shell).
    stop names it with kill-port, which still takes it."""
    a, b = in_a
    system = FakeSystem([FakeProc(120, 1, command, cwd=a)],
                        listeners=[Listener(8000, "127.0.0.1", "ipv4", pid=120)])
    code, out, err = invoke(["stop"], system)
    assert code == 0, out + err
    assert signalled(system) == []
    assert "port 8000 is still held by PID 120 in %s" % a in out + err
    assert "kill-port 8000" in out + err
    code, out, err = invoke(["kill-port", "8000"], system)
    assert signalled(system) == [120], out + err


# --------------------------------------------------------------------------------------------
# the second look

class GrowingSystem(FakeSystem):
    """A FakeSystem whose table gains processes when some are signalled: `on_term` maps a
    PID to the FakeProcs that appear when it gets SIGTERM, `on_kill` the same for SIGKILL."""

    def __init__(self, procs, on_term=None, on_kill=None, **kw):
        FakeSystem.__init__(self, procs, **kw)
        self.on_term = dict(on_term or {})
        self.on_kill = dict(on_kill or {})

    def send_signal(self, pid, signum):
        FakeSystem.send_signal(self, pid, signum)
        new = (self.on_term if signum == TERM else self.on_kill).pop(pid, ())
        if callable(new):
            new = new()
        for p in new:
            self.procs[p.pid] = p


def test_a_child_forked_after_sigterm_is_found_by_the_second_look(in_a):
    a, _ = in_a
    system = GrowingSystem(
        [FakeProc(100, 1, "python3 main.py", term_delay=None, cwd=a)],
        on_term={100: [FakeProc(150, 100, "cleanup-child", cwd="/")]})
    code, out, err = invoke(["stop", "backend", "--grace", "0.2"], system)
    assert code == 0, out + err
    assert (KILL in system.procs[150].signals) and TERM not in system.procs[150].signals
    assert KILL in system.procs[100].signals
    assert "backend: 1 of them appeared while stopping (found by looking again)" in out
    assert "PID 150" in out


def test_what_appears_during_the_grace_gets_sigkill_with_no_second_grace(in_a):
    """SPEC's stop: SIGTERM, the grace, look again, SIGKILL to what survived and to what
    appeared. A child a SIGTERM handler starts, that would linger (as Next.js's
    telemetry flusher may), is SIGKILLed at the first look again: the stop lasts one
    grace, not two."""
    a, _ = in_a
    system = GrowingSystem(
        [FakeProc(100, 1, "npm run dev", term_delay=None, cwd=a)],     # takes the grace
        on_term={100: [FakeProc(150, 1, "node lingering.js", cwd="/",
                                tag=(a, "frontend"))]})
    code, out, err = invoke(["stop", "frontend", "--grace", "2"], system)
    assert code == 0, out + err
    assert system.procs[150].signals == [KILL], (out, system.sent)
    assert [t for t, pid, sig in system.sent if pid == 150] == \
        [t for t, pid, sig in system.sent if pid == 150 and t < 2.5], system.sent


def test_a_respawned_worker_of_a_master_ignoring_sigterm(in_a):
    a, _ = in_a
    system = GrowingSystem(
        [FakeProc(100, 1, "uvicorn main:app --workers 1", term_delay=None, cwd=a),
         FakeProc(101, 100, "python3 -c spawn_main", cwd=a)],
        on_term={101: [FakeProc(102, 100, "python3 -c spawn_main", cwd=a)]})
    code, out, err = invoke(["stop", "backend", "--grace", "0.2"], system)
    assert code == 0, out + err
    assert system.procs[102].signals == [KILL]
    assert KILL in system.procs[100].signals


def test_a_helper_left_in_the_session_of_a_leader_that_exited(in_a):
    """The leader exits on SIGTERM and a helper of its session (out of the tree, no tag,
    no folder in the project) appears: the session still says whose it is."""
    a, _ = in_a
    system = GrowingSystem(
        [FakeProc(100, 1, "python3 main.py", cwd=a, sid=100, pgid=100)],
        on_term={100: [FakeProc(160, 1, "session-helper", cwd="/", sid=100, pgid=160)]})
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0, out + err
    assert system.procs[160].signals == [KILL]


def test_a_tagged_process_appearing_during_the_stop(in_a):
    a, _ = in_a
    system = GrowingSystem(
        [FakeProc(100, 1, "python3 main.py", cwd=a)],
        on_term={100: [FakeProc(170, 1, "renamed", cwd="/", tag=(a, "backend"))]})
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0, out + err
    assert system.procs[170].signals == [KILL]


def test_the_second_look_is_bounded_and_exit_1_when_things_keep_appearing(in_a):
    a, _ = in_a
    counter = [500]

    def spawn():
        # every SIGKILL makes a new tagged process appear: it never ends
        counter[0] += 1
        new = FakeProc(counter[0], 1, "hydra", cwd="/", tag=(a, "backend"))
        system.on_kill[new.pid] = spawn
        return [new]
    system = GrowingSystem([FakeProc(100, 1, "python3 main.py", cwd=a)])
    system.on_term[100] = spawn
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 1, out + err
    assert system.table_reads <= procclean.MAX_LOOKS + 3
    assert "still runs after SIGKILL" in out + err
    # the record of what was not stopped is kept
    assert len(signalled(system)) <= procclean.MAX_LOOKS + 2


def test_nothing_appearing_means_one_look_only(in_a):
    a, _ = in_a
    system = FakeSystem([FakeProc(100, 1, "python3 main.py", cwd=a)])
    code, out, _ = invoke(["stop", "backend"], system)
    assert code == 0
    assert system.table_reads == 2         # the survey, and one look after the signals
    assert "appeared while stopping" not in out


# --------------------------------------------------------------------------------------------
# supervisors killed with SIGKILL: the state file, and the files kept

def dead_supervisors_files(child, updated, pidfile=True):
    """What a `worker` supervisor (PID 700), killed with SIGKILL, left: worker.pid naming it
    (unless not pidfile) and worker.pid.state naming its child, last written at `updated`."""
    if pidfile:
        with open("worker.pid", "w") as f:
            f.write("700\n")
    with open("worker.pid.state", "w") as f:
        json.dump({"supervisor": 700, "child": child, "state": "running",
                   "updated": updated}, f)


def stop_worker(system):
    """`stop worker` on the fake system, the worker service configured by the environment."""
    env = {"LANG": "C.UTF-8", "PROCCLEAN_SERVICES": "worker",
           "PROCCLEAN_WORKER_COMMAND": "python3 worker.py"}
    return invoke(["stop", "worker"], system, environ=env)


def test_the_child_a_dead_supervisors_state_names_is_stopped(in_a):
    # the worker has no pattern: only the state file finds its child
    dead_supervisors_files(701, 2000.0)
    system = FakeSystem([FakeProc(701, 1, "python3 worker.py", start=1000.0)])
    code, out, err = stop_worker(system)
    assert code == 0, out + err
    assert signalled(system) == [701]
    assert not os.path.exists("worker.pid") and not os.path.exists("worker.pid.state")


def test_the_record_of_a_child_that_could_not_be_stopped_is_kept(in_a):
    dead_supervisors_files(701, 2000.0)
    child = FakeProc(701, 1, "python3 worker.py", eperm=True, user="root")
    child.cwd = None        # another user's: its folder cannot be read
    system = FakeSystem([child])
    code, out, err = stop_worker(system)
    assert code == 1, out + err
    assert "701" in out + err
    assert os.path.exists("worker.pid") and os.path.exists("worker.pid.state")


def test_a_state_file_naming_a_later_process_is_not_trusted(in_a):
    """The PID in the state was reused by a process that started after the state was
    written: it is not the supervisor's child."""
    dead_supervisors_files(701, 500.0, pidfile=False)
    system = FakeSystem([FakeProc(701, 1, "sshd: dev", cwd="/", start=1000.0)])
    code, out, err = stop_worker(system)
    assert code == 0, out + err
    assert system.sent == []


# --------------------------------------------------------------------------------------------
# the project folder

def test_the_project_as_the_user_reached_it_through_a_symlink(tmp_path, monkeypatch):
    real = tmp_path / "real"
    os.makedirs(str(real))
    link = tmp_path / "link"
    os.symlink(str(real), str(link))
    monkeypatch.chdir(str(link))
    config = procclean.load_config(environ={"PWD": str(link)})
    assert config.project == os.path.realpath(str(real))
    assert config.project_given == str(link)
    project = Project(config.project_given)
    assert project.holds(proc(10, "python3 %s/backend/main.py" % link))
    assert project.holds(proc(10, "python3 %s/backend/main.py" % os.path.realpath(str(real))))
    # a $PWD that names another folder (make -C, a stale variable) is not believed
    for environ in ({"PWD": str(tmp_path)}, {"PWD": "relative"}, {}):
        config = procclean.load_config(environ=environ)
        assert config.project_given == os.path.realpath(str(real)), environ


def test_root_in_the_config_is_relative_to_the_file(tmp_path, monkeypatch):
    ops = tmp_path / "shop" / "ops"
    os.makedirs(str(ops))
    with open(str(ops / "procclean.ini"), "w") as f:
        f.write("[procclean]\nroot = ..\n")
    monkeypatch.chdir(str(ops))
    config = procclean.load_config(environ={})
    assert config.project == os.path.realpath(str(tmp_path / "shop"))
    with open(str(ops / "procclean.ini"), "w") as f:
        f.write("[procclean]\nroot = ../missing\n")
    with pytest.raises(procclean.ProcCleanError):
        procclean.load_config(environ={})


def test_scope_machine_for_one_service_only(in_a):
    a, b = in_a
    with open("procclean.ini", "w") as f:
        f.write("[backend]\nscope = machine\n")
    system = FakeSystem(two_checkouts(a, b))
    code, out, err = invoke(["stop"], system)
    assert code == 0, out + err
    assert signalled(system) == [100, 101, 110, 200]        # B's frontend stays
    assert "PID 210 (dev, %s/frontend)" % b in out


def test_scope_machine_in_the_environment(in_a):
    a, b = in_a
    system = FakeSystem(two_checkouts(a, b))
    env = {"LANG": "C.UTF-8", "PROCCLEAN_SCOPE": "machine"}
    code, out, err = invoke(["stop", "backend"], system, environ=env)
    assert code == 0, out + err
    assert signalled(system) == [100, 101, 110]


def test_a_bad_scope_is_a_usage_error(in_a):
    with open("procclean.ini", "w") as f:
        f.write("[procclean]\nscope = planet\n")
    code, out, err = invoke(["stop"], FakeSystem([]))
    assert code == 2 and "scope" in err


# --------------------------------------------------------------------------------------------
# identity to the clock tick

def tick_system(monkeypatch):
    system = procclean.System()
    system._has_proc = True
    system._boot_time = 1000.0
    monkeypatch.setattr(system, "_clock_ticks", lambda: 100)
    return system


def test_started_by_compares_clock_ticks_not_seconds(monkeypatch):
    system = tick_system(monkeypatch)
    proc_ = Process(10, 1, "dev", "sshd: dev", start_ticks=550)      # 1005.50
    assert system.started_by(proc_, 1005.50) is True
    assert system.started_by(proc_, 1006.0) is True
    # written in the same second, before the process started: a reused PID
    assert system.started_by(proc_, 1005.20) is False
    assert system.started_by(proc_, 1005.49) is False


def test_same_process_checks_the_start_tick(monkeypatch):
    system = tick_system(monkeypatch)
    now = {10: procclean.ProcStat(10, "x", "S", 1, 10, 10, 0, 550, 1)}
    monkeypatch.setattr(system, "proc_stat", lambda pid: now.get(pid))
    assert system.same_process(Process(10, 1, "dev", "x", start_ticks=550))
    assert not system.same_process(Process(10, 1, "dev", "x", start_ticks=549))
    assert not system.same_process(Process(11, 1, "dev", "x", start_ticks=550))


def test_outside_matches_reported_in_chinese(in_a):
    a, b = in_a
    procs = two_checkouts(a, b)
    procs[2].cwd = None
    system = FakeSystem(procs, listeners=[Listener(3000, "127.0.0.1", "ipv4", pid=210)])
    code, out, err = invoke(["stop", "--lang", "zh"], system)
    assert code == 0, out + err
    assert "本项目之外的匹配进程未处理: PID 110 (dev, 目录未知)" in out
    assert "端口 3000 仍被 PID 210 占用 (目录 %s/frontend)" % b in out + err
    code, out, _ = invoke(["show-processes", "--lang", "zh"], FakeSystem(two_checkouts(a, b)))
    assert "PID 110 匹配, 但不属于本项目 (%s/backend)" % b in out


def test_vite_project_the_backends_supervisor_is_never_a_frontend_match(in_a):
    a, _ = in_a
    sup = "/usr/bin/python3 %s/vite-project/procclean.py supervise backend --grace 2.0" % a

    def procs():
        return [FakeProc(300, 1, sup, cwd=a, tag=(a, "backend"), sid=300, pgid=300),
                FakeProc(301, 300, "/usr/bin/python3 main.py", cwd=a + "/backend",
                         tag=(a, "backend"), sid=300, pgid=300),
                FakeProc(400, 1, "node node_modules/.bin/vite", cwd=a + "/frontend")]
    for argv in (["stop", "frontend"], ["stop", "frontend", "--everywhere"]):
        system = FakeSystem(procs())
        code, out, err = invoke(argv, system)
        assert code == 0, out + err
        assert signalled(system) == [400], argv
        assert "PID 300" not in out
    system = FakeSystem(procs())
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0, out + err
    assert signalled(system) == [300, 301]


def test_another_projects_tagged_process_is_reported_with_its_folder(in_a):
    """What procclean started in B carries B's tag: outside A, and named with its folder
    (not "folder unknown")."""
    a, b = in_a
    system = FakeSystem([FakeProc(110, 1, "python3 main.py", cwd=b + "/backend",
                                  tag=(b, "backend")),
                         FakeProc(111, 1, "python3 main.py", cwd=a + "/backend",
                                  tag=(b, "backend"))])
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0, out + err
    assert system.sent == []
    assert "PID 110 (dev, %s/backend)" % b in out and "PID 111 (dev, %s/backend)" % a in out
    code, out, _ = invoke(["status", "backend", "--json"], system)
    assert [(o["pid"], o["folder"]) for o in json.loads(out)["services"][0]["outside"]] == \
        [(110, b + "/backend"), (111, a + "/backend")]


def test_process_cwds_of_a_real_child_even_after_its_folder_was_removed(tmp_path):
    system = procclean.System()
    if not system.has_proc():
        pytest.skip("no /proc here")
    folder = tmp_path / "gone soon"
    os.makedirs(str(folder))
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE, cwd=str(folder))
    try:
        assert system.process_cwds([child.pid]) == {child.pid: os.path.realpath(str(folder))}
        os.rmdir(str(folder))
        assert system.process_cwds([child.pid]) == {child.pid: os.path.realpath(str(folder))}
        assert system.process_cwds([2 ** 22 + 7]) == {2 ** 22 + 7: None}
    finally:
        child.stdin.close()
        child.wait()


def test_two_frontends_each_take_what_was_started_by_hand_in_their_own_folder(in_a):
    """Two apps with the same vite pattern (init writes one a frontend): a vite run by hand
    in apps/web is web's, not admin's, though admin's pattern finds it too; one run at the
    root, in neither folder, is found by both (status lists it with the first)."""
    a, _ = in_a
    for app in ("web", "admin"):
        os.makedirs(os.path.join(a, "apps", app))
    with open(os.path.join(a, "procclean.ini"), "w") as f:
        f.write("[procclean]\nservices = web admin\n\n"
                "[web]\npattern = (pnpm.* dev|vite)\ncwd = apps/web\nport = 5173\n\n"
                "[admin]\npattern = (pnpm.* dev|vite)\ncwd = apps/admin\nport = 5174\n")
    procs = [FakeProc(300, 1, "node /w/node_modules/.bin/vite", cwd=a + "/apps/web"),
             FakeProc(301, 1, "node /w/node_modules/.bin/vite", cwd=a + "/apps/admin"),
             FakeProc(302, 1, "node /w/node_modules/.bin/vite --port 5999", cwd=a)]
    system = FakeSystem(procs)
    code, out, err = invoke(["stop", "admin"], system)
    assert code == 0, out + err
    assert signalled(system) == [301, 302]
    system = FakeSystem(procs)
    code, out, _ = invoke(["status", "--json"], system)
    pids = dict((s["name"], s["pids"]) for s in json.loads(out)["services"])
    assert pids == {"web": [300, 302], "admin": [301]}


def test_two_services_in_one_folder_both_take_what_both_patterns_find(in_a):
    """Two services of the root folder whose patterns both find a process run by hand:
    neither folder is nearer, so `stop` of either one stops it, as before folders
    counted (the one first in procclean.ini took it alone: `stop jobs` left it)."""
    a, _ = in_a
    with open(os.path.join(a, "procclean.ini"), "w") as f:
        f.write("[procclean]\nservices = web jobs\n\n"
                "[web]\npattern = node .*server\nport = 5173\n\n"
                "[jobs]\npattern = server\\.js\n")
    procs = [FakeProc(300, 1, "node /w/server.js", cwd=a)]
    for name in ("jobs", "web"):
        system = FakeSystem(procs)
        code, out, err = invoke(["stop", name], system)
        assert code == 0, out + err
        assert signalled(system) == [300], (name, out)


def stop_frontend_then_status(procs):
    """(the PIDs `stop frontend` signals, each service's PIDs as `status --json` shows
    them), each on a machine of its own holding `procs`."""
    system = FakeSystem(procs)
    code, out, err = invoke(["stop", "frontend"], system)
    assert code == 0, out + err
    stopped = signalled(system)
    code, out, _ = invoke(["status", "--json"], FakeSystem(procs))
    return stopped, dict((s["name"], s["pids"]) for s in json.loads(out)["services"])


def test_a_broad_pattern_takes_nothing_run_by_hand_in_the_folder_of_a_service_beside(in_a):
    """A pnpm workspace's frontend (`pnpm.* run dev`) took the `pnpm run dev` a user ran by
    hand in the Node backend's folder, whose own pattern (`tsx watch`) does not find it:
    `stop frontend` stopped the backend.  A process outside a service's folder, in the
    folder of a service beside it, is not its; one in the frontend's folder, or at the
    root that holds both, still is; a worker of the root takes the celery its pattern
    finds in the backend's folder (the backend has its tsx, its pattern's)."""
    a, _ = in_a
    for app in ("backend", "frontend"):
        os.makedirs(os.path.join(a, "apps", app))
    with open(os.path.join(a, "procclean.ini"), "w") as f:
        f.write("[procclean]\nservices = backend frontend worker\n\n"
                "[backend]\npattern = tsx watch src/server\\.ts\ncwd = apps/backend\n"
                "port = 3000\ncommand = pnpm run dev\n\n"
                "[frontend]\npattern = (pnpm.* run dev|vite)\ncwd = apps/frontend\n"
                "port = 5173\ncommand = pnpm run dev\n\n"
                "[worker]\npattern = celery.*worker\n")
    procs = [FakeProc(300, 1, "pnpm run dev", cwd=a + "/apps/backend"),
             FakeProc(301, 300, "node /w/node_modules/.bin/tsx watch src/server.ts",
                      cwd=a + "/apps/backend"),
             FakeProc(310, 1, "pnpm run dev", cwd=a + "/apps/frontend"),
             FakeProc(320, 1, "pnpm run dev --filter web", cwd=a),
             FakeProc(330, 1, "python -m celery -A app worker", cwd=a + "/apps/backend")]
    assert stop_frontend_then_status(procs) == (
        [310, 320], {"backend": [301], "frontend": [310, 320], "worker": [330]})


def test_a_root_frontend_takes_nothing_a_backend_folder_runs_as_its_command(in_a):
    """A Vite app at the root (the built-in pattern, `npm run dev|vite|...`) and an
    Express API in server/ (`npm run dev`, found by `nodemon server\\.js`), as init writes
    them: the `npm run dev` a user ran by hand in server/ was the frontend's, so `stop
    frontend` stopped the API (npm and its nodemon).  A process that runs a deeper
    service's own command in its folder is that service's; a root worker still takes the
    celery its pattern finds there (it runs no command of the backend's)."""
    a, _ = in_a
    os.makedirs(os.path.join(a, "server"))
    with open(os.path.join(a, "procclean.ini"), "w") as f:
        f.write("[procclean]\nservices = backend frontend worker\n\n"
                "[backend]\npattern = nodemon server\\.js\ncwd = server\nport = 4000\n"
                "command = npm run dev\n\n"
                "[frontend]\ncwd = .\nport = 5173\n"
                "command = npm run dev -- --port {port} --strictPort\n\n"
                "[worker]\npattern = celery.*worker\n")
    procs = [FakeProc(300, 1, "npm run dev", cwd=a + "/server"),
             FakeProc(301, 300, "node /a/server/node_modules/.bin/nodemon server.js",
                      cwd=a + "/server"),
             FakeProc(310, 1, "npm run dev -- --port 5173 --strictPort", cwd=a),
             FakeProc(311, 310, "node /a/node_modules/.bin/vite --port 5173", cwd=a),
             FakeProc(330, 1, "python -m celery -A app worker", cwd=a + "/server")]
    assert stop_frontend_then_status(procs) == (
        [310, 311], {"backend": [301], "frontend": [310, 311], "worker": [330]})
