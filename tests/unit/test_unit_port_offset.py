"""port_offset (issue 21 item 2): each checkout its own ports, on a fake machine."""
import io
import json
import os

import pytest

from fakes import FakeProc, FakeSystem, invoke
import procclean

AUTO = "[procclean]\nport_offset = auto\n"


def port_readers(folder):
    """The built-in backend's main.py and frontend's dev script, each reading PORT."""
    (folder / "backend").mkdir()
    (folder / "backend" / "main.py").write_text("import os\nport = os.environ['PORT']\n")
    (folder / "frontend").mkdir()
    (folder / "frontend" / "package.json").write_text('{"scripts": {"dev": "next dev"}}')


def context(system, command):
    """The Context of `command` on `system`, with the ports settled as run() does."""
    config = procclean.load_config(environ={})
    ctx = procclean.Context(system, config, procclean.Reporter(environ={}))
    procclean.settle_ports(ctx, command)
    return ctx


@pytest.mark.parametrize("text, value", [("auto", "auto"), (" Auto ", "auto"), ("10", 10),
                                         ("+20", 20), ("", None), ("0", None), ("off", None)])
def test_port_offset_values(text, value):
    assert procclean.parse_port_offset(text) == value


@pytest.mark.parametrize("text", ["-10", "ten", "70000", "1.5"])
def test_a_bad_port_offset_is_a_usage_error(tmp_path, monkeypatch, text):
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text("[procclean]\nport_offset = %s\n" % text)
    code, out, err = invoke(["status"], FakeSystem([]))
    assert code == 2
    assert "port_offset: expected auto or a number like 10" in err


def test_a_fixed_offset_moves_configured_ports_not_those_the_environment_names(tmp_path,
                                                                               monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(
        "[procclean]\nport_offset = 10\n\n[worker]\npattern = w\nport = 9000\n")
    env = {"LANG": "C.UTF-8", "PROCCLEAN_FRONTEND_PORT": "3333"}
    code, out, err = invoke(["status", "--json"], FakeSystem([]), environ=env)
    assert code == 0, err
    doc = json.loads(out)
    ports = dict((s["name"], s["port"]) for s in doc["services"])
    assert ports == {"backend": 8010, "frontend": 3333, "worker": 9010}
    assert doc["port_offset"] == {"offset": 10, "mode": "fixed", "file": None,
                                  "ports": {"backend": 8010, "worker": 9010}}


def test_status_says_so_when_the_environment_sets_every_port(tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text("[procclean]\nport_offset = 10\n")
    env = {"LANG": "C.UTF-8", "PROCCLEAN_BACKEND_PORT": "8123",
           "PROCCLEAN_FRONTEND_PORT": "3123"}
    code, out, err = invoke(["status"], FakeSystem([]), environ=env)
    assert code == 0, err
    assert ("ports: offset +10 for this checkout (port_offset = 10): none moves: each port "
            "is set by the environment or --set\n") in out, out


def test_a_worktree_looks_at_its_own_offset_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(AUTO)
    (tmp_path / ".git").write_text("gitdir: /src/app/.git/worktrees/x\n")
    code, out, err = invoke(["status"], FakeSystem([]))
    assert code == 0, err
    offset = 10 * procclean.checkout_slot(os.path.realpath(str(tmp_path)))
    assert 10 <= offset <= 990
    assert ("ports: offset +%d for this checkout (port_offset = auto, recorded at the first "
            "start): backend %d, frontend %d" % (offset, 8000 + offset, 3000 + offset)) in out
    assert not (tmp_path / ".procclean-offset").exists()


def test_a_main_checkout_keeps_the_ports_and_moves_off_another_checkouts(tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(AUTO)
    (tmp_path / ".git").mkdir()
    port_readers(tmp_path)
    ctx = context(FakeSystem([]), "start")
    assert ctx.config.services["backend"].port == 8000
    assert (tmp_path / ".procclean-offset").read_text() == "0\n"
    other = FakeProc(40, 1, "python main.py", cwd="/src/other-clone/backend")
    system = FakeSystem([other], listeners=[procclean.Listener(8000, "127.0.0.1", "ipv4", 40)])
    ctx = context(system, "status")     # only looks: the record stands
    assert ctx.config.services["backend"].port == 8000
    ctx = context(system, "dev")
    offset = 10 * procclean.checkout_slot(os.path.realpath(str(tmp_path)))
    assert ctx.config.services["backend"].port == 8000 + offset
    assert ctx.config.services["frontend"].port == 3000 + offset
    assert (tmp_path / ".procclean-offset").read_text() == "%d\n" % offset
    # this checkout's own listener keeps it where it is
    own = FakeProc(41, 1, "python main.py", cwd=str(tmp_path / "backend"))
    system = FakeSystem([other, own], listeners=[
        procclean.Listener(8000, "127.0.0.1", "ipv4", 40),
        procclean.Listener(8000 + offset, "127.0.0.1", "ipv4", 41),
        procclean.Listener(3000 + offset, "127.0.0.1", "ipv4", 40)])
    ctx = context(system, "restart")
    assert ctx.config.services["backend"].port == 8000 + offset


def test_only_the_projects_services_have_ports_to_move(tmp_path, monkeypatch):
    """A backend-only project (`services = backend`, as init writes for
    yizhengtang/CICD2_Lab_6_Service_B): the built-in frontend it does not have neither
    shows in the ports line nor moves the checkout because something else holds 3000."""
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(
        "[procclean]\nservices = backend\nport_offset = auto\n")
    (tmp_path / ".git").mkdir()
    port_readers(tmp_path)
    other = FakeProc(40, 1, "node server.js", cwd="/src/another-app")
    system = FakeSystem([other], listeners=[procclean.Listener(3000, "127.0.0.1", "ipv4", 40)])
    ctx = context(system, "dev")
    assert ctx.config.services["backend"].port == 8000
    assert (tmp_path / ".procclean-offset").read_text() == "0\n"
    code, out, err = invoke(["status"], system)
    assert "ports: offset +0 for this checkout (port_offset = auto, recorded in " \
        ".procclean-offset): backend 8000\n" in out, out


def test_a_service_that_cannot_follow_the_offset_is_named_at_launch(tmp_path, monkeypatch,
                                                                    capsys):
    """rizperdana/fast-vite-todo-ai in a git worktree: backend/main.py runs uvicorn on 7777
    whatever PORT says, and the Vite dev script takes no port. dev said `this checkout uses
    port offset +580 (backend 8357, frontend 5753)`, then the backend died with Address
    already in use. Each service that will not move is named before anything starts, with
    how to make it move; one whose command has {port} is not."""
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(
        "[procclean]\nport_offset = 10\n\n[backend]\ncommand = {python} main.py\n"
        "cwd = backend\nport = 7777\n\n[frontend]\ncommand = npm run dev -- --port {port}\n"
        "cwd = frontend\n")
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "main.py").write_text(
        "import uvicorn\nuvicorn.run('app.main:app', port=7777)\n")
    (tmp_path / "frontend").mkdir()
    capsys.readouterr()
    ctx = context(FakeSystem([]), "dev")
    assert ctx.config.services["backend"].port == 7777   # where it listens
    assert ctx.config.services["frontend"].port == 3010
    err = capsys.readouterr().err
    assert "backend: port_offset does not move it: it listens on port 7777, the one its " \
        "command or app names, as in every checkout" in err, err
    assert "backend does not take its port from procclean" in err, err
    assert "frontend" not in err, err
    context(FakeSystem([]), "status")                   # only looks: nothing said
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("setting", ["auto", "10"])
def test_status_and_stop_look_at_the_port_a_stopped_service_names_of_its_own(tmp_path,
                                                                           monkeypatch,
                                                                           setting):
    """jmhart/minimal-flask-react in a second checkout (port_offset = auto): backend/app.py
    runs Flask on 5001 whatever PORT says.  start kept it there; once stopped, status said
    `port 5591: free` (status reads no app).  The record of the offset names the services
    kept at their own port at the last launch; commands that only look read it.  With
    `port_offset = 10` (qa-repo-31's fcm-2) status said `port 5011: free` the same way: the
    record is written there too (`+10 backend`: auto never takes +10 for its offset)."""
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(
        "[procclean]\nport_offset = %s\n\n[backend]\ncommand = {python} app.py\n"
        "cwd = backend\nport = 5001\n" % setting)
    (tmp_path / ".git").write_text("gitdir: /src/app/.git/worktrees/x\n")
    port_readers(tmp_path)
    offset = 10 * procclean.checkout_slot(os.path.realpath(str(tmp_path)))
    offset, mark = (offset, "") if setting == "auto" else (10, "+")
    context(FakeSystem([]), "start")        # every app reads PORT: nothing to record
    assert os.path.exists(".procclean-offset") is (setting == "auto")
    (tmp_path / "backend" / "app.py").write_text("app.run(debug=True, port=5001)\n")
    for command in ("start", "status", "stop"):
        ports = context(FakeSystem([]), command).config.ports["ports"]
        assert ports == {"backend": 5001, "frontend": 3000 + offset}, command
    assert (tmp_path / ".procclean-offset").read_text() == "%s%d backend\n" % (mark, offset)
    # the app now reads PORT: the next launch moves it, and says so in the record
    (tmp_path / "backend" / "app.py").write_text("app.run(port=int(os.environ['PORT']))\n")
    for command in ("dev", "status"):
        ports = context(FakeSystem([]), command).config.ports["ports"]
        assert ports == {"backend": 5001 + offset, "frontend": 3000 + offset}, command
    assert (tmp_path / ".procclean-offset").read_text() == "%s%d\n" % (mark, offset)


@pytest.mark.parametrize("command", ["start web", "dev"])
def test_a_fixed_port_another_checkout_holds_is_named_before_launching(tmp_path, monkeypatch,
                                                                        command):
    """Rails 7's `unset PORT && bin/rails server` (web) beside a uvicorn api, in a second
    checkout (port_offset = auto): the api moved, web was launched anyway and died on 3000
    (EADDRINUSE, the first checkout's) with a traceback in its log, exit 1, because the
    port start checked was the offset one, 3000 + offset (qa-repo's leftover).  start and
    dev look at the port web really takes: the holder is named, nothing is launched."""
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(
        "[procclean]\nservices = api web\nport_offset = auto\n\n[api]\npattern = uvicorn\n"
        "command = uvicorn app:app --port {port}\nport = 8000\n\n[web]\n"
        "pattern = rails server\ncommand = unset PORT && bin/rails server\nport = 3000\n")
    (tmp_path / ".git").mkdir()
    first = [FakeProc(40, 1, "uvicorn app:app --port 8000", cwd="/src/first"),
             FakeProc(41, 1, "ruby bin/rails server", cwd="/src/first")]
    system = FakeSystem(first, listeners=[procclean.Listener(8000, "127.0.0.1", "ipv4", 40),
                                          procclean.Listener(3000, "127.0.0.1", "ipv4", 41)])
    system.spawn = system.spawn_piped = None            # a launch fails the test
    code, out, err = invoke(command.split(), system)
    assert code == 1, err
    assert (tmp_path / ".procclean-offset").read_text().endswith(" web\n")
    offset = int((tmp_path / ".procclean-offset").read_text().split()[0])
    assert offset > 0 and "this checkout now uses port offset +%d (api %d)" % (
        offset, 8000 + offset) in err, err
    assert "web: port_offset does not move it: it listens on port 3000" in err, err
    assert "cannot start web: port 3000 is taken by PID 41 (ruby bin/rails server, in " \
        "/src/first)" in err, err
    assert err.count("web does not take its port from procclean") == 1, err


@pytest.mark.parametrize("command, example", [
    ("unset PORT && bin/rails server", "unset PORT && bin/rails server -p {port}"),
    ("npm run dev", "npm run dev -- --port {port}"),
    # a script named for its server (chanon-mike/nextjs-fastapi-boilerplate): npm's --
    ("npm run dev:next", "npm run dev:next -- --port {port}"),
    # pnpm 7+ passes `--` on to the script (`next dev -p 3210 -- --port 3300` fails)
    ("pnpm dev", "pnpm dev --port {port}"), ("yarn run dev", "yarn run dev --port {port}"),
    ("gunicorn -c conf.py app:app", "gunicorn -c conf.py app:app --bind 127.0.0.1:{port}"),
    ("npx vite --host", "npx vite --host --port {port}"),
    ("{python} main.py", "uvicorn ... --port {port}"),
    # a port the command names is replaced, not given a second flag beside it
    ("next dev -p 3000", "next dev -p {port}"),
    ("uvicorn app:app --port 8000 --reload", "uvicorn app:app --port {port} --reload"),
    ("{python} main.py --port=8000", "{python} main.py --port={port}")])
def test_the_hint_for_a_service_that_does_not_follow_its_port_gives_its_own_flag(
        tmp_path, monkeypatch, capsys, command, example):
    """The hint said `(uvicorn ... --port {port})` for every service, a Rails or Next app
    too (qa-repo's leftover): it now gives the service's own command with the flag its
    server takes."""
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(
        "[procclean]\nservices = web\nport_offset = 10\n\n[web]\ncommand = %s\n"
        "port = 3000\n" % command)
    (tmp_path / "main.py").write_text("import uvicorn\nuvicorn.run('app:app', port=3000)\n")
    capsys.readouterr()
    context(FakeSystem([]), "dev")
    err = capsys.readouterr().err
    assert "to move it, put {port} in its command (%s) or read PORT" % example in err, err


@pytest.mark.parametrize("command, files", [
    ("{python} app.py", {"app.py": "from flask import Flask\napp = Flask(__name__)\n"
                                   "app.run(port=3000)\n"}),
    ("go run ./main.go", {"main.go": 'package main\nfunc main() {\n'
                                     '\thttp.ListenAndServe(":3000", nil)\n}\n'})])
def test_the_hint_for_a_server_whose_code_names_its_port_is_to_read_port(
        tmp_path, monkeypatch, capsys, command, files):
    """A Flask script's app.run(port=5001) (jmhart/minimal-flask-react) and a Go server's
    ":8080" (SultanBadri/svelte-go-todo-app) were told `put {port} in its command
    (uvicorn ... --port {port})`, uvicorn's flag, which neither runs: the code is what
    to change, to read PORT."""
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(
        "[procclean]\nservices = web\nport_offset = 10\n\n[web]\ncommand = %s\n"
        "port = 3000\n" % command)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    capsys.readouterr()
    context(FakeSystem([]), "dev")
    err = capsys.readouterr().err
    assert "web does not take its port from procclean (nothing it runs is seen to read " \
        "$PORT): to move it, have the app read PORT where it sets its port" in err, err
    assert "uvicorn" not in err, err


@pytest.mark.parametrize("target, said", [
    ("http://localhost:8000", True), ("http://127.0.0.1:8000", True),
    ("'http://127.0.0.1:' + (process.env.PROCCLEAN_WEB_PORT || 8000)", False)])
def test_a_frontend_proxying_to_a_literal_port_is_named_at_launch(tmp_path, monkeypatch,
                                                                  capsys, target, said):
    """ggonzalezcastro/inmo in a second checkout: its Vite proxies /api to
    localhost:8000.  With port_offset the checkout's web moved to 8010 and its Vite to
    5183, whose /api calls then went to 8000, the other checkout's API, and nothing said
    so.  A frontend whose proxy names another service's configured port is named before
    anything starts, with the variable to read; a target that reads it is not."""
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(
        "[procclean]\nport_offset = 10\nservices = web frontend\n\n[web]\npattern = w\n"
        "command = uvicorn app.main:app --port {port}\nport = 8000\n\n[frontend]\n"
        "command = npm run dev -- --port {port}\ncwd = frontend\nport = 5173\n")
    (tmp_path / "frontend").mkdir()
    quoted = target if target.startswith("'") else "'%s'" % target
    (tmp_path / "frontend" / "vite.config.ts").write_text(
        "export default {server: {proxy: {'/api': {target: %s}}}}\n" % quoted)
    capsys.readouterr()
    context(FakeSystem([]), "start")
    err = capsys.readouterr().err
    warning = ("frontend: frontend/vite.config.ts proxies to localhost:8000, web's port in "
               "the checkout without an offset; here web is on 8010, so frontend would "
               "reach the other checkout's web: make the target read PROCCLEAN_WEB_PORT")
    assert (warning in err) == said, err
    context(FakeSystem([]), "status")                   # only looks: nothing said
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("target, said", [
    ("'http://localhost:8000'", True),
    ("'http://127.0.0.1:' + (process.env.PROCCLEAN_WEB_PORT || 8000)", False)])
def test_a_frontend_proxying_to_a_port_a_setting_moved_is_named(tmp_path, monkeypatch,
                                                                 capsys, target, said):
    """PROCCLEAN_BACKEND_PORT=8001 make dev beside a server on 8000 (procclean's own hint
    when 8000 is taken): the backend listened on 8001 while Vite's proxy still sent /api
    to 8000, the stranger, and nothing said so (/tmp/qa-daily-32/dayf.sh, real FastAPI
    and Vite). As for port_offset, the proxy is named before anything starts."""
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(
        "[procclean]\nservices = web frontend\n\n[web]\npattern = w\n"
        "command = uvicorn app.main:app --port {port}\nport = 8000\n\n[frontend]\n"
        "command = npm run dev -- --port {port}\ncwd = frontend\nport = 5173\n")
    (tmp_path / "frontend").mkdir()
    (tmp_path / "frontend" / "vite.config.ts").write_text(
        "export default {server: {proxy: {'/api': {target: %s}}}}\n" % target)
    warning = ("frontend: frontend/vite.config.ts proxies to localhost:8000, web's port "
               "before PROCCLEAN_WEB_PORT moved it to 8001: frontend would reach whatever "
               "listens on 8000, not web: make the target read PROCCLEAN_WEB_PORT")
    for command, environ in (("dev", {"PROCCLEAN_WEB_PORT": "8001"}), ("start", {}),
                             ("status", {"PROCCLEAN_WEB_PORT": "8001"})):
        capsys.readouterr()
        config = procclean.load_config(environ=environ)
        ctx = procclean.Context(FakeSystem([]), config, procclean.Reporter(environ={}))
        procclean.settle_ports(ctx, command)
        err = capsys.readouterr().err
        assert (warning in err) == (said and command == "dev"), (command, err)


@pytest.mark.parametrize("rewrite, said", [
    ('destination: "http://localhost:8000/:path*"', True),
    ("destination: `http://localhost:${process.env.PROCCLEAN_API_PORT || 8000}/:path*`",
     False)])
def test_a_next_rewrite_to_a_literal_port_is_named_at_launch(tmp_path, monkeypatch, capsys,
                                                             rewrite, said):
    """A pnpm monorepo modelled on a public Makefile (code index file 62512751268): the
    Next app's next.config.ts rewrites /api/* to localhost:8000, the API's port.  In a
    second checkout the API moved to 8780 and Next to 3990, whose /api went to the first
    checkout's API, and nothing said so (only Vite's proxy and CRA's "proxy" were read)."""
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(
        "[procclean]\nport_offset = 10\nservices = api web\n\n[api]\npattern = u\n"
        "command = uvicorn app.main:app --port {port}\nport = 8000\n\n[web]\npattern = n\n"
        "command = pnpm dev -p {port}\ncwd = web\nport = 3210\n")
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "next.config.ts").write_text(
        "export default {async rewrites() {return [{source: '/api/:path*', %s}]}}\n"
        % rewrite)
    capsys.readouterr()
    context(FakeSystem([]), "start")
    err = capsys.readouterr().err
    assert ("web: web/next.config.ts proxies to localhost:8000, api's port in the checkout "
            "without an offset; here api is on 8010" in err) == said, err


@pytest.mark.parametrize("settings, vite, said", [
    ("INSTALLED_APPS = ['django_vite']\nDJANGO_VITE_DEV_MODE = True\n", 3000, True),
    ("INSTALLED_APPS = ['django_vite']\nDJANGO_VITE = {'default': {'dev_mode': True}}\n",
     5173, True),
    ("INSTALLED_APPS = ['django_vite']\nDJANGO_VITE_DEV_SERVER_PORT = 5174\n", 5174, True),
    ("INSTALLED_APPS = ['django_vite']\nDJANGO_VITE_DEV_SERVER_PORT = int(os.environ.get("
     "'PROCCLEAN_FRONTEND_PORT', 3000))\n", 3000, False),
    ("INSTALLED_APPS = []\n", 3000, False)])
def test_a_django_vite_backend_looking_at_the_configured_vite_port_is_named(
        tmp_path, monkeypatch, capsys, settings, vite, said):
    """MrBin99/django-vite-example in a second checkout: Django moved to 8270 and Vite to
    3270, and the pages Django rendered loaded their assets from localhost:3000 (django-vite
    2.x's default dev server port: settings.py names none), the other checkout's Vite;
    nothing said so.  Its settings (a literal port, or the default of its version: 3000
    with the DJANGO_VITE_* settings, 5173 with DJANGO_VITE) are read as a proxy target."""
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(
        "[procclean]\nport_offset = 10\n\n[backend]\n"
        "command = {python} manage.py runserver {port}\ncwd = .\n\n[frontend]\n"
        "command = npm run dev -- --port {port}\ncwd = .\nport = %d\n" % vite)
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "settings.py").write_text("import os\n" + settings)
    capsys.readouterr()
    context(FakeSystem([]), "start")
    err = capsys.readouterr().err
    # (said as what it is, not a proxy: ctrlz-blog/django-vite-vue-starter's second
    # checkout was told `settings.py ... proxies to localhost:3000 ... (the README's Vite
    # recipe)`)
    warning = ("backend: web/settings.py (django-vite's %sdev_server_port) has Django's "
               "pages load their scripts from localhost:%d, but frontend listens on %d "
               "here: set that port from PROCCLEAN_FRONTEND_PORT"
               % ("" if "5174" in settings else "default ", vite, vite + 10))
    assert (warning in err) == said, err


def test_a_port_setting_a_service_cannot_follow_is_said_at_start(tmp_path, monkeypatch):
    """rizperdana/fast-vite-todo-ai: `PROCCLEAN_BACKEND_PORT=8001 make start-backend` said
    `started backend` while main.py bound 7777 as always (issue 21 item 1's symptom). Now
    the start says the setting does not move it, and how to make it; a start of another
    service, or of one that takes {port}, says nothing of it.  And it checks and waits for
    7777, not 8001: a second checkout's Rails 7 web (`unset PORT`) given
    PROCCLEAN_WEB_PORT=3005 was launched and died on 3000, the first checkout's."""
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(
        "[backend]\ncommand = {python} main.py\ncwd = backend\nport = 7777\n\n"
        "[worker]\ncommand = {python} -m worker --port {port}\nport = 9000\n")
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "main.py").write_text(
        "import uvicorn\nuvicorn.run('app.main:app', port=7777)\n")
    env = {"LANG": "C.UTF-8", "PROCCLEAN_BACKEND_PORT": "8001", "PROCCLEAN_WORKER_PORT": "9001"}
    code, out, err = invoke(["start-backend", "--dry-run"], FakeSystem([]), environ=env)
    assert "its port is set" not in err, err            # --dry-run only looks
    for names, said in ((["backend"], True), (["worker"], False), ([], True)):
        out = procclean.Reporter(environ={})
        out.stderr = io.StringIO()
        ctx = procclean.Context(FakeSystem([]), procclean.load_config(environ=env), out)
        procclean.settle_ports(ctx, "start", names)
        err = out.stderr.getvalue()
        assert ("backend: its port is set to 8001 (PROCCLEAN_BACKEND_PORT or --set), but it "
                "will listen on the port its command or app names" in err) == said, (names, err)
        assert ("backend does not take its port from procclean" in err) == said, err
        assert "worker" not in err, err
        # the port start checks and waits for is the one main.py binds
        ports = dict((s.name, s.port) for s in ctx.config.services.values())
        assert (ports["backend"], ports["worker"]) == (7777 if said else 8001, 9001)


@pytest.mark.parametrize("port, said", [("9000", True), ("8000", False), ("3000", False)])
def test_a_port_in_the_environment_is_said_unless_it_is_a_services_own(
        tmp_path, monkeypatch, port, said):
    """`PORT=9000 make start` (the seed's backend on 8000, frontend on 3000): said, with
    the setting that moves the backend there.  A PORT that is one service's own (exported
    for the backend) is said nothing of: `to move frontend there:
    PROCCLEAN_FRONTEND_PORT=8000` would have put the frontend on the backend's port."""
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("PORT", port)
    out = procclean.Reporter(environ={})
    out.stderr = io.StringIO()
    ctx = procclean.Context(FakeSystem([]), procclean.load_config(environ={}), out)
    procclean.settle_ports(ctx, "start", ["backend", "frontend"])
    err = out.stderr.getvalue()
    assert ("PORT=%s in the environment is not what the services get" % port in err) == said
    assert ("to move backend there: PROCCLEAN_BACKEND_PORT=9000" in err) == said, err
    assert "PROCCLEAN_FRONTEND_PORT" not in err, err


@pytest.mark.parametrize("command, follows", [
    ("uvicorn main:app", True), ("uv run uvicorn app.main:app --reload", True),
    ("python -m uvicorn main:app --port 8000", False), ("flask --app app run", True),
    ("flask run -p 5000", False), ("gunicorn app:app", True),
    ("gunicorn -b :8000 app:app", False), ("python -m flask routes", False),
    ("bin/rails server", True), ("bundle exec rails s -p 3000", False),
    ("bin/rails console", False)])
def test_uvicorn_flask_and_gunicorn_follow_their_variable_unless_told_a_port(
        tmp_path, monkeypatch, command, follows):
    """uvicorn reads UVICORN_PORT, `flask run` FLASK_RUN_PORT, gunicorn and rails PORT,
    unless its command names a port or address: a port setting moves them (launch_env
    sets each to the service's port)."""
    monkeypatch.chdir(tmp_path)
    service = procclean.Service("backend", "", "", "", 8001, command, ".")
    assert bool(procclean.port_follows(service)) == follows


@pytest.mark.parametrize("conf, command, follows", [
    ('bind = "0.0.0.0:8000"\n', "gunicorn app:app", False),
    ('bind = "0.0.0.0:8000"\n', "gunicorn -c gunicorn.conf.py app:app", False),
    ('import os\nbind = "0.0.0.0:" + os.environ.get("PORT", "5006")\n',
     "gunicorn --config gunicorn.conf.py app:app", True)])
def test_gunicorn_whose_config_binds_a_port_does_not_follow(tmp_path, monkeypatch, conf,
                                                            command, follows):
    """gunicorn reads ./gunicorn.conf.py unasked (or the config -c names): a bind there
    wins over PORT, so the port setting does not move it, unless the config reads PORT
    (heroku/python-getting-started's).  It was said to follow: a second checkout's offset
    port was passed as PORT, and gunicorn bound the config's 8000, the first's."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gunicorn.conf.py").write_text(conf)
    service = procclean.Service("backend", "", "", "", 8001, command, ".")
    assert bool(procclean.port_follows(service)) == follows


@pytest.mark.parametrize("command, given", [
    ("uvicorn main:app --reload", True), ("flask --app app run", True),
    ("npm run dev", False), ("npx concurrently 'uvicorn api:app' vite", False)])
def test_a_server_s_own_port_variable_only_for_a_service_that_runs_it(
        tmp_path, monkeypatch, command, given):
    """UVICORN_PORT and FLASK_RUN_PORT go to a service whose command runs uvicorn or
    `flask run`; not to a frontend whose script also runs a uvicorn (concurrently), which
    would then take the frontend's port.  PORT goes to every one."""
    monkeypatch.chdir(tmp_path)
    ctx = context(FakeSystem([]), "start")
    service = ctx.config.services["backend"]
    service.command, service.port = command, 8001
    env = procclean.launch_env(ctx, service)
    assert env["PORT"] == "8001"
    assert [env.get(name) for name in procclean.PORT_VARIABLES] == \
        (["8001", "8001"] if given else [None, None])


@pytest.mark.parametrize("files, command", [
    ({"run.sh": 'exec python3 -m http.server "${PORT:-8000}"\n'}, "sh run.sh"),
    ({"main.py": "import uvicorn\nfrom settings import PORT\nuvicorn.run('app:app', "
                 "port=PORT)\n", "settings.py": "import os\nPORT = int(os.environ['PORT'])\n"},
     "{python} main.py")])
@pytest.mark.parametrize("given", ["setting", "offset"])
def test_a_service_that_may_read_its_port_unseen_gets_the_port_asked(tmp_path, monkeypatch,
                                                                      files, command, given):
    """A service that reads PORT where port_follows does not look (a shell script, a
    settings module) moved with a port setting and the offset; 13bc3e8 and 6e459f2 gave
    it its configured port instead (PORT=8000 after PROCCLEAN_API_PORT=8001, and in a
    second checkout `cannot start api: port 8000 is taken`).  Only a service that names a
    port of its own (unset PORT, `port=7777`, `-p 3000`) keeps the configured port."""
    monkeypatch.chdir(str(tmp_path))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "procclean.ini").write_text(
        "[procclean]\nservices = api\n%s\n[api]\npattern = x\ncommand = %s\nport = 8000\n"
        % ("port_offset = 10\n" if given == "offset" else "", command))
    env = {"PROCCLEAN_API_PORT": "8001"} if given == "setting" else {}
    out = procclean.Reporter(environ={})
    out.stderr = io.StringIO()
    ctx = procclean.Context(FakeSystem([]), procclean.load_config(environ=env), out)
    procclean.settle_ports(ctx, "start", ["api"])
    service = ctx.config.services["api"]
    asked = 8001 if given == "setting" else 8010
    assert service.port == asked, out.stderr.getvalue()
    assert procclean.launch_env(ctx, service)["PORT"] == str(asked)
    # (the settings module main.py imports is read since: it reads PORT, nothing to say)
    assert ("api does not take its port from procclean" in out.stderr.getvalue()) == (
        command == "sh run.sh")


@pytest.mark.parametrize("command, files, follows", [
    ("sh run.sh", {}, None), ("{python} main.py", {"main.py": "app.run(port=5001)\n"}, False),
    ("{python} main.py", {"main.py": "from settings import PORT\n"}, None),
    ("node server.js", {"server.js": "app.listen(3000)\n"}, False),
    ("go run .", {"main.go": 'http.ListenAndServe(":8080", nil)\n'}, False),
    ("go run .", {"main.go": 'e.Start(":1323")\n'}, False),
    ("go run .", {"main.go": 'srv := &http.Server{Addr: ":8080"}\n'}, False),
    # another server's address is not the service's own port
    ("{python} main.py", {"main.py": 'from settings import PORT\nREDIS = "localhost:6379"\n'},
     None),
    ("npm run dev", {"package.json": '{"scripts": {"dev": "vite"}}',
                     "vite.config.ts": "export default {server: {port: 5173}}\n"}, False),
    ("npm run dev", {"package.json": '{"scripts": {"dev": "vite"}}'}, None),
    # a server started given no port listens on its own default, whatever PORT says
    ("{python} main.py", {"main.py": 'uvicorn.run("main:app", reload=True)\n'}, False),
    ("{python} app.py", {"app.py": "if __name__ == '__main__':\n    app.run(debug=True)\n"},
     False),
    ("{python} main.py", {"main.py": "uvicorn.run(create_app(), host=HOST,\n"
                                     "            port=settings.port)\n"}, None),
    # PORT set in the command or its script, over procclean's: Next, CRA read it
    ("npm run dev", {"package.json": '{"scripts": {"dev": "PORT=3001 next dev"}}'}, False),
    ("npm start", {"package.json": '{"scripts": {"start": "cross-env PORT=3001 '
                                   'react-scripts start"}}'}, False),
    ("PORT=8000 {python} main.py", {"main.py": "import os\nos.environ['PORT']\n"}, False),
    ("PORT={port} {python} main.py", {"main.py": "import os\nos.environ['PORT']\n"}, True)])
def test_a_port_a_service_names_of_its_own_is_told_from_none_seen(tmp_path, monkeypatch,
                                                                   command, files, follows):
    monkeypatch.chdir(str(tmp_path))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    service = procclean.Service("api", "", "", "", 8000, command, ".")
    assert procclean.port_follows(service) is follows


SETTINGS = ("from pydantic_settings import BaseSettings\n\n\nclass Settings(BaseSettings):\n"
            "    HOST: str = \"127.0.0.1\"\n    PORT: int = 8000\n%s\n\nsettings = Settings()\n")
MAIN = ("import uvicorn\n\nfrom config import settings\n\nif __name__ == \"__main__\":\n"
        "    uvicorn.run(\"app:app\", host=settings.HOST, port=settings.PORT)\n")


@pytest.mark.parametrize("files, follows", [
    ({"main.py": MAIN, "config.py": SETTINGS % ""}, True),
    ({"main.py": MAIN, "app/config.py": SETTINGS % ""}, None),     # not the module imported
    # with an env_prefix it reads APP_PORT, not PORT
    ({"main.py": MAIN, "config.py": SETTINGS % "    model_config = {'env_prefix': 'APP_'}"},
     None),
    ({"main.py": MAIN.replace("from config", "from app.config"),
      "app/config.py": SETTINGS % ""}, True),
    ({"main.py": "import uvicorn\nuvicorn.run('app:app', host='0.0.0.0', port=8005)\n"},
     False),
    # its own run names its port: the settings' port field it imports is not what it uses
    ({"main.py": MAIN.replace("port=settings.PORT", "port=8000"), "config.py": SETTINGS % ""},
     False)])
def test_a_script_reading_its_port_through_pydantic_settings_follows(tmp_path, files,
                                                                     follows):
    """A main.py whose port comes from pydantic settings in the module it imports reads
    PORT (BaseSettings reads each field from its variable, in any case), which procclean
    sets: it follows, and start and a second checkout say nothing against it."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    service = procclean.FoundService("backend", {"command": "{python} main.py",
                                                 "cwd": str(tmp_path)}, "")
    assert procclean.port_follows(service) is follows


@pytest.mark.parametrize("setting", ["offset", "port"])
def test_a_service_on_pydantic_settings_moves_without_a_word(tmp_path, monkeypatch, capsys,
                                                             setting):
    """PROCCLEAN_API_PORT=8123, or a second checkout's offset, for a main.py on pydantic
    settings: it moves (PORT), and nothing says it would not."""
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "procclean.ini").write_text(
        "[procclean]\nservices = api\n%s\n[api]\npattern = main\\.py\n"
        "command = python3 main.py\nport = 8000\n" % (
            "port_offset = auto\n" if setting == "offset" else ""))
    (tmp_path / ".git").mkdir()
    (tmp_path / "main.py").write_text(MAIN)
    (tmp_path / "config.py").write_text(SETTINGS % "")
    first = [FakeProc(40, 1, "python3 main.py", cwd="/src/first")]
    system = FakeSystem(first, listeners=[procclean.Listener(8000, "127.0.0.1", "ipv4", 40)])
    environ = {"PROCCLEAN_API_PORT": "8123"} if setting == "port" else {}
    config = procclean.load_config(environ=environ)
    ctx = procclean.Context(system, config, procclean.Reporter(environ={}))
    capsys.readouterr()
    procclean.settle_ports(ctx, "start")
    if setting == "offset":
        offset = int((tmp_path / ".procclean-offset").read_text())
        assert offset > 0 and ctx.config.services["api"].port == 8000 + offset
    else:
        assert ctx.config.services["api"].port == 8123
    err = capsys.readouterr().err
    assert "api does not take its port from procclean" not in err, err
