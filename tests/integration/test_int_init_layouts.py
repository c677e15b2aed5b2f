"""init on a layout that is not the seed's, then start --wait and stop for real (issue 20
item 4), inside a throw-away PID + network namespace.

The repo is tests/fixtures/init/uv-api-web without its README: a FastAPI app in
api/app/main.py (a package, imported as app.main from api/), uv.lock in api/, a .venv beside
it (the venv that has uvicorn and fastapi: requirements-dev.txt's). init must find the app,
write a command that runs it, and the pattern it writes must find what that command starts
(the uvicorn server and, with --reload, its worker), so that stop leaves nothing.
"""
import os
import re
import shutil
import stat
import sys

import pytest

from fixture_repos import copy_repo
from integ_helpers import no_traceback
from nslib import REPO, wait_until
from test_int_frontend_port import VITE

VENV = os.path.dirname(os.path.dirname(sys.executable))
HEALTH = r"""
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/health" % sys.argv[1], timeout=5) as r:
    print(r.status, r.read().decode())
"""


@pytest.fixture
def repo(ns, tmp_path):
    for module in ("uvicorn", "fastapi"):
        if not os.path.exists(os.path.join(VENV, "bin", module)):
            pytest.skip("%s is not installed beside %s" % (module, sys.executable))
    root = copy_repo("uv-api-web", tmp_path / "acme")
    os.remove(str(root / "README.md"))
    os.symlink(VENV, str(root / "api" / ".venv"))
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    return root


def run(ns, root, *args):
    r = ns.procclean(*args, cwd=str(root), env={"NO_COLOR": "1", "VIRTUAL_ENV": None},
                     timeout=120)
    no_traceback(r)
    return r


def uvicorn_lines(ns):
    table = ns.run(["ps", "-eo", "pid,args"]).stdout.splitlines()
    return [l for l in table if "uvicorn" in l or "spawn_main" in l]


@pytest.mark.parametrize("reload", [False, True], ids=["plain", "reload"])
def test_init_then_start_and_stop_a_nested_uvicorn_app(ns, repo, reload):
    if reload:
        # documented with its reload flag and port (the venv's uvicorn: uv is not installed
        # here to run `uv run uvicorn ...`, the same process under uv)
        (repo / "api" / "README.md").write_text(
            "Run it:\n\n    .venv/bin/uvicorn app.main:app --reload --port 8011\n")
    r = run(ns, repo, "init")
    assert r.rc == 0, r
    ini = (repo / "procclean.ini").read_text()
    assert "cwd = api" in ini, ini
    if reload:
        assert "command = .venv/bin/uvicorn app.main:app --reload --port {port}" in ini, ini
        assert "port = 8011" in ini, ini
        port = 8011
    else:
        assert "command = {python} -m uvicorn app.main:app --host 127.0.0.1 --port {port}" \
            in ini, ini
        port = 8000
    r = run(ns, repo, "start", "--wait", "backend")
    assert r.rc == 0, (r, (repo / "backend.log").read_text())
    h = ns.run([sys.executable, "-c", HEALTH, str(port)])
    assert h.rc == 0 and h.stdout.startswith("200"), h
    lines = uvicorn_lines(ns)
    assert any("app.main:app" in l for l in lines), lines
    if reload:
        assert any("spawn_main" in l for l in lines), lines     # the reloader's worker
    r = run(ns, repo, "status", "backend")
    assert r.rc == 0 and re.search(r"backend: running", r.stdout), r
    r = run(ns, repo, "stop")
    assert r.rc == 0, r
    assert wait_until(lambda: uvicorn_lines(ns) == [], 10), uvicorn_lines(ns)
    h = ns.run([sys.executable, "-c", HEALTH, str(port)])
    assert h.rc != 0, h
    assert not (repo / "backend.pid").exists()


def test_procfile_entries_start_and_stop_as_services(ns, repo):
    """A Procfile's entries become services: `web` on foreman's $PORT (5000) and a worker
    without a port (web/'s frontend, which the Procfile lacks, is added after them; pnpm is
    not installed here); start --wait starts both, stop leaves nothing of either."""
    (repo / "Procfile").write_text(
        "web: cd api && .venv/bin/uvicorn app.main:app --port $PORT\n"
        "worker: python jobs.py --queue default\n")
    (repo / "jobs.py").write_text("import time\nwhile True:\n    time.sleep(1)\n")
    r = run(ns, repo, "init")
    assert r.rc == 0, r
    ini = (repo / "procclean.ini").read_text()
    assert "services = web worker frontend" in ini and "port = 5000" in ini, ini
    r = run(ns, repo, "start", "--wait", "web", "worker")
    assert r.rc == 0, (r, (repo / "web.log").read_text())
    h = ns.run([sys.executable, "-c", HEALTH, "5000"])
    assert h.rc == 0 and h.stdout.startswith("200"), h

    def ours():
        return [l for l in ns.run(["ps", "-eo", "pid,args"]).stdout.splitlines()
                if "app.main:app" in l or "jobs.py" in l]
    assert any("jobs.py --queue default" in l for l in ours()), ours()
    r = run(ns, repo, "status", "web", "worker")
    assert r.rc == 0 and "web: running" in r.stdout and "worker: running" in r.stdout, r
    r = run(ns, repo, "stop")
    assert r.rc == 0, r
    assert wait_until(lambda: ours() == [], 10), ours()


@pytest.mark.parametrize("form", ["app", "factory", "api-only"])
def test_a_fastapi_app_factory_starts_under_uvicorn_and_stops(ns, tmp_path, form):
    """tests/fixtures/init/fastapi-create-app: app/main.py builds its FastAPI app in
    create_app() (`app = create_app()`, or the factory alone). init wrote Flask's CLI for
    it, which cannot serve it; now uvicorn serves it (with --factory for the factory
    alone): start --wait answers on its port, status says running, stop leaves nothing.
    api-only: its one route under /api/v1 (/health and / answer 404): the app answers, so
    start --wait does not take it for a sick one."""
    for module in ("uvicorn", "fastapi"):
        if not os.path.exists(os.path.join(VENV, "bin", module)):
            pytest.skip("%s is not installed beside %s" % (module, sys.executable))
    root = copy_repo("fastapi-create-app", tmp_path / "ledger")
    os.symlink(VENV, str(root / ".venv"))
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    main = root / "app" / "main.py"
    path = "/api/v1/" if form == "api-only" else "/"
    main.write_text(main.read_text().replace('.get("/")', '.get("%s")' % path))
    if form == "factory":
        main.write_text(main.read_text().replace("\n\napp = create_app()\n", "\n"))
    assert run(ns, root, "init").rc == 0
    ini = (root / "procclean.ini").read_text()
    assert "flask" not in ini, ini
    r = run(ns, root, "start", "--wait", "backend")
    assert r.rc == 0, (r, (root / "backend.log").read_text())
    h = ns.run([sys.executable, "-c", HEALTH.replace("/health", path), "8000"])
    assert h.rc == 0 and '"ledger"' in h.stdout, h
    r = run(ns, root, "status", "--check", "backend")
    assert r.rc == 0 and "backend: running" in r.stdout, r
    r = run(ns, root, "stop")
    assert r.rc == 0, r
    assert wait_until(lambda: uvicorn_lines(ns) == [], 10), uvicorn_lines(ns)
    assert not (root / "backend.pid").exists()


def test_two_frontends_run_together_under_dev_and_stop_one_by_one(ns, tmp_path):
    """tests/fixtures/init/pnpm-web-admin with both apps on plain `vite` (npm here: pnpm is
    not installed): init writes frontend on 5173 and admin on 5174, each with --port and
    --strictPort (the stand-in vite refuses to start without it, as a second vite on 5173
    would fail). `dev` starts both, each answers on its port; `stop admin` from another
    terminal stops the admin app alone, then `stop` the rest and dev ends, nothing left."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    root = copy_repo("pnpm-web-admin", tmp_path / "tidepool")
    os.remove(str(root / "pnpm-lock.yaml"))
    shutil.rmtree(str(root / "apps" / "backend"))      # the Node API: tsx is not here
    for app in ("frontend", "admin"):
        folder = root / "apps" / app
        package = folder / "package.json"
        package.write_text(re.sub(r'"vite --port \d+"', '"vite"', package.read_text()))
        (folder / "package-lock.json").write_text("{}")
        vite = folder / "node_modules" / ".bin" / "vite"
        vite.parent.mkdir(parents=True)
        vite.write_text(VITE % sys.executable)
        vite.chmod(vite.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    env = {"NO_COLOR": "1", "npm_config_update_notifier": "false"}
    assert run(ns, root, "init").rc == 0
    ini = (root / "procclean.ini").read_text()
    assert "services = frontend admin" in ini and "port = 5174" in ini, ini
    dev = ns.start(["/bin/sh", "-c", 'exec "$@" >dev.out 2>&1', "sh"] +
                   ns.procclean_argv("dev"), cwd=str(root), env=env, session=True)
    assert wait_until(lambda: ns.connect("127.0.0.1", 5173) and ns.connect(
        "127.0.0.1", 5174), 60), (root / "dev.out").read_text()

    def servers():
        lines = [" ".join(p["argv"]) for p in ns.ps()]
        return [line for line in lines if "http.server" in line]
    assert len(servers()) == 2, servers()
    r = ns.procclean("stop", "admin", cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    assert r.rc == 0 and "admin:" in r.stdout, r
    assert wait_until(lambda: not ns.connect("127.0.0.1", 5174), 10)
    assert ns.connect("127.0.0.1", 5173), (root / "dev.out").read_text()
    assert [s for s in servers() if "5173" in s] == servers(), servers()
    r = ns.procclean("stop", cwd=str(root), env=env, timeout=120)
    assert r.rc == 0, r
    done = dev.wait(60)
    assert not done.timed_out and done.rc == 0, (root / "dev.out").read_text()
    assert servers() == [] and not ns.connect("127.0.0.1", 5173)
    assert not (root / "frontend.pid").exists() and not (root / "admin.pid").exists()


ARQ = """#!/bin/sh
echo "arq stand-in: $* PYTHONPATH=$PYTHONPATH VIRTUAL_ENV=$VIRTUAL_ENV"
while :; do sleep 1; done
"""


def test_an_api_and_its_arq_worker_start_with_the_projects_venv_and_stop(ns, tmp_path):
    """tests/fixtures/init/fastapi-arq-src: init finds the factory-made app in src/app and
    arq's WorkerSettings. No venv is active; the project's .venv (real uvicorn and
    fastapi; arq a stand-in console script in .venv/bin, as pip installs it) is put first
    on PATH, so `arq ...` is the venv's, with src/ on PYTHONPATH. start --wait starts both
    (the API's routes live under /api/v1), status says running, stop leaves nothing."""
    for module in ("uvicorn", "fastapi"):
        if not os.path.exists(os.path.join(VENV, "bin", module)):
            pytest.skip("%s is not installed beside %s" % (module, sys.executable))
    root = copy_repo("fastapi-arq-src", tmp_path / "harbor")
    venv = root / ".venv"
    (venv / "bin").mkdir(parents=True)
    shutil.copyfile(os.path.join(VENV, "pyvenv.cfg"), str(venv / "pyvenv.cfg"))
    os.symlink(os.path.join(VENV, "lib"), str(venv / "lib"))
    os.symlink(os.path.join(VENV, "bin", "python"), str(venv / "bin" / "python"))
    arq = venv / "bin" / "arq"
    arq.write_text(ARQ)
    arq.chmod(arq.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    assert run(ns, root, "init").rc == 0
    ini = (root / "procclean.ini").read_text()
    assert "command = PYTHONPATH=src arq app.core.worker.settings.WorkerSettings" \
        in ini, ini
    r = run(ns, root, "start", "--wait")
    assert r.rc == 0, (r, (root / "backend.log").read_text(),
                       (root / "worker.log").read_text())
    h = ns.run([sys.executable, "-c", HEALTH.replace("/health", "/api/v1/ping"), "8000"])
    assert h.rc == 0 and '"pong"' in h.stdout, h
    assert wait_until(lambda: "arq stand-in" in (root / "worker.log").read_text(), 30)
    log = (root / "worker.log").read_text()
    assert "PYTHONPATH=src VIRTUAL_ENV=%s" % venv in log, log
    r = run(ns, root, "status", "--check")
    assert r.rc == 0 and "worker: running" in r.stdout and "backend: running" in r.stdout, r

    def ours():
        return [l for l in ns.run(["ps", "-eo", "pid,args"]).stdout.splitlines()
                if "WorkerSettings" in l or "app.main:app" in l]
    # (the worker's command runs under /bin/sh for its PYTHONPATH=: the shell may stay)
    assert any("/.venv/bin/arq app.core" in l for l in ours()), ours()
    assert any("uvicorn app.main:app" in l for l in ours()), ours()
    r = run(ns, root, "stop")
    assert r.rc == 0, r
    assert wait_until(lambda: ours() == [], 10), ours()


NODE_SERVER = """const http = require("http");
const PORT = process.env.PORT || 5000;
http.createServer((req, res) => res.end("api " + PORT)).listen(PORT, "127.0.0.1",
  () => console.log("api listening on " + PORT));
"""


def test_a_node_api_is_the_backend_and_moves_with_its_port_setting(ns, tmp_path):
    """An Express-style API in backend/ (package.json depends on express; the server is
    node's own http here, no node_modules needed), nothing in Python: init makes it the
    backend on the port its code falls back to (5000); start --wait starts it there;
    PROCCLEAN_BACKEND_PORT moves it (it reads PORT); status and stop find it."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    root = tmp_path / "shop"
    (root / "backend").mkdir(parents=True)
    (root / "backend" / "package.json").write_text(
        '{"name": "api", "private": true, "scripts": {"dev": "node server.js"},'
        ' "dependencies": {"express": "^4.19.0"}}')
    (root / "backend" / "server.js").write_text(NODE_SERVER)
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    assert run(ns, root, "init").rc == 0
    ini = (root / "procclean.ini").read_text()
    assert "port = 5000" in ini and "command = npm run dev" in ini, ini
    env = {"NO_COLOR": "1", "npm_config_update_notifier": "false"}
    for port in ("5000", "5055"):
        env["PROCCLEAN_BACKEND_PORT"] = port
        r = ns.procclean("start", "--wait", "backend", cwd=str(root), env=env, timeout=120)
        no_traceback(r)
        assert r.rc == 0, (r, (root / "backend.log").read_text())
        h = ns.run([sys.executable, "-c", HEALTH.replace("/health", "/"), port])
        assert h.rc == 0 and ("api " + port) in h.stdout, h
        r = ns.procclean("status", "backend", cwd=str(root), env=env, timeout=120)
        assert r.rc == 0 and "backend: running" in r.stdout, r
        r = ns.procclean("stop", cwd=str(root), env=env, timeout=120)
        assert r.rc == 0, r
        assert wait_until(lambda: not ns.connect("127.0.0.1", int(port)), 10)
    assert not [p for p in ns.ps() if "server.js" in " ".join(p["argv"])], ns.ps()


def test_a_procfile_frontend_that_serves_nothing_starts_without_a_port(ns, tmp_path):
    """Procfile.dev's `frontend: cd frontend && npm run build:watch` (a watcher that
    listens nowhere) took the built-in frontend's port 3000: start --wait waited for it,
    then stopped the watcher and failed. It has no port: start --wait starts it, status
    says running, stop stops it."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    root = tmp_path / "site"
    (root / "frontend").mkdir(parents=True)
    (root / "Procfile.dev").write_text(
        "# assets\nfrontend: cd frontend && npm run build:watch\n")
    (root / "frontend" / "package.json").write_text(
        '{"name": "site", "private": true, "scripts": {"build:watch": "node watch.js"}}')
    (root / "frontend" / "watch.js").write_text(
        'console.log("watching assets");\nsetInterval(() => {}, 1000);\n')
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    assert run(ns, root, "init").rc == 0
    assert "port =\n" in (root / "procclean.ini").read_text()
    env = {"NO_COLOR": "1", "npm_config_update_notifier": "false"}
    r = ns.procclean("start", "--wait", cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    assert r.rc == 0, (r, (root / "frontend.log").read_text())
    r = ns.procclean("status", "--check", cwd=str(root), env=env, timeout=120)
    assert r.rc == 0 and "frontend: running" in r.stdout, r
    r = ns.procclean("stop", cwd=str(root), env=env, timeout=120)
    assert r.rc == 0, r
    assert wait_until(lambda: not [p for p in ns.ps() if "watch.js" in " ".join(p["argv"])],
                      10), ns.ps()


PORT_VARIABLE_APP = """import os

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def index():
    return {"port": os.environ.get("API_PORT")}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.getenv("API_PORT", 8001)))
"""


def test_a_script_on_its_own_port_variable_moves_with_the_port_setting(ns, tmp_path):
    """backend/main.py runs uvicorn on int(os.getenv("API_PORT", 8001)) (real uvicorn):
    init wrote 8000 and `python main.py`, so start --wait waited on 8000 while the app
    listened on 8001, and no port setting could move it. Now: 8001, API_PORT={port}; a
    PROCCLEAN_BACKEND_PORT moves it; status and stop find it."""
    for module in ("uvicorn", "fastapi"):
        if not os.path.exists(os.path.join(VENV, "bin", module)):
            pytest.skip("%s is not installed beside %s" % (module, sys.executable))
    root = tmp_path / "ledger"
    (root / "backend").mkdir(parents=True)
    (root / "backend" / "main.py").write_text(PORT_VARIABLE_APP)
    os.symlink(VENV, str(root / "backend" / ".venv"))
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    assert run(ns, root, "init").rc == 0
    ini = (root / "procclean.ini").read_text()
    assert "command = API_PORT={port} {python} main.py" in ini and "port = 8001" in ini, ini
    env = {"NO_COLOR": "1", "VIRTUAL_ENV": None}
    for port in ("8001", "8055"):
        env["PROCCLEAN_BACKEND_PORT"] = port
        r = ns.procclean("start", "--wait", "backend", cwd=str(root), env=env, timeout=120)
        no_traceback(r)
        assert r.rc == 0, (r, (root / "backend.log").read_text())
        h = ns.run([sys.executable, "-c", HEALTH.replace("/health", "/"), port])
        assert h.rc == 0 and port in h.stdout, h
        r = ns.procclean("status", "--check", "backend", cwd=str(root), env=env,
                         timeout=120)
        assert r.rc == 0 and "backend: running" in r.stdout, r
        r = ns.procclean("stop", cwd=str(root), env=env, timeout=120)
        assert r.rc == 0, r
        assert wait_until(lambda: not ns.connect("127.0.0.1", int(port)), 10)


def test_three_apis_of_a_compose_repo_run_under_dev_and_stop_one_by_one(ns, tmp_path):
    """tests/fixtures/init/fastapi-services-compose (piupiujk/autoservice74's layout): three
    FastAPI apps in sibling folders, each `uvicorn app.main:app` in its own folder (the
    same command line, the same pattern).  init wrote only the first (issue 26); now each
    is a service on a port of its own.  `dev` runs the three (real uvicorn, each in its
    folder: its `from app.api import` resolves there), `stop parts-service` from another
    terminal stops that one alone (its pattern finds all three: the folder decides),
    `stop` the rest and dev ends, nothing left."""
    for module in ("uvicorn", "fastapi"):
        if not os.path.exists(os.path.join(VENV, "bin", module)):
            pytest.skip("%s is not installed beside %s" % (module, sys.executable))
    root = copy_repo("fastapi-services-compose", tmp_path / "garage")
    for folder in ("gateway", "garage-service", "parts-service"):
        os.remove(str(root / folder / "poetry.lock"))       # poetry is not installed here
        os.symlink(VENV, str(root / folder / ".venv"))
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    assert run(ns, root, "init").rc == 0
    ini = (root / "procclean.ini").read_text()
    assert "services = garage-service gateway parts-service" in ini, ini
    env = {"NO_COLOR": "1", "VIRTUAL_ENV": None}
    dev = ns.start(["/bin/sh", "-c", 'exec "$@" >dev.out 2>&1', "sh"] +
                   ns.procclean_argv("dev"), cwd=str(root), env=env, session=True)
    ports = {"garage": 8000, "gateway": 8001, "parts": 8002}
    for name, port in ports.items():
        assert wait_until(lambda: ns.run([sys.executable, "-c", HEALTH, str(port)]).rc == 0,
                          60), (root / "dev.out").read_text()
        h = ns.run([sys.executable, "-c", HEALTH, str(port)])
        assert '"%s"' % name in h.stdout, h
    assert len(uvicorn_lines(ns)) == 3, uvicorn_lines(ns)
    r = ns.procclean("stop", "parts-service", cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    assert r.rc == 0 and "parts-service: 1 process(es) stopped" in r.stdout, r
    assert wait_until(lambda: not ns.connect("127.0.0.1", 8002), 10)
    assert ns.connect("127.0.0.1", 8000) and ns.connect("127.0.0.1", 8001), \
        (root / "dev.out").read_text()
    r = run(ns, root, "status")
    assert r.rc == 0 and "parts-service: not running" in r.stdout, r
    assert "gateway: running" in r.stdout and "garage-service: running" in r.stdout, r
    r = ns.procclean("stop", cwd=str(root), env=env, timeout=120)
    assert r.rc == 0, r
    done = dev.wait(60)
    assert not done.timed_out and done.rc == 0, (root / "dev.out").read_text()
    assert wait_until(lambda: uvicorn_lines(ns) == [], 10), uvicorn_lines(ns)
