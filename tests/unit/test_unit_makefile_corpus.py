"""init on a corpus of Makefiles modelled on public ones (tests/data/makefiles/, sources in
its README), checked with real GNU make (issue 20).

- `init --makefile` changes no original target's `make -n` output;
- `init --makefile --replace` changes only the targets it replaces, and for each of those
  procclean.ini carries every pidfile, port, log and grep/pkill pattern its recipe named (read
  here from make's own expansion, `make -n` of the original, not from init's reading);
- a Makefile make already rejects is left as it is, and said so.

Nothing is run: make only ever gets -n (and init asks for its database, -pRrq), with a PATH
that holds make alone, so that not even a $(MAKE) line's shell can find another program.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(REPO, "tests", "data", "makefiles")
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import procclean  # noqa: E402

MAKE = shutil.which("make")
ENTRIES = sorted(e for e in os.listdir(CORPUS) if os.path.isdir(os.path.join(CORPUS, e)))
pytestmark = pytest.mark.skipif(MAKE is None, reason="GNU make is not installed")


def test_the_corpus_has_twenty_makefiles_each_with_its_source():
    with open(os.path.join(CORPUS, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert len(ENTRIES) >= 20
    for entry in ENTRIES:
        assert re.search(r"^\| %s \| \S+" % re.escape(entry), readme, re.M), entry


@pytest.fixture
def only_make(tmp_path, monkeypatch):
    """A PATH with GNU make and nothing else (init asks make; make -n runs nothing)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(MAKE, str(bin_dir / "make"))
    for key in list(os.environ):
        if key.startswith("PROCCLEAN_") or key.startswith("MAKE") or key == "MFLAGS":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("LANG", "C.UTF-8")
    return str(bin_dir)


def copy_entry(entry, dest):
    shutil.copytree(os.path.join(CORPUS, entry), str(dest))
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(dest / "procclean.py"))
    return dest


def makefile_of(folder):
    return next(n for n in procclean.MAKEFILE_NAMES if os.path.isfile(os.path.join(folder, n)))


def make_n(folder, target, name=None, old=()):
    """(exit code, stdout) of `make -n TARGET`, run with make alone on PATH; a copy made
    under another `name` is named as the Makefile in what it prints ($(MAKEFILE_LIST));
    the targets `old` are not made (-o: a prerequisite replaced, whose recipe changed)."""
    original = makefile_of(folder)
    name = name or original
    skip = [w for t in old for w in ("-o", t)]
    result = subprocess.run([MAKE, "-n", "-f", name] + skip + [target], cwd=str(folder),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={"PATH": os.environ["PATH"], "LC_ALL": "C"}, timeout=60)
    out = result.stdout.decode("utf-8", "replace")
    return result.returncode, out.replace(" %s " % name, " %s " % original)


def original_targets(folder):
    """The targets the Makefile (and what it includes) defines, as make reports them."""
    info = procclean.ask_make(str(folder), makefile_of(str(folder)))
    if info.error:
        return None
    return sorted(t for t, where in info.targets.items() if where)


def run_init(folder, monkeypatch, capsys, *args):
    monkeypatch.chdir(str(folder))
    monkeypatch.setattr(procclean, "__file__", str(folder / "procclean.py"))
    capsys.readouterr()
    code = procclean.main(["init", "--makefile"] + list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("entry", ENTRIES)
def test_init_without_replace_changes_no_target(entry, tmp_path, only_make, monkeypatch,
                                                capsys):
    folder = copy_entry(entry, tmp_path / entry)
    name = makefile_of(str(folder))
    with open(str(folder / name), encoding="utf-8") as f:
        original = f.read()
    targets = original_targets(folder)
    code, out, err = run_init(folder, monkeypatch, capsys)
    if targets is None:
        assert code == 1 and "make rejects %s as it is" % name in err, (out, err)
        assert "make rejects the new" not in err
        with open(str(folder / name), encoding="utf-8") as f:
            assert f.read() == original
        return
    assert code == 0, (out, err)
    shutil.copyfile(str(folder / name), str(tmp_path / "after"))
    shutil.copyfile(os.path.join(CORPUS, entry, name), str(folder / "before.mk"))
    for target in targets:
        assert make_n(folder, target) == make_n(folder, target, "before.mk"), target


def recipe_names(text):
    """What a recipe names, read from make's expansion of it (make -n): pidfiles, ports,
    logs, and the patterns of grep and pkill -f."""
    # (not `$name.pid`: a shell variable's, whose values make -n does not show)
    pidfiles = set(p for p in re.findall(r"(?<![$\w./-])([\w./-]+\.pid)\b(?!\.)", text))
    ports = set(a or b for a, b in re.findall(
        r"(?:-i\s*:?|-i\s*tcp:|-iTCP:|--port[= ]|--listen \S*:|--bind \S*:|runserver \S*:)"
        r"(\d{2,5})\b|\b(\d{2,5})/tcp", text))
    logs = set(a or b for a, b in re.findall(
        r"(?:^|\s)>>?\s*([\w./-]+)\s+2>&1|&>>?\s*([\w./-]+)", text)) - set(["/dev/null"])
    patterns = set()
    for match in re.finditer(r"\b(?:grep(?:\s+-E)?|pkill(?:\s+-\w+)*\s+-f)\s+(\"[^\"]*\"|"
                             r"'[^']*'|[^\s|;`-][^\s|;`]*)", text):
        pattern = match.group(1).strip("'\"")
        if pattern not in ("grep", "-v"):
            patterns.add(pattern)
    return pidfiles, ports, logs, patterns


# What --replace swaps in each Makefile; every other process recipe is kept, with its reason.
REPLACED = {
    "bg-build-pkill-vite": ["stop"],
    "curdir-server": ["start", "stop"],
    "django-runserver": ["start", "stop", "restart"],
    "fastapi-dev-ifeq-kill": ["free"],
    "fastapi-kill-port": ["kill"],
    "fastapi-uvicorn-pid": ["start", "stop"],
    "fg-runs-prefix": ["run-both"],
    "foreman-unicorn": ["stop"],
    "go-C-make-wait": ["dev"],
    "go-nohup-grep": ["start", "restart", "stop"],
    "go-nohup-port-stop": ["run", "stop"],
    "go-run-kill-port": ["kill"],
    "include-pattern-pidfile": ["proxy.pid", "start"],
    "makeflags-j-dev": ["dev"],
    "next-port-run": ["run"],
    "npm-watch-bg-flask": ["run-assets"],
    "python-app-pid": ["start", "kill"],
    "seed-zh": ["start-backend", "start-frontend", "start", "stop-backend", "stop-frontend",
                "stop", "force-clean-backend", "force-clean-frontend", "force-clean",
                "show-processes", "status"],
    "bg-scripts-grep-kill9": ["launch_web", "launch_jobs", "shutdown_web", "shutdown_jobs",
                              "launch", "shutdown"],
    "go-run-two-greps": ["halt"],
    "seed-stops-only": ["stop-backend", "stop-frontend", "stop", "force-clean-backend",
                        "force-clean-frontend", "force-clean"],
    "zh-pnpm-dev": ["dev-frontend"],
    "vite-setsid-group": ["ui-up", "ui-down", "ui-status"],
    "node-api-pidfile": ["serve", "stop", "status"],
    "streamlit-flask-pids": ["start", "stop", "status", "restart"],
    "uvicorn-venv-failcheck": ["start", "stop", "restart", "status"],
    "bash-c-three-stops": ["api-stop", "jobs-stop", "ui-stop"],
    "subshell-nohup-pids": ["api-serve", "ui-serve", "serve", "api-halt", "ui-halt"],
    "dev-script-root-dir": ["dev", "stop"],
    "dev-script-bot-sed": ["dev"],
    "trap-four-apps-pkgs": ["dev"],
    "scripts-state-dir-pids": ["up", "down", "bounce", "api-up", "api-down", "web-up",
                               "web-down"],
    "make-j2-uv-script": ["dev"],
    "flask-script-gunicorn-daemon": ["prod-stop"],
    "go-pidfile-target-loop": ["pidfile", "stop"],
    "subshell-log-loop-pids": ["up-api", "up-ui", "down", "check"],
    "bg-pid-parent-path": ["up", "down"],
    "bg-scripts-one-folder": ["serve", "halt"],
    "go-run-grep-exe": ["stop"],
    "air-configs-trap-wait": ["dev"],
    "pgrep-status-vars": ["start", "stop", "status"],
    "py-runner-popen": ["dev", "halt", "free-ports"],
}


@pytest.mark.parametrize("entry", ENTRIES)
def test_replace_changes_only_what_procclean_carries(entry, tmp_path, only_make, monkeypatch,
                                                     capsys):
    folder = copy_entry(entry, tmp_path / entry)
    name = makefile_of(str(folder))
    targets = original_targets(folder)
    if targets is None:
        pytest.skip("make rejects this Makefile as it is (checked without --replace)")
    shutil.copyfile(str(folder / name), str(folder / "before.mk"))
    before = dict((t, make_n(folder, t, "before.mk")) for t in targets)
    code, out, err = run_init(folder, monkeypatch, capsys, "--replace", "--force")
    assert code == 0, (out, err)
    replaced = [n for names in re.findall(r"\breplaced (.+?) \(line \d+", out)
                for n in names.split()]
    assert replaced == REPLACED.get(entry, []), out
    config = procclean.load_config(folder=str(folder), environ={})
    carried = list(config.services.values())
    for target in targets:
        after = make_n(folder, target)
        if target not in replaced:
            assert make_n(folder, target, old=replaced) == make_n(
                folder, target, "before.mk", replaced), target
            continue
        assert after[0] == 0 and "procclean" in after[1], (target, after)
        pidfiles, ports, logs, patterns = recipe_names(before[target][1])
        # `cd backend && CMD > ../backend.log`: relative to where it runs
        folders = ["."] + re.findall(r"\bcd\s+([\w./-]+)", before[target][1])
        for pidfile in pidfiles:
            assert any(os.path.normpath(s.pidfile) == os.path.normpath(os.path.join(d, pidfile))
                       for s in carried for d in folders), (target, pidfile)
        for port in ports:
            assert any(s.port == int(port) for s in carried), (target, port)
        for log in logs:
            assert any(os.path.normpath(s.logfile) == os.path.normpath(os.path.join(d, log))
                       for s in carried for d in folders), (target, log)
        for pattern in patterns:
            # (without the project's own folder: procclean.ini serves every checkout)
            pattern = pattern.replace(os.path.realpath(str(folder)) + "/", "").replace(
                str(folder) + "/", "")
            assert any(s.pattern and (pattern == s.pattern or pattern in s.pattern)
                       for s in carried), (target, pattern)
    # a second run finds nothing more to replace and leaves the Makefile as it is
    with open(str(folder / name), encoding="utf-8") as f:
        first = f.read()
    code, out, err = run_init(folder, monkeypatch, capsys, "--replace")
    assert code == 0 and not re.search(r"\breplaced \S+ \(line", out), (out, err)
    with open(str(folder / name), encoding="utf-8") as f:
        assert f.read() == first


# What procclean.ini says of the apps some Makefiles run in the foreground (and free the
# port of): the command, folder and port `make start` and `make dev` then use.
SERVICES = {
    # three apps of one kind from one target, each named by its script's folder
    "bg-scripts-grep-kill9": {
        "web": ("python web_portal/web_portal/web_portal.py", ".", None),
        "mail_sender": ("python mail_sender/mail_sender/mail_sender.py", ".", None),
        "feed_indexer": ("python feed_indexer/feed_indexer/feed_indexer.py", ".", None),
        "report_builder": ("python report_builder/report_builder/report_builder.py", ".",
                           None)},
    "fg-runs-prefix": {
        "api": ("uvicorn service.app:api --reload --port {port}", ".", 8031),
        "client": ("npm start", "client", None)},
    "go-C-make-wait": {"api": ("go run ./cmd/apiserver", "services/api", None),
                       "site": ("go run main.go", "services/site", None)},
    "fastapi-dev-ifeq-kill": {"backend": (
        ".pyenv-local/bin/fastapi dev ./webapp/routes.py --host 127.0.0.1 --port {port}",
        ".", 8044)},
    "fastapi-kill-port": {"backend": ("uvicorn service.api:app --reload", ".", 8000)},
    "dotenv-export-dev": {"backend": (
        "uvicorn gateway:application --host 0.0.0.0 --port {port} --reload", ".", 8062)},
    "go-run-kill-port": {"backend": ("go run ./cmd/server", ".", 8090)},
    # `apiserver: air -c .air.toml`, and `populate: go run ...` a task (no service)
    "go-air-populate": {"apiserver": ("air -c .air.toml", ".", None)},
    # the app `dev:` runs (uvicorn) beside gunicorn's `prod-daemon:` (no service's name)
    "gunicorn-conf-pkill": {"backend": (
        "uvicorn ledger:app --reload --host 0.0.0.0 --port {port}", ".", 8070)},
    # three apps one target starts in the background (no `wait`: a `kill -0` loop), named
    # by the container's name and their folders, not all three "quick"
    "docker-run-npm-loop": {
        "devdb": ("docker run --env-file src/.env.sample --name devdb -p 3310:3306 mariadb:11",
                  ".", None),
        "frontend": ("npm run dev", "src/frontend", None),
        "backend": ("npm run start:dev", "src/backend", None)},
    # run through `bash -c '... source .env ...'`, stopped by name and port
    "bash-c-three-stops": {
        "api": ("uvicorn backend.http.app:app --reload --port {port}", ".", 8640),
        "jobs": ("uvicorn backend.jobs.app:app --reload --port {port}", ".", 8641),
        "ui": ("npm run dev", "client", 3040)},
    # `nohup ./notesrv &` is what `stop` frees port 9241 of: one service, not a second on 8000
    "go-nohup-port-stop": {"backend": ("./notesrv", ".", 9241)},
    "makeflags-j-dev": {
        "api": ("uvicorn gateway:app --host 127.0.0.1 --port {port} --reload", ".", 5731),
        "ui": ("npm run dev", "ui", None)},
    # `setsid sh -c 'cd web && exec npm run dev -- --port $(PORT)' &`: the script's folder
    # and port, not vite.config.js's 3000 (the command line's --port wins)
    "vite-setsid-group": {"ui": ("npm run dev -- --port {port} --strictPort", "web", 5188)},
    # a Node script's server is the backend (it was "frontend-2", beside the UI)
    "node-api-pidfile": {"backend": ("PORT={port} node tools/api.mjs", ".", 4811),
                         "ui": ("pnpm dev --open", "ui", 5291)},
    # `python notes/notes_server.py &` is the Flask app the layout finds (one service, its
    # port), and the board beside it is named by its folder, not backend-2
    "streamlit-flask-pids": {
        "board": (".venv/bin/streamlit run board/app.py --server.address 0.0.0.0 "
                  "--server.port {port}", ".", 8517),
        "backend": (".venv/bin/python notes/notes_server.py", ".", 5019)},
    # dev.sh's `cd "$ROOT/api"` (ROOT: the script's folder) and a function it calls: each
    # server in its folder, the UI one service with the layout's
    "dev-script-root-dir": {
        "backend": ("{python} -m uvicorn service:app --reload --port {port}", "api", 8077),
        "frontend": ("npm run dev -- --port {port} --strictPort", "ui", 5173)},
    # a server piped through sed, and a module of the project run with -m (named by it)
    "dev-script-bot-sed": {
        "backend": ("uv run uvicorn svc.main:app --port {port} --reload", ".", 8093),
        "relay": ("uv run python -m svc.chat.relay", ".", None),
        "frontend": ("npm run dev -- --port {port} --strictPort", "site", 5173)},
    # the worker the layout finds in apps/worker and the one dev runs from the root (an
    # installed package) are one service, not worker and worker-2
    "trap-four-apps-pkgs": {
        "api": ("{python} -m uvicorn ledger_api.main:app --reload --port {port}", ".", 8000),
        "worker": ("{python} -m celery -A ledger_worker.main worker --loglevel=info", ".",
                   None),
        "frontend": ("npm run dev -- -p {port}", "apps/web", 3000),
        "hooks": ("npm run dev", "apps/hooks", None)},
    # each script's paths and python from its variables; Vite's port flag after the
    # script's own words (`npm run dev -- --host 127.0.0.1`), which the setting moves
    "scripts-state-dir-pids": {
        "api": ("python3 -m uvicorn app.main:app --reload --host 127.0.0.1 --port {port}",
                "server", 8044),
        "web": ("npm run dev -- --host 127.0.0.1 --port {port} --strictPort", "web", 5190)},
    # `go run $(wildcard *.go) > out 2> err &`: the files make lists, on the code's port
    "go-run-wildcard-two-logs": {"backend": ("go run main.go title.go", ".", 8093)},
    # `echo "$API_PID" > .running; echo "$UI_PID" >> .running`: a file of two PIDs is
    # no service's pidfile (it was the UI's: procclean would remove it as invalid)
    "script-pids-one-file": {"backend": ("node index.js", "api", 3020),
                             "frontend": ("npx vite --host", "ui", 5173)},
    # `rails s -b 0.0.0.0` names no port: rails server's 3000 ($PORT, which -b is not)
    "rails-daemon-kill-pid": {"backend": (
        "bundle exec rails s -b 0.0.0.0 -P tmp/pids/rails-server.pid", ".", 3000)},
    # one app on one port in two modes: Flask-Script's runserver (`-p PORT`, not Django's
    # default 8000) under `develop:` and gunicorn under `prod:`; it was two services
    # ("develop" on 8000 and "backend" on 9000), and make dev started both on 9000
    "flask-script-gunicorn-daemon": {"backend": (
        "python run.py runserver -d -r -h 0.0.0.0 -p {port}", ".", 9000)},
    # `npm run start` is `npm start`: Vite's port flag; `ls | entr fastapi dev` is kept;
    # the recipe's uvicorn, naming no port, gets the flag the layout's run has
    "entr-fastapi-start-script": {
        "frontent": ("npm run start -- --port {port} --strictPort", "web", 5173),
        "backend": ("uvicorn app.main:app --reload --port {port}", "svc", 8000)},
    # `env PORT=8097 $<` in the background: the server on 8097, PORT moving with the
    # setting (env's assignment was read as its program: no port, so no port_offset)
    "go-pidfile-target-loop": {"backend": ("PORT={port} out/feedsrv", ".", 8097)},
    # `$(or $(NOTES_PORT),8742)` expanded (the line was unread: a pidfile-only "api"),
    # and a recipe line continued with backslashes read as make and sh run it
    "or-uv-bg-pids": {
        "backend": ("uv run python -m uvicorn notes_api.main:app --host 127.0.0.1 --port "
                    "{port} --reload", "svc", 8742),
        "frontend": ("npm run dev -- --port {port} --strictPort", "board", 5188)},
    # `uv run src/server.py` runs the script with python: a service (it was none at all),
    # on the port it passes to uvicorn.run (it had none: status could not say who held it)
    "make-j2-uv-script": {"api": ("uv run src/app.py", "server", 8057),
                          "frontend": ("npm run dev -- --port {port} --strictPort", "web",
                                       5173)},
    # the worker run by its dotted name from the root is the layout's (it was a second
    # worker service), and the dev session whose trap shuts the broker down is kept
    "trap-broker-worker-api": {
        "worker": ("celery -A src.jobs.queue_worker.queue worker --loglevel=info", ".",
                   None),
        "api": ("uvicorn src.jobs.http:app --host 127.0.0.1 --port {port}", ".", 8093)},
    # `cd api && CMD & echo $$! > ../.api.pid`: the file `down:` reads, beside the folder
    # (the echo, outside the background list, writes it above the project: up and down
    # were kept, the API given two pidfiles)
    # three `python svc/NAME.py &` of one folder: named by their scripts (the first is the
    # layout's backend), not svc and backend-2 (the folder, then taken)
    # `ps aux | grep feeds | grep exe/main`: what go run builds from main.go, the app's
    # (it was a service "app" beside it)
    "go-run-grep-exe": {"backend": ("go run main.go feeds", ".", 3072)},
    "bg-scripts-one-folder": {
        "backend": ("env/bin/python svc/catalog.py", ".", 6101),
        "orders": ("env/bin/python svc/orders.py", ".", 6102),
        "ledger": ("env/bin/python svc/ledger.py", ".", 6103)},
    "bg-pid-parent-path": {
        "backend": ("uv run uvicorn server:app --host 127.0.0.1 --port {port}", "api", 8031),
        "frontend": ("npm run dev -- --port {port} --strictPort", "web", 5173)},
    # `air -c .air.toml & air -c .air.relay.toml & ... & wait`: a service a config (each
    # builds its cmd/NAME), the layout's cmd/api on its port; it was one, the first alone
    "air-configs-trap-wait": {"backend": ("air -c .air.toml", ".", 8080),
                              "relay": ("air -c .air.relay.toml", ".", None),
                              "vault": ("air -c .air.vault.toml", ".", None)},
    # `npm run watch --prefix DIR &` rebuilds the bundle Flask serves: a watcher with no
    # port, beside the Vite dev server of the same folder (it was that server: port 5173,
    # which the watcher never opens, so make start failed)
    # `cd backend && uv run python -c "...run_server()" &`: a program init cannot tell
    # from a watcher runs the app the layout found in backend/ (it was a second backend)
    "uv-python-c-run-server": {
        "backend": ('uv run python -c "from main import run_server; run_server()"',
                    "backend", 8000),
        "frontend": ("npm run dev -- --port {port} --strictPort", "frontend", 5173),
        "app": ("", ".", None)},
    "npm-watch-bg-flask": {
        "api": ("flask --app portal run --debug --port {port}", ".", 5000),
        "assets": ("npm run watch", "webui", None),
        "frontend": ("npm run dev -- --port {port} --strictPort", "webui", 5173)},
    # a Vite app inside the backend's folder, which the layout does not look in: its
    # config's port and flag, as the layout's (it had no port: the setting moved nothing)
    "nested-ui-vite-port": {
        "backend": ("flask run --host=0.0.0.0 --port={port}", "server", 5100),
        "web": ("npm run dev -- --port {port} --strictPort", "server/web", 3100)},
    # `dev: ./dev.py`, a Python runner Popening the API and the site: read as what it
    # runs (dev was kept, the site's port 5230, which halt frees, a service of its own)
    "py-runner-popen": {
        "api": ("python -m uvicorn ledger.server:app --host 0.0.0.0 --port {port} --reload",
                "api", 5102),
        "web": ("npm run dev", "web", 5230)},
    # `cd frontend && npm run build &` is a build, no service's run (it was the frontend's
    # command on Vite's 5173: make start-frontend ran a build); `pkill -f "vite"` is the
    # layout's Vite, which it finds
    "bg-build-pkill-vite": {
        "backend": ("go run cmd/api/main.go", "backend", 3013),
        "frontend": ("npm run dev -- --port {port} --strictPort", "frontend", 5173)},
}


@pytest.mark.parametrize("entry", sorted(SERVICES))
def test_foreground_runs_are_the_services_init_writes(entry, tmp_path, only_make,
                                                      monkeypatch, capsys):
    folder = copy_entry(entry, tmp_path / entry)
    code, out, err = run_init(folder, monkeypatch, capsys)
    assert code == 0, (out, err)
    config = procclean.load_config(folder=str(folder), environ={})
    assert config.default_names == list(SERVICES[entry]), out
    for name, (command, cwd, port) in SERVICES[entry].items():
        service = config.services[name]
        assert (service.command, service.cwd) == (command, cwd), name
        assert port is None or service.port == port, name


def test_a_help_target_that_greps_the_makefile_is_no_process_work(tmp_path, only_make,
                                                                   monkeypatch, capsys):
    # `grep ... $(MAKEFILE_LIST) | awk` finds no PIDs: it is not "kept" as a recipe that
    # signals processes, and init's own probe (a temp file make reads) is not named.
    folder = copy_entry("vite-setsid-group", tmp_path / "ui")
    code, out, err = run_init(folder, monkeypatch, capsys, "--replace")
    assert code == 0, (out, err)
    assert "kept help" not in out and "cannot trace" not in out, out
