"""`init` on fixture repos (tests/fixtures/init/): what it finds, the procclean.ini it writes,
--force, --makefile, --dry-run (issue 8).

No process is started or signalled here: every test copies a fixture to tmp_path, changes into
it and calls procclean.main(["init", ...]) in this process (or `make -n`, which runs nothing).
"""
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import procclean  # noqa: E402

FIXTURES = os.path.join(REPO, "tests", "fixtures", "init")
BACKEND_PATTERN = procclean.BUILTIN_SERVICES[0]["pattern"]
FRONTEND_PATTERN = procclean.BUILTIN_SERVICES[1]["pattern"]
# what init adds for every repo, and per service found
GENERIC_TARGETS = ["start", "stop", "restart", "status", "show-processes", "clean",
                   "force-clean", "doctor"]


def per_service(name):
    return ["start-" + name, "stop-" + name, "restart-" + name, "force-clean-" + name]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """copy("fastapi-vite") -> a copy of that fixture in tmp_path, made the current folder."""
    for key in list(os.environ):
        if key.startswith("PROCCLEAN_") or key in ("COLUMNS", "LANGUAGE", "LC_ALL",
                                                   "LC_MESSAGES"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("NO_COLOR", "1")

    def copy(name, vendored="procclean.py"):
        """vendored: where procclean.py is copied in the repo (as a team vendors it), or
        None to leave it outside (init then names it by its absolute path)."""
        dest = tmp_path / name
        shutil.copytree(os.path.join(FIXTURES, name), str(dest))
        monkeypatch.chdir(str(dest))
        if vendored:
            target = dest / vendored
            if not target.parent.is_dir():
                target.parent.mkdir(parents=True)
            shutil.copyfile(os.path.join(REPO, "procclean.py"), str(target))
            monkeypatch.setattr(procclean, "__file__", str(target))
        return dest
    return copy


@pytest.fixture
def init(capsys):
    """init("--force") -> (exit code, stdout, stderr) of `procclean.py init --force`."""
    def call(*args):
        capsys.readouterr()
        code = procclean.main(["init"] + list(args))
        out, err = capsys.readouterr()
        return code, out, err
    return call


def snapshot(folder):
    """{relative path: bytes} of every file under folder (bytecode caches left out)."""
    files = {}
    for root, dirs, names in os.walk(str(folder)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, str(folder))] = f.read()
    return files


def read(path):
    with open(str(path)) as f:
        return f.read()


def config():
    """The services init wrote, read back the way every other command reads them."""
    return procclean.load_config(environ={})


def fields(service):
    return {"pattern": service.pattern, "pidfile": service.pidfile,
            "logfile": service.logfile, "port": service.port, "command": service.command,
            "cwd": service.cwd, "health": service.health}


def targets_in(makefile_text):
    """Rule names in a Makefile, in order, one entry per rule line (duplicates kept);
    special targets (.PHONY, ...) left out."""
    names = []
    for line in makefile_text.splitlines():
        if not line or line[0] in "\t #" or "=" in line.split(":", 1)[0]:
            continue
        head, colon, rest = line.partition(":")
        if colon and not rest.startswith("="):
            names.extend(n for n in head.split() if not n.startswith("."))
    return names


def make_n(folder, *goals):
    if not shutil.which("make"):
        pytest.skip("no make here")
    # Under `make test` the outer make's MAKEFLAGS/MAKELEVEL would leak in ("make[1]:
    # Entering directory ..."): this make must be the one a user types.
    env = dict((k, v) for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEFILES", "MAKEOVERRIDES"))
    return subprocess.run(["make", "-n"] + list(goals), cwd=str(folder), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=30)


# --- what init finds ---------------------------------------------------------------------------

def test_fastapi_vite_backend_and_vite_frontend(project, init):
    repo = project("fastapi-vite")
    makefile_before = read(repo / "Makefile")
    code, out, err = init()
    assert code == 0, (out, err)
    assert "found backend: backend/main.py (FastAPI app, run as python main.py)" in out, out
    assert "found frontend: frontend/package.json (dev script: vite, port 3000)" in out, out
    assert "wrote procclean.ini" in out
    cfg = config()
    assert cfg.default_names == ["backend", "frontend"]
    assert fields(cfg.services["backend"]) == {
        "pattern": BACKEND_PATTERN, "pidfile": "backend.pid", "logfile": "backend.log",
        "port": 8000, "command": "{python} main.py", "cwd": "backend", "health": "auto"}
    assert fields(cfg.services["frontend"]) == {
        "pattern": FRONTEND_PATTERN, "pidfile": "frontend.pid", "logfile": "frontend.log",
        "port": 3000, "command": "npm run dev", "cwd": "frontend", "health": "/"}
    # the start folders are real folders of this repo
    assert (repo / procclean.resolve_cwd(cfg.services["backend"].cwd) / "main.py").is_file()
    assert (repo / procclean.resolve_cwd(cfg.services["frontend"].cwd) / "package.json").is_file()
    # without --makefile the Makefile is left alone and the targets are printed to paste
    assert read(repo / "Makefile") == makefile_before
    assert "Makefile targets to paste" in out
    assert "PROCCLEAN ?= $(PYTHON) -m procclean" in out
    for target in GENERIC_TARGETS + per_service("backend") + per_service("frontend"):
        assert "\n%s:\n\t@$(PROCCLEAN) $@\n" % target in out, target


def test_vite_port_from_the_config_file_any_of_its_names(project, init):
    repo = project("fastapi-vite")
    os.rename(str(repo / "frontend" / "vite.config.js"), str(repo / "frontend" / "vite.config.ts"))
    assert init()[0] == 0
    assert config().services["frontend"].port == 3000


def test_vite_without_a_port_is_5173(project, init):
    repo = project("fastapi-vite")
    os.remove(str(repo / "frontend" / "vite.config.js"))
    code, out, _ = init()
    assert code == 0
    assert "dev script: vite, port 5173" in out, out
    assert config().services["frontend"].port == 5173


def test_vite_dev_port_is_server_port_not_preview_port(project, init):
    """`vite preview` has its own port; the dev script runs the dev server (server.port)."""
    repo = project("fastapi-vite")
    (repo / "frontend" / "vite.config.js").write_text(
        "import { defineConfig } from 'vite'\n\n"
        "export default defineConfig({\n"
        "  preview: { port: 4173 },\n"
        "  server: { port: 3000, strictPort: true },\n"
        "})\n")
    assert init()[0] == 0
    assert config().services["frontend"].port == 3000


def test_port_option_in_the_dev_script_wins_over_vite_config(project, init):
    repo = project("fastapi-vite")
    package = repo / "frontend" / "package.json"
    package.write_text(read(package).replace('"dev": "vite"', '"dev": "vite --port 4100"'))
    assert init()[0] == 0
    assert config().services["frontend"].port == 4100


def test_plain_python_main_and_npm_at_the_root(project, init):
    repo = project("plain-npm")
    code, out, err = init()
    assert code == 0, (out, err)
    assert "found backend: ./main.py (Python app, run as python main.py)" in out, out
    assert "found frontend: ./package.json (dev script: node server.js --port 4000, port 4000)" \
        in out, out
    cfg = config()
    assert cfg.default_names == ["backend", "frontend"]
    assert fields(cfg.services["backend"]) == {
        "pattern": BACKEND_PATTERN, "pidfile": "backend.pid", "logfile": "backend.log",
        "port": 8000, "command": "{python} main.py", "cwd": ".", "health": "auto"}
    assert fields(cfg.services["frontend"]) == {
        "pattern": FRONTEND_PATTERN, "pidfile": "frontend.pid", "logfile": "frontend.log",
        "port": 4000, "command": "npm run dev", "cwd": ".", "health": "/"}
    assert not (repo / "Makefile").exists()


def test_asgi_app_without_main_is_served_by_uvicorn(project, init):
    project("asgi-app")
    code, out, err = init()
    assert code == 0, (out, err)
    assert "found backend: api/app.py (FastAPI app, run as uvicorn app:application)" in out, out
    assert "found frontend" not in out
    cfg = config()
    assert cfg.default_names == ["backend"]
    backend = cfg.services["backend"]
    assert fields(backend) == {
        "pattern": "uvicorn.*app:application", "pidfile": "backend.pid",
        "logfile": "backend.log", "port": 8000,
        "command": "{python} -m uvicorn app:application --host 127.0.0.1 --port 8000",
        "cwd": "api", "health": "auto"}
    # the pattern finds what the command starts (as ps shows it), and not the built-in's prey
    started = " ".join(procclean.command_argv(backend.command))
    assert backend.regex.search("root 10 1 0 09:00 ? 00:00:01 " + started)
    assert not backend.regex.search("root 11 1 0 09:00 ? 00:00:01 python3 main.py")
    # the Makefile block names only the backend
    assert "stop-backend:" in out and "stop-frontend:" not in out


def test_neither_writes_nothing_and_says_so(project, init):
    repo = project("neither")
    before = snapshot(repo)
    for args in ((), ("--makefile",), ("--force", "--makefile")):
        code, out, err = init(*args)
        assert code == 0, (args, out, err)
        assert "found neither a Python backend nor a frontend here; nothing written" in out
        assert "wrote" not in out and "Traceback" not in err
        assert snapshot(repo) == before, args


# --- the procclean.ini written -----------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["fastapi-vite", "plain-npm", "asgi-app"])
def test_written_config_is_commented_and_complete(project, init, fixture):
    repo = project(fixture)
    assert init()[0] == 0
    text = read(repo / "procclean.ini")
    lines = text.splitlines()
    comments = [l for l in lines if l.startswith("#")]
    assert len(comments) >= 5, text
    assert "written by `python3 procclean.py init`" in text
    assert "PROCCLEAN_<SERVICE>_<FIELD>" in text and "--set SERVICE.FIELD=VALUE" in text
    cfg = config()
    for name in cfg.default_names:
        assert "[%s]" % name in lines
        # where the service was found is said right above its section
        assert lines[lines.index("[%s]" % name) - 1].startswith("# found: ")
        # every field is written out, none left to the built-ins
        section = lines[lines.index("[%s]" % name) + 1:]
        section = section[:section.index("") if "" in section else len(section)]
        keys = [l.split("=", 1)[0].strip() for l in section if not l.startswith("#")]
        assert keys == list(procclean.SERVICE_FIELDS), (name, section)
    assert cfg.grace == 2.0
    # the file reads the same through the CLI's own parser (configparser, no interpolation)
    import configparser
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    assert parser.get("procclean", "services").split() == cfg.default_names


# --- never overwrite without --force -------------------------------------------------------------

def test_existing_config_is_kept_without_force(project, init):
    repo = project("fastapi-vite")
    mine = "# mine\n[backend]\nport = 8123\n"
    (repo / "procclean.ini").write_text(mine)
    code, out, err = init()
    # an existing procclean.ini is a note, not an error (issue 14)
    assert code == 0, (out, err)
    assert "procclean.ini exists: kept as it is (--force writes a fresh one)" in out, out
    assert err == ""
    assert read(repo / "procclean.ini") == mine
    assert "wrote procclean.ini" not in out


def test_force_overwrites_the_config(project, init):
    repo = project("fastapi-vite")
    (repo / "procclean.ini").write_text("# mine\n[backend]\nport = 8123\n")
    code, out, err = init("--force")
    assert code == 0, (out, err)
    assert "wrote procclean.ini" in out
    assert "# mine" not in read(repo / "procclean.ini")
    assert config().services["backend"].port == 8000
    assert config().services["frontend"].port == 3000


def test_force_overwrites_a_config_that_no_longer_loads(project, init):
    """The point of `init --force` on a broken procclean.ini is to replace it: the old file's
    errors must not stop init from writing a fresh one."""
    repo = project("fastapi-vite")
    (repo / "procclean.ini").write_text("[backend]\nport = 8000\nbogus = 1\n")
    code, out, err = init("--force")
    assert code == 0, (out, err)
    assert "bogus" not in read(repo / "procclean.ini")
    assert config().services["frontend"].port == 3000


# --- --makefile --------------------------------------------------------------------------------

def test_makefile_appends_keeps_existing_targets_and_make_parses_it(project, init):
    repo = project("fastapi-vite")
    before = read(repo / "Makefile")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    after = read(repo / "Makefile")
    assert after.startswith(before), "the existing Makefile text must stay as it was"
    assert "Makefile already has: stop; not duplicated" in out, out
    wanted = GENERIC_TARGETS + per_service("backend") + per_service("frontend")
    added = [t for t in wanted if t != "stop"]
    assert "added to Makefile: %s" % " ".join(added) in out, out
    names = targets_in(after)
    for target in wanted + ["all", "test"]:
        assert names.count(target) == 1, (target, after)
    # the team's own `stop` and `all` are untouched
    assert "stop:\n\t@echo custom stop\n" in after
    assert after.count("stop:\n") == 1
    r = make_n(repo, "stop-backend")
    assert r.returncode == 0, r
    assert r.stdout.strip() == "python3 -m procclean stop-backend", r
    assert "warning" not in r.stderr.lower(), r.stderr
    r = make_n(repo, "stop", "force-clean-frontend", "doctor")
    assert r.returncode == 0, r
    assert r.stdout.splitlines() == ["echo custom stop",
                                     "python3 -m procclean force-clean-frontend",
                                     "python3 -m procclean doctor"], r
    r = make_n(repo)                     # the default goal is still the team's `all`
    assert r.stdout.strip() == "echo running the tests", r
    r = make_n(repo, "stop-backend", "PYTHON=/opt/py/bin/python3")
    assert r.stdout.strip() == "/opt/py/bin/python3 -m procclean stop-backend", r


def test_makefile_is_idempotent(project, init):
    repo = project("fastapi-vite")
    assert init("--makefile")[0] == 0
    first = read(repo / "Makefile")
    code, out, err = init("--makefile", "--force")
    assert code == 0, (out, err)
    assert read(repo / "Makefile") == first
    assert "added to Makefile" not in out
    assert "Makefile already has:" in out
    assert len(targets_in(first)) == len(set(targets_in(first)))


def test_makefile_created_when_missing(project, init):
    repo = project("plain-npm")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    text = read(repo / "Makefile")
    assert "PYTHON ?= python3" in text and "PROCCLEAN ?= $(PYTHON) -m procclean" in text
    names = targets_in(text)
    assert sorted(names) == sorted(set(names))
    assert set(GENERIC_TARGETS + per_service("backend") + per_service("frontend")) \
        <= set(names)
    r = make_n(repo, "stop-backend", "restart-frontend")
    assert r.returncode == 0, r
    assert r.stdout.splitlines() == ["python3 -m procclean stop-backend",
                                     "python3 -m procclean restart-frontend"], r


def test_makefile_keeps_own_variables_and_multi_target_rules(project, init):
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text(
        "PYTHON := python3.12\nPROCCLEAN = $(PYTHON) tools/procclean.py\n\n"
        "stop-backend stop-frontend:\n\t@$(PROCCLEAN) $@\n\n"
        "status::\n\t@echo first status\n")
    assert init("--makefile")[0] == 0
    text = read(repo / "Makefile")
    names = targets_in(text)
    for target in ("stop-backend", "stop-frontend", "status"):
        assert names.count(target) == 1, (target, text)
    r = make_n(repo, "start-backend")
    assert r.stdout.strip() == "python3.12 tools/procclean.py start-backend", r


def test_makefile_targets_defined_through_a_variable_are_not_duplicated(project, init):
    """The Makefile style of this very repo (and the seed's .PHONY list style):
    `$(SEED_TARGETS):` defines stop, stop-backend, ...; appending them again makes make warn
    'overriding recipe' and silently replaces the team's rule."""
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text(
        "PROCCLEAN = python3 procclean.py\n"
        "SEED_TARGETS = stop-backend stop-frontend stop \\\n\tstart-backend start\n\n"
        ".PHONY: $(SEED_TARGETS)\n\n$(SEED_TARGETS):\n\t@$(PROCCLEAN) $@ --grace 5\n")
    assert init("--makefile")[0] == 0
    r = make_n(repo, "stop-backend")
    assert r.returncode == 0, r
    assert "overriding recipe" not in r.stderr, read(repo / "Makefile")
    assert r.stdout.strip() == "python3 procclean.py stop-backend --grace 5", r


# --- --dry-run ---------------------------------------------------------------------------------

def test_dry_run_writes_nothing_and_shows_both(project, init):
    repo = project("fastapi-vite")
    before = snapshot(repo)
    code, out, err = init("--dry-run", "--makefile")
    assert code == 0, (out, err)
    assert snapshot(repo) == before
    assert "would write procclean.ini:" in out
    assert "[backend]" in out and "[frontend]" in out and "cwd = frontend" in out
    assert "would add to Makefile:" in out
    assert "stop-backend:\n\t@$(PROCCLEAN) $@" in out
    assert "\nstop:\n" not in out          # the team's stop would be kept
    assert "wrote" not in out and "added to Makefile" not in out
    # what the dry run shows is what a real run writes
    shown = out.split("would write procclean.ini:\n", 1)[1].split("\nasked make what Makefile defines", 1)[0]
    assert init()[0] == 0
    assert read(repo / "procclean.ini").strip() == shown.strip()


def test_dry_run_without_makefile_option_prints_the_targets(project, init):
    repo = project("asgi-app")
    before = snapshot(repo)
    code, out, err = init("--dry-run")
    assert code == 0, (out, err)
    assert snapshot(repo) == before
    assert "would write procclean.ini:" in out and "pattern = uvicorn.*app:application" in out
    assert "Makefile targets to paste" in out and "stop-backend:" in out


def test_dry_run_with_an_existing_config_changes_nothing(project, init):
    repo = project("plain-npm")
    (repo / "procclean.ini").write_text("[backend]\nport = 8001\n")
    before = snapshot(repo)
    code, out, err = init("--dry-run", "--makefile", "--force")
    assert snapshot(repo) == before
    assert "would write procclean.ini:" in out and "would add to Makefile:" in out
    assert code == 0, (out, err)


def test_init_as_a_script_takes_no_service_names(project):
    repo = project("plain-npm")
    before = snapshot(repo)
    r = subprocess.run([sys.executable, os.path.join(REPO, "procclean.py"), "init", "backend"],
                       cwd=str(repo), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    assert r.returncode == 2, r
    assert "init takes no service names" in r.stderr
    assert "Traceback" not in r.stderr
    assert snapshot(repo) == before
