"""`init` on the layouts people have (issue 20 items 4 and 5): a backend in api/, server/,
backend/, project/, src/PKG/ or the root, nested packages, FastAPI, Flask, Django, Celery; the
command the repo documents (README, pyproject scripts, package.json scripts, Procfile.dev);
frontends in web/, apps/web, the root (Vite, Next, CRA); what init says when it does not find
a service the repo seems to have.

Each layout fixture under tests/fixtures/init is modelled on a public repo (its README names
them) and written for procclean. The tests assert what init writes (procclean.ini, read back the way every command reads
it) and what it says; the patterns it writes are checked against `ps -ef` lines of the real
programs (captured in a PID namespace, see PS_LINES). No process is started or signalled here.
"""
import os
import re
import shutil
import sys

import pytest

import procclean
from test_unit_init import init, need_make, project, read  # noqa: F401  (pytest fixtures)

# `ps -ef` command columns of the real programs, captured with /work/shared/sandbox (a PID
# namespace) from the fixtures: uvicorn 0.3x from a venv, flask 3 under `python -m flask`,
# vite 5 under npm; Next.js from its issues (vercel/next.js#64778, bytedance/deer-flow#1159:
# `next dev` forks `next-server`).
PS_LINES = {
    "uvicorn-reload": "/work/main/.venv/bin/python /work/main/.venv/bin/uvicorn app.main:app "
                      "--reload --port 8011",
    "uvicorn-m": "/work/main/.venv/bin/python -m uvicorn app.main:app --port 8012",
    "uv-run": "uv run uvicorn app.main:app --reload --port 8001",
    "flask-m": "/root/.pyenv/versions/3.11.7/bin/python -m flask --app flaskr run --debug "
               "--port 5012",
    "npm-run-dev": "npm run dev",
    "vite": "node /tmp/il/ps/webv/node_modules/.bin/vite --port 5011",
    "next-dev": "node /repo/apps/web/node_modules/.bin/next dev --port 3000",
    "next-server": "next-server (v16.0.9)",
    "django": "/repo/.venv/bin/python manage.py runserver 8000",
    "celery": "/repo/.venv/bin/python -m celery -A worker worker --loglevel=INFO",
    "bystander-python": "/usr/bin/python3 other.py",
    "bystander-uvicorn": "/usr/bin/python3 -m uvicorn other.main:app --port 9000",
}


def ps_line(command):
    return "root 4242 1 0 09:00 ? 00:00:01 " + command


def body(repo):
    """procclean.ini without its four header lines (what differs from the defaults)."""
    lines = read(repo / "procclean.ini").splitlines()
    assert lines[0].startswith("# procclean configuration, written by"), lines
    return [l for l in lines[4:] if l]


def services():
    cfg = procclean.load_config(environ={})
    return cfg, dict((n, cfg.services[n]) for n in cfg.default_names)


def matches(service, *names):
    return [n for n in names if service.regex.search(ps_line(PS_LINES[n]))]


def test_uv_project_in_api_with_a_nested_package_runs_the_documented_command(project, init):
    """The issue's own layout: api/app/main.py in a uv project, README documenting
    `cd api && uv run uvicorn app.main:app --reload --port 8001`, web/ on pnpm."""
    repo = project("uv-api-web")
    code, out, err = init()
    assert code == 0, (out, err)
    assert "found backend: README.md line 13 (documented: uv run uvicorn app.main:app " \
           "--reload --port 8001)" in out, out
    assert "found frontend: web/package.json (dev script: vite, port 5173)" in out, out
    assert "frontend runs with pnpm (web/pnpm-lock.yaml found)" in out, out
    assert body(repo) == [
        "[procclean]", "services = backend frontend",
        "# found: README.md line 13 (documented: uv run uvicorn app.main:app --reload "
        "--port 8001)",
        "[backend]",
        "# made to match the command as ps shows it", r"pattern = uvicorn app\.main:app",
        "# README.md line 13", "port = 8001",
        "command = uv run uvicorn app.main:app --reload --port {port}", "cwd = api",
        "# found: web/package.json (dev script: vite, port 5173)", "[frontend]",
        "# pnpm runs the dev script (as ps shows it)",
        "pattern = (pnpm.* run dev|npm run dev|vite|esbuild|node.*frontend)",
        "# the default port of vite", "port = 5173",
        "# web/package.json (scripts.dev: vite)",
        "command = pnpm run dev --port {port} --strictPort",
        "# web/package.json", "cwd = web"]
    cfg, svc = services()
    assert svc["backend"].port == 8001 and svc["backend"].cwd == "api"
    # the reload flag and the port stay; the port setting moves the server
    assert procclean.command_argv(svc["backend"].command, port=8123) == [
        "uv", "run", "uvicorn", "app.main:app", "--reload", "--port", "8123"]
    assert matches(svc["backend"], "uvicorn-reload", "uvicorn-m", "uv-run",
                   "bystander-uvicorn", "bystander-python") == ["uvicorn-reload",
                                                                  "uvicorn-m", "uv-run"]
    assert matches(svc["frontend"], "npm-run-dev", "vite") == ["npm-run-dev", "vite"]


# fixture, a file taken out of it, what init says it found, (command, cwd, port), the ps lines
# the backend's pattern is tried on, those it matches
BACKENDS = {
    "uv-api-web-undocumented": (         # its module path, from api/
        "uv-api-web", "README.md", "api/app/main.py (FastAPI app, run as uvicorn app.main:app)",
        ("{python} -m uvicorn app.main:app --host 127.0.0.1 --port {port}", "api", 8000),
        ("uvicorn-reload", "uvicorn-m", "bystander-uvicorn"), ["uvicorn-reload", "uvicorn-m"]),
    "django-in-server": (
        "django-server", None, "server/manage.py (Django, run as manage.py runserver)",
        ("{python} manage.py runserver {port}", "server", 8000),
        ("django", "bystander-python", "uvicorn-m"), ["django"]),
    # pallets/flask examples/tutorial: `flask --app flaskr run --debug` in README.rst
    "flask-documented-in-rst": (
        "flask-tutorial", None, "README.rst line 28 (documented: flask --app flaskr run --debug)",
        ("{python} -m flask --app flaskr run --debug --port {port}", ".", 5000),
        ("flask-m", "bystander-python"), ["flask-m"]),
    "flask-factory-undocumented": (
        "flask-tutorial", "README.rst",
        "./flaskr/__init__.py (Flask app, run as flask --app flaskr run)",
        ("{python} -m flask --app flaskr run --port {port}", ".", 5000), ("flask-m",),
        ["flask-m"]),
}


@pytest.mark.parametrize("fixture, removed, found, run, lines, matched", list(BACKENDS.values()),
                         ids=list(BACKENDS))
def test_a_backend_found_in_its_documentation_or_its_code(project, init, fixture, removed, found,
                                                          run, lines, matched):
    repo = project(fixture)
    if removed:
        os.remove(str(repo / removed))
    code, out, _ = init()
    assert code == 0
    assert "found backend: " + found in out, out
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd, backend.port) == run
    assert matches(backend, *lines) == matched
    # the project's interpreter chosen and said (uv.lock in api/: `uv run python`)
    assert "backend runs with " in out


def test_full_stack_fastapi_template(project, init):
    """fastapi/full-stack-fastapi-template: backend/app/main.py, `uv run fastapi dev` in
    development.md at the root (to run in the `backend` directory, said only in prose) and in
    backend/README.md, a uv workspace, a Vite frontend run by bun (bun.lock at the root).
    `fastapi dev` finds app/main.py from backend/, not from the root: it runs there."""
    repo = project("full-stack-fastapi-template")
    code, out, err = init()
    assert code == 0, (out, err)
    assert body(repo) == [
        "[procclean]", "services = backend frontend",
        "# found: development.md line 25 (documented: uv run fastapi dev)", "[backend]",
        "# made to match the command as ps shows it", "pattern = fastapi dev",
        "# development.md line 25", "command = uv run fastapi dev --port {port}",
        "cwd = backend",
        "# found: frontend/package.json (dev script: vite, port 5173)", "[frontend]",
        "# bun runs the dev script (as ps shows it)",
        "pattern = (bun.* run dev|npm run dev|vite|esbuild|node.*frontend)",
        "# the default port of vite", "port = 5173",
        "# frontend/package.json (scripts.dev: vite)",
        "command = bun run dev --port {port} --strictPort",
        "# frontend/package.json", "cwd = frontend"]
    _, svc = services()
    assert svc["backend"].port == 8000      # fastapi dev's own default, said by omission


def test_procfile_dev_entries_are_the_services(project, init):
    """AI-Shipping-Labs/website: Django at the root under uv, a Procfile.dev for honcho or
    overmind with a web and a worker entry: both imported, nothing else guessed."""
    repo = project("django-procfile-dev")
    code, out, err = init()
    assert code == 0, (out, err)
    assert "found web: Procfile.dev line 2 (uv run python manage.py runserver)" in out
    assert "found worker: Procfile.dev line 3 (uv run python scripts/dev_qcluster.py)" in out
    cfg, svc = services()
    assert cfg.default_names == ["web", "worker"]
    assert (svc["web"].command, svc["web"].port, svc["web"].cwd) == (
        "uv run python manage.py runserver {port}", 8000, ".")
    assert svc["worker"].command == "uv run python scripts/dev_qcluster.py"
    assert svc["worker"].port is None
    assert matches(svc["web"], "django", "bystander-python") == ["django"]
    assert not svc["worker"].regex.search(ps_line(PS_LINES["django"]))
    text = read(repo / "procclean.ini")
    assert "# Procfile.dev line 2 (web: uv run python manage.py runserver)" in text
    assert "[backend]" not in text and "[frontend]" not in text


def test_heroku_procfile_port_and_release_phase(project, init):
    """Georgeye458/poke-arbitrage: gunicorn on $PORT, a celery worker and beat, a release
    phase (a one-off, no service). $PORT becomes {port}, numbered as foreman does."""
    repo = project("procfile-gunicorn-celery")
    code, out, err = init()
    assert code == 0, (out, err)
    cfg, svc = services()
    assert cfg.default_names == ["web", "worker", "beat"]
    assert svc["web"].command == ("{python} -m gunicorn app.main:app -k "
                                  "uvicorn.workers.UvicornWorker -w 3 --bind 0.0.0.0:{port}")
    assert svc["web"].port == 5000
    assert svc["web"].pattern == r"gunicorn app\.main:app"
    assert svc["worker"].pattern == r"celery -A app\.tasks\.celery_app worker"
    assert svc["beat"].pattern == r"celery -A app\.tasks\.celery_app beat"
    assert "# Procfile line 2: $PORT, as foreman and honcho number it" in \
        read(repo / "procclean.ini")
    assert "release" not in cfg.default_names


def test_a_procfile_port_flag_with_another_variables_default_is_the_port(project, init):
    """ridoy-mahmud/Ai_Driven_Video_Engine: `--server.port ${STREAMLIT_PORT:-8501}` is
    the entry's port flag: init wrote `... --server.port ${STREAMLIT_PORT:-8501} --server.
    headless true --server.port {port}` (a second flag added after it)."""
    project("procfile-fastapi-streamlit")
    code, out, err = init()
    assert code == 0, (out, err)
    _, svc = services()
    assert (svc["web"].command, svc["web"].port) == (
        "{python} -m uvicorn app:app --host 0.0.0.0 --port {port}", 8000)
    assert (svc["streamlit"].command, svc["streamlit"].port) == (
        "{python} -m streamlit run web.py --server.port {port} --server.headless true", 8501)


def test_procfile_cd_is_the_folder_and_its_port_is_kept(project, init):
    """codalab/codabench style: `web: cd src && gunicorn ... -b :$PORT`; a literal port."""
    repo = project("neither")
    (repo / "Procfile").write_text(
        "web: cd src && uvicorn asgi:application --port 8010 --reload\n"
        "worker: cd src && celery -A celery_config worker -l info\n")
    assert init()[0] == 0
    _, svc = services()
    assert (svc["web"].cwd, svc["web"].port, svc["web"].command) == (
        "src", 8010, "{python} -m uvicorn asgi:application --port {port} --reload")
    assert svc["worker"].cwd == "src" and svc["worker"].port is None


def test_procfile_app_factory_in_quotes_is_kept_whole(project, init):
    """Flask's app-factory form in a Procfile (`gunicorn "app:create_app()"`, as Flask's
    deployment docs write it): the command keeps its closing `()"` (a README's sentence
    end is what is cut), and the pattern matches the command as ps shows it, unquoted."""
    repo = project("neither")
    (repo / "Procfile").write_text('web: gunicorn -w 3 -b 0.0.0.0:$PORT "app:create_app()"\n')
    assert init()[0] == 0
    _, svc = services()
    assert svc["web"].command == \
        '{python} -m gunicorn -w 3 -b 0.0.0.0:{port} "app:create_app()"'
    shown = "/repo/.venv/bin/python -m gunicorn -w 3 -b 0.0.0.0:5000 app:create_app()"
    assert svc["web"].regex.search(ps_line(shown))


def test_flask_app_run_port_is_the_port(project, init):
    """Flask's quickstart: app.py with app.run(port=N), run as a script."""
    repo = project("neither")
    (repo / "requirements.txt").write_text("flask\n")
    (repo / "app.py").write_text(
        "from flask import Flask\n\napp = Flask(__name__)\n\n\n"
        "if __name__ == '__main__':\n    app.run(debug=True, port=5001)\n")
    code, out, _ = init()
    assert code == 0
    assert "found backend: ./app.py (Flask app, run as python app.py)" in out, out
    _, svc = services()
    assert (svc["backend"].command, svc["backend"].port) == ("{python} app.py", 5001)
    assert svc["backend"].regex.search(ps_line("/repo/.venv/bin/python app.py"))
    assert "# ./app.py (port=5001)" in read(repo / "procclean.ini") or \
        "# app.py (port=5001)" in read(repo / "procclean.ini")


def test_react_flask_app(project, init):
    """miguelgrinberg/react-flask-app: CRA at the root (`npm start`), the Flask API's
    command documented in package.json (`cd api && venv/bin/flask run --no-debugger`)."""
    repo = project("react-flask-app")
    code, out, err = init()
    assert code == 0, (out, err)
    assert "found backend: package.json scripts.start-api (documented: venv/bin/flask run " \
           "--no-debugger)" in out, out
    assert "found frontend: ./package.json (start script: react-scripts start, port 3000)" \
        in out, out
    _, svc = services()
    assert (svc["backend"].command, svc["backend"].cwd, svc["backend"].port) == (
        "venv/bin/flask run --no-debugger --port {port}", "api", 5000)
    assert svc["frontend"].command == "npm start"
    assert svc["frontend"].regex.search(ps_line("npm start"))
    assert svc["frontend"].regex.search(ps_line(
        "node /repo/node_modules/react-scripts/scripts/start.js"))


def test_create_react_app_port_from_env_file(project, init):
    repo = project("react-flask-app")
    (repo / ".env").write_text("BROWSER=none\nPORT=3001\n")
    assert init()[0] == 0
    assert services()[1]["frontend"].port == 3001
    assert "# .env (PORT)" in read(repo / "procclean.ini")


def test_fastapi_and_celery_worker_in_project(project, init):
    """testdrivenio/fastapi-celery: project/main.py and project/worker.py
    (`celery = Celery(__name__)`): a backend and a worker, three services in all with a
    frontend, two here."""
    repo = project("fastapi-celery")
    code, out, _ = init()
    assert code == 0
    assert "found worker: project/worker.py (Celery app, run as celery -A worker worker)" \
        in out, out
    cfg, svc = services()
    assert cfg.default_names == ["backend", "worker"]
    assert (svc["worker"].command, svc["worker"].cwd) == (
        "{python} -m celery -A worker worker --loglevel=INFO", "project")
    assert matches(svc["worker"], "celery", "uvicorn-m") == ["celery"]
    assert svc["backend"].command == \
        "{python} -m uvicorn main:app --host 127.0.0.1 --port {port}"


def test_next_in_apps_web_with_its_port(project, init):
    """vercel/turborepo examples/basic: apps/web `next dev --port 3000`, pnpm."""
    repo = project("turborepo-next")
    package = repo / "apps" / "web" / "package.json"
    package.write_text(read(package).replace("next dev --port 3000", "next dev -p 3001"))
    code, out, _ = init()
    assert code == 0
    assert "found frontend: apps/web/package.json (dev script: next dev -p 3001, port 3001)" \
        in out, out
    _, svc = services()
    frontend = svc["frontend"]
    # Next takes the last of two port flags: a setting moves it from 3001
    assert (frontend.command, frontend.cwd, frontend.port) == (
        "pnpm run dev -p {port}", "apps/web", 3001)
    assert matches(frontend, "next-dev", "next-server", "vite") == ["next-dev", "next-server"]
    assert frontend.regex.search(ps_line("node /usr/lib/node_modules/pnpm/bin/pnpm.cjs run dev"))


def test_a_documented_uv_run_in_another_directory_runs_there(project, init):
    """lidan16122/Trueplate's README (a version the code index holds) runs the API from
    the root: `uv run --directory server uvicorn app.main:app --reload --port 8000`.  init
    did not read it (`--directory` is no module) and ran the app it found in code,
    without --reload and outside uv; it is uv's `cd server && uv run ...`."""
    repo = project("neither")
    (repo / "main.go").unlink()
    (repo / "server" / "app").mkdir(parents=True)
    (repo / "server" / "app" / "__init__.py").write_text("")
    (repo / "server" / "app" / "main.py").write_text(FASTAPI_MAIN)
    (repo / "server" / "pyproject.toml").write_text(
        '[project]\nname = "server"\ndependencies = ["fastapi", "uvicorn"]\n')
    (repo / "server" / "uv.lock").write_text("")
    (repo / "README.md").write_text(
        "### 7. Start the API and frontend\n\nIn one terminal:\n\n```bash\n"
        "uv run --directory server uvicorn app.main:app --reload --port 8000\n```\n")
    code, out, _ = init()
    assert code == 0 and "found backend: README.md line 6" in out, out
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd, backend.port) == (
        "uv run uvicorn app.main:app --reload --port {port}", "server", 8000)


def test_a_folder_option_moves_its_own_command_not_the_next():
    """`npm --prefix frontend install && uvicorn main:app --reload`: npm works in
    frontend/, the shell stays at the root, where uvicorn runs."""
    found = procclean._doc_commands(
        "npm --prefix frontend install && uvicorn main:app --reload\n"
        "cd api && uv run --directory v2 uvicorn app.main:app\n", "README.md line %d", ".")
    assert [(f["command"], f["cwd"]) for f in found] == [
        ("uvicorn main:app --reload", "."), ("uv run uvicorn app.main:app", "api/v2")]


def test_a_readme_line_of_emphasised_words_is_read_in_time_linear_in_it():
    """A 256 kB line of `*word`s and no colon (the most init reads of a README): each
    `*word` tried as a just parameter up to a colon took a minute (f63c937)."""
    text = "# App\n\nNote " + "*a " * 85000 + "\n\n```\nuvicorn main:app --reload\n```\n"
    found = procclean._doc_commands(text, "README.md line %d", ".")
    assert [f["command"] for f in found] == ["uvicorn main:app --reload"], found


def test_a_documented_command_with_a_url_in_its_environment_is_read(project, init):
    """READMEs set the database before the server: `DATABASE_URL=postgresql://postgres:
    dev@localhost:5432/postgres uvicorn app.main:app --reload` (a form the code index
    holds ten times over, its repositories unnamed there).  init took the URL's
    `postgres:dev` for the module and its app, found no postgres.py and ran the app it
    found in code, without --reload or the variable."""
    repo = project("neither")
    (repo / "main.go").unlink()
    (repo / "backend" / "app").mkdir(parents=True)
    (repo / "backend" / "app" / "__init__.py").write_text("")
    (repo / "backend" / "app" / "main.py").write_text(FASTAPI_MAIN)
    (repo / "backend" / "requirements.txt").write_text("fastapi\nuvicorn\n")
    url = "DATABASE_URL=postgresql://postgres:dev@localhost:5432/postgres"
    (repo / "README.md").write_text(
        "## Run\n\n```bash\ncd backend\n%s uvicorn app.main:app --reload\n```\n" % url)
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd) == (
        url + " {python} -m uvicorn app.main:app --reload --port {port}", "backend")


def test_a_python_apps_package_json_says_its_dev_command(project, init):
    """A Turborepo's Python API keeps its dev command in its own package.json (the shim
    `turbo run dev` runs): init read only the root's scripts, so it ran the app it found
    in code, without --reload and outside uv."""
    repo = project("turbo-python-shim")
    code, out, _ = init()
    assert code == 0
    assert "found backend: apps/api/package.json scripts.dev (documented: uv run uvicorn " \
           "main:app --reload --host 0.0.0.0 --port 8000)" in out, out
    _, svc = services()
    backend, frontend = svc["backend"], svc["frontend"]
    assert (backend.command, backend.cwd, backend.port) == (
        "uv run uvicorn main:app --reload --host 0.0.0.0 --port {port}", "apps/api", 8000)
    assert (frontend.command, frontend.cwd) == ("npm run dev -- -p {port}", "apps/web")


@pytest.mark.parametrize("name", ["start", "inventory-api", "run_server"])
def test_poetry_script_in_a_src_layout(project, init, name):
    """A console script whose name (a word of it: inventory-api) says it serves, whose
    module calls uvicorn.run: run by poetry, as its README would say."""
    repo = project("src-poetry-scripts")
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("start =", name + " ="))
    code, out, _ = init()
    assert code == 0
    assert "found backend: pyproject.toml [tool.poetry.scripts] %s (documented: poetry " \
           "run %s)" % (name, name) in out, out
    _, svc = services()
    backend = svc["backend"]
    assert (backend.command, backend.port) == ("poetry run " + name, 8080)
    assert backend.regex.search(ps_line("/repo/.venv/bin/python /repo/.venv/bin/" + name))
    assert not backend.regex.search(ps_line("/usr/bin/python3 /usr/bin/%ser" % name))


@pytest.mark.parametrize("call", ["subprocess.run([\"pytest\", \"-q\"])",
                                  "asyncio.run(check())"])
def test_a_script_named_run_that_serves_nothing_is_no_backend(project, init, call):
    """`run-checks = "shop.checks:main"` (a word of its name is `run`) whose module runs
    pytest, or an asyncio job: no server, so not the backend (make dev ran the checks and
    waited for port 8000); the app the code has is."""
    repo = project("src-poetry-scripts")
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(read(pyproject).replace(
        'start = "inventory.main:start"', 'run-checks = "inventory.checks:main"'))
    (repo / "src" / "inventory" / "checks.py").write_text(
        "import asyncio, subprocess\n\n\ndef main():\n    %s\n" % call)
    code, out, _ = init()
    assert "run-checks" not in out, out
    assert services()[1]["backend"].command.startswith("{python} -m uvicorn inventory.main")


def test_src_layout_without_a_script_runs_the_module_from_src(project, init):
    repo = project("src-poetry-scripts")
    (repo / "pyproject.toml").write_text(read(repo / "pyproject.toml").replace(
        "[tool.poetry.scripts]\nstart", "[tool.poetry.other]\nstart"))
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert backend.command == ("{python} -m uvicorn inventory.main:app --app-dir src "
                               "--host 127.0.0.1 --port {port}")
    assert backend.port == 8080         # uvicorn.run(..., port=8080) in the module


def test_a_src_layouts_documented_bare_module_runs_with_src_on_the_path(project, init):
    """A README's `uvicorn inventory.main:app --reload` (and celery -A) of a src layout,
    written for an installed package: from the root the import fails (No module named
    'inventory'), and init wrote it as it was.  It gets src/ on the path, as the module
    init finds in code does: --app-dir src for uvicorn, PYTHONPATH=src for others."""
    repo = project("src-poetry-scripts")
    (repo / "src" / "inventory" / "tasks.py").write_text(
        "from celery import Celery\n\napp = Celery('inventory')\n")
    (repo / "README.md").write_text("# Inventory\n\n```\nuvicorn inventory.main:app "
                                    "--reload\ncelery -A inventory.tasks worker\n```\n")
    assert init()[0] == 0
    svc = services()[1]
    assert (svc["backend"].command, svc["backend"].cwd) == (
        "{python} -m uvicorn inventory.main:app --reload --app-dir src --port {port}", ".")
    assert svc["worker"].command == "PYTHONPATH=src {python} -m celery -A inventory.tasks "\
        "worker"


def test_what_init_did_not_find_is_said_with_a_section_to_paste(project, init):
    repo = project("missing-services")
    code, out, err = init()
    assert code == 0, (out, err)
    assert "api/pyproject.toml depends on FastAPI, but init found no backend: it looked for " \
           "an app object (FastAPI(), Flask(), ...) in api/main.py, api/app.py" in out, out
    assert "web/package.json uses a frontend framework and has no dev script (its scripts: " \
           "build), but init found no frontend" in out, out
    assert "api/pyproject.toml depends on celery, but init found no worker" in out, out
    # each with a section that procclean reads as it is (once its placeholder is filled)
    sections = re.findall(r"(?ms)^\[(\w+)\]\n(.*?)(?=\n\n|\n\S+ |\Z)", out)
    assert [name for name, _ in sections] == ["backend", "frontend", "worker"], out
    assert "command = {python} -m uvicorn MODULE:app --port {port}\ncwd = api" in out, out
    assert "command = npm run SCRIPT\ncwd = web" in out, out
    assert "found neither a Python backend nor a frontend here; nothing written" in out
    assert not (repo / "procclean.ini").exists()


def test_missing_services_in_json(project, capsys):
    project("missing-services")
    import json
    assert procclean.main(["init", "--json"]) == 0
    document = json.loads(capsys.readouterr()[0])
    assert [m["service"] for m in document["missing"]] == ["backend", "frontend", "worker"]
    assert document["missing"][0]["section"].startswith("[backend]\n")


def test_missing_is_said_in_chinese(project, init):
    project("missing-services")
    code, out, _ = init("--lang", "zh")
    assert code == 0
    assert "api/pyproject.toml 依赖 FastAPI, 但 init 未找到后端" in out, out
    assert "looked for" not in out and "but init" not in out


@pytest.mark.parametrize("fixture", ["fastapi-vite", "seed-repo"])
def test_the_seeds_layout_keeps_the_seeds_patterns(project, init, fixture):
    """backend/main.py and frontend/ with vite: the built-in patterns, which the seed's own
    processes match, and nothing but the folders and the command that passes vite its port
    written."""
    repo = project(fixture)
    assert init()[0] == 0
    _, svc = services()
    assert svc["backend"].pattern == procclean.BUILTIN_SERVICES[0]["pattern"]
    assert svc["frontend"].pattern == procclean.BUILTIN_SERVICES[1]["pattern"]
    keys = [l.split(" = ")[0] for l in body(repo) if " = " in l]
    assert keys == ["services", "cwd", "command", "cwd"], body(repo)
    assert svc["frontend"].command == "npm run dev -- --port {port} --strictPort"


@pytest.mark.parametrize("command, pattern", [
    ("uv run uvicorn app.main:app --reload --port {port}", r"uvicorn app\.main:app"),
    ("{python} manage.py runserver {port}", r"[Pp]ython.*[ /]manage\.py runserver"),
    ("{python} -m celery -A proj worker -l info", "celery -A proj worker"),
    ("{python} -m flask --app flaskr run --debug --port {port}", "flask --app flaskr run"),
    ("next dev -p 3001", "next dev"),
    ("cd src && gunicorn asgi:application -w 3 -b :{port}", "gunicorn asgi:application"),
    ("PORT={port} react-scripts start", "react-scripts start"),
    ("npx vite --port 3000", "(^|[ /])vite( |$)"),
    ("nohup python -m uvicorn main:app", "uvicorn main:app"),
    ("uv run --frozen uvicorn app.main:app --reload", r"uvicorn app\.main:app"),
    ("yarn build --watch", "yarn.* build"),
    ("pnpm run dev --port {port}", "pnpm.* run dev"),
    # an && in quotes is the argument's (eclaire-labs/eclaire's Procfile), and a shell's
    # -c command is what it runs: ps shows neither the quotes nor the shell's own line only
    ('./scripts/log-wrapper.sh backend "cd apps/backend && pnpm dev"',
     r"log-wrapper\.sh backend cd apps/backend && pnpm dev"),
    ('sh -c "cd web && npm run dev"', "npm run dev"),
    ("bash -c 'cd api && exec uvicorn app:app'", "uvicorn app:app"),
])
def test_pattern_for_commands_as_ps_shows_them(command, pattern):
    assert procclean.pattern_for(command) == pattern


@pytest.mark.parametrize("command, running", [
    # a wrapper execs the program: ps shows the program, not the wrapper nor its options
    ("nice -n 5 uvicorn main:app --port 8011", "uvicorn main:app --port 8011"),
    ("stdbuf -o L npm run dev", "npm run dev"),
    ("setsid nohup node index.js", "node index.js"),
    ("time python manage.py runserver", "python manage.py runserver"),
    # a runner's own options: uv runs python as its child, npx -p runs vite
    ("uv run --with httpx python main.py", "/srv/app/.venv/bin/python main.py"),
    ("npx -p vite vite --port 5173", "node /srv/app/node_modules/.bin/vite --port 5173"),
    # yarn and pnpm are node scripts, shown as such (and as they were typed)
    ("yarn build --watch", "node /usr/share/yarn/bin/yarn.js build --watch"),
    ("yarn dev", "node /srv/app/.yarn/releases/yarn-4.1.0.cjs dev"),
    ("pnpm dev", "node /usr/lib/node_modules/corepack/dist/pnpm.js dev"),
    ("pnpm dev", "pnpm dev"),
    ('./scripts/log-wrapper.sh web "cd apps/web && pnpm dev"',
     "/bin/bash ./scripts/log-wrapper.sh web cd apps/web && pnpm dev"),
])
def test_a_commands_pattern_finds_the_program_it_runs(command, running):
    pattern = procclean.pattern_for(command)
    service = procclean.Service("app", pattern, "app.pid", "app.log", None, command, ".")
    line = "alice 4242 1 %s" % running
    assert service.matches(procclean.Process(4242, 1, "alice", running, line=line)), pattern


@pytest.mark.parametrize("command, default, wanted", [
    ("uvicorn main:app --port 8001", "8000", ("uvicorn main:app --port {port}", "8001")),
    ("uvicorn main:app --port=8001", "8000", ("uvicorn main:app --port={port}", "8001")),
    ("gunicorn app:app --bind 0.0.0.0:$PORT", "5100",
     ("gunicorn app:app --bind 0.0.0.0:{port}", "5100")),
    ("python manage.py runserver 0.0.0.0:8002", "8000",
     ("python manage.py runserver 0.0.0.0:{port}", "8002")),
    ("python manage.py runserver", "8000", ("python manage.py runserver {port}", "8000")),
    ("uvicorn main:app --reload", "8000", ("uvicorn main:app --reload --port {port}", "8000")),
    ("uvicorn main:app --port ${PORT:-8003}", None, ("uvicorn main:app --port {port}", "8003")),
    ("celery -A proj worker", None, ("celery -A proj worker", None)),
    # the debugger's address before the app's port flag, a metrics port after its bind
    ("python -m debugpy --listen 0.0.0.0:5678 -m uvicorn main:app --port 8004", "8000",
     ("python -m debugpy --listen 0.0.0.0:5678 -m uvicorn main:app --port {port}", "8004")),
    ("gunicorn -b 0.0.0.0:8005 --metrics-port 9100 app:app", "8000",
     ("gunicorn -b 0.0.0.0:{port} --metrics-port 9100 app:app", "8005")),
    # gunicorn has no --port (it exits: unrecognized arguments), and a uvicorn worker
    # class is no uvicorn; a socket is no port
    ("{python} -m gunicorn app:app -k uvicorn.workers.UvicornWorker", "8000",
     ("{python} -m gunicorn app:app -k uvicorn.workers.UvicornWorker --bind "
      "127.0.0.1:{port}", "8000")),
    ("uv run hypercorn app:app", "8000", ("uv run hypercorn app:app --bind 127.0.0.1:{port}",
                                          "8000")),
    ("daphne proj.asgi:application", "8000", ("daphne proj.asgi:application -p {port}",
                                              "8000")),
    ("gunicorn app:app --bind unix:/tmp/app.sock", "8000",
     ("gunicorn app:app --bind unix:/tmp/app.sock", "8000")),
    ("flask --app shop routes", "5000", ("flask --app shop routes", "5000")),
    # a server a wrapper runs (.env loader, tracer, debugger) is still given its port;
    # an option's value is no program
    ("dotenv run -- uvicorn main:app --reload", "8000",
     ("dotenv run -- uvicorn main:app --reload --port {port}", "8000")),
    ("{python} -m debugpy --listen 5678 --wait-for-client -m uvicorn main:app", "8000",
     ("{python} -m debugpy --listen 5678 --wait-for-client -m uvicorn main:app --port "
      "{port}", "8000")),
    ("{python} serve.py --server uvicorn", "8000", ("{python} serve.py --server uvicorn",
                                                    "8000")),
    ("{python} -m flask --app shop run", "5000", ("{python} -m flask --app shop run --port "
                                                  "{port}", "5000")),
    # a port flag whose value is another variable's default (ridoy-mahmud/
    # Ai_Driven_Video_Engine's Procfile: `streamlit run web.py --server.port
    # ${STREAMLIT_PORT:-8501}`): that flag, not a second one added after it
    ("{python} -m streamlit run web.py --server.port ${STREAMLIT_PORT:-8501} --server."
     "headless true", "8501", ("{python} -m streamlit run web.py --server.port {port} "
                               "--server.headless true", "8501")),
    ("uvicorn main:app --port ${API_PORT:-8010}", None, ("uvicorn main:app --port {port}",
                                                         "8010")),
    ("gunicorn -b 0.0.0.0:${APP_PORT:-8020} app:app", "8000", ("gunicorn -b 0.0.0.0:{port} "
                                                               "app:app", "8020")),
])
def test_with_port_makes_the_port_a_setting(command, default, wanted):
    assert procclean.with_port(command, default)[:2] == wanted


@pytest.mark.parametrize("folder, script, extra, port, own, flag", [
    ("client", "vite dev", {}, 5173, "vite", " -- --port {port} --strictPort"),  # SvelteKit
    ("ui", "nuxt dev", {}, 3000, "nuxt dev", " -- --port {port}"),               # Nuxt
    ("apps/frontend", "ng serve --port 4300", {}, 4300, "ng serve", ""),         # Angular
    ("web", "next dev", {}, 3000, "next dev|next-server", " -- -p {port}"),
    ("frontend", "PORT=3002 react-scripts start", {}, 3002,
     "react-scripts start|react-scripts/scripts/start", ""),
    ("web", "vite", {"vite.config.mjs": "export default { server: { port: 5200 } }\n"}, 5200,
     "vite", " -- --port {port} --strictPort"),          # the flag wins over the config
])
def test_frontends_in_their_folders_with_their_ports(project, init, folder, script, extra,
                                                     port, own, flag):
    repo = project("neither")
    base = repo / folder
    base.mkdir(parents=True)
    (base / "package.json").write_text('{"scripts": {"dev": "%s"}}' % script)
    for name, text in extra.items():
        (base / name).write_text(text)
    code, out, _ = init()
    assert code == 0
    frontend = services()[1]["frontend"]
    assert (frontend.cwd, frontend.port, frontend.command) == (folder, port,
                                                               "npm run dev" + flag)
    assert own in frontend.pattern and frontend.regex.search(ps_line("npm run dev"))


@pytest.mark.parametrize("lock, script, command, argv", [
    # npm passes on what follows `--`; pnpm (7+), yarn and bun what follows the script
    (None, "vite", "npm run dev -- --port {port} --strictPort",
     ["npm", "run", "dev", "--", "--port", "5199", "--strictPort"]),
    ("pnpm-lock.yaml", "vite", "pnpm run dev --port {port} --strictPort",
     ["pnpm", "run", "dev", "--port", "5199", "--strictPort"]),
    ("yarn.lock", "vite", "yarn run dev --port {port} --strictPort",
     ["yarn", "run", "dev", "--port", "5199", "--strictPort"]),
    ("bun.lockb", "vite", "bun run dev --port {port} --strictPort",
     ["bun", "run", "dev", "--port", "5199", "--strictPort"]),
    (None, "svelte-kit sync && vite dev", "npm run dev -- --port {port} --strictPort",
     ["npm", "run", "dev", "--", "--port", "5199", "--strictPort"]),
    (None, "astro dev", "npm run dev -- --port {port}",
     ["npm", "run", "dev", "--", "--port", "5199"]),
    (None, "nuxt dev", "npm run dev -- --port {port}",
     ["npm", "run", "dev", "--", "--port", "5199"]),
    (None, "next dev --turbopack", "npm run dev -- -p {port}",
     ["npm", "run", "dev", "--", "-p", "5199"]),
    ("pnpm-lock.yaml", "next dev", "pnpm run dev -p {port}", ["pnpm", "run", "dev", "-p", "5199"]),
    (None, "react-scripts start", "npm run dev", ["npm", "run", "dev"]),    # reads PORT
    (None, "vite build && vite preview", "npm run dev", ["npm", "run", "dev"]),
])
def test_a_dev_server_gets_its_port_as_the_flag_it_takes(project, init, lock, script, command,
                                                         argv):
    """Vite, Astro, Nuxt, Next take a port flag (Vite ignores PORT): init passes {port} to
    them the way the package manager forwards arguments, so PROCCLEAN_FRONTEND_PORT and
    port_offset move the frontend."""
    repo = project("neither")
    (repo / "frontend").mkdir()
    (repo / "frontend" / "package.json").write_text('{"scripts": {"dev": "%s"}}' % script)
    if lock:
        (repo / "frontend" / lock).write_text("")
    code, out, err = init()
    assert code == 0, (out, err)
    frontend = services()[1]["frontend"]
    assert frontend.command == command
    assert procclean.command_argv(frontend.command, port=5199) == argv
    assert bool(procclean.port_follows(frontend)) == ("{port}" in command or "react" in script)


def test_a_dev_script_with_its_own_port_flag_is_left_as_it_is(project, init):
    """`vite --port 5174`: the port is that number, no second flag; status and start say
    it does not move with the port setting."""
    repo = project("neither")
    (repo / "frontend").mkdir()
    (repo / "frontend" / "package.json").write_text('{"scripts": {"dev": "vite --port 5174"}}')
    assert init()[0] == 0
    frontend = services()[1]["frontend"]
    assert (frontend.command, frontend.port) == ("npm run dev", 5174)
    assert not procclean.port_follows(frontend)


def test_a_makefile_recipe_running_the_dev_script_gets_the_port_flag_too(project, init):
    """`npm run dev` in a recipe is the dev script init found: written with its port flag,
    and --replace still counts the rule as carried."""
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text("start-frontend:\n\tcd frontend && npm run dev\n")
    assert init()[0] == 0
    frontend = services()[1]["frontend"]
    assert frontend.command == "npm run dev -- --port {port} --strictPort"
    assert procclean._same_value("command", frontend.command, "npm run dev", ".")


@pytest.mark.parametrize("recipe, command", [
    # a public Makefile (code index file 68370772232): no port, so none moved it
    ("uv run --directory server python manage.py runserver",
     "uv run python manage.py runserver {port}"),
    ("cd server && .venv/bin/python manage.py runserver 0.0.0.0:{port}",
     ".venv/bin/python manage.py runserver 0.0.0.0:{port}"),
    ("cd server && poetry run uvicorn mysite.asgi:application",
     "poetry run uvicorn mysite.asgi:application --port {port}")])
def test_a_recipe_running_the_layouts_server_another_way_gets_its_port(project, init,
                                                                        recipe, command):
    """`dev-backend: uv run --directory backend python manage.py runserver` beside the
    layout's `{python} manage.py runserver {port}`: init kept the recipe's command, with
    no port, so a port setting or a second checkout's offset did not move it (only a
    hint).  A run of the layout's server that names no port gets its server's way."""
    repo = project("django-server")
    (repo / "Makefile").write_text("dev-backend:\n\t%s\n" % recipe.replace("{port}", "8000"))
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd, backend.port) == (command, "server", 8000), read(
        repo / "procclean.ini")
    assert procclean.port_follows(backend)


@pytest.mark.parametrize("recipe", ["cd apps/web && pnpm dev", "pnpm --filter web dev"])
def test_a_recipes_pnpm_script_run_without_run_gets_the_port_flag(project, init, recipe):
    """A public Makefile (code index file 62512751268): `dev: pnpm --filter web dev` where
    apps/web's dev script is `next dev -p 3210`.  `pnpm dev` is `pnpm run dev`, but only
    the latter got the layout's flag: the frontend stayed on 3210 in every checkout (a
    second one refused to start it) and PROCCLEAN_FRONTEND_PORT did not move it."""
    need_make()
    repo = project("turborepo-next")
    (repo / "Makefile").write_text("web:\n\t%s\n" % recipe)
    assert init("--makefile")[0] == 0
    web = services()[1]["web"]
    assert (web.command, web.cwd, web.port) == ("pnpm dev -p {port}", "apps/web", 3000), \
        read(repo / "procclean.ini")


def test_a_root_dev_script_that_runs_everything_is_no_frontend(project, init):
    """`concurrently "npm:dev:*"` at the root runs the backend too: not a frontend (the
    backend is the documented uvicorn command)."""
    repo = project("uv-api-web")
    os.remove(str(repo / "README.md"))
    shutil.rmtree(str(repo / "web"))
    (repo / "package.json").write_text(
        '{"scripts": {"dev": "concurrently \\"npm:dev:*\\"", '
        '"dev:api": "cd api && uv run uvicorn app.main:app --reload --port 8001"}}')
    assert init()[0] == 0
    cfg, svc = services()
    assert cfg.default_names == ["backend"]
    assert (svc["backend"].command, svc["backend"].cwd, svc["backend"].port) == (
        "uv run uvicorn app.main:app --reload --port {port}", "api", 8001)


def test_a_readme_that_says_cd_on_its_own_line(project, init):
    """`cd backend` and `uvicorn main:app --reload` on two lines: run where main.py is."""
    repo = project("fastapi-celery")
    os.rename(str(repo / "project"), str(repo / "backend"))
    (repo / "README.md").write_text("```sh\ncd backend\nuvicorn main:app --reload\n```\n")
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd) == (
        "{python} -m uvicorn main:app --reload --port {port}", "backend")


@pytest.mark.parametrize("readme", [
    # a code block's line with a shell comment after the command, as READMEs that list
    # a stack's terminals write it (Sivamani-garaga/ai-longitudinal-detector's style)
    "```bash\ncd backend\n"
    "uvicorn main:app --reload --port 8040  # API at :8040/docs\n```\n",
    # a line that starts with the command in backticks, then says what it does
    "## Backend\n\n`cd backend && uvicorn main:app --reload --port 8040` starts the API.\n",
])
def test_a_readme_command_leaves_its_comment_and_prose_out(project, init, readme):
    """What follows the command on its README line (`  # API at ...`, "` starts the
    API.") is not the command's: it was, and `start` passed `#`, `API`... to uvicorn
    ("Got unexpected extra arguments"), and the pattern wanted them in ps too."""
    repo = project("fastapi-celery")
    os.rename(str(repo / "project"), str(repo / "backend"))
    (repo / "README.md").write_text(readme)
    code, out, _ = init()
    assert "(documented: uvicorn main:app --reload --port 8040)\n" in out, out
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd, backend.port) == (
        "{python} -m uvicorn main:app --reload --port {port}", "backend", 8040)
    shown = "/repo/.venv/bin/python -m uvicorn main:app --reload --port 8040"
    assert backend.regex.search(ps_line(shown))


def test_an_app_package_at_the_root_runs_from_the_root(project, init):
    repo = project("neither")
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["fastapi"]\n')
    (repo / "app").mkdir()
    (repo / "app" / "__init__.py").write_text("")
    (repo / "app" / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd) == (
        "{python} -m uvicorn app.main:app --host 127.0.0.1 --port {port}", ".")


def test_an_app_in_an_unusual_module_of_a_fastapi_project_is_found(project, init):
    """A project that depends on FastAPI: its app object is looked for in every module."""
    repo = project("missing-services")
    (repo / "api" / "svc" / "http_entry.py").write_text(
        "from fastapi import FastAPI\n\nhttp = FastAPI()\n")
    code, out, _ = init()
    assert code == 0
    assert "found backend: api/svc/http_entry.py (FastAPI app, run as uvicorn " \
           "svc.http_entry:http)" in out, out
    assert "found no backend" not in out
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd) == (
        "{python} -m uvicorn svc.http_entry:http --host 127.0.0.1 --port {port}", "api")


def test_prose_about_a_server_is_no_command(project, init):
    """`uvicorn --reload` in a README's prose names no app: not a documented command."""
    repo = project("uv-api-web")
    (repo / "README.md").write_text(
        "Stop the orphaned `uvicorn --reload` worker first.\n\n    uvicorn --port 8000\n")
    code, out, _ = init()
    assert code == 0
    assert "found backend: api/app/main.py (FastAPI app, run as uvicorn app.main:app)" in out


def test_three_services_backend_frontend_and_a_celery_worker(project, init):
    """Buuntu/fastapi-react (the cookiecutter's project): backend/app/main.py with
    uvicorn.run(port=8888), celery in requirements.txt and its app in
    app/core/celery_app.py, Create React App in frontend/."""
    repo = project("fastapi-react-celery")
    code, out, err = init()
    assert code == 0, (out, err)
    cfg, svc = services()
    assert cfg.default_names == ["backend", "frontend", "worker"]
    assert (svc["backend"].command, svc["backend"].cwd, svc["backend"].port) == (
        "{python} -m uvicorn app.main:app --host 127.0.0.1 --port {port}", "backend", 8888)
    assert (svc["frontend"].command, svc["frontend"].cwd, svc["frontend"].port) == (
        "npm start", "frontend", 3000)
    assert (svc["worker"].command, svc["worker"].cwd) == (
        "{python} -m celery -A app.core.celery_app:celery_app worker --loglevel=INFO",
        "backend")
    assert svc["worker"].regex.search(ps_line(
        "/repo/.venv/bin/python -m celery -A app.core.celery_app:celery_app worker "
        "--loglevel=INFO"))
    assert "# backend/app/main.py (port=8888)" in read(repo / "procclean.ini")
    assert "found no worker" not in out


def test_next_and_fastapi_in_one_package_json(project, init):
    """digitros/nextjs-fastapi: Next at the root and api/index.py, `dev` runs both with
    concurrently: the backend is `fastapi-dev`'s uvicorn, the frontend `next-dev`."""
    repo = project("nextjs-fastapi")
    code, out, _ = init()
    assert code == 0
    assert "found frontend: ./package.json (next-dev script: next dev, port 3000)" in out, out
    _, svc = services()
    assert (svc["backend"].command, svc["backend"].cwd, svc["backend"].port) == (
        "{python} -m uvicorn api.index:app --reload --port {port}", ".", 8000)
    assert (svc["frontend"].command, svc["frontend"].pattern) == (
        "npm run next-dev -- -p {port}", "(npm run next-dev|next dev|next-server)")
    assert not svc["frontend"].regex.search(ps_line("npm run fastapi-dev"))


def test_folders_named_by_the_project_and_a_start_script(project, init):
    """vintasoftware/nextjs-fastapi-template: fastapi_backend/ and nextjs-frontend/, the
    backend's command in start.sh (a container branch, then `uv run fastapi dev ...`)."""
    repo = project("nextjs-fastapi-template")
    code, out, _ = init()
    assert code == 0
    assert "found backend: fastapi_backend/start.sh line 9" in out, out
    _, svc = services()
    assert (svc["backend"].command, svc["backend"].cwd, svc["backend"].port) == (
        "uv run fastapi dev app/main.py --host 0.0.0.0 --port {port} --reload",
        "fastapi_backend", 8000)
    assert (svc["frontend"].command, svc["frontend"].cwd) == (
        "pnpm run dev -p {port}", "nextjs-frontend")      # pnpm passes -p on to next dev


def test_a_node_server_in_a_folder_of_its_own_is_no_frontend(project, init):
    """A package.json in a folder of another name is a frontend only by its framework:
    an Express server in gateway/ is not taken for one; a React app in dashboard/ is."""
    repo = project("neither")
    (repo / "gateway").mkdir()
    (repo / "gateway" / "package.json").write_text(
        '{"scripts": {"dev": "nodemon index.js"}, "dependencies": {"express": "^4"}}')
    assert "found frontend" not in init()[1]
    (repo / "dashboard").mkdir()
    (repo / "dashboard" / "package.json").write_text(
        '{"scripts": {"dev": "vite --port 4000"}, "dependencies": {"react": "^18"}}')
    code, out, _ = init()
    assert "found frontend: dashboard/package.json (dev script: vite --port 4000, port 4000)" \
        in out, out


@pytest.mark.parametrize("documented, module", [
    (None, "app/worker.py"), ("cd api && uv run python worker.py", "worker.py")])
def test_a_documented_worker_module_is_a_third_service(project, init, documented, module):
    """A README's `cd api && uv run python -m app.worker` beside its API (a FastAPI,
    worker and Vite dashboard repo of the code index): init found the API and the
    dashboard, not the worker (a module named worker, no celery, rq, arq or dramatiq),
    so make dev ran two of the three.  A documented module or script named worker is the
    worker, run as written where it is."""
    repo = project("uv-api-worker-web")
    if documented:
        readme = read(repo / "README.md").replace(
            "cd api && uv run python -m app.worker", documented)
        (repo / "README.md").write_text(readme)
        os.rename(str(repo / "api" / "app" / "worker.py"), str(repo / "api" / module))
    code, out, _ = init()
    assert code == 0, out
    cfg, svc = services()
    assert cfg.default_names == ["backend", "frontend", "worker"], out
    assert (svc["worker"].command, svc["worker"].cwd) == (
        (documented or "cd api && uv run python -m app.worker").split("&& ")[1], "api")
    line = "/repo/api/.venv/bin/python -m app.worker" if module != "worker.py" else \
        "/repo/api/.venv/bin/python worker.py"
    assert svc["worker"].regex.search(ps_line(line))
    assert not svc["worker"].regex.search(ps_line("/usr/bin/python3 -m other.worker"))


def test_a_documented_command_naming_a_worker_file_of_another_kind_is_none():
    """`python -m pytest tests/test_worker.py`, `python scripts/worker_setup.py`: no
    worker."""
    for line in ("python -m pytest tests/test_worker.py", "python scripts/worker_setup.py",
                 "python -m app.workers_report"):
        assert not procclean._doc_commands(line, "README.md line %d", "."), line


def test_a_documented_rq_worker_is_a_third_service(project, init):
    repo = project("uv-api-web")
    (repo / "api" / "README.md").write_text(
        "Jobs run in an RQ worker:\n\n```\nuv run rq worker high default\n```\n")
    code, out, _ = init()
    assert code == 0
    assert "found worker: api/README.md line 4 (documented: uv run rq worker high default)" \
        in out, out
    cfg, svc = services()
    assert cfg.default_names == ["backend", "frontend", "worker"]
    worker = svc["worker"]
    assert (worker.command, worker.cwd, worker.port) == (
        "uv run rq worker high default", "api", None)
    assert worker.regex.search(ps_line("/repo/api/.venv/bin/python /repo/api/.venv/bin/rq "
                                       "worker high default"))


def test_a_main_that_imports_its_own_package_runs_as_a_module_from_above(project, init):
    """Wchoi189/blog-creator-agent: backend/ is a package whose main.py says `from
    backend.config import settings` and runs uvicorn under __main__; its README says
    `python -m backend.main` from the root. `python main.py` in backend/ fails there (No
    module named 'backend'): init writes the module run, from the folder above."""
    repo = project("neither")
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["fastapi"]\n')
    (repo / "backend").mkdir()
    (repo / "backend" / "__init__.py").write_text("")
    (repo / "backend" / "config.py").write_text("PORT = 8000\n")
    (repo / "backend" / "main.py").write_text(
        "from fastapi import FastAPI\nfrom backend.config import PORT\n\napp = FastAPI()\n\n"
        "if __name__ == \"__main__\":\n    import uvicorn\n\n"
        "    uvicorn.run(\"backend.main:app\", port=PORT)\n")
    code, out, _ = init()
    assert code == 0
    assert "found backend: backend/main.py (FastAPI app, run as python -m backend.main)" in out
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd) == ("{python} -m backend.main", ".")
    assert backend.regex.search(ps_line("/repo/.venv/bin/python -m backend.main"))
    assert not backend.regex.search(ps_line(PS_LINES["bystander-python"]))


def test_a_documented_app_the_module_does_not_define_is_not_taken(project, init):
    """rizperdana/fast-vite-todo-ai: the README says `uvicorn main:app --reload` in backend/,
    but backend/main.py defines no app: it runs uvicorn.run("app.main:app", port=7777) under
    __main__. `uvicorn main:app` would fail (Attribute "app" not found in module "main"):
    init runs the script the code has, on its port."""
    repo = project("neither")
    (repo / "README.md").write_text("## Backend\n\n```bash\ncd backend\n"
                                    "uvicorn main:app --reload\n```\n")
    (repo / "backend" / "app").mkdir(parents=True)
    (repo / "backend" / "pyproject.toml").write_text(
        '[project]\nname = "api"\ndependencies = ["fastapi", "uvicorn"]\n')
    (repo / "backend" / "app" / "__init__.py").write_text("")
    (repo / "backend" / "app" / "main.py").write_text(
        "from fastapi import FastAPI\n\napp = FastAPI()\n")
    (repo / "backend" / "main.py").write_text(
        "import uvicorn\n\nif __name__ == \"__main__\":\n    uvicorn.run(\"app.main:app\", "
        "host=\"127.0.0.1\", port=7777, reload=True)\n")
    code, out, _ = init()
    assert code == 0
    assert "documented: uvicorn main:app" not in out, out
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd, backend.port) == ("{python} main.py", "backend", 7777)
    # the documented command of a module that does define its app is still taken
    (repo / "backend" / "main.py").write_text("from app.main import app\n")
    code, out, _ = init("--force")
    assert "documented: uvicorn main:app --reload" in out, out


def test_create_react_app_under_craco_is_a_frontend(project, init):
    """kylegrantlucas/c964-movie-recommender: frontend/package.json starts Create React App
    through craco (`"start": "craco start"`, for Tailwind), which init passed over (`no dev
    script`). craco start is CRA's dev server: it reads PORT and .env, on 3000."""
    repo = project("neither")
    (repo / "frontend").mkdir()
    (repo / "frontend" / "package.json").write_text(
        '{"dependencies": {"@craco/craco": "^5.9.0", "react": "^17.0.2", "react-scripts": '
        '"^5.0.1"}, "scripts": {"start": "craco start", "build": "craco build", '
        '"test": "craco test", "eject": "react-scripts eject"}}')
    (repo / "frontend" / "package-lock.json").write_text("{}")
    code, out, _ = init()
    assert code == 0
    assert "found frontend: frontend/package.json (start script: craco start, port 3000)" \
        in out, out
    assert "has no dev script" not in out, out
    frontend = services()[1]["frontend"]
    assert (frontend.cwd, frontend.port, frontend.command) == ("frontend", 3000, "npm start")
    assert frontend.regex.search(ps_line("node /repo/frontend/node_modules/.bin/craco start"))
    assert procclean.port_follows(frontend)             # CRA reads PORT


def test_a_main_py_without_app_or_main_guard_is_the_seeds_script(tmp_path, monkeypatch):
    """The seed's backend/main.py is run as `python main.py`; one that is a plain script
    (no app object, no `if __name__ == "__main__"`) is still that backend."""
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "main.py").write_text(
        "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 8000))\ns.listen()\n")
    monkeypatch.chdir(str(tmp_path))
    found = procclean.detect_project([])
    backend = [f for f in found if f.name == "backend"]
    assert backend and backend[0].fields["command"] == "{python} main.py", found
    assert backend[0].fields["cwd"] == "backend"


def test_a_fastapi_app_made_by_create_app_is_served_by_uvicorn_not_flask(project, init):
    """rodrigospimentacwb/fast-api-default-2025: app/main.py builds its FastAPI app in
    `def create_app():` and sets `app = create_app()`. init took the factory's name for
    Flask's (`flask --app app.main run`, which cannot serve it): it is FastAPI's app,
    run by uvicorn; a factory alone (no module-level app) runs with --factory."""
    repo = project("fastapi-create-app")
    code, out, _ = init()
    assert code == 0
    assert "found backend: ./app/main.py (FastAPI app, run as uvicorn app.main:app)" \
        in out, out
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd, backend.port) == (
        "{python} -m uvicorn app.main:app --host 127.0.0.1 --port {port}", ".", 8000)
    assert "flask" not in read(repo / "procclean.ini")
    main = repo / "app" / "main.py"
    main.write_text(read(main).replace("\n\napp = create_app()\n", "\n"))
    code, out, _ = init("--force")
    assert "(FastAPI app, run as uvicorn app.main:create_app --factory)" in out, out
    backend = services()[1]["backend"]
    assert backend.command == \
        "{python} -m uvicorn app.main:create_app --factory --host 127.0.0.1 --port {port}"
    assert backend.regex.search(ps_line(
        "/repo/.venv/bin/python -m uvicorn app.main:create_app --factory --port 8000"))
    assert not backend.regex.search(ps_line(PS_LINES["bystander-uvicorn"]))


@pytest.mark.parametrize("factory", [
    "def get_application() -> FastAPI:\n    application = FastAPI()\n"
    "    return application\n",
    "async def build_app():\n    return FastAPI()\n",
], ids=["annotated", "named"])
def test_every_factory_form_of_a_fastapi_project_is_found(project, init, factory):
    """The factory's name varies (get_application, build_app) and so does its form (a
    return annotation, an app built in its body): each runs with --factory."""
    repo = project("fastapi-create-app")
    (repo / "app" / "main.py").write_text("from fastapi import FastAPI\n\n\n" + factory)
    name = re.search(r"def (\w+)", factory).group(1)
    assert init()[0] == 0
    assert services()[1]["backend"].command == (
        "{python} -m uvicorn app.main:%s --factory --host 127.0.0.1 --port {port}" % name)


def test_a_main_that_only_calls_an_imported_factory_is_an_app_not_a_script(project, init):
    """A main.py whose app a factory in the package makes (`from app.factory import
    create_app`, `app = create_app()`, no __main__ guard) was run as `python main.py`,
    which builds the app and exits at once: it is uvicorn's main:app."""
    repo = project("fastapi-create-app")
    os.rename(str(repo / "app" / "main.py"), str(repo / "app" / "factory.py"))
    (repo / "main.py").write_text(
        "from app.factory import create_app\n\napp = create_app()\n")
    code, out, _ = init()
    assert "found backend: ./main.py (FastAPI app, run as uvicorn main:app)" in out, out
    assert services()[1]["backend"].command == \
        "{python} -m uvicorn main:app --host 127.0.0.1 --port {port}"


def test_a_flask_factory_is_still_flask(project, init):
    """Flask's own factory (flask-tutorial's `def create_app` in flaskr/) stays Flask's
    CLI, which finds create_app by itself; a factory of another name is named to it
    (the README, which documents the command, left out)."""
    repo = project("flask-tutorial")
    os.remove(str(repo / "README.rst"))
    assert init()[0] == 0
    assert services()[1]["backend"].command.endswith(
        "-m flask --app flaskr run --port {port}")
    init_py = os.path.join("flaskr", "__init__.py")
    with open(init_py) as f:
        text = f.read()
    with open(init_py, "w") as f:
        f.write(text.replace("def create_app(", "def build_app("))
    assert init("--force")[0] == 0
    assert services()[1]["backend"].command.endswith(
        "-m flask --app flaskr:build_app run --port {port}")


@pytest.mark.parametrize("layout", ["root-package", "src-siblings", "own-folder"])
def test_a_module_runs_from_the_folder_its_imports_need(project, init, layout):
    """Where the module is imported from follows its own absolute imports:
    api/app/main.py saying `from api.app.db import` runs as api.app.main from the root
    (from api/ it fails: No module named 'api'); src/main.py saying `from core.settings
    import` runs as main with --app-dir src; backend/app/main.py saying `from app.db
    import` runs as app.main from backend/."""
    repo = project("neither")
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["fastapi"]\n')
    folder, imports, imported, expected = {
        "root-package": ("api/app", "api.app.db", "api/app/db.py",
                         ("api.app.main:app", ".", "")),
        "src-siblings": ("src", "core.settings", "src/core/settings.py",
                         ("main:app", ".", " --app-dir src")),
        "own-folder": ("backend/app", "app.db", "backend/app/db.py",
                       ("app.main:app", "backend", "")),
    }[layout]
    (repo / imported).parent.mkdir(parents=True, exist_ok=True)
    (repo / imported).write_text("engine = None\n")
    (repo / folder / "main.py").write_text(
        "from fastapi import FastAPI\nfrom %s import engine\n\napp = FastAPI()\n" % imports)
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd) == (
        "{python} -m uvicorn %s%s --host 127.0.0.1 --port {port}" % (
            expected[0], expected[2]), expected[1])


def test_a_namespace_package_of_packages_is_an_import_root(project, init):
    """`from api.routes import v1` in api/app/main.py, api/routes/ holding only the
    package v1/ (no __init__.py, no module of its own): api is still the project's own
    package, imported from the root."""
    repo = project("neither")
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["fastapi"]\n')
    (repo / "api" / "routes" / "v1").mkdir(parents=True)
    (repo / "api" / "routes" / "v1" / "__init__.py").write_text("")
    (repo / "api" / "app").mkdir()
    (repo / "api" / "app" / "main.py").write_text(
        "from fastapi import FastAPI\nfrom api.routes import v1\n\napp = FastAPI()\n")
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd) == (
        "{python} -m uvicorn api.app.main:app --host 127.0.0.1 --port {port}", ".")


@pytest.mark.parametrize("library", ["redis", "docker"])
def test_a_folder_named_like_an_imported_library_is_no_import_root(project, init, library):
    """A compose repo's redis/ (redis.conf) or docker/ (Dockerfiles) beside
    backend/main.py's `import redis` (or `import docker`) is no package of the project:
    the app still runs from backend/, where its own `from config import` resolves (from
    the root, as backend.main, it failed: No module named 'config')."""
    repo = project("neither")
    (repo / library).mkdir()
    (repo / library / (library + ".conf")).write_text("bind 127.0.0.1\n")
    (repo / "backend").mkdir()
    (repo / "backend" / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["fastapi", "%s"]\n' % library)
    (repo / "backend" / "config.py").write_text("settings = {}\n")
    (repo / "backend" / "main.py").write_text(
        "import %s\nfrom fastapi import FastAPI\nfrom config import settings\n\n"
        "app = FastAPI()\n" % library)
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd) == (
        "{python} -m uvicorn main:app --host 127.0.0.1 --port {port}", "backend")


def test_a_second_frontend_is_a_service_of_its_own(project, init):
    """0xSarkar/fullstack-starter: apps/frontend (vite --port 5173) and apps/admin (vite
    --port 5174) in a pnpm workspace whose root `dev` runs them all. init kept the first
    and said nothing of the admin app `make dev` then never started: it is a service
    named by its folder. The Node API in apps/backend (the backend) and the library in
    packages/ are no frontends; the root's script that runs every workspace is none
    either."""
    repo = project("pnpm-web-admin")
    code, out, _ = init()
    assert code == 0
    assert "found admin: apps/admin/package.json (dev script: vite --port 5174, " \
        "port 5174)" in out, out
    cfg, svc = services()
    assert cfg.default_names == ["backend", "frontend", "admin"]
    assert [(s.cwd, s.port, s.command) for s in (svc["frontend"], svc["admin"])] == [
        ("apps/frontend", 5173, "pnpm run dev"), ("apps/admin", 5174, "pnpm run dev")]
    assert "admin runs with pnpm (pnpm-lock.yaml found)" in out, out
    assert "stop-admin:" in out and "[admin]" in read(repo / "procclean.ini")


def test_frontends_on_one_default_port_get_ports_of_their_own(project, init):
    """Both apps run plain `vite` (5173 each): the second would exit on --strictPort (or
    wander off where procclean does not look); it gets the next port, and its command
    takes it."""
    repo = project("pnpm-web-admin")
    for app in ("frontend", "admin"):
        package = repo / "apps" / app / "package.json"
        package.write_text(re.sub(r'"vite --port \d+"', '"vite"', read(package)))
    code, out, _ = init()
    assert "found admin: apps/admin/package.json (dev script: vite, port 5174)" in out, out
    _, svc = services()
    assert [(s.port, s.command) for s in (svc["frontend"], svc["admin"])] == [
        (5173, "pnpm run dev --port {port} --strictPort"),
        (5174, "pnpm run dev --port {port} --strictPort")]
    assert procclean.port_follows(svc["admin"])
    assert "# the next port free of the services found before it" in read(
        repo / "procclean.ini")


def test_a_turborepos_docs_app_is_a_frontend_too(project, init):
    """vercel/turborepo examples/basic: apps/web (3000) and apps/docs (3001), both Next.
    apps/docs was passed over as documentation; every folder of apps/ is an app."""
    project("turborepo-next")
    code, out, _ = init()
    assert code == 0
    cfg, svc = services()
    assert cfg.default_names == ["frontend", "docs"]
    assert (svc["docs"].cwd, svc["docs"].port, svc["docs"].command) == (
        "apps/docs", 3001, "pnpm run dev -p {port}")


def test_a_second_frontend_named_like_a_service_is_named_apart(project, init):
    """web/ and apps/frontend: the second's folder name is the first's service name."""
    repo = project("neither")
    for folder in ("web", os.path.join("apps", "frontend")):
        os.makedirs(str(repo / folder))
        (repo / folder / "package.json").write_text(
            '{"scripts": {"dev": "next dev"}, "dependencies": {"next": "15"}}')
    assert init()[0] == 0
    cfg, svc = services()
    assert cfg.default_names == ["frontend", "frontend-2"]
    assert (svc["frontend-2"].cwd, svc["frontend-2"].port) == ("apps/frontend", 3001)


def test_an_arq_worker_beside_a_factory_app_in_a_src_layout(project, init):
    """igorbenav/FastAPI-boilerplate's layout: src/app/main.py sets `app =
    create_application(...)` (the factory in core/setup.py) and src/app/core/worker/
    settings.py holds arq's `class WorkerSettings`. init found neither (no `app =
    FastAPI()`, no Celery): the backend runs under uvicorn with --app-dir src, the worker
    as arq runs it, with src/ on PYTHONPATH (arq has no --app-dir), through uv (uv.lock):
    a bare `arq` is whatever PATH holds, not the project's."""
    repo = project("fastapi-arq-src")
    code, out, _ = init()
    assert code == 0
    assert "found worker: src/app/core/worker/settings.py (arq worker settings, run as arq " \
           "app.core.worker.settings.WorkerSettings)" in out, out
    cfg, svc = services()
    assert cfg.default_names == ["backend", "worker"]
    assert svc["backend"].command == \
        "{python} -m uvicorn app.main:app --app-dir src --host 127.0.0.1 --port {port}"
    worker = svc["worker"]
    assert (worker.command, worker.cwd, worker.port) == (
        "PYTHONPATH=src uv run arq app.core.worker.settings.WorkerSettings", ".", None)
    assert worker.regex.search(ps_line("/repo/.venv/bin/python /repo/.venv/bin/arq "
                                       "app.core.worker.settings.WorkerSettings"))
    assert not worker.regex.search(ps_line(PS_LINES["uvicorn-m"]))


def test_a_documented_arq_worker_is_run_as_written_not_as_a_module(project, init):
    """arq had no __main__ before 0.25: `python -m arq` fails (No module named
    arq.__main__), so a Procfile's (or README's) `arq app.worker.WorkerSettings` stays the
    console script, run by the runner of the project's lock file (uv.lock: `uv run`)."""
    repo = project("fastapi-arq-src")
    (repo / "Procfile").write_text("web: uvicorn app.main:app --app-dir src --port $PORT\n"
                                   "worker: arq app.worker.WorkerSettings\n")
    assert init()[0] == 0
    svc = services()[1]
    assert svc["worker"].command == "uv run arq app.worker.WorkerSettings"
    assert svc["web"].command.startswith("{python} -m uvicorn app.main:app")


def test_dramatiq_actors_are_a_worker(project, init):
    """A project that depends on dramatiq, its actors in tasks.py: `dramatiq tasks`."""
    repo = project("neither")
    (repo / "requirements.txt").write_text("flask\ndramatiq[redis]\n")
    (repo / "tasks.py").write_text(
        "import dramatiq\n\n\n@dramatiq.actor\ndef count_words(url):\n    return url\n")
    assert init()[0] == 0
    worker = services()[1]["worker"]
    assert (worker.command, worker.cwd) == ("{python} -m dramatiq tasks", ".")
    assert worker.regex.search(ps_line("/repo/.venv/bin/python -m dramatiq tasks"))


def test_an_arq_dependency_without_settings_is_said_with_its_command(project, init):
    repo = project("fastapi-arq-src")
    os.remove(str(repo / "src" / "app" / "core" / "worker" / "settings.py"))
    code, out, _ = init()
    assert code == 0
    assert "pyproject.toml depends on arq, but init found no worker" in out, out
    assert "arq WorkerSettings class" in out
    assert "command = uv run arq MODULE.WorkerSettings" in out


@pytest.mark.parametrize("dev, entry, code", [
    ("bun --hot src/index.ts", "src/index.ts",
     "const app = new Hono()\nexport default { port: 3001, fetch: app.fetch }\n"),
    ("bun run src/index.ts", "src/index.ts",
     "Bun.serve({\n  port: 3001,\n  fetch(req) { return new Response('ok') },\n})\n"),
    ("tsx watch src/index.ts", "src/index.ts",
     "import { serve } from '@hono/node-server'\nserve({ fetch: app.fetch, port: 3001 })\n"),
    ("node server.js", "server.js", "await fastify.listen({ port: 3001, host: '0.0.0.0' })\n")],
    ids=["bun-export-default", "bun-serve", "hono-node-server", "fastify"])
def test_a_node_apis_port_in_an_options_object_is_its_port(project, init, dev, entry, code):
    """A Hono app on Bun (`export default { port: 3001, fetch }`, Bun.serve), on Node
    (@hono/node-server's `serve({fetch, port})`) or Fastify's `listen({port})`: init said
    port 3000, "the usual default port", and start waited on 3000 while it listened on
    3001.  The port its options name is its port, and a literal one stays put."""
    repo = project("neither")
    (repo / "api" / "src").mkdir(parents=True)
    (repo / "api" / "package.json").write_text(
        '{"scripts": {"dev": "%s"}, "dependencies": {"hono": "^4", "fastify": "^4"}}' % dev)
    (repo / "api" / entry).write_text(code)
    code, out, _ = init()
    assert code == 0, out
    backend = services()[1]["backend"]
    assert (backend.cwd, str(backend.port)) == ("api", "3001"), out
    assert procclean.port_follows(backend) is False


@pytest.mark.parametrize("server, expected", [
    ("const PORT = process.env.PORT || 5000;\napp.listen(PORT);\n", ("5000", "3000")),
    ("app.listen(process.env.PORT ?? 3000);\n", ("3000", "3001")),
], ids=["express-5000", "both-3000"])
def test_a_node_api_beside_a_react_app_is_the_backend(project, init, server, expected):
    """The MERN layout: an Express API in backend/ (`nodemon server.js`) and Create React
    App in frontend/. init found no backend (it looked for Python only) and make dev ran
    the frontend alone: the API is the backend, on the port its code falls back to, and
    moves with the setting (it reads PORT). Both on 3000: CRA, which reads PORT too,
    takes the next port."""
    repo = project("neither")
    (repo / "backend").mkdir()
    (repo / "backend" / "package.json").write_text(
        '{"scripts": {"start": "node server.js", "dev": "nodemon server.js"},'
        ' "dependencies": {"express": "^4.19.0", "mongoose": "^8"}}')
    (repo / "backend" / "server.js").write_text(
        "const express = require('express');\nconst app = express();\n" + server)
    (repo / "frontend").mkdir()
    (repo / "frontend" / "package.json").write_text(
        '{"scripts": {"start": "react-scripts start"}, "dependencies": {"react": "^18",'
        ' "react-scripts": "5.0.1"}}')
    code, out, _ = init()
    assert code == 0
    assert "found backend: backend/package.json (dev script: nodemon server.js, port %s)" \
        % expected[0] in out, out
    cfg, svc = services()
    assert cfg.default_names == ["backend", "frontend"]
    backend = svc["backend"]
    assert (backend.command, backend.cwd, str(backend.port)) == (
        "npm run dev", "backend", expected[0])
    assert procclean.port_follows(backend)
    assert backend.regex.search(
        ps_line("node /repo/backend/node_modules/.bin/nodemon server.js"))
    assert not backend.regex.search(ps_line("node /repo/frontend/node_modules/.bin/"
                                            "react-scripts start"))
    assert (svc["frontend"].command, str(svc["frontend"].port)) == (
        "npm start", expected[1])


def test_a_node_api_run_from_its_build_has_its_sources_port(project, init):
    """TypeScript's usual scripts (`"dev": "tsc && node dist/index.js"`, as many
    Express and MCP quickstarts write them): dist/ does not exist before the first build;
    the port is src/index.ts's (`process.env.PORT || 4100`), and the setting moves it.
    init said Node's 3000, and that the port could not be moved."""
    repo = project("neither")
    (repo / "server" / "src").mkdir(parents=True)
    (repo / "server" / "package.json").write_text(
        '{"scripts": {"build": "tsc", "start": "node dist/index.js", "dev": "tsc && node '
        'dist/index.js"}, "dependencies": {"express": "^4.21.0"}}')
    (repo / "server" / "src" / "index.ts").write_text(
        "import express from 'express';\nconst app = express();\n"
        "const PORT = process.env.PORT || 4100;\napp.listen(PORT);\n")
    code, out, _ = init()
    assert "found backend: server/package.json (dev script: tsc && node dist/index.js, " \
        "port 4100)" in out, out
    backend = services()[1]["backend"]
    assert backend.port == 4100 and procclean.port_follows(backend)


def test_a_nest_api_runs_its_watching_start(project, init):
    """NestJS: `start:dev` (nest start --watch) before `start`, src/main.ts's port, which
    moves with the setting where main.ts reads PORT (issue 26: it did not)."""
    repo = project("neither")
    (repo / "server" / "src").mkdir(parents=True)
    (repo / "server" / "package.json").write_text(
        '{"scripts": {"build": "nest build", "start": "nest start", "start:dev": '
        '"nest start --watch"}, "dependencies": {"@nestjs/core": "^10"}}')
    (repo / "server" / "src" / "main.ts").write_text(
        "async function bootstrap() {\n  const app = await NestFactory.create(AppModule);\n"
        "  await app.listen(process.env.PORT ?? 3100);\n}\nbootstrap();\n")
    (repo / "server" / "yarn.lock").write_text("")
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd, backend.port, backend.pattern) == (
        "yarn run start:dev", "server", 3100, "nest start")
    # `nest start` names no file; src/main.ts reads PORT: the port setting moves it
    assert procclean.port_follows(backend)
    (repo / "server" / "src" / "main.ts").write_text("app.listen(3100);\n")
    assert not procclean.port_follows(backend)


@pytest.mark.parametrize("scripts, expected", [
    ('{"serve": "vue-cli-service serve", "build": "vue-cli-service build"}',
     ("serve", 8080, "npm run serve")),
    ('{"develop": "gatsby develop", "build": "gatsby build"}',
     ("develop", 8001, "npm run develop -- --port {port}")),
    ('{"start": "docusaurus start", "build": "docusaurus build"}',
     ("start", 3000, "npm start -- --port {port}")),
    ('{"dev": "vinxi dev", "build": "vinxi build"}',
     ("dev", 3000, "npm run dev -- --port {port}")),
    # React Router 7 (create-react-router's template): Vite under its own CLI, reading
    # vite.config's server.port (3000 here); written with no port flag, it did not move
    ('{"dev": "react-router dev", "build": "react-router build", "start": '
     '"react-router-serve ./build/server/index.js"}',
     ("dev", 3000, "npm run dev -- --port {port} --strictPort")),
], ids=["vue-cli", "gatsby", "docusaurus", "vinxi", "react-router"])
def test_more_dev_servers_on_their_own_ports(project, init, scripts, expected):
    """Vue CLI's `serve` (8080; it reads PORT, no flag), Gatsby's `develop` (once passed
    over: no dev script; 8000, the backend's: it moves to 8001), Docusaurus' `start`,
    SolidStart's vinxi, React Router's CLI: each found, on its default (or its
    config's) port, moving with the setting."""
    repo = project("fastapi-vite")
    (repo / "frontend" / "package.json").write_text(
        '{"scripts": %s, "dependencies": {"react": "18", "vue": "3"}}' % scripts)
    code, out, _ = init()
    assert "has no dev script" not in out, out
    frontend = services()[1]["frontend"]
    assert (frontend.port, frontend.command) == expected[1:], out
    assert "(%s script:" % expected[0] in out
    assert procclean.port_follows(frontend)


@pytest.mark.parametrize("options, port", [
    ("", 4200), (', "options": {"port": 4300}', 4300)], ids=["default", "angular-json"])
def test_angular_is_on_the_port_its_angular_json_serves(project, init, options, port):
    """An Angular frontend (`start: ng serve`) whose angular.json sets the serve target's
    port (as the Angular CLI's workspace configuration documents it): init passed
    `--port 4200`, so ng serve left the port its proxy and README expect.  The default
    port is angular.json's, else ng's 4200, and the setting still moves it."""
    repo = project("fastapi-vite")
    (repo / "frontend" / "package.json").write_text(
        '{"scripts": {"start": "ng serve", "build": "ng build"}, "dependencies": '
        '{"@angular/core": "17"}}')
    (repo / "frontend" / "angular.json").write_text(
        '{"projects": {"shop": {"architect": {"serve": {"builder": '
        '"@angular-devkit/build-angular:dev-server"%s}}}}}' % options)
    assert init()[0] == 0
    frontend = services()[1]["frontend"]
    assert (frontend.port, frontend.command) == (port, "npm start -- --port {port}")


@pytest.mark.parametrize("script, port", [
    ("vite", 5173), ("vite --port 5180", 5180), ("next dev", 5100),
    ("vite build --watch", None),
], ids=["vite", "vite-port", "next", "build-watch"])
@pytest.mark.parametrize("entry", ["cd frontend && npm run dev", "npm --prefix frontend "
                                   "run dev", "pnpm -C frontend dev",
                                   "npm run dev --workspace=frontend",
                                   "npm run dev -w @shop/frontend",
                                   "pnpm --filter @shop/frontend dev",
                                   "yarn workspace @shop/frontend dev"])
def test_a_procfile_frontend_entry_has_its_scripts_port(project, init, script, port, entry):
    """A Procfile.dev entry named like a built-in service (`frontend: cd frontend && npm
    run dev`) took the built-in frontend's port, 3000, where Vite listens on 5173 (start
    --wait then waited in vain; a build watcher listens nowhere): its port is the one its
    package script's dev server has, or none; Next's reads PORT, which honcho gives the
    second entry as 5100 (it was 3000, where `honcho start` never ran it).  The same for
    `npm --prefix frontend run dev` (`pnpm -C frontend dev`), which runs there too: it
    was run from the root, where its package.json was not read.  Vite's gets its port flag,
    as a frontend init finds in a package.json does: without it, the port setting and
    port_offset did not move it (a second checkout's Vite went to 5174, where status
    does not look).  A workspace's script (`npm run dev -w frontend`, by its folder or
    its package's name; pnpm --filter, yarn workspace) is in its package.json and runs in
    its folder: init read the root's, and gave it no port."""
    repo = project("fastapi-vite")
    (repo / "Procfile.dev").write_text(
        "backend: cd backend && uvicorn main:app --reload --port $PORT\n"
        "frontend: %s\n" % entry)
    (repo / "frontend" / "package.json").write_text(
        '{"name": "@shop/frontend", "scripts": {"dev": "%s"}, '
        '"devDependencies": {"vite": "5"}}' % script)
    os.remove(str(repo / "frontend" / "vite.config.js"))     # (its server.port: 3000)
    assert init()[0] == 0
    cfg, svc = services()
    assert cfg.default_names == ["backend", "frontend"]
    assert (svc["backend"].port, svc["frontend"].port) == (5000, port)
    run = {"pnpm": "pnpm dev", "yarn": "yarn dev"}.get(entry.split()[0], "npm run dev")
    if script == "vite":
        run += (" -- " if run.startswith("npm") else " ") + "--port {port} --strictPort"
    assert (svc["frontend"].command, svc["frontend"].cwd) == (run, "frontend")
    if port is None:
        assert "port =\n" in read(repo / "procclean.ini")


@pytest.mark.parametrize("config, port, said", [
    (None, 3036, "config/vite.json (development port)"),
    ('{"all": {"port": 3040}, "development": {"autoBuild": true}}', 3040,
     "config/vite.json (all port)"),
    ('{"all": {"sourceCodeDir": "app/frontend"}}', 3036, "vite_ruby's default port")],
    ids=["development", "all", "default"])
def test_vite_rubys_dev_server_is_on_its_vite_json_port(project, init, config, port, said):
    """ElMassimo/pingcrm-vite: Procfile.dev's `frontend: bin/vite dev` (vite_ruby) took the
    built-in frontend's 3000, Rails' own port, where config/vite.json says 3036: start
    --wait and status looked at the wrong port.  Its port is vite.json's development
    one, else its `all` one, else vite_ruby's 3036; fixed (Rails looks for it there)."""
    repo = project("rails-vite-ruby")
    if config:
        (repo / "config" / "vite.json").write_text(config)
    assert init()[0] == 0
    _, svc = services()
    assert (svc["backend"].port, svc["frontend"].port) == (3000, port)
    assert svc["frontend"].command == "bin/vite dev"
    assert not procclean.port_follows(svc["frontend"])
    assert "# %s\nport = %d\n" % (said, port) in read(repo / "procclean.ini")


@pytest.mark.parametrize("setting, port", [
    (None, 5174), ('DJANGO_VITE_DEV_SERVER_PORT = 5175\n', 5175)], ids=["3.x", "2.x"])
def test_a_django_vite_frontend_is_on_the_port_django_looks_for_it(project, init, setting,
                                                                    port):
    """saaspegasus/django-vite-tailwind-starter with DJANGO_VITE's dev_server_port 5174:
    Django's pages load their scripts from 5174, and init ran plain `vite` on its 5173.
    The frontend is on the port django-vite names (DJANGO_VITE_DEV_SERVER_PORT before
    3.0), given to Vite as its --port."""
    repo = project("django-vite-root")
    if setting:
        (repo / "project" / "settings.py").write_text(setting)
    code, out, _ = init()
    assert code == 0, out
    frontend = services()[1]["frontend"]
    assert (frontend.port, frontend.command) == (
        port, "npm run dev -- --port {port} --strictPort")
    assert "# project/settings.py (django-vite's dev_server_port)\nport = %d\n" % port \
        in read(repo / "procclean.ini")


def test_a_vite_with_no_page_of_its_own_is_healthy_when_it_answers(project, init):
    """django-vite's Vite serves Django's scripts under base '/static/' and has no
    index.html: its / redirects to /static/, which answers 404, so the frontend's
    health check `/` failed and `start --wait` stopped a Vite that ran well (found in
    the sandbox on django-vite-root).  Such a Vite's health is `auto` (any answer below
    500); a Vite app with its index.html keeps `/`."""
    repo = project("django-vite-root")
    assert init()[0] == 0
    assert services()[1]["frontend"].health == "auto"
    (repo / "index.html").write_text("<!doctype html>\n")
    assert init("--force")[0] == 0
    assert services()[1]["frontend"].health == "/"


def test_a_procfile_entry_that_runs_no_package_script_keeps_its_services_port(project,
                                                                             init):
    """`backend: cd backend && python main.py` (the seed's app, on 8000 by itself) names
    no port and runs no package script: the built-in backend's 8000 stays its port (it
    was written `port =`, so status, stop and start --wait no longer looked at 8000)."""
    repo = project("fastapi-vite")
    (repo / "Procfile.dev").write_text("backend: cd backend && python main.py\n"
                                       "frontend: cd frontend && npm run dev\n")
    assert init()[0] == 0
    svc = services()[1]
    assert svc["backend"].port == 8000
    assert "port =\n" not in read(repo / "procclean.ini")


@pytest.mark.parametrize("documented", [False, True], ids=["code", "readme"])
def test_flask_on_the_port_its_flaskenv_says(project, init, documented):
    """miguelgrinberg/react-flask-app's api/.flaskenv with FLASK_RUN_PORT=5001 (macOS's
    AirPlay holds 5000; the React app's proxy points at 5001): init wrote 5000, and the
    frontend's calls went nowhere. The port is .flaskenv's, whether init found the app
    in the code or in a README's `flask run`."""
    repo = project("react-flask-app")
    package = repo / "package.json"
    package.write_text(read(package).replace("cd api && venv/bin/flask run --no-debugger",
                                             "cd api && echo no-api"))
    flaskenv = repo / "api" / ".flaskenv"
    flaskenv.write_text(read(flaskenv) + "FLASK_RUN_PORT=5001\n")
    if documented:
        (repo / "README.md").write_text("Run the API:\n\n    cd api && flask run\n")
    assert init()[0] == 0, init()
    backend = services()[1]["backend"]
    assert (backend.cwd, backend.port) == ("api", 5001), backend
    assert backend.command.endswith("--port {port}")
    assert "# api/.flaskenv (FLASK_RUN_PORT)" in read(repo / "procclean.ini")


def test_a_port_from_a_settings_class(project, init):
    """mealie-recipes/mealie: `start = "mealie.app:main"` in [tool.poetry.scripts], whose
    main() runs uvicorn.run(..., port=settings.API_PORT), the settings class saying
    `API_PORT: int = 9000`. init wrote uvicorn's 8000, where nothing listens: the port is
    the settings' default, said where it is set."""
    repo = project("src-poetry-scripts")
    main = repo / "src" / "inventory" / "main.py"
    main.write_text(re.sub(r"port=\d+", "port=settings.API_PORT", read(main)))
    (repo / "src" / "inventory" / "config.py").write_text(
        "class Settings:\n    API_HOST: str = '127.0.0.1'\n    API_PORT: int = 9000\n\n\n"
        "settings = Settings()\n")
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.port) == ("poetry run start", 9000)
    assert "# src/inventory/config.py (API_PORT = 9000)" in read(repo / "procclean.ini")


def test_a_port_attribute_named_only_port_is_not_looked_for(project, init):
    """`uvicorn.run(app, port=args.port)` (argparse's --port) beside a DatabaseConfig's
    `port = 5432`: init wrote the backend on 5432, postgres's port, so start refused
    (port taken) and status named postgres a stranger.  A bare `port` attribute is too
    common a name: the server's default port, as before."""
    repo = project("neither")
    (repo / "backend").mkdir()
    (repo / "backend" / "main.py").write_text(
        "import uvicorn\nfrom fastapi import FastAPI\n\napp = FastAPI()\n\n"
        "if __name__ == \"__main__\":\n"
        "    uvicorn.run(app, host=\"127.0.0.1\", port=args.port)\n")
    (repo / "backend" / "db.py").write_text(
        "class DatabaseConfig:\n    host = \"localhost\"\n    port = 5432\n")
    assert init()[0] == 0
    assert services()[1]["backend"].port == 8000


def test_a_script_on_a_port_variable_moves_with_the_setting(project, init):
    """backend/main.py runs uvicorn.run(app, port=int(os.getenv("API_PORT", 8001))):
    the port is 8001, and the command sets API_PORT to procclean's port, so the port
    setting moves it (PORT alone would not)."""
    repo = project("neither")
    (repo / "backend").mkdir()
    (repo / "backend" / "main.py").write_text(
        "import os\n\nimport uvicorn\nfrom fastapi import FastAPI\n\napp = FastAPI()\n\n"
        "if __name__ == \"__main__\":\n"
        "    uvicorn.run(app, port=int(os.getenv(\"API_PORT\", 8001)))\n")
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd, backend.port) == (
        "API_PORT={port} {python} main.py", "backend", 8001)
    assert procclean.port_follows(backend)
    assert backend.regex.search(ps_line("/repo/.venv/bin/python main.py"))
    # the project's .env says where the user runs it (load_dotenv leaves a set variable)
    (repo / "backend" / ".env").write_text("DEBUG=1\nAPI_PORT=8011\n")
    assert init("--force")[0] == 0
    assert services()[1]["backend"].port == 8011
    assert "# backend/.env (API_PORT)" in read(repo / "procclean.ini")


def test_a_documented_flask_run_behind_a_venv_prompt(project, init):
    """testdrivenio/flask-vue-crud: its README runs the API with `(env)$ flask run
    --port=5001 --debug` after `$ cd server` (server/app.py; the Vue client calls
    localhost:5001). The venv's prompt hid the command and a `flask run` without --app
    was never taken, so init ran `python app.py` on 5000, where the client does not call:
    `flask run` finds app.py by itself, and the documented port is the port."""
    repo = project("neither")
    (repo / "server").mkdir()
    (repo / "server" / "requirements.txt").write_text("Flask==3.0.3\nFlask-Cors\n")
    (repo / "server" / "app.py").write_text(
        "from flask import Flask\n\napp = Flask(__name__)\n\n\n@app.route('/ping')\n"
        "def ping():\n    return 'pong'\n\n\nif __name__ == '__main__':\n    app.run()\n")
    (repo / "README.md").write_text(
        "1. Run the API in one terminal:\n\n    ```sh\n    $ cd server\n"
        "    $ python3 -m venv env\n    $ source env/bin/activate\n"
        "    (env)$ pip install -r requirements.txt\n"
        "    (env)$ flask run --port=5001 --debug\n    ```\n")
    code, out, _ = init()
    assert "found backend: README.md line 8 (documented: flask run --port=5001 --debug)" \
        in out, out
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd, backend.port) == (
        "{python} -m flask run --port={port} --debug", "server", 5001)
    # a `flask run` where nothing says which app (no app.py, wsgi.py, FLASK_APP): not taken
    os.rename(str(repo / "server" / "app.py"), str(repo / "server" / "api.py"))
    code, out, _ = init("--force")
    assert "documented: flask run" not in out, out


def test_a_procfiles_uwsgi_is_the_backend_not_a_second_one(project, init):
    """wagtail/bakerydemo: a Heroku Procfile whose web entry is `uwsgi ./etc/uwsgi.ini`,
    and Django's manage.py: init added manage.py runserver as `backend` beside `web`, two
    servers of one app on one port under make dev. The Procfile's web serves it."""
    repo = project("neither")
    (repo / "Procfile").write_text("release: python manage.py migrate\n"
                                   "web: uwsgi ./etc/uwsgi.ini\n")
    (repo / "manage.py").write_text("import django\n")
    assert init()[0] == 0
    assert services()[0].default_names == ["web"]


@pytest.mark.parametrize("lock, runner", [
    ("uv.lock", "uv run "), ("poetry.lock", "poetry run "), ("Pipfile.lock", "pipenv run "),
    ("pdm.lock", "pdm run "), (None, ""), (".venv", "")],
    ids=["uv", "poetry", "pipenv", "pdm", "no-lock", "uv-and-venv"])
def test_a_bare_arq_or_rq_worker_runs_through_the_lock_files_runner(project, init, lock,
                                                                    runner):
    """arq and rq (no `python -m` in every version) run as console scripts: in a project
    whose lock file names its tool and that has no .venv yet, a bare `rq worker` is
    whatever PATH holds (or nothing), so it runs through that tool (`uv run rq worker`),
    as the README of such a project writes it; with no lock file, or a .venv (whose bin/
    is first on PATH at start), as written.  Documented (README, Procfile) or in code."""
    repo = project("neither")
    (repo / "app").mkdir()
    (repo / "app" / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    (repo / "app" / "jobs.py").write_text("class WorkerSettings:\n    functions = []\n")
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "shop"\ndependencies = ["fastapi", "arq", "rq"]\n')
    if lock == ".venv":
        (repo / "uv.lock").write_text("")
        (repo / ".venv" / "bin").mkdir(parents=True)
        os.symlink(sys.executable, str(repo / ".venv" / "bin" / "python"))
    elif lock:
        (repo / lock).write_text("")
    assert init()[0] == 0
    worker = services()[1]["worker"]
    assert worker.command == runner + "arq app.jobs.WorkerSettings"
    assert worker.regex.search(ps_line("/home/u/.cache/pypoetry/virtualenvs/shop-x/bin/"
                                       "python /home/u/.cache/bin/arq app.jobs.WorkerSettings"))
    os.remove("procclean.ini")
    (repo / "README.md").write_text("Jobs:\n\n    rq worker high default\n")
    assert init()[0] == 0
    worker = services()[1]["worker"]
    assert (worker.command, worker.pattern) == (runner + "rq worker high default",
                                                "rq worker high default")
    os.remove("procclean.ini")
    (repo / "Procfile").write_text("web: uvicorn app.main:app --port $PORT\n"
                                   "jobs: rq worker --with-scheduler\n")
    assert init()[0] == 0
    assert services()[1]["jobs"].command == runner + "rq worker --with-scheduler"


FASTAPI_MAIN = "from fastapi import FastAPI\n\napp = FastAPI()\n"
# name: (files, what `web` runs, the services)
DEPLOY_PROCFILES = {
    # issue 26: a Heroku Procfile's gunicorn beside the README's dev command
    "readme-reload": ({
        "Procfile": "web: gunicorn app.main:app -k uvicorn.workers.UvicornWorker\n"
                    "worker: celery -A app.tasks worker\n",
        "README.md": "## Develop\n\n```\nuvicorn app.main:app --reload\n```\n"},
        "{python} -m uvicorn app.main:app --reload --port {port}", ["web", "worker"]),
    # the dev file is the dev command, whatever it runs
    "procfile-dev": ({
        "Procfile.dev": "web: gunicorn app.main:app -k uvicorn.workers.UvicornWorker\n",
        "README.md": "```\nuvicorn app.main:app --reload\n```\n"},
        "{python} -m gunicorn app.main:app -k uvicorn.workers.UvicornWorker --bind "
        "127.0.0.1:{port}", ["web", "worker"]),
    # the README says only what is deployed
    "readme-gunicorn": ({
        "Procfile": "web: gunicorn app.main:app\n",
        "README.md": "```\ngunicorn app.main:app -w 4\n```\n"},
        "{python} -m gunicorn app.main:app --bind 127.0.0.1:{port}", ["web", "worker"]),
    # heroku/python-getting-started @ f7c8d99: Django, gunicorn reading its config, no dev
    # command documented (its gunicorn.conf.py reloads under `heroku local`)
    "django-undocumented": ({
        "Procfile": "web: gunicorn --config gunicorn.conf.py shop.wsgi\n",
        "manage.py": "import django\n", "requirements.txt": "django\ngunicorn\n"},
        "{python} -m gunicorn --config gunicorn.conf.py shop.wsgi --bind 127.0.0.1:{port}",
        ["web", "worker"]),
    # Next deployed with `next start`, developed with `next dev`
    "next-start": ({
        "Procfile": "web: npm start\n",
        "package.json": '{"scripts": {"dev": "next dev", "build": "next build", '
                        '"start": "next start"}, "dependencies": {"next": "15"}}'},
        "npm run dev -- -p {port}", ["web"]),
    # an Express `npm start` serves the API; client/ is the frontend of development
    "express-and-client": ({
        "Procfile": "web: npm start\n",
        "package.json": '{"scripts": {"start": "node server.js"}, "dependencies": '
                        '{"express": "4"}}',
        "client/package.json": '{"scripts": {"dev": "vite"}, "dependencies": '
                               '{"vite": "5"}}'},
        "npm start", ["web", "frontend"]),
}


@pytest.mark.parametrize("bind, ports, host", [
    ('bind = "127.0.0.1:8050"', (8050, 8050), "127.0.0.1"),
    # heroku/python-getting-started @ 0938cce's gunicorn.conf.py
    ('bind = ["[::]:{}".format(os.environ.get("PORT", 5006))]', (5006, 5000), "[::]"),
    ("bind = f\"0.0.0.0:{os.getenv('PORT', '8070')}\"", (8070, 5000), "0.0.0.0"),
    # nickjj/docker-flask-example @ 818f482's config/gunicorn.py (its port ours), named as a
    # module
    ('bind = os.getenv("WEB_BIND", "0.0.0.0:8010")', (8010, 8010), "0.0.0.0")],
    ids=["literal", "heroku", "fstring", "module"])
@pytest.mark.parametrize("runs", ["Makefile", "Procfile"])
def test_gunicorn_is_on_the_port_its_config_binds(project, init, bind, ports, host, runs):
    """`gunicorn -c gunicorn.conf.py app:app` (a Makefile's run, a Procfile's entry)
    beside a Flask app: init said Flask's 5000 (or gunicorn's 8000), where gunicorn binds
    the config's port, so status looked at a port nothing held and start waited there.
    The port is the one the config binds: its PORT default when it reads PORT, which a
    Procfile's runner sets (5000, as foreman and honcho do).  The `--bind` init adds
    (over the config's) keeps the config's host: 127.0.0.1 made a server the config
    binds on 0.0.0.0 (reached from a container's host, a phone) loopback only."""
    port = ports[runs == "Procfile"]
    repo = project("neither")
    (repo / "requirements.txt").write_text("flask\ngunicorn\n")
    (repo / "app.py").write_text("from flask import Flask\n\napp = Flask(__name__)\n")
    config = "config/gunicorn.py" if "WEB_BIND" in bind else "gunicorn.conf.py"
    (repo / "config").mkdir()
    (repo / config).write_text("import os\n\n%s\nworkers = 2\n" % bind)
    run = "gunicorn -c %s app:app\n" % (
        '"python:config.gunicorn"' if "WEB_BIND" in bind else config)
    (repo / runs).write_text({"Makefile": "run:\n\t", "Procfile": "app: "}[runs] + run)
    code, out, _ = init()
    assert code == 0, out
    cfg, svc = services()
    assert len(svc) == 1, out
    assert list(svc.values())[0].port == port, read(repo / "procclean.ini")
    assert list(svc.values())[0].command.endswith(" --bind %s:{port}" % host)


def test_hypercorn_reads_no_gunicorn_conf_it_is_not_given(project, init):
    """`web: hypercorn app:app` beside a gunicorn.conf.py that binds 0.0.0.0:8080 (gunicorn
    reads it unasked, hypercorn never): init wrote `--bind 0.0.0.0:{port}` on 8080, a
    server hypercorn runs on 127.0.0.1:8000 moved and opened to the network."""
    repo = project("neither")
    (repo / "requirements.txt").write_text("fastapi\nhypercorn\n")
    (repo / "app.py").write_text("from fastapi import FastAPI\n\napp = FastAPI()\n")
    (repo / "gunicorn.conf.py").write_text('bind = "0.0.0.0:8080"\n')
    (repo / "Procfile").write_text("web: hypercorn app:app\n")
    code, out, _ = init()
    assert code == 0, out
    web = services()[1]["web"]
    assert (web.command, web.port) == (
        "{python} -m hypercorn app:app --bind 127.0.0.1:{port}", 8000), read(
        repo / "procclean.ini")


@pytest.mark.parametrize("config, port", [
    ('port ENV.fetch("PORT") { 3000 }', 5000),      # Rails 7's config/puma.rb: reads PORT
    ('bind "tcp://0.0.0.0:3020"', 3020)], ids=["reads-port", "binds"])
def test_puma_is_on_the_port_its_config_gives(project, init, config, port):
    """A Procfile's `web: bundle exec puma -C config/puma.rb` (a public Procfile of the
    code index, file 28413720741) had no port: status could not check it. puma's config
    gives it: foreman's PORT (5000) when the config reads PORT, else the port it binds."""
    repo = project("neither")
    (repo / "Gemfile").write_text("gem 'rails'\ngem 'puma'\n")
    (repo / "config").mkdir()
    (repo / "config" / "puma.rb").write_text("%s\nworkers 2\n" % config)
    (repo / "Procfile").write_text("web: bundle exec puma -C config/puma.rb\n"
                                   "worker: bundle exec sidekiq -c 2\n")
    code, out, _ = init()
    assert code == 0, out
    cfg, svc = services()
    assert (svc["web"].port, svc["worker"].port) == (port, None), \
        read(repo / "procclean.ini")


def test_caddy_is_on_the_port_of_its_caddyfile(project, init):
    """A public Procfile (code index file 332549181) runs `proxy: caddy run` before a
    uvicorn backend and `cd frontend && ng serve`: the proxy had no port, so status could
    not say who holds it. Its Caddyfile's first site address gives it (`:1560 {`)."""
    repo = project("neither")
    (repo / "Caddyfile").write_text(":1560 {\n\treverse_proxy /api/* localhost:1561\n}\n")
    (repo / "Procfile").write_text(
        "proxy: caddy run\nbackend: uvicorn --port=1561 --reload backend.main:app\n")
    code, out, _ = init()
    assert code == 0, out
    cfg, svc = services()
    assert (svc["proxy"].port, svc["backend"].port) == (1560, 1561), \
        read(repo / "procclean.ini")


@pytest.mark.parametrize("run, code, port", [
    ("go run ./cmd/api", 'http.ListenAndServe(":8080", mux)', 8080),
    ("go run ./cmd/api", 'r := gin.Default()\n\tr.Run("127.0.0.1:8081")', 8081),
    ("go run ./cmd/api", 'srv := &http.Server{\n\t\tAddr: ":8082",\n\t}', 8082),
    ("go run cmd/api/main.go", 'app.Listen(":3001")', 3001)],
    ids=["net-http", "gin", "server-addr", "fiber-file"])
def test_a_go_api_is_on_the_port_its_code_listens_on(project, init, run, code, port):
    """A Go API beside a Vite frontend (Procfile.dev's `api: go run ./cmd/api`): init
    gave it no port, so status named none and start could not wait for it to listen.
    Its port is the one its code listens on."""
    repo = project("neither")
    (repo / "cmd" / "api").mkdir(parents=True)
    (repo / "go.mod").write_text("module example.com/shop\n\ngo 1.22\n")
    (repo / "cmd" / "api" / "main.go").write_text(
        "package main\n\nfunc main() {\n\t%s\n}\n" % code)
    (repo / "Procfile.dev").write_text("api: %s\n" % run)
    assert init()[0] == 0
    assert services()[1]["api"].port == port, read(repo / "procclean.ini")


@pytest.mark.parametrize("reads", ['os.Getenv("PORT")', 'os.LookupEnv("PORT")'])
def test_a_go_api_that_reads_port_follows_the_setting(project, init, reads):
    """A Go API that listens on $PORT (`port := os.Getenv("PORT")`, 8080 unset), run by
    Procfile.dev's `go run ./cmd/api`: init wrote no port and `start --set api.port=8090`
    warned that the setting would not move it, though it listened on 8090 (procclean
    passes PORT).  It follows the setting, on the port honcho numbers it (5000)."""
    repo = project("neither")
    (repo / "cmd" / "api").mkdir(parents=True)
    (repo / "cmd" / "api" / "main.go").write_text(
        'package main\n\nfunc main() {\n\tport := %s\n\thttp.ListenAndServe(":"+port, '
        'nil)\n}\n' % reads)
    (repo / "Procfile.dev").write_text("api: go run ./cmd/api\n")
    assert init()[0] == 0
    api = services()[1]["api"]
    assert api.port == 5000, read(repo / "procclean.ini")
    assert procclean.port_follows(api)


def test_a_gin_api_run_with_no_address_is_on_port_or_8080(project, init):
    """gin's r.Run() with no address listens on $PORT, else 8080: a Makefile's `go run`
    of it is on 8080 (it had no port); a Procfile entry on the PORT honcho gives."""
    repo = project("neither")
    (repo / "cmd" / "api").mkdir(parents=True)
    (repo / "go.mod").write_text("module example.com/shop\n\ngo 1.22\n")
    (repo / "cmd" / "api" / "main.go").write_text(
        'package main\n\nimport "github.com/gin-gonic/gin"\n\nfunc main() {\n'
        '\tr := gin.Default()\n\tr.Run()\n}\n')
    assert procclean._default_port("go run ./cmd/api", str(repo))[0] == "8080"
    (repo / "Procfile.dev").write_text("api: go run ./cmd/api\n")
    assert init()[0] == 0
    assert services()[1]["api"].port == 5000, read(repo / "procclean.ini")


@pytest.mark.parametrize("dotenv, port", [(None, 8080), ("ADDR=:8081\n", 8081)])
def test_a_go_api_beside_a_react_app_is_the_backend(project, init, dotenv, port):
    """dsabljic/golang-blog-api: a Go API in cmd/api (chi, listening on ADDR, else :8080)
    beside a Vite app in web/, a Makefile with no process recipes: init found the
    frontend alone.  The main package that serves is the backend, run by `go run`, its
    address given as ADDR (the .env it loads may set it); cmd/migrate/seed serves
    nothing."""
    repo = project("go-chi-vite")
    if dotenv:
        (repo / ".env").write_text(dotenv)
    code, out, _ = init()
    assert code == 0, out
    assert "found backend: cmd/api (Go HTTP server, run as ADDR=:{port} go run " \
        "./cmd/api)" in out, out
    cfg, svc = services()
    assert cfg.default_names == ["backend", "frontend"]
    backend = svc["backend"]
    assert (backend.command, backend.cwd, backend.port) == (
        "ADDR=:{port} go run ./cmd/api", ".", port)
    assert procclean.port_follows(backend)
    assert backend.regex.search(ps_line("go run ./cmd/api"))
    assert not backend.regex.search(ps_line("go run cmd/migrate/seed/main.go"))
    assert (svc["frontend"].cwd, svc["frontend"].port) == ("web", 5173)


@pytest.mark.parametrize("code, command, port", [
    ('\thttp.ListenAndServe(":9000", nil)', "go run .", 9000),
    ('\tport := getEnv("PORT", "8070")\n\thttp.ListenAndServe(":"+port, nil)',
     "PORT={port} go run .", 8070),
    ('\taddr := flag.String("addr", "127.0.0.1:8060", "listen")\n'
     '\thttp.ListenAndServe(*addr, nil)', "go run . -addr 127.0.0.1:{port}", 8060),
    ('\tport := os.Getenv("PORT")\n\tif port == "" {\n\t\tport = "8050"\n\t}\n'
     '\thttp.ListenAndServe(":"+port, nil)', "go run .", 8050)],
    ids=["literal", "env-default", "flag", "getenv-fallback"])
def test_a_go_modules_own_main_package_that_serves_is_the_backend(project, init, code,
                                                                   command, port):
    """A Go module in backend/ whose main package is the module's folder: `go run .`
    there, on the port its code listens on, takes from a variable or a flag (the command
    gives {port} to those) or sets beside os.Getenv("PORT") (PORT, which procclean
    passes).  A main package that serves nothing is no backend."""
    repo = project("neither")
    (repo / "backend").mkdir()
    (repo / "backend" / "go.mod").write_text("module example.com/shop\n\ngo 1.22\n")
    (repo / "backend" / "main.go").write_text(
        'package main\n\nimport "net/http"\n\nfunc main() {\n%s\n}\n' % code)
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd, backend.port) == (command, "backend", port)
    assert bool(procclean.port_follows(backend)) == (port != 9000)
    (repo / "backend" / "main.go").write_text(
        'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hi")\n}\n')
    os.remove(str(repo / "procclean.ini"))
    assert "nothing written" in "".join(init()[1:])


def test_a_lone_main_go_without_a_module_is_the_backend(project, init):
    """SultanBadri/svelte-go-todo-app: backend/main.go (net/http on ":8080") and no
    go.mod, its README running `go run main.go`, Svelte on Vite in frontend/: init found
    the frontend alone (it looked for a Go module; `go run .` needs one).  A folder's lone
    main.go that serves is the backend, run as `go run ./main.go`; beside other .go files
    (which `go run main.go` would not build) it is not guessed."""
    repo = project("svelte-go-nomod")
    assert init()[0] == 0
    cfg, svc = services()
    assert cfg.default_names == ["backend", "frontend"]
    backend = svc["backend"]
    assert (backend.command, backend.cwd, backend.port) == (
        "go run ./main.go", "backend", 8080)
    assert backend.regex.search(ps_line("go run ./main.go"))
    assert (svc["frontend"].cwd, svc["frontend"].port) == ("frontend", 5173)
    (repo / "backend" / "todos.go").write_text("package main\n")
    os.remove(str(repo / "procclean.ini"))
    assert init()[0] == 0
    assert services()[0].default_names == ["frontend"]


def test_a_procfile_go_api_is_not_found_twice(project, init):
    """Procfile's `web: go run ./cmd/api` runs the Go backend: init does not add it again."""
    repo = project("go-chi-vite")
    (repo / "Procfile").write_text("web: go run ./cmd/api\n")
    assert init()[0] == 0
    assert services()[0].default_names == ["web", "frontend"]


GO_CLI = ('package main\n\nimport (\n\t"net/http"\n\t"os"\n\n'
          '\t"github.com/urfave/cli/v2"\n)\n\n'
          'func main() {\n\tapp := &cli.App{Action: func(c *cli.Context) error {\n'
          '\t\t_, err := http.Get("http://localhost:8080/health")\n\t\treturn err\n\t}}\n'
          '\tapp.Run(os.Args)\n}\n')


def test_a_go_http_client_is_no_server(project, init):
    """A Go CLI that calls the API (net/http's client, urfave/cli's app.Run(os.Args)) in
    cmd/cli, before cmd/server that listens: the server is the backend, not the CLI."""
    repo = project("neither")
    for sub, code in (("cli", GO_CLI), ("server", 'package main\n\nimport "net/http"\n\n'
                      'func main() {\n\thttp.ListenAndServe(":8090", nil)\n}\n')):
        (repo / "cmd" / sub).mkdir(parents=True)
        (repo / "cmd" / sub / "main.go").write_text(code)
    (repo / "go.mod").write_text("module example.com/shop\n\ngo 1.22\n")
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.port) == ("go run ./cmd/server", 8090)


@pytest.mark.parametrize("fixture, procfile, names", [
    ("fastapi-vite", "Procfile.dev", ["worker", "backend", "frontend"]),
    ("go-chi-vite", "Procfile", ["web", "frontend"])], ids=["go-worker", "heroku-go"])
def test_a_procfile_go_entry_is_the_backend_only_when_it_is(project, init, fixture,
                                                             procfile, names):
    """Procfile.dev's `worker: go run ./cmd/worker` (a Go worker that serves nothing)
    beside a Python backend: the backend was not found, the Procfile ran one already.
    Heroku's Go Procfile, `web: bin/api` in the Go module: the same server was added
    again as backend, `go run ./cmd/api`."""
    repo = project(fixture)
    entry = "worker: go run ./cmd/worker" if procfile == "Procfile.dev" else "web: bin/api"
    (repo / procfile).write_text(entry + "\n")
    assert init()[0] == 0
    assert services()[0].default_names == names


@pytest.mark.parametrize("frontend", ["vite", "cra"])
def test_a_backend_on_a_guessed_port_goes_where_the_frontend_proxies(project, init,
                                                                    frontend):
    """ggonzalezcastro/inmo: a Heroku Procfile (`web: cd backend && uvicorn app.main:app
    --port $PORT`, a celery worker and beat) and a Vite app proxying /api to
    localhost:8000.  init put web on 5000 (foreman's number for the first entry), so
    under make dev every API call of the frontend went to 8000, where nothing listened.
    A backend whose port is only foreman's number or a server's default goes where the
    frontend's dev server proxies (Vite's server.proxy target, CRA's "proxy"); a port
    the repo says is kept."""
    repo = project("procfile-three-vite-proxy")
    if frontend == "cra":
        os.remove(str(repo / "frontend" / "vite.config.ts"))
        (repo / "frontend" / "package.json").write_text(
            '{"scripts": {"start": "react-scripts start"}, "proxy": '
            '"http://127.0.0.1:8000", "dependencies": {"react-scripts": "5"}}')
    code, out, _ = init()
    assert code == 0, out
    cfg, svc = services()
    assert cfg.default_names == ["web", "worker", "beat", "frontend"]
    assert svc["web"].port == 8000, read(repo / "procclean.ini")
    config = "vite.config.ts" if frontend == "vite" else "package.json"
    assert "# frontend/%s (the proxy target of frontend)\nport = 8000\n" % config in \
        read(repo / "procclean.ini")
    procfile = read(repo / "Procfile").replace("--port $PORT", "--port 8001")
    (repo / "Procfile").write_text(procfile)
    assert init("--force")[0] == 0
    assert services()[1]["web"].port == 8001


def test_rails_7_procfile_dev_unsets_port_and_lists_an_entry_twice(project, init):
    """AbeeraTahir/hello-rails-react (Rails 7.0 with jsbundling: bin/dev runs foreman on
    Procfile.dev): `web: unset PORT && bin/rails server` was put on 5000, foreman's PORT,
    which the command unsets (puma then takes its config's 3000: start --wait waited on
    5000 in vain); and its `js: yarn build --watch`, listed twice, made two [js] sections,
    a procclean.ini no command could read.  web is on 3000 and stays there; the same
    entry twice is one service, an entry of the same name and another command is js-2."""
    repo = project("rails-jsbundling-bin-dev")
    assert init()[0] == 0
    cfg, svc = services()
    assert cfg.default_names == ["web", "js"]
    assert (svc["web"].port, svc["web"].command) == (3000, "unset PORT && bin/rails server")
    assert not procclean.port_follows(svc["web"])
    assert "# config/puma.rb (port)\nport = 3000\n" in read(repo / "procclean.ini")
    (repo / "Procfile.dev").write_text(read(repo / "Procfile.dev").replace(
        "unset PORT && ", "").rstrip("\n").rsplit("\n", 1)[0] + "\njs: yarn build:css\n")
    assert init("--force")[0] == 0
    cfg, svc = services()
    assert cfg.default_names == ["web", "js", "js-2"]
    assert svc["web"].port == 5000 and procclean.port_follows(svc["web"])
    assert svc["js-2"].command == "yarn build:css"


def test_a_frontend_does_not_move_to_its_own_proxy_target(project, init):
    """CRA at the root proxying to localhost:8000 beside Flask's app.py there: each
    service was taken for the one that proxies, and the first other on a default port,
    the frontend itself, moved to 8000, where it then proxied to itself; Flask stayed
    on 5000.  The backend goes to 8000."""
    repo = project("neither")
    (repo / "main.go").unlink()
    (repo / "package.json").write_text(
        '{"scripts": {"start": "react-scripts start"}, "proxy": "http://localhost:8000",'
        ' "dependencies": {"react-scripts": "5"}}')
    (repo / "requirements.txt").write_text("flask\n")
    (repo / "app.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    assert init()[0] == 0
    svc = services()[1]
    assert (svc["backend"].port, svc["frontend"].port) == (8000, 3000), read(
        repo / "procclean.ini")


@pytest.mark.parametrize("script, follows", [
    ("next dev -p 3000", False), ("next dev --port=3000", False),
    ("next dev -p $PORT", True), ("next dev", True)])
def test_a_next_dev_server_on_its_own_port_flag_does_not_follow_the_setting(
        project, init, script, follows):
    """vstorm-co/full-stack-fastapi-nextjs-llm-template (a project it generates): the
    frontend's `dev` script is `next dev -p 3000`.  Next reads PORT, so procclean took
    it for a frontend a port setting moves, but -p wins over PORT: a second checkout's
    port_offset gave it 3380 without a word, and it failed on 3000 (EADDRINUSE), held by
    the first checkout; PROCCLEAN_FRONTEND_PORT=3005 start --wait waited on 3005 in vain.
    A Next (or CRA, Nuxt) run with its own literal port flag does not follow, and start
    says so before it launches.  init gives Next a second flag, the last of which it
    takes (chanon-mike/nextjs-fastapi-boilerplate's `next dev -p 3000`): a setting, or
    another checkout's offset, moves it from the script's port."""
    repo = project("fastapi-next-cookiecutter")
    package = repo / "frontend" / "package.json"
    package.write_text(read(package).replace('"next dev -p 3000"', '"%s"' % script))
    assert init()[0] == 0
    cfg, svc = services()
    assert cfg.default_names == ["backend", "frontend"]
    assert (svc["backend"].cwd, svc["frontend"].cwd) == ("backend", "frontend")
    assert svc["frontend"].port == 3000
    assert procclean.port_follows(svc["frontend"])
    assert svc["frontend"].command == "npm run dev" + " -- -p {port}" * ("$" not in script)
    web = procclean.FoundService("web", {"command": script, "cwd": "frontend"}, "")
    assert bool(procclean.port_follows(web)) == follows


def test_procfile_servers_behind_an_agent_get_their_ports(project, init):
    """Heroku Procfiles run their server through an agent (`ddtrace-run uvicorn`,
    `newrelic-admin run-program gunicorn`): neither got its port flag, so both entries
    were on 8000, which the setting could not move, and the second start failed.  The
    gunicorn reads PORT, which foreman and honcho number: 5100 for the second entry
    (it was 8001, where `honcho start` never ran it); uvicorn does not."""
    repo = project("neither")
    (repo / "app").mkdir()
    (repo / "app" / "main.py").write_text(FASTAPI_MAIN)
    (repo / "Procfile").write_text(
        "web: ddtrace-run uvicorn app.main:app --host 0.0.0.0\n"
        "admin: newrelic-admin run-program gunicorn app.main:app -k uvicorn.workers."
        "UvicornWorker\n")
    assert init()[0] == 0
    svc = services()[1]
    assert (svc["web"].command, svc["web"].port) == (
        "ddtrace-run uvicorn app.main:app --host 0.0.0.0 --port {port}", 8000)
    assert (svc["admin"].command, svc["admin"].port) == (
        "newrelic-admin run-program gunicorn app.main:app -k uvicorn.workers.UvicornWorker"
        " --bind 127.0.0.1:{port}", 5100)


@pytest.mark.parametrize("files, web, names", list(DEPLOY_PROCFILES.values()),
                         ids=list(DEPLOY_PROCFILES))
def test_a_deploy_procfile_gives_way_to_the_documented_dev_server(project, init, files, web,
                                                                  names):
    """Heroku's Procfile says what is deployed: `make dev` ran gunicorn where the README
    says `uvicorn app.main:app --reload`.  A documented dev form (reload, dev, debug) of
    the entry's server takes its place and name (the worker entries stay); Procfile.dev,
    a README saying only the deploy command and a dev server init guessed from code
    leave the entry as it is.  gunicorn gets its port as --bind (it has no --port)."""
    repo = project("neither")
    if "package.json" not in files:
        (repo / "app").mkdir()
        (repo / "app" / "main.py").write_text(FASTAPI_MAIN)
        (repo / "app" / "tasks.py").write_text("from celery import Celery\n"
                                               "celery = Celery(__name__)\n")
    for name, text in files.items():
        (repo / name).parent.mkdir(exist_ok=True)
        (repo / name).write_text(text)
    code, out, err = init()
    assert code == 0, (out, err)
    cfg, svc = services()
    assert (cfg.default_names, svc["web"].command) == (names, web), read(
        repo / "procclean.ini")
    if "Procfile" in files and "reload" in web:
        assert "found web: README.md line 4 (documented: uvicorn app.main:app --reload); " \
               "for deploys: Procfile line 1 (gunicorn app.main:app" in out, out
        assert svc["worker"].command == "{python} -m celery -A app.tasks worker"


def test_several_apis_in_sibling_folders_are_a_service_each(project, init):
    """piupiujk/autoservice74's layout: gateway/, garage-service/, parts-service/, each
    a poetry project with app/main.py, run by docker compose.  init took the first and
    dropped the others (issue 26); each is now a service named by its folder, run in it
    (its `from app.api import` resolves there), on ports of their own; the compose file
    and the static web/ are no services."""
    repo = project("fastapi-services-compose")
    code, out, err = init()
    assert code == 0, (out, err)
    assert "found gateway: gateway/app/main.py (FastAPI app, run as uvicorn app.main:app)" \
        in out, out
    cfg, svc = services()
    assert cfg.default_names == ["garage-service", "gateway", "parts-service"]
    assert [(s.cwd, s.port, s.command) for s in svc.values()] == [
        (folder, port, "{python} -m uvicorn app.main:app --host 127.0.0.1 --port {port}")
        for folder, port in (("garage-service", 8000), ("gateway", 8001),
                             ("parts-service", 8002))]
    assert all(procclean.port_follows(s) for s in svc.values())


def test_a_celery_worker_in_each_of_two_service_folders_is_a_service_each(project, init):
    """autoservice74's layout (above) where garage-service/ and parts-service/ each run
    a Celery app of their own (app/worker.py): init found the first folder's worker
    only, so `make dev` never ran the second.  Each is a service, run in its folder
    (`celery -A app.worker` resolves there) and named after it."""
    repo = project("fastapi-services-compose")
    for folder in ("garage-service", "parts-service"):
        (repo / folder / "app" / "worker.py").write_text(
            "from celery import Celery\n\ncelery = Celery(__name__)\n")
    code, out, err = init()
    assert code == 0, (out, err)
    cfg, svc = services()
    workers = [(n, s.cwd, s.command) for n, s in svc.items() if "celery" in s.command]
    assert workers == [
        (folder + "-worker", folder, "{python} -m celery -A app.worker worker "
         "--loglevel=INFO") for folder in ("garage-service", "parts-service")], out
    assert "found parts-service-worker: parts-service/app/worker.py (Celery app" in out


@pytest.mark.parametrize("double", ["mock-api", "mock-back-end-v2", "fake_server",
                                    "api-stubs", "e2e"])
def test_a_test_double_beside_the_api_is_no_service(project, init, double):
    """A mock of the API beside it (DucNgn/KGNet-Interface's mock-back-end-v2/, a
    FastAPI app run by `python main.py` so the frontend can be built without the real
    back end): it became a second API service, and `make dev` ran the mock beside the
    API (the API itself renamed after its folder).  A folder named as a test double is
    no project of the repo, as tests/ is not."""
    repo = project("neither")
    (repo / "api").mkdir()
    (repo / "api" / "requirements.txt").write_text("fastapi\nuvicorn\n")
    (repo / "api" / "main.py").write_text(FASTAPI_MAIN)
    (repo / double).mkdir()
    (repo / double / "requirements.txt").write_text("fastapi\nuvicorn\n")
    (repo / double / "main.py").write_text(
        FASTAPI_MAIN + "\nif __name__ == '__main__':\n    import uvicorn\n"
        "    uvicorn.run(app, port=5050)\n")
    code, out, _ = init()
    assert code == 0, out
    cfg, svc = services()
    assert cfg.default_names == ["backend"], out
    assert svc["backend"].cwd == "api"


SIBLING_APIS = {
    # issue 26's own: services/users and services/orders, each with its requirements
    "services-own-projects": (
        {"services/users/requirements.txt": "fastapi\n",
         "services/orders/requirements.txt": "fastapi\n",
         "services/users/main.py": FASTAPI_MAIN, "services/orders/main.py": FASTAPI_MAIN},
        [("orders", "services/orders", "{python} -m uvicorn main:app --host 127.0.0.1 "
          "--port {port}", 8000),
         ("users", "services/users", "{python} -m uvicorn main:app --host 127.0.0.1 "
          "--port {port}", 8001)]),
    # one project at the root: each app imported from there
    "services-root-project": (
        {"pyproject.toml": '[project]\nname = "shop"\ndependencies = ["fastapi"]\n',
         "services/users/main.py": FASTAPI_MAIN, "services/orders/main.py": FASTAPI_MAIN},
        [("orders", ".", "{python} -m uvicorn services.orders.main:app --host 127.0.0.1 "
          "--port {port}", 8000),
         ("users", ".", "{python} -m uvicorn services.users.main:app --host 127.0.0.1 "
          "--port {port}", 8001)]),
    # gitificial/patterns @ 7ab5534 (architectural_patterns/microservices/python): each
    # service's README says its command and port, run from the root
    "readme-per-service": (
        {"requirements.txt": "fastapi\nhttpx\n",
         "service_user/main.py": FASTAPI_MAIN, "service_order/main.py": FASTAPI_MAIN,
         "service_user/README.md": "Run:\n```\nuvicorn service_user.main:app "
                                   "--port 8101\n```\n",
         "service_order/README.md": "Run:\n```\nuvicorn service_order.main:app "
                                    "--port 8102\n```\n"},
        [("service_order", ".", "{python} -m uvicorn service_order.main:app --port {port}",
          8102),
         ("service_user", ".", "{python} -m uvicorn service_user.main:app --port {port}",
          8101)]),
    # mortogo321/python-fastapi-microservices @ 5e3a243: the root README runs both, each
    # on its port, from the root; app/main.py and app/libs/ beside them are no service
    "readme-at-the-root": (
        {"app/requirements.txt": "fastapi\n", "app/main.py": FASTAPI_MAIN,
         "app/api/main.py": FASTAPI_MAIN, "app/payment/main.py": FASTAPI_MAIN,
         "app/libs/config.py": "DEBUG = True\n",
         "README.md": "## Run\n```bash\n# api\n"
                      "uvicorn app.api.main:app --reload --port=8200\n\n# payment\n"
                      "uvicorn app.payment.main:app --reload --port=8201\n```\n"},
        [("api", ".", "{python} -m uvicorn app.api.main:app --reload --port={port}", 8200),
         ("payment", ".", "{python} -m uvicorn app.payment.main:app --reload --port={port}",
          8201)]),
    # the apps at different places in their folders; each folder its own project
    "uneven-places": (
        {"services/orders/requirements.txt": "fastapi\n",
         "services/users/requirements.txt": "fastapi\n",
         "services/orders/app/__init__.py": "", "services/orders/app/main.py": FASTAPI_MAIN,
         "services/users/main.py": FASTAPI_MAIN},
        [("orders", "services/orders", "{python} -m uvicorn app.main:app --host 127.0.0.1 "
          "--port {port}", 8000),
         ("users", "services/users", "{python} -m uvicorn main:app --host 127.0.0.1 "
          "--port {port}", 8001)]),
    # a Flask service beside the FastAPI backend; an example app and a script are none
    "flask-beside": (
        {"backend/requirements.txt": "fastapi\n", "backend/app/__init__.py": "",
         "backend/app/main.py": FASTAPI_MAIN, "ml-service/requirements.txt": "flask\n",
         "ml-service/app.py": "from flask import Flask\napp = Flask(__name__)\n",
         "examples/demo/main.py": FASTAPI_MAIN, "tools/main.py": "print('hello')\n"},
        [("backend", "backend", "{python} -m uvicorn app.main:app --host 127.0.0.1 "
          "--port {port}", 8000),
         ("ml-service", "ml-service", "{python} -m flask --app app run --port {port}",
          5000)]),
    # one app: a router module in a sibling folder, a test app, are no services
    "one-app": (
        {"requirements.txt": "fastapi\n", "app/main.py": FASTAPI_MAIN,
         "app/routers/main.py": "from fastapi import APIRouter\nrouter = APIRouter()\n",
         "tests/main.py": FASTAPI_MAIN},
        [("backend", ".", "{python} -m uvicorn app.main:app --host 127.0.0.1 --port {port}",
          8000)]),
}


@pytest.mark.parametrize("files, expected", list(SIBLING_APIS.values()),
                         ids=list(SIBLING_APIS))
def test_apps_in_sibling_folders_documented_or_not(project, init, files, expected):
    repo = project("neither")
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    code, out, err = init()
    assert code == 0, (out, err)
    cfg, svc = services()
    assert [(n, s.cwd, s.command, s.port) for n, s in svc.items()] == expected, out


@pytest.mark.parametrize("requirements, code, command", [
    ("quart\n", "from quart import Quart\n\napp = Quart(__name__)\n",
     "{python} -m hypercorn shop.app:app --bind 127.0.0.1:{port}"),
    ("quart\nuvicorn\n", "from quart import Quart\n\napp = Quart(__name__)\n",
     "{python} -m uvicorn shop.app:app --host 127.0.0.1 --port {port}"),
    ("quart\n",
     "from quart import Quart\n\n\ndef create_app():\n    return Quart(__name__)\n",
     '{python} -m hypercorn "shop.app:create_app()" --bind 127.0.0.1:{port}'),
    ("sanic\n", "from sanic import Sanic\n\napp = Sanic('shop')\n",
     "{python} -m sanic shop.app:app --port {port}"),
    ("sanic\n",
     "from sanic import Sanic\n\n\ndef create_app() -> Sanic:\n    return Sanic('x')\n",
     "{python} -m sanic shop.app:create_app --factory --port {port}"),
    ("litestar[standard]\n", "from litestar import Litestar\n\napp = Litestar([])\n",
     "{python} -m uvicorn shop.app:app --host 127.0.0.1 --port {port}"),
], ids=["quart", "quart-uvicorn", "quart-factory", "sanic", "sanic-factory", "litestar"])
def test_an_asgi_app_is_served_by_the_server_its_project_has(project, init, requirements,
                                                             code, command):
    """Quart (hypercorn is its dependency) and Sanic (its own server) projects have no
    uvicorn: `python -m uvicorn` failed (No module named uvicorn).  The server the
    project depends on serves its app, else Quart's hypercorn, Sanic's sanic.  The
    factory form is quoted (sh took `create_app()` for a syntax error: exit 2)."""
    repo = project("neither")
    (repo / "requirements.txt").write_text(requirements)
    (repo / "shop").mkdir()
    (repo / "shop" / "__init__.py").write_text("")
    (repo / "shop" / "app.py").write_text(code)
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.port) == (command, 8000)
    prog = command.split()[2]
    assert backend.regex.search(ps_line("/repo/.venv/bin/python -m %s %s" % (
        prog, command.split()[3].strip('"'))))


def test_a_documented_sanic_command_is_a_server(project, init):
    repo = project("neither")
    (repo / "requirements.txt").write_text("sanic\n")
    (repo / "shop").mkdir()
    (repo / "shop" / "server.py").write_text("from sanic import Sanic\napp = Sanic('x')\n")
    (repo / "README.md").write_text("Run it:\n\n    sanic shop.server:app --dev\n")
    assert init()[0] == 0
    assert services()[1]["backend"].command == \
        "{python} -m sanic shop.server:app --dev --port {port}"


@pytest.mark.parametrize("flaskenv, command", [
    (None, "{python} -m flask --app flasky run --port {port}"),
    ("FLASK_APP=flasky.py\nFLASK_DEBUG=1\n",
     "{python} -m flask --app flasky.py run --port {port}"),
    ("FLASK_APP=flasky.py\nFLASK_RUN_PORT=5050\n",
     "{python} -m flask --app flasky.py run --port {port}"),
], ids=["undocumented", "flaskenv", "flaskenv-port"])
def test_a_flask_factory_that_needs_arguments_is_served_through_its_caller(
        project, init, flaskenv, command):
    """miguelgrinberg/flasky @ 036bae98: app/__init__.py defines create_app(config_name),
    flasky.py at the root calls it (`app = create_app(os.getenv(...) or 'default')`).
    init wrote `flask --app app run`, which fails: Flask cannot call a factory that needs
    an argument.  A factory is served alone only when it takes none; else the module
    that calls it is the app.  FLASK_APP in .flaskenv says which, as `flask run` reads
    it (with its FLASK_RUN_PORT)."""
    repo = project("neither")
    (repo / "requirements.txt").write_text("flask\nflask-migrate\n")
    (repo / "app").mkdir()
    (repo / "app" / "__init__.py").write_text(
        "from flask import Flask\n\n\ndef create_app(config_name):\n"
        "    app = Flask(__name__)\n    return app\n")
    (repo / "flasky.py").write_text(
        "import os\nfrom app import create_app\n\n"
        "app = create_app(os.getenv('FLASK_CONFIG') or 'default')\n")
    if flaskenv:
        (repo / ".flaskenv").write_text(flaskenv)
    code, out, _ = init()
    assert code == 0, out
    backend = services()[1]["backend"]
    port = 5050 if "5050" in (flaskenv or "") else 5000
    assert (backend.command, backend.cwd, backend.port) == (command, ".", port)


@pytest.mark.parametrize("name, text, command, port", [
    # ernestns/fastapi-htmx-template @ 3956d4b: a `run:` recipe beside install, format
    ("justfile", "default:\n  @just --list\n\nsync:\n  uv sync\n\nrun:\n"
     "  uv run uvicorn app.main:app --reload\n",
     "uv run uvicorn app.main:app --reload --port {port}", 8000),
    # AlariCode/27-fast-api @ be79fed: quiet recipes, tab-indented
    ("justfile", "@a_default:\n\tjust --list\n\n@dev:\n\tuv run fastapi dev app/main.py\n",
     "uv run fastapi dev app/main.py --port {port}", 8000),
    ("Taskfile.yml", 'version: "3"\ntasks:\n  dev:\n    cmds:\n'
     "      - uv run uvicorn app.main:app --reload --port 8300\n",
     "uv run uvicorn app.main:app --reload --port {port}", 8300),
    # their variables: a port procclean gives (it wrote `--port {{port}} --port {port}`,
    # which start made `--port {8000}`), a host it cannot (the app the code has instead);
    # a just variable set to a string is that string (the port, and
    # AccessToNutritionInitiative/nutriscore-self-assessment @ 0457034's
    # `app := "src/nutri/interface/api/main.py"`, `dev: uv run fastapi dev {{app}}`)
    ("justfile", 'port := "8300"\n\ndev:\n    uv run uvicorn app.main:app --port '
     "{{port}}\n", "uv run uvicorn app.main:app --port {port}", 8300),
    ("justfile", 'app := "app/main.py"\n\n# Start server locally\ndev:\n'
     "    uv run fastapi dev {{app}}\n", "uv run fastapi dev app/main.py --port {port}", 8000),
    ("Taskfile.yml", "tasks:\n  dev:\n    cmds:\n      - uv run uvicorn app.main:app "
     "--port {{.PORT}}\n", "uv run uvicorn app.main:app --port {port}", 8000),
    ("justfile", "dev:\n    uv run uvicorn app.main:app --host {{host}}\n",
     "{python} -m uvicorn app.main:app --host 127.0.0.1 --port {port}", 8000),
    # what the recipe is given, nothing by default (alfardil/divhacks-2025 @ 7dbb7f6's
    # `py-dev *args:` recipe): init ran the app the code has, without --reload
    ("justfile", "py-dev *args:\n    uv run uvicorn app.main:app --reload {{args}}\n",
     "uv run uvicorn app.main:app --reload --port {port}", 8000),
    ("Taskfile.yml", "tasks:\n  dev:\n    cmds:\n      - uv run uvicorn app.main:app "
     "--reload {{.CLI_ARGS}}\n", "uv run uvicorn app.main:app --reload --port {port}", 8000),
], ids=["just-run", "just-quiet", "taskfile", "just-port", "just-app", "task-port",
        "just-host", "just-args", "task-cli-args"])
def test_a_task_runners_recipe_is_the_documented_command(project, init, name, text,
                                                         command, port):
    """just and Task recipes say how a uv project runs its app (with --reload): init ran
    the app it found in code instead, without reload."""
    repo = project("neither")
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "notes"\ndependencies = ["fastapi", "uvicorn"]\n')
    (repo / "uv.lock").write_text("")
    (repo / "app").mkdir()
    (repo / "app" / "main.py").write_text(FASTAPI_MAIN)
    (repo / name).write_text(text)
    code, out, _ = init()
    assert code == 0
    assert ("found backend: %s line " % name in out) == ("{python}" not in command), out
    backend = services()[1]["backend"]
    assert (backend.command, backend.port) == (command, port)


@pytest.mark.parametrize("name, text, command, cwd, port", [
    # robertplawski/unchained-launcher @ 7973dfa's dev.sh: the module on the last line
    ("dev.sh", "cd frontend\nnpm run dev &\ncd ..\nuvicorn \\\n  --reload \\\n"
     "  --host 127.0.0.1 \\\n  --port 8000 \\\n  --reload-dir . \\\n  backend.main:app\n",
     "{python} -m uvicorn --reload --host 127.0.0.1 --port {port} --reload-dir . "
     "backend.main:app", ".", 8000),
    # a README's: init wrote `uvicorn main:app \ --port {port}` (uvicorn: "unexpected
    # extra arguments") and lost --reload and the port
    ("README.md", "# API\n```bash\ncd backend\nuvicorn main:app \\\n"
     "    --reload --port 8001\n```\n",
     "{python} -m uvicorn main:app --reload --port {port}", "backend", 8001),
], ids=["dev-sh", "readme"])
def test_a_documented_command_continued_on_the_next_lines_is_one(project, init, name,
                                                                  text, command, cwd, port):
    repo = project("neither")
    (repo / "main.go").unlink()
    (repo / "backend").mkdir()
    (repo / "backend" / "__init__.py").write_text("")
    (repo / "backend" / "main.py").write_text(FASTAPI_MAIN)
    (repo / "backend" / "requirements.txt").write_text("fastapi\nuvicorn\n")
    (repo / name).write_text(text)
    code, out, _ = init()
    assert code == 0 and "found backend: %s line 4" % name in out, out
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd, backend.port) == (command, cwd, port)


@pytest.mark.parametrize("line", [
    "export FLASK_APP=api/server.py && flask run --reload",
    "export FLASK_APP=api/server.py; flask run --reload"])
def test_a_documented_export_on_the_commands_line_is_the_commands(project, init, line):
    """`export FLASK_APP=... && flask run --reload`: the export was a command of its own,
    `flask run --reload` found no app without it, and init ran the layout's app as it
    runs it (no --reload).  In a Makefile the run was a second service (backend-2):
    its exported FLASK_APP, a file's path, did not name the layout's api/server.py."""
    repo = project("neither")
    (repo / "main.go").unlink()
    (repo / "requirements.txt").write_text("flask\n")
    (repo / "api").mkdir()
    (repo / "api" / "server.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    (repo / "README.md").write_text("# notes\n\n```\n%s\n```\n" % line)
    assert init()[0] == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.cwd) == (
        "FLASK_APP=api/server.py {python} -m flask run --reload --port {port}", ".")
    (repo / "README.md").unlink()
    (repo / "Makefile").write_text("run:\n\t%s\n" % line)
    assert init("--force")[0] == 0
    assert [(n, s.command) for n, s in services()[1].items()] == [
        ("backend", "FLASK_APP=api/server.py flask run --reload --port {port}")]


def test_a_documented_export_before_a_cd_keeps_the_cd():
    """`export APP_ENV=dev && cd api && uvicorn ...`: the export went in front of the
    `cd`, which was then no cd, and the server was said to run at the root."""
    found = procclean._doc_commands(
        "export APP_ENV=dev && cd api && uvicorn app.main:app --reload\n", "README.md", ".")
    assert [(f["command"], f["cwd"]) for f in found] == [
        ("APP_ENV=dev uvicorn app.main:app --reload", "api")]


@pytest.mark.parametrize("files, streamlit", [
    # Manohar-1RN21AI069/auro-bot's start.sh: the API in the background, then the UI
    ({"start.sh": "#!/bin/bash\nuvicorn main:app --host 0.0.0.0 --port 8000 &\n\n"
                  "streamlit run app.py --server.port 8501 --server.address=0.0.0.0\n",
      "app.py": "import streamlit as st\n"},
     ("{python} -m streamlit run app.py --server.port {port} --server.address=0.0.0.0",
      ".", 8501)),
    # a README running each from its folder, no port said; a Vite app beside them
    ({"README.md": "API:\n\n    uvicorn main:app --reload\n\nUI:\n\n"
                   "    cd ui && python -m streamlit run chat.py\n",
      "ui/chat.py": "import streamlit as st\n",
      "web/package.json": '{"scripts": {"dev": "vite"}, "devDependencies": {"vite": "5"}}'},
     ("{python} -m streamlit run chat.py --server.port {port}", "ui", 8501)),
], ids=["start-sh", "readme-and-vite"])
def test_a_documented_streamlit_ui_is_a_frontend_beside_the_api(project, init, files,
                                                               streamlit):
    """FastAPI + Streamlit: make dev ran the API alone, the UI its README starts beside it
    was no service.  It is one (streamlit), on Streamlit's port, which moves with the
    setting (--server.port)."""
    repo = project("neither")
    (repo / "requirements.txt").write_text("fastapi\nuvicorn\nstreamlit\n")
    (repo / "main.py").write_text(FASTAPI_MAIN)
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    code, out, _ = init()
    assert code == 0, out
    cfg, svc = services()
    assert "streamlit" in cfg.default_names and "backend" in cfg.default_names, out
    ui = svc["streamlit"]
    assert (ui.command, ui.cwd, ui.port) == streamlit
    assert ui.regex.search(ps_line("/repo/.venv/bin/python -m " + ui.command.split(
        " -m ")[1].replace("{port}", "8501")))
    assert "--server.port 8502" in " ".join(procclean.command_argv(ui.command, port=8502))
    assert ("web/package.json" in files) == ("frontend" in cfg.default_names)


HF_SPACE_APP = ("import gradio as gr\n\n\ndef greet(name):\n    return 'Hello ' + name\n"
                "\n\ndemo = gr.Interface(fn=greet, inputs='text', outputs='text')\n%s")


@pytest.mark.parametrize("launch, command, port, follows", [
    ("demo.launch()\n", "GRADIO_SERVER_PORT={port} {python} app.py", 7860, True),
    ("\nif __name__ == '__main__':\n    demo.queue().launch(server_port=7861)\n",
     "{python} app.py", 7861, False),
    ("demo.launch(server_port=int(os.getenv('UI_PORT', 7870)))\n",
     "UI_PORT={port} {python} app.py", 7870, True)], ids=["default", "fixed", "env"])
def test_a_gradio_app_its_code_launches_is_a_service(project, init, launch, command, port,
                                                     follows):
    """A Hugging Face Space's app.py (`demo.launch()`, gradio in requirements.txt) and
    no README command: init found nothing ("neither a Python backend nor a frontend").
    It is a service, gradio, run as the Space runs it, on the port it listens on, which
    moves with the setting unless the code fixes it."""
    repo = project("neither")
    (repo / "requirements.txt").write_text("gradio\n")
    (repo / "app.py").write_text(HF_SPACE_APP % launch)
    code, out, _ = init()
    assert code == 0, out
    assert "found gradio: app.py (Gradio app, run as python app.py)" in out, out
    cfg, svc = services()
    assert cfg.default_names == ["gradio"], out
    ui = svc["gradio"]
    assert (ui.command, ui.cwd, ui.port) == (command, ".", port)
    assert ui.regex.search(ps_line("/usr/bin/python3 app.py"))
    assert bool(procclean.port_follows(ui)) == follows


def test_a_gradio_module_run_with_m_stops_only_itself(project, init):
    """gui/ui.py imports its sibling helpers.py, so init runs it as `python -m ui` in
    gui/.  Its pattern was `ui`, which every `npm run build` (and a user luis's every
    process) holds: `make stop` took the project's build and its test run."""
    from fakes import FakeProc, FakeSystem, invoke
    repo = project("neither")
    (repo / "requirements.txt").write_text("gradio\n")
    os.makedirs(str(repo / "gui"))
    (repo / "gui" / "__init__.py").write_text("")
    (repo / "gui" / "helpers.py").write_text("def greet(name):\n    return name\n")
    (repo / "gui" / "ui.py").write_text("import gradio as gr\nfrom helpers import greet\n\n"
                                       "demo = gr.Interface(fn=greet, inputs='text', "
                                       "outputs='text')\ndemo.launch()\n")
    code, out, _ = init()
    assert "found gradio: gui/ui.py (Gradio app, run as python -m ui)" in out, out
    ui = FakeProc(41, 1, "/usr/bin/python3 -m ui", cwd=str(repo / "gui"))
    build = FakeProc(42, 1, "npm run build")
    tests = FakeProc(43, 1, "/usr/bin/python3 -m pytest tests/test_gui.py")
    shell = FakeProc(44, 1, "-bash", user="luis")
    system = FakeSystem([ui, build, tests, shell])
    code, out, err = invoke(["stop", "gradio"], system)
    assert code == 0, out + err
    assert sorted(set(pid for _, pid, _ in system.sent)) == [41], out + err


def test_a_program_run_alone_is_matched_as_a_word_of_the_command_line(project, init):
    """`dev: air` (a Go app's live reload): its pattern was `air`, found in every ps line
    of a user blair (her shell in the project) and in `python3 repair.py`, so `make stop`
    took them.  The program is matched where ps shows it: a word, or a path's end."""
    from fakes import FakeProc, FakeSystem, invoke
    repo = project("neither")
    (repo / "go.mod").write_text("module example.com/shop\n\ngo 1.22\n")
    (repo / "main.go").write_text("package main\n\nfunc main() {}\n")
    (repo / "Makefile").write_text("dev:\n\tair\n")
    code, out, _ = init()
    assert "found backend: Makefile:2 (dev)" in out, out
    air = FakeProc(41, 1, "/home/blair/go/bin/air", user="blair")
    app = FakeProc(42, 41, "./tmp/main", user="blair")            # what air builds and runs
    shell = FakeProc(43, 1, "-bash", user="blair")
    script = FakeProc(44, 1, "python3 repair.py", user="blair")
    system = FakeSystem([air, app, shell, script])
    code, out, err = invoke(["stop", "backend"], system)
    assert code == 0, out + err
    assert sorted(set(pid for _, pid, _ in system.sent)) == [41, 42], out + err


@pytest.mark.parametrize("line, found", [
    ("./server --port 8080", True), ("/srv/shop/bin/server", True), ("server", True),
    ("python3 -m http.server 8000", False), ("node server.js", False),
    ("/usr/bin/python3 /srv/shop/tools/my-server", False)])
def test_a_program_run_alone_is_no_word_inside_another(line, found):
    """`./server` (a Go binary): `\bserver\b` (14bf8c9) still found the user's
    `python3 -m http.server` and a Node app's `node server.js` in the project; the
    program is a word of its own, at the line's start, after a space or a slash."""
    pattern = procclean.pattern_for("./server --port {port}")
    service = procclean.Service("api", pattern, "api.pid", "api.log", 8080, "", ".")
    assert service.matches(procclean.Process(
        4242, 1, "dev", line, line="dev 4242 1 0 09:00 ? 00:00:01 " + line)) is found


def test_a_scripts_pattern_takes_not_the_test_of_it(project, init):
    """A Hugging Face Space run as `python app.py`: its pattern (python, then app.py) also
    found `python -m pytest tests/test_app.py`, so `make stop` ended the test run going
    on in another terminal.  The script's name is matched whole."""
    from fakes import FakeProc, FakeSystem, invoke
    repo = project("neither")
    (repo / "requirements.txt").write_text("gradio\n")
    (repo / "app.py").write_text(HF_SPACE_APP % "demo.launch()\n")
    code, out, _ = init()
    assert "found gradio: app.py (Gradio app, run as python app.py)" in out, out
    space = FakeProc(41, 1, "/usr/bin/python3 app.py")
    tests = FakeProc(42, 1, "/usr/bin/python3 -m pytest -x tests/test_app.py")
    system = FakeSystem([space, tests])
    code, out, err = invoke(["stop", "gradio"], system)
    assert code == 0, out + err
    assert sorted(set(pid for _, pid, _ in system.sent)) == [41], out + err


def test_a_gradio_ui_beside_its_api(project, init):
    """dormstd/ai_technical_challenge's layout (fixture fastapi-gradio): the API in
    main.py, the UI's frontend.py launching what app/frontend/gradio_app.py builds, on
    7860.  Only the API was found; the UI is a service too, run as its README says."""
    project("fastapi-gradio")
    code, out, _ = init()
    assert code == 0, out
    assert "found gradio: frontend.py (Gradio app, run as python frontend.py)" in out, out
    cfg, svc = services()
    assert sorted(cfg.default_names) == ["backend", "gradio"], out
    assert (svc["gradio"].command, svc["gradio"].port) == ("{python} frontend.py", 7860)


def test_a_gradio_ui_mounted_in_the_api_is_no_service_of_its_own(project, init):
    """kennywang112/AI-Classification's web/run.py: FastAPI serves the Gradio UI
    (gr.mount_gradio_app) and nothing launches it: the API is the one service."""
    repo = project("neither")
    (repo / "requirements.txt").write_text("fastapi\nuvicorn\ngradio\n")
    (repo / "main.py").write_text(
        "import gradio as gr\nfrom fastapi import FastAPI\n\nfrom ui import demo\n\n"
        "app = FastAPI()\napp = gr.mount_gradio_app(app, demo, path='/gradio')\n")
    (repo / "ui.py").write_text(HF_SPACE_APP % "")
    code, out, _ = init()
    assert code == 0, out
    assert services()[0].default_names == ["backend"], out


@pytest.mark.parametrize("table, lock, command", [
    # hatch's environments are no .venv: `hatch run` has the project's packages
    ("tool.hatch.envs.default.scripts", None,
     "hatch run uvicorn notes.app:app --reload --port {port}"),
    ("tool.pdm.scripts", "pdm.lock",
     "pdm run uvicorn notes.app:app --reload --port {port}"),
    ("tool.rye.scripts", None, "rye run uvicorn notes.app:app --reload --port {port}"),
    # poe and taskipy run in the project's environment: {python} is it (poetry run python)
    ("tool.poe.tasks", "poetry.lock",
     "{python} -m uvicorn notes.app:app --reload --port {port}"),
    # another hatch environment than the default: as written
    ("tool.hatch.envs.web.scripts", None,
     "{python} -m uvicorn notes.app:app --reload --port {port}"),
], ids=["hatch", "pdm", "rye", "poe", "hatch-env"])
def test_a_task_tables_server_runs_in_its_tools_environment(project, init, table, lock,
                                                           command):
    """A hatch project's `dev = "uvicorn notes.app:app --reload"` ran as `{python} -m
    uvicorn` with the interpreter running procclean (hatch keeps its environments
    elsewhere than .venv): No module named uvicorn.  A hatch, pdm or rye script runs
    through its tool."""
    repo = project("neither")
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "notes"\ndependencies = ["starlette", "uvicorn"]\n\n[%s]\n'
        'dev = "uvicorn notes.app:app --reload --port 8070"\n' % table)
    if lock:
        (repo / lock).write_text("")
    (repo / "src" / "notes").mkdir(parents=True)
    (repo / "src" / "notes" / "__init__.py").write_text("")
    (repo / "src" / "notes" / "app.py").write_text(
        "from starlette.applications import Starlette\napp = Starlette()\n")
    code, out, _ = init()
    assert code == 0
    backend = services()[1]["backend"]
    assert (backend.command, backend.port) == (command, 8070), out
    assert backend.pattern == r"uvicorn notes\.app:app"


@pytest.mark.parametrize("readme, names, web", [
    (None, ["web"], "{python} app.py"),
    ("## Dev\n\n    flask --app app run --debug\n", ["web"],
     "{python} -m flask --app app run --debug --port {port}"),
], ids=["procfile-only", "readme-debug"])
def test_a_procfile_web_entry_running_python_is_the_backend_not_a_second_copy(
        project, init, readme, names, web):
    """Heroku's `web: python app.py` (a Flask app.run script): init added the app it
    found in app.py as `backend` beside `web`, the same app twice on one port, so make
    dev failed on the second.  The web entry runs the backend; the README's dev form
    takes its place as for a server entry."""
    repo = project("neither")
    (repo / "requirements.txt").write_text("flask\n")
    (repo / "app.py").write_text(
        "import os\nfrom flask import Flask\napp = Flask(__name__)\n\n"
        "if __name__ == '__main__':\n    app.run(port=int(os.environ.get('PORT', 5000)))\n")
    (repo / "Procfile").write_text("web: python app.py\n")
    if readme:
        (repo / "README.md").write_text(readme)
    assert init()[0] == 0
    cfg, svc = services()
    assert (cfg.default_names, svc["web"].command) == (names, web)
    # its port: the script's (PORT, else 5000), which the setting moves through PORT
    assert svc["web"].port == 5000 and procclean.port_follows(svc["web"])


def test_an_api_in_a_uv_workspaces_packages_folder_is_the_backend(project, init):
    """A uv workspace as uv's documentation lays it out (members = ["packages/*"], each
    a src layout), the root a workspace without dependencies of its own: init found no
    backend (packages/ was not looked in for projects).  packages/api is one: its app
    runs from there with --app-dir src; packages/core, a library, is no service."""
    repo = project("neither")
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "harbor"\nversion = "0.1.0"\n\n[tool.uv.workspace]\n'
        'members = ["packages/*"]\n')
    (repo / "uv.lock").write_text("")
    for name, deps in (("api", '"fastapi", "uvicorn", "core"'), ("core", "")):
        src = repo / "packages" / name / "src" / name
        src.mkdir(parents=True)
        (src / "__init__.py").write_text("")
        (repo / "packages" / name / "pyproject.toml").write_text(
            '[project]\nname = "%s"\nversion = "0.1.0"\ndependencies = [%s]\n'
            % (name, deps))
    (repo / "packages" / "api" / "src" / "api" / "main.py").write_text(
        "from fastapi import FastAPI\n\nfrom api.routes import router\n\napp = FastAPI()\n")
    (repo / "packages" / "api" / "src" / "api" / "routes.py").write_text("router = None\n")
    code, out, _ = init()
    assert code == 0, out
    cfg, svc = services()
    assert cfg.default_names == ["backend"], out
    assert (svc["backend"].command, svc["backend"].cwd) == (
        "{python} -m uvicorn api.main:app --app-dir src --host 127.0.0.1 --port {port}",
        "packages/api")


def test_a_root_main_py_that_serves_nothing_is_the_repos_cli_not_its_backend(project, init):
    """A repo whose main.py at the root is its command-line tool (argparse, no web
    framework among the root's requirements) beside a web console in webapp/ (FastAPI):
    the console is the backend; `python main.py` is no service that `make dev` would
    run. A root main.py that serves (uvicorn.run) is the backend, as before.
    (Modelled on a public repo's Makefile and layout: code index file 55959192253.)"""
    repo = project("neither")
    (repo / "main.py").write_text("import argparse\n\nparser = argparse.ArgumentParser()\n"
                                  "print(parser.parse_args())\n")
    (repo / "requirements.txt").write_text("rich\n")
    (repo / "webapp" / "backend").mkdir(parents=True)
    (repo / "webapp" / "backend" / "server.py").write_text("from fastapi import FastAPI\n\n"
                                                           "app = FastAPI()\n")
    (repo / "webapp" / "requirements-web.txt").write_text("fastapi\nuvicorn\n")
    code, out, err = init()
    assert code == 0, (out, err)
    assert "main.py" not in out and not (repo / "procclean.ini").exists(), out
    (repo / "main.py").write_text("import uvicorn\n\nif __name__ == '__main__':\n"
                                  "    uvicorn.run('webapp.server:app', port=8093)\n")
    code, out, err = init()
    assert code == 0, (out, err)
    assert "found backend: ./main.py" in out, out


def test_a_procfile_entry_run_by_a_log_wrapper_is_found_as_ps_shows_it(project, init):
    """eclaire-labs/eclaire's Procfile runs each app through a wrapper that tees its
    output, the app's command one quoted argument holding `&&`: the pattern kept a quote
    (`log-wrapper\\.sh backend "cd apps/backend`), which no ps line has, so a stack the
    team's overmind started was neither seen nor stopped.  The wrapped app's folder and
    port were not read either: the backend got 8000 (its code reads PORT, else 3001)
    where the frontend's Vite proxies /api to 3001, and Vite's port 3000 stayed fixed.
    Each runs as the wrapper runs it (procclean keeps the log), on its port."""
    project("procfile-log-wrapper")
    assert init()[0] == 0
    cfg, svc = services()
    assert cfg.default_names == ["backend", "frontend"]
    assert [(s.command, s.cwd, s.port) for s in svc.values()] == [
        ("pnpm dev", "apps/backend", 3001),
        ("pnpm dev --port {port} --strictPort", "apps/frontend", 3000)]
    for name in ("backend", "frontend"):
        line = "/bin/bash ./scripts/log-wrapper.sh %s cd apps/%s && pnpm dev" % (name, name)
        assert svc[name].regex.search(ps_line(line)), svc[name].pattern
        assert not svc[name].regex.search(ps_line(line.replace(name, "x")))


def test_init_reads_no_code_in_procclean_py_itself(tmp_path, monkeypatch, capsys):
    """procclean.py is at the project's root, and its comments quote servers'
    code (`uvicorn.run(port=7777)`, a `__main__`): init took it for the project's
    script beside a Makefile's `cd svc && uvicorn app.main:app` and no longer named the
    FastAPI app in svc/app/main.py it runs (a change to a comment moved init's answer)."""
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["fastapi"]\n')
    (tmp_path / "svc" / "app").mkdir(parents=True)
    (tmp_path / "svc" / "app" / "main.py").write_text(
        "from fastapi import FastAPI\napp = FastAPI()\n")
    (tmp_path / "Makefile").write_text("run-backend:\n\tcd svc && uvicorn app.main:app\n")
    (tmp_path / "procclean.py").write_text(
        "# uvicorn.run(port=7777)\nif __name__ == '__main__':\n    main()\n")
    assert "procclean.py" not in procclean._python_files(".")
    procclean.main(["init", "--dry-run"])
    out = capsys.readouterr()[0]
    assert "found backend: ./svc/app/main.py (FastAPI app" in out, out


@pytest.mark.parametrize("dev, found", [
    ('concurrently \\"vite\\" \\"node server.js\\"', True),
    ('concurrently -k -n web,api \\"vite --port 5180\\" \\"node server.js\\"', True),
    ('run-p \\"vite\\" \\"node server.js\\"', True),
    ('npm-run-all --parallel dev:vite dev:api', False),     # (scripts, not a server)
    # (a Python server or worker among them is the backend's: it stays no frontend)
    ('concurrently \\"vite\\" \\"uvicorn main:app --reload\\"', False),
    ('concurrently \\"vite\\" \\"python worker.py\\"', False),
    ('concurrently \\"npm:dev:*\\"', False),
])
def test_an_orchestrator_that_runs_the_dev_server_itself_is_the_frontend(project, init,
                                                                          dev, found):
    """A Vite + Express site whose `dev` is `concurrently "vite" "node server.js"`: init
    said `found neither a Python backend nor a frontend` (a script running others was
    never a dev server). It runs one: `npm run dev` is the frontend, both apps its tree."""
    repo = project("vite-express-concurrently")
    text = read(repo / "package.json").replace(
        'concurrently \\"vite\\" \\"node server.js\\"', dev)
    (repo / "package.json").write_text(text)
    code, out, _ = init()
    if not found:
        assert "found frontend" not in out, out
        return
    assert code == 0 and "found frontend: ./package.json (dev script: " in out, out
    _, svc = services()
    frontend = svc["frontend"]
    assert (frontend.command, frontend.cwd) == ("npm run dev", ".")
    assert frontend.port == (5180 if "5180" in dev else 5173)


@pytest.mark.parametrize("dev, scripts, port", [
    ("run-p dev:vite dev:api", '"dev:vite": "vite --port 5180", "dev:api": "node server.js"',
     5180),
    ("npm-run-all --parallel dev:*", '"dev:web": "vite", "dev:server": "node server.js"', 5173),
    ('concurrently \\"npm:dev:*\\"', '"dev:api": "node server.js", "dev:web": "vite"', 5173),
    ("run-p watch serve", '"watch": "tailwindcss -w", "serve": "vite --port 5180"', 5180),
    # (a Python server among them is the backend's: the dev server's own script is)
    ('concurrently \\"npm:dev:*\\"', '"dev:web": "vite", "dev:api": "uvicorn main:app"',
     None),
])
def test_an_orchestrator_of_scripts_that_run_the_dev_server_is_the_frontend(
        project, init, dev, scripts, port):
    """`run-p dev:vite dev:api`, `npm-run-all --parallel dev:*`: init followed the dev
    server's script alone (`npm run dev:vite`), so neither make dev nor make start ran the
    API or the watcher beside it that `npm run dev` runs. The script names (globs too)
    are followed: `npm run dev` is the frontend, on its dev server's port."""
    repo = project("vite-express-concurrently")
    text = read(repo / "package.json").replace(
        '"concurrently \\"vite\\" \\"node server.js\\""', '"%s", %s' % (dev, scripts))
    (repo / "package.json").write_text(text)
    code, out, _ = init()
    assert code == 0, out
    frontend = services()[1]["frontend"]
    if port is None:
        assert frontend.command == "npm run dev:web -- --port {port} --strictPort", out
        return
    assert "found frontend: ./package.json (dev script: %s" % dev.replace("\\", "") in out
    assert (frontend.command, frontend.cwd, frontend.port) == ("npm run dev", ".", port)
