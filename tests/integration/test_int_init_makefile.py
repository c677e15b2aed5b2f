"""A Makefile's own start and stop, swapped by init --makefile --replace, do for real what
they did (issue 20 items 1-2), inside a throw-away PID + network namespace: `make start`
starts the recipe's command with its pidfile and log, `make stop` stops it and removes the
pidfile; the targets init kept run as before.
"""
import os
import shutil
import sys

import pytest

from integ_helpers import no_traceback
from nslib import REPO, wait_until

MAKEFILE = """\
PY = {python}
PORT = 8123
PID = run/web.pid

serve:
\t$(PY) -m http.server $(PORT)

start:
\tnohup $(PY) -m http.server $(PORT) --bind 127.0.0.1 > web.log 2>&1 & echo $$! > $(PID)

stop:
\t-kill $$(cat $(PID))
\trm -f $(PID)

build: clean
\t@echo building
"""
PROBE = r"""
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:8123/", timeout=5) as r:
    print(r.status)
"""


def shop(ns, tmp_path, tools):
    """A repo folder `shop` with procclean.py copied in (the one the namespace runs) and
    stand-in programs ({name: script}) in shop/bin: (its path, the environment make and
    procclean run with, that bin first on PATH)."""
    root = tmp_path / "shop"
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    for name, script in tools.items():
        program = bin_dir / name
        program.write_text(script % sys.executable)
        program.chmod(0o755)
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    return root, {"NO_COLOR": "1", "PATH": "%s:%s" % (bin_dir, os.environ["PATH"])}


def test_replaced_start_and_stop_do_what_the_recipes_did(ns, tmp_path):
    root = tmp_path / "acme"
    (root / "run").mkdir(parents=True)
    (root / "Makefile").write_text(MAKEFILE.format(python=sys.executable))
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    env = {"NO_COLOR": "1", "PYTHON": sys.executable}
    before = ns.run(["make", "-n", "serve", "build"], cwd=str(root), env=env)
    r = ns.procclean("init", "--makefile", "--replace", cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    assert r.rc == 0, r
    assert "replaced start (line 8" in r.stdout and "replaced stop (line 11" in r.stdout, r
    assert "\nclean:" not in (root / "Makefile").read_text()     # build's prerequisite
    after = ns.run(["make", "-n", "serve", "build"], cwd=str(root), env=env)
    assert (after.rc, after.stdout) == (before.rc, before.stdout), (before, after)

    r = ns.run(["make", "start"], cwd=str(root), env=env, timeout=60)
    assert r.rc == 0, r

    def up():
        return ns.run([sys.executable, "-c", PROBE]).rc == 0
    assert wait_until(up, 20), (root / "web.log").read_text()
    pid = int((root / "run" / "web.pid").read_text())
    assert "http.server 8123" in " ".join(ns.run(["ps", "-o", "args=", "-p", str(pid)])
                                          .stdout.split()), pid
    assert (root / "web.log").exists()
    r = ns.run(["make", "stop"], cwd=str(root), env=env, timeout=60)
    assert r.rc == 0, r
    assert wait_until(lambda: not up() and ns.alive([pid]) == [], 20), r
    assert not (root / "run" / "web.pid").exists()


# A stand-in uvicorn: listens on its --port, as the real one does, under its own name.
UVICORN = """#!%s
import socket, sys, time
port = int(sys.argv[sys.argv.index("--port") + 1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(5)
print("serving on", port, flush=True)
while True:
    time.sleep(60)
"""
FASTAPI_APP = "from fastapi import FastAPI\n\napp = FastAPI()\n"
FOREGROUND = """\
run:
\tuvicorn main:app --reload --port 8126

kill:
\tlsof -ti:8126 | xargs kill -9
"""


def test_a_foreground_runs_app_starts_and_stops_where_the_recipe_serves_it(ns, tmp_path):
    """`run: uvicorn main:app --reload --port 8126` beside the layout's main.py, and a
    `kill:` freeing that port: init gave procclean the layout's command at port 8000, so
    `make start` served where nobody looks and `make stop` left 8126 taken. Adopted, `make
    start` runs the recipe's command on 8126, `make kill` (replaced) and `make stop` free
    it; `make run` is make's as before."""
    root, env = shop(ns, tmp_path, {"uvicorn": UVICORN})
    (root / "main.py").write_text(FASTAPI_APP)
    (root / "requirements.txt").write_text("fastapi\n")
    (root / "Makefile").write_text(FOREGROUND)
    before = ns.run(["make", "-n", "run"], cwd=str(root), env=env)
    r = ns.procclean("init", "--makefile", "--replace", cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    assert r.rc == 0 and "replaced kill (line 4" in r.stdout, r
    after = ns.run(["make", "-n", "run"], cwd=str(root), env=env)
    assert (after.rc, after.stdout) == (before.rc, before.stdout), (before, after)

    def serving():
        return "8126" in ns.run(["ss", "-ltnH"]).stdout
    for stop in ("kill", "stop"):
        r = ns.run(["make", "start"], cwd=str(root), env=env, timeout=60)
        assert r.rc == 0 and "--port 8126" in r.stdout, r
        assert wait_until(serving, 20), (root / "backend.log").read_text()
        pid = int((root / "backend.pid").read_text())
        r = ns.run(["make", stop], cwd=str(root), env=env, timeout=60)
        assert r.rc == 0, r
        assert wait_until(lambda: not serving() and ns.alive([pid]) == [], 20), r
        assert not (root / "backend.pid").exists()


ENV_PORT = """\
include .env
export

start:
\t@mkdir -p run
\tnohup uvicorn main:app --port $$PORT > run/api.log 2>&1 & echo $$! > $(PIDFILE)

stop:
\t@test -f $(PIDFILE) && kill `cat $(PIDFILE)` && rm -f $(PIDFILE) || echo "not running"
"""


def test_a_port_from_the_env_file_make_exports_is_where_start_serves(ns, tmp_path):
    """`include .env` + `export` and `--port $$PORT`: adopted, `make start` served on the
    backend's 8000 (procclean sets PORT itself) instead of .env's 8127, and without the
    recipe's `mkdir -p run` it could not open run/api.log. Replaced, start serves on 8127
    and makes run/; stop frees the port and removes the pidfile."""
    root, env = shop(ns, tmp_path, {"uvicorn": UVICORN})
    (root / "main.py").write_text(FASTAPI_APP)
    (root / ".env").write_text("PORT=8127\nPIDFILE=run/api.pid\n")
    (root / "Makefile").write_text(ENV_PORT)
    r = ns.procclean("init", "--makefile", "--replace", cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    assert r.rc == 0 and "replaced start (line 4" in r.stdout, r

    def serving():
        return "8127" in ns.run(["ss", "-ltnH"]).stdout
    r = ns.run(["make", "start"], cwd=str(root), env=env, timeout=60)
    assert r.rc == 0 and "--port 8127" in r.stdout, r
    assert wait_until(serving, 20), (root / "run" / "api.log").read_text()
    pid = int((root / "run" / "api.pid").read_text())
    r = ns.run(["make", "stop"], cwd=str(root), env=env, timeout=60)
    assert r.rc == 0, r
    assert wait_until(lambda: not serving() and ns.alive([pid]) == [], 20), r
    assert not (root / "run" / "api.pid").exists()


# A stand-in gunicorn: --daemon detaches (double fork), --pid is written by the server
# itself, --bind HOST:PORT is served, HUP reloads (is ignored), TERM ends it and removes
# its pidfile, as gunicorn does.
GUNICORN = """#!%s
import os, signal, socket, sys, time
args = sys.argv[1:]
pid_path = args[args.index("--pid") + 1]
port = int(args[args.index("--bind") + 1].rsplit(":", 1)[1])
if "--daemon" in args:
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(5)
with open(pid_path + ".new", "w") as f:
    f.write("%%d\\n" %% os.getpid())
os.rename(pid_path + ".new", pid_path)

def term(signum, frame):
    os.unlink(pid_path)
    os._exit(0)
signal.signal(signal.SIGTERM, term)
signal.signal(signal.SIGHUP, lambda signum, frame: None)
while True:
    time.sleep(60)
"""
DAEMON = """\
PIDFILE := tmp/app.pid

start:
\tgunicorn --daemon --pid $(PIDFILE) --bind 127.0.0.1:8128 wsgi:app

reload:
\tkill -HUP $$(cat $(PIDFILE))

stop:
\tkill -TERM $$(cat $(PIDFILE))
"""


def test_a_daemonizing_servers_added_targets_start_it_as_procclean_s_child(ns, tmp_path):
    """gunicorn --daemon --pid with a HUP reload and a TERM stop (all kept: procclean
    sends no HUP): procclean.ini had no command, so the added `make start-gunicorn` and
    `make dev` failed. Its command is the recipe's without --daemon: started by procclean,
    the kept reload and stop still work on it through the pidfile both write; started by
    the kept `make start`, procclean's stop takes it and frees the port."""
    root, env = shop(ns, tmp_path, {"gunicorn": GUNICORN})
    (root / "tmp").mkdir()
    (root / "wsgi.py").write_text("def app(environ, start_response):\n    pass\n")
    (root / "Makefile").write_text(DAEMON)
    r = ns.procclean("init", "--makefile", "--replace", cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    assert r.rc == 0 and "kept start (line 3)" in r.stdout and "kept stop" in r.stdout, r

    def serving():
        return "8128" in ns.run(["ss", "-ltnH"]).stdout
    r = ns.run(["make", "start-gunicorn"], cwd=str(root), env=env, timeout=60)
    assert r.rc == 0 and "--daemon" not in r.stdout, r
    assert wait_until(serving, 20), (root / "gunicorn.log").read_text()
    pid = int((root / "tmp" / "app.pid").read_text())
    assert ns.run(["make", "reload"], cwd=str(root), env=env).rc == 0
    assert serving() and ns.alive([pid]) == [pid]
    assert ns.run(["make", "stop"], cwd=str(root), env=env).rc == 0
    assert wait_until(lambda: not serving() and ns.alive([pid]) == [], 20)

    assert ns.run(["make", "start"], cwd=str(root), env=env).rc == 0
    assert wait_until(lambda: serving() and (root / "tmp" / "app.pid").exists(), 20)
    pid = int((root / "tmp" / "app.pid").read_text())
    r = ns.run(["make", "stop-gunicorn"], cwd=str(root), env=env, timeout=60)
    assert r.rc == 0, r
    assert wait_until(lambda: not serving() and ns.alive([pid]) == [], 20), r


def test_a_replaced_start_serves_on_the_port_make_is_given(ns, tmp_path):
    """`PORT ?= 8000` and `--port $(PORT)`: `make start PORT=8130` served on 8130 before
    --replace and on 8000 after it. Now on 8130, and `make stop PORT=8130` frees it."""
    root, env = shop(ns, tmp_path, {"uvicorn": UVICORN})
    (root / "main.py").write_text(FASTAPI_APP)
    (root / "Makefile").write_text(
        "PORT ?= 8000\nstart:\n\tnohup uvicorn main:app --port $(PORT) > api.log 2>&1"
        " & echo $$! > api.pid\nstop:\n\tkill $$(cat api.pid); rm -f api.pid\n")
    r = ns.procclean("init", "--makefile", "--replace", cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    assert r.rc == 0 and "replaced start (line 2" in r.stdout, r

    def serving():
        return "8130" in ns.run(["ss", "-ltnH"]).stdout
    r = ns.run(["make", "start", "PORT=8130"], cwd=str(root), env=env, timeout=60)
    assert r.rc == 0 and "--port 8130" in r.stdout, r
    assert wait_until(serving, 20), (root / "api.log").read_text()
    pid = int((root / "api.pid").read_text())
    r = ns.run(["make", "stop", "PORT=8130"], cwd=str(root), env=env, timeout=60)
    assert r.rc == 0, r
    assert wait_until(lambda: not serving() and ns.alive([pid]) == [], 20), r


# A stand-in bin/rails: `rails server` writes its pidfile (-P, else tmp/pids/server.pid)
# after it boots, refusing to start while that file names a live process, its own
# included ("A server is already running"), as Rails does; -d detaches; TERM ends it.
RAILS = """#!%s
import os, signal, socket, sys, time
args = sys.argv[1:]
port = int(args[args.index("-p") + 1])
pid_path = args[args.index("-P") + 1] if "-P" in args else "tmp/pids/server.pid"
if "-d" in args:
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
time.sleep(0.5)                     # booting: procclean has written its pidfile by now
if not os.path.isdir(os.path.dirname(pid_path)):
    os.makedirs(os.path.dirname(pid_path))
if os.path.exists(pid_path):
    try:
        os.kill(int(open(pid_path).read() or 0), 0)
        print("A server is already running. Check %%s." %% pid_path, flush=True)
        sys.exit(1)
    except (OSError, ValueError):
        os.unlink(pid_path)
with open(pid_path + ".new", "w") as f:
    f.write(str(os.getpid()))
os.rename(pid_path + ".new", pid_path)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(5)
signal.signal(signal.SIGTERM, lambda signum, frame: (os.unlink(pid_path), os._exit(0)))
while True:
    time.sleep(60)
"""
RAILS_MAKEFILE = """\
server:
\tbin/rails s -p 3131

start:
\tbin/rails server -d -p 3131

stop:
\t@if [ -f tmp/pids/server.pid ]; then kill `cat tmp/pids/server.pid`; fi
"""


def test_a_rails_server_procclean_starts_is_not_refused_for_its_own_pidfile(ns, tmp_path):
    """Rails writes tmp/pids/server.pid itself and refuses to start while it names a live
    process; procclean, whose pidfile the Makefile's stop made tmp/pids/server.pid, wrote
    it first, so `make start-server` always died ("A server is already running"). Rails
    is told its own (-P) and serves; the replaced stop frees the port, and stops the
    server the kept `make start -d` left too."""
    root = tmp_path / "shop"
    (root / "bin").mkdir(parents=True)
    rails = root / "bin" / "rails"
    rails.write_text(RAILS % sys.executable)
    rails.chmod(0o755)
    (root / "Makefile").write_text(RAILS_MAKEFILE)
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    env = {"NO_COLOR": "1"}
    r = ns.procclean("init", "--makefile", "--replace", cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    assert r.rc == 0 and "replaced stop (line 7" in r.stdout, r
    assert "kept start (line 4)" in r.stdout, r

    def serving():
        return "3131" in ns.run(["ss", "-ltnH"]).stdout
    for start in ("start-server", "start"):
        r = ns.run(["make", start], cwd=str(root), env=env, timeout=60)
        assert r.rc == 0, r
        assert wait_until(serving, 20), (root / "server.log").read_text()
        r = ns.run(["make", "stop"], cwd=str(root), env=env, timeout=60)
        assert r.rc == 0, r
        assert wait_until(lambda: not serving(), 20), r


# A stand-in npm: `npm run dev -- --port N` listens on N (else on $PORT), as Vite does.
NPM = """#!%s
import os, socket, sys, time
args = sys.argv[1:]
port = int(args[args.index("--port") + 1]) if "--port" in args else int(os.environ["PORT"])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(5)
print("dev server on", port, flush=True)
while True:
    time.sleep(60)
"""
SESSION = """\
run-api:
\tcd api && uvicorn main:app --reload --port 8141

run-web:
\tcd web && npm run dev

dev:
\t%s
"""


@pytest.mark.parametrize("dev, end", [
    ("cd api && uvicorn main:app --reload --port 8141 &\n\tcd web && npm run dev", "ctrl-c"),
    ("$(MAKE) -j2 run-api run-web", "stop"),
    ("trap 'kill 0' EXIT; (cd api && uvicorn main:app --reload --port 8141) & "
     "(cd web && npm run dev) & wait", "ctrl-c")])
def test_a_replaced_dev_session_ends_with_nothing_of_it_left(ns, tmp_path, dev, end):
    """RyanDur/Barking-Polka's `dev:` (`uvicorn ... &`, then the frontend in the
    foreground): sh starts the `&` job with SIGINT ignored, so Ctrl-C ended the frontend
    and left a server that keeps it so (this stand-in does) holding its port. Replaced by
    `procclean dev`, as are `make -j2 run-api run-web` and `trap 'kill 0' EXIT; ... &
    wait`: Ctrl-C, or `make stop` from another terminal, ends the session and both apps."""
    root, env = shop(ns, tmp_path, {"uvicorn": UVICORN, "npm": NPM})
    for folder, name, text in (("api", "main.py", FASTAPI_APP),
                               ("web", "package.json", '{"scripts": {"dev": "vite"}}')):
        (root / folder).mkdir()
        (root / folder / name).write_text(text)
    (root / "Makefile").write_text(SESSION % dev)
    r = ns.procclean("init", "--makefile", "--replace", cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    assert r.rc == 0 and "replaced dev (line 7" in r.stdout, r

    def listening():
        table = ns.run(["ss", "-ltnH"]).stdout
        return [port for port in ("8141", "5173") if ":%s " % port in table]
    session = ns.start(["make", "dev"], cwd=str(root), env=env, session=True)
    assert wait_until(lambda: len(listening()) == 2, 30), (
        (root / "api.log").read_text(), (root / "web.log").read_text())
    if end == "ctrl-c":         # to the terminal's foreground group: make's
        ns.run(["kill", "-INT", "--", "-%d" % session.pid])
    else:
        r = ns.run(["make", "stop"], cwd=str(root), env=env, timeout=60)
        assert r.rc == 0, r
    r = session.wait(60)
    assert not r.timed_out and "Traceback" not in r.stderr, r
    assert wait_until(lambda: not listening(), 20), listening()
    assert not [p for p in ns.ps() if any(w in " ".join(p["argv"]) for w in (
        "uvicorn", "npm run dev"))], ns.ps()


SERVER = """#!%s
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8142))
s.listen(5)
while True:
    time.sleep(60)
"""


def test_a_nohup_server_and_the_stop_freeing_its_port_are_one_service(ns, tmp_path):
    """yangsibai/sibo.io: `run: stop build` + `nohup ./server &`, `stop:` frees the port
    with lsof. init made two services, the server on the built-in 8000 and a port-only
    one; now one: `make run` twice restarts it, `make stop` frees the port."""
    root, env = shop(ns, tmp_path, {"go": "#!%s\n"})
    (root / "notesrv").write_text(SERVER % sys.executable)
    (root / "notesrv").chmod(0o755)
    (root / "Makefile").write_text(
        "PORT := 8142\nbuild:\n\tgo build -o notesrv\nrun: stop build\n"
        "\tnohup ./notesrv>/dev/null 2>&1 &\nstop:\n\t-lsof -t -i:${PORT} | xargs kill\n")
    r = ns.procclean("init", "--makefile", "--replace", cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    assert r.rc == 0 and "replaced run (line 4" in r.stdout, r

    def serving():
        return ":8142 " in ns.run(["ss", "-ltnH"]).stdout
    pids = []
    for _ in range(2):
        r = ns.run(["make", "run"], cwd=str(root), env=env, timeout=60)
        assert r.rc == 0, r
        assert wait_until(serving, 20), r
        pids.append(int((root / "backend.pid").read_text()))
        assert ns.alive(pids) == pids[-1:]         # the first one stopped
    r = ns.run(["make", "stop"], cwd=str(root), env=env, timeout=60)
    assert r.rc == 0, r
    assert wait_until(lambda: not serving() and not ns.alive(pids), 20), r
