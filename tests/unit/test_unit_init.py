"""`init` on fixture repos (tests/fixtures/init/, copied by tests/fixture_repos.py): what it
finds, the procclean.ini it writes, --force, --makefile, --dry-run (issue 8).

No process is started or signalled here: every test copies a fixture to tmp_path, changes into
it and calls procclean.main(["init", ...]) in this process (or `make -n`, which runs nothing).
"""
import errno
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import procclean  # noqa: E402
from fixture_repos import copy_repo  # noqa: E402  (tests/ is on sys.path: tests/conftest.py)
from fakes import FakeSystem, invoke  # noqa: E402

BACKEND_PATTERN = procclean.BUILTIN_SERVICES[0]["pattern"]
FRONTEND_PATTERN = procclean.BUILTIN_SERVICES[1]["pattern"]
# what init adds for every repo, and per service found
GENERIC_TARGETS = ["dev", "start", "stop", "restart", "status", "show-processes", "logs", "clean",
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
        dest = copy_repo(name, tmp_path / name)
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


VITE_DEV = "npm run dev -- --port {port} --strictPort"     # vite gets the port: it ignores PORT


def assert_two_services(cfg, backend_cwd, frontend_cwd, frontend_port,
                        frontend_pattern=FRONTEND_PATTERN, frontend_command=VITE_DEV):
    """init wrote the built-in backend and frontend, run in these folders."""
    assert cfg.default_names == ["backend", "frontend"]
    assert fields(cfg.services["backend"]) == {
        "pattern": BACKEND_PATTERN, "pidfile": "backend.pid", "logfile": "backend.log",
        "port": 8000, "command": "{python} main.py", "cwd": backend_cwd, "health": "auto"}
    assert fields(cfg.services["frontend"]) == {
        "pattern": frontend_pattern, "pidfile": "frontend.pid", "logfile": "frontend.log",
        "port": frontend_port, "command": frontend_command, "cwd": frontend_cwd,
        "health": "/"}


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
    r = subprocess.run(["make", "-n"] + list(goals), cwd=str(folder), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=30)
    # `@$(PROCCLEAN) $@ $(ARGS)` with no ARGS ends in a space make prints
    r.stdout = "\n".join(line.rstrip() for line in r.stdout.split("\n"))
    return r


# --- what init finds ---------------------------------------------------------------------------

@pytest.mark.parametrize("command, said", [
    # H21465/claude-log-viewer: the layout's main.py, run by the Makefile another way;
    # init said `backend/main.py (FastAPI app, run as python main.py); Makefile:2 (start)`
    ("uv run uvicorn main:app --host 0.0.0.0 --port 8000", "(FastAPI app); Makefile:2"),
    ("python main.py", "(FastAPI app, run as python main.py); Makefile:2"),
])
def test_the_layouts_run_as_is_said_only_where_it_is_what_runs(project, init, command,
                                                                said):
    need_make()
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text("start:\n\tcd backend && %s & echo $$! > ../.backend.pid"
                                   "\nstop:\n\tkill $$(cat .backend.pid)\n" % command)
    code, out, err = init()
    assert code == 0, (out, err)
    assert "found backend: backend/main.py %s (start)" % said in out, out


def test_fastapi_vite_backend_and_vite_frontend(project, init):
    repo = project("fastapi-vite")
    makefile_before = read(repo / "Makefile")
    code, out, err = init()
    assert code == 0, (out, err)
    assert "found backend: backend/main.py (FastAPI app, run as python main.py)" in out, out
    assert "found frontend: frontend/package.json (dev script: vite, port 3000)" in out, out
    assert "wrote procclean.ini" in out
    cfg = config()
    assert_two_services(cfg, "backend", "frontend", 3000)
    # the start folders are real folders of this repo
    assert (repo / procclean.resolve_cwd(cfg.services["backend"].cwd) / "main.py").is_file()
    assert (repo / procclean.resolve_cwd(cfg.services["frontend"].cwd) / "package.json").is_file()
    # without --makefile the Makefile is left alone and the targets are printed to paste
    assert read(repo / "Makefile") == makefile_before
    assert "Makefile targets to paste (or run python3 procclean.py init --makefile):" in out
    assert "PROCCLEAN ?= $(PYTHON) -S -m procclean" in out
    for target in GENERIC_TARGETS + per_service("backend") + per_service("frontend"):
        assert "\n%s:\n\t@$(PROCCLEAN) $@ $(ARGS)\n" % target in out, target


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
    # not vite: the dev script's own program, as ps shows it under npm
    assert_two_services(cfg, ".", ".", 4000, r"(npm run dev|node server\.js)", "npm run dev")
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
        "pattern": "uvicorn app:application", "pidfile": "backend.pid",
        "logfile": "backend.log", "port": 8000,
        "command": "{python} -m uvicorn app:application --host 127.0.0.1 --port {port}",
        "cwd": "api", "health": "auto"}
    # the pattern finds what the command starts (as ps shows it), and not the built-in's prey
    started = " ".join(procclean.command_argv(backend.command.replace("{port}", "8000")))
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


@pytest.mark.parametrize("package_json", ['{"scripts": {"dev": 5}}', '{"scripts": ["dev"]}',
                                          '["not", "an", "object"]'])
def test_a_package_json_without_a_dev_command_line_is_no_frontend(project, init, package_json):
    repo = project("neither")
    (repo / "package.json").write_text(package_json)
    code, out, err = init()
    assert code == 0 and err == "", err
    assert "found neither a Python backend nor a frontend here; nothing written" in out


def test_init_speaks_chinese_throughout(project, init):
    project("fastapi-vite")
    code, out, err = init("--lang", "zh")
    assert code == 0, err
    assert "发现后端: " in out and "发现前端: " in out and "已写入 procclean.ini" in out
    assert "found" not in out and "wrote" not in out and "Makefile targets" not in out
    code, out, err = init("--lang", "zh")
    assert code == 0 and "procclean.ini 已存在" in out, (out, err)


# --- the procclean.ini written -----------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["fastapi-vite", "plain-npm", "asgi-app"])
def test_written_config_is_short_and_says_where_each_value_came_from(project, init, fixture):
    """Issue 20 item 5: only values that differ from the defaults, each under a comment
    naming where it came from; no empty `key =` lines; read back, the services are the
    ones init found."""
    repo = project(fixture)
    code, out, _ = init()
    assert code == 0
    text = read(repo / "procclean.ini")
    lines = text.splitlines()
    assert "written by `python3 procclean.py init`" in text
    assert "PROCCLEAN_<SERVICE>_<FIELD>" in text and "--set SERVICE.FIELD=VALUE" in text
    cfg = config()
    for name in cfg.default_names:
        assert "[%s]" % name in lines
        # where the service was found is said right above its section
        assert lines[lines.index("[%s]" % name) - 1].startswith("# found: ")
        section = lines[lines.index("[%s]" % name) + 1:]
        section = section[:section.index("") if "" in section else len(section)]
        defaults = procclean.default_fields(name)
        for i, line in enumerate(section):
            if line.startswith("#"):
                continue
            key, _, value = (part.strip() for part in line.partition("="))
            assert value, line                           # no empty `key =` lines
            assert value != defaults.get(key), line      # only what differs
            assert any(l.startswith("# ") for l in section[:i]), (name, section)
            assert key in procclean.ALL_FIELDS
    # nothing but the section and services in [procclean]: grace is the default
    assert lines[lines.index("[procclean]") + 1:lines.index("[procclean]") + 3] == [
        "services = " + " ".join(cfg.default_names), ""]
    assert not any(re.match(r"^\w+ =\s*$", l) for l in lines), text
    # the file reads the same through the CLI's own parser (configparser, no interpolation)
    import configparser
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    assert parser.get("procclean", "services").split() == cfg.default_names


def test_written_config_for_the_seed_layout_is_a_few_lines(project, init):
    repo = project("fastapi-vite")
    assert init()[0] == 0
    body = [l for l in read(repo / "procclean.ini").splitlines()
            if l and not l.startswith("# procclean") and not l.startswith("# from procclean")
            and not l.startswith("# PROCCLEAN_") and not l.startswith("# Paths")]
    assert body == [
        "[procclean]", "services = backend frontend",
        "# found: backend/main.py (FastAPI app, run as python main.py)", "[backend]",
        "# backend/main.py", "cwd = backend",
        "# found: frontend/package.json (dev script: vite, port 3000)", "[frontend]",
        "# frontend/package.json (scripts.dev: vite)", "command = " + VITE_DEV,
        "# frontend/package.json", "cwd = frontend"], body


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

def test_the_warning_that_make_stop_stays_the_teams_is_kept_by_quiet(project, init):
    project("fastapi-vite")
    code, out, err = init("--makefile", "--quiet")
    assert code == 0 and "make stop runs the Makefile's own recipe" in err, (out, err)


def test_makefile_appends_keeps_existing_targets_and_make_parses_it(project, init):
    repo = project("fastapi-vite")
    before = read(repo / "Makefile")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    after = read(repo / "Makefile")
    assert after.startswith(before), "the existing Makefile text must stay as it was"
    assert "Makefile already has: stop; not duplicated" in out, out
    # `make start` then the team's `make stop` (`echo custom stop`) leaves it all running:
    # a warning, on stderr, and kept by --quiet (as init's others)
    assert "make stop runs the Makefile's own recipe, which may not stop what the added " \
        "make start starts: python3 procclean.py stop does" in err, err
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
    assert r.stdout.strip() == "python3 -S -m procclean stop-backend", r
    assert "warning" not in r.stderr.lower(), r.stderr
    r = make_n(repo, "stop", "force-clean-frontend", "doctor")
    assert r.returncode == 0, r
    assert [l.rstrip() for l in r.stdout.splitlines()] == ["echo custom stop",
                                     "python3 -S -m procclean force-clean-frontend",
                                     "python3 -S -m procclean doctor"], r
    r = make_n(repo)                     # the default goal is still the team's `all`
    assert r.stdout.strip() == "echo running the tests", r
    r = make_n(repo, "stop-backend", "PYTHON=/opt/py/bin/python3")
    assert r.stdout.strip() == "/opt/py/bin/python3 -S -m procclean stop-backend", r


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
    assert "PYTHON ?= python3" in text and "PROCCLEAN ?= $(PYTHON) -S -m procclean" in text
    names = targets_in(text)
    assert sorted(names) == sorted(set(names))
    assert set(GENERIC_TARGETS + per_service("backend") + per_service("frontend")) \
        <= set(names)
    r = make_n(repo, "stop-backend", "restart-frontend")
    assert r.returncode == 0, r
    assert [l.rstrip() for l in r.stdout.splitlines()] == ["python3 -S -m procclean stop-backend",
                                     "python3 -S -m procclean restart-frontend"], r


# A team's Makefile that already has some of the targets, and what `make -n TARGET` runs once
# init --makefile has added the rest; "once": targets its rule lines name, each to stay there
# alone (init adding a rule again makes make warn "overriding recipe" and silently replaces
# the team's).
TEAM_MAKEFILES = {
    # its own variables, one rule for two targets, a double-colon rule
    "own-variables-and-multi-target-rules": {
        "makefile": "PYTHON := python3.12\nPROCCLEAN = $(PYTHON) tools/procclean.py\n\n"
                    "stop-backend stop-frontend:\n\t@$(PROCCLEAN) $@\n\n"
                    "status::\n\t@echo first status\n",
        "once": ["stop-backend", "stop-frontend", "status"],
        "target": "start-backend", "runs": "python3.12 tools/procclean.py start-backend"},
    # the Makefile style of this very repo (and the seed's .PHONY list style): `$(SEED_TARGETS):`
    # defines stop, stop-backend, ...
    "targets-defined-through-a-variable": {
        "makefile": "PROCCLEAN = python3 procclean.py\n"
                    "SEED_TARGETS = stop-backend stop-frontend stop \\\n\tstart-backend start\n\n"
                    ".PHONY: $(SEED_TARGETS)\n\n$(SEED_TARGETS):\n\t@$(PROCCLEAN) $@ --grace 5\n",
        "once": [],
        "target": "stop-backend", "runs": "python3 procclean.py stop-backend --grace 5"},
}


@pytest.mark.parametrize("case", list(TEAM_MAKEFILES.values()), ids=list(TEAM_MAKEFILES))
def test_makefile_leaves_the_teams_own_rules(project, init, case):
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text(case["makefile"])
    assert init("--makefile")[0] == 0
    text = read(repo / "Makefile")
    names = targets_in(text)
    for target in case["once"]:
        assert names.count(target) == 1, (target, text)
    r = make_n(repo, case["target"])
    assert r.returncode == 0, r
    assert "overriding recipe" not in r.stderr, text
    assert r.stdout.strip() == case["runs"], r


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
    shown = out.split("would write procclean.ini:\n", 1)[1]
    shown = re.split(r"\n(?:asked make what|dry run: read) Makefile", shown, 1)[0]
    assert init()[0] == 0
    assert read(repo / "procclean.ini").strip() == shown.strip()


def test_dry_run_without_makefile_option_prints_the_targets(project, init):
    repo = project("asgi-app")
    before = snapshot(repo)
    code, out, err = init("--dry-run")
    assert code == 0, (out, err)
    assert snapshot(repo) == before
    assert "would write procclean.ini:" in out and "pattern = uvicorn app:application" in out
    assert "Makefile targets to paste" in out and "stop-backend:" in out


def test_dry_run_with_an_existing_config_changes_nothing(project, init):
    repo = project("plain-npm")
    (repo / "procclean.ini").write_text("[backend]\nport = 8001\n")
    before = snapshot(repo)
    code, out, err = init("--dry-run", "--makefile", "--force")
    assert snapshot(repo) == before
    assert "would write procclean.ini:" in out and "would add to Makefile:" in out
    assert code == 0, (out, err)


def test_dry_run_runs_no_makefile_code(project, init):
    """make runs a Makefile's $(shell ...) calls and remakes its included files even under
    `-pRrq`: a dry run reads the text instead, and still shows what it would add."""
    need_make()
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text(
        "STAMP := $(shell touch shell-ran)\ninclude deps.mk\n"
        "deps.mk:\n\techo 'stop-frontend: ; @echo team' > deps.mk; touch remade\n"
        "all:\n\t@echo all\n")
    before = snapshot(repo)
    code, out, err = init("--dry-run", "--makefile")
    assert code == 0, (out, err)
    assert snapshot(repo) == before
    assert "dry run: read Makefile and its includes as text" in out, out
    assert "would add to Makefile:" in out and "stop-backend:" in out, out


def test_init_runs_no_code_of_the_project_to_find_procclean(project, init):
    """Whether `-m tools.procclean` runs this file is asked without importing `tools`: its
    __init__.py (the project's code) is not run, and leaves no bytecode cache."""
    repo = project("fastapi-vite", vendored="tools/procclean.py")
    (repo / "tools" / "__init__.py").write_text("open('init-ran', 'w').close()\n")
    code, out, err = init("--dry-run")
    assert code == 0, (out, err)
    assert "make runs procclean as $(PYTHON) -S -m tools.procclean" in out, out
    assert sorted(os.listdir(str(repo / "tools"))) == ["__init__.py", "procclean.py"]
    assert not (repo / "init-ran").exists()


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


# --- init --makefile asks make: includes, pattern rules, .RECIPEPREFIX (issue 12) ---------------

def need_make():
    if not shutil.which("make"):
        pytest.skip("no make here")


def test_targets_from_included_files_are_not_added_again(project, init):
    need_make()
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text("all:\n\t@echo all\n\ninclude mk/procs.mk\n")
    (repo / "mk").mkdir()
    (repo / "mk" / "procs.mk").write_text(
        "stop-backend:\n\t@echo team stop-backend\n\nclean:\n\t@echo team clean\n")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    assert "asked make what Makefile defines (files read: Makefile mk/procs.mk)" in out, out
    assert "Makefile already has: clean stop-backend; not duplicated" in out, out
    text = read(repo / "Makefile")
    assert "stop-backend:" not in text and "\nclean:" not in text, text
    r = make_n(repo, "stop-backend", "clean", "stop-frontend")
    assert r.returncode == 0 and "overriding" not in r.stderr, r
    assert [l.rstrip() for l in r.stdout.splitlines()] == ["echo team stop-backend", "echo team clean",
                                     "python3 -S -m procclean stop-frontend"], r


def test_a_port_taken_from_makes_goals_is_not_inits_own_goal(project, init):
    """A public Makefile (code index file 61837107463) takes `make dev 8001`'s port from
    its goals: `PORT_ARGS := $(filter-out dev,$(MAKECMDGOALS))`, `PORT := $(if
    $(PORT_ARGS),$(PORT_ARGS),8000)`.  init asked make for its database with a goal of
    its own, which became the port: procclean.ini's command was `uvicorn main:app
    --reload --port procclean--probe`.  make is asked with the goals `make` alone has."""
    need_make()
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text(
        "PORT_ARGS := $(filter-out dev,$(MAKECMDGOALS))\n"
        "PORT := $(if $(PORT_ARGS),$(PORT_ARGS),8000)\n"
        "dev:\n\t(fuser -k $(PORT)/tcp 2>/dev/null || true) && "
        "uvicorn main:app --reload --port $(PORT)\n$(PORT_ARGS):\n\t@:\n")
    # (make then rejects the new Makefile: `$(PORT_ARGS):` is a rule of the goals, so of
    # the targets init adds; procclean.ini is written all the same)
    init("--makefile", "--force")
    config = read(repo / "procclean.ini")
    assert "--port {port}" in config and "probe" not in config, config


def test_targets_matched_by_a_pattern_rule_are_not_added(project, init):
    need_make()
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text(
        "stop-%:\n\t@echo team stops $*\n\nforce-clean-%:\n\t@echo team kills $*\n")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    assert ("Makefile's pattern rule(s) force-clean-% stop-% already make: stop-backend "
            "force-clean-backend stop-frontend force-clean-frontend; not added") in out, out
    names = targets_in(read(repo / "Makefile"))
    for target in ("stop-backend", "stop-frontend", "force-clean-backend"):
        assert target not in names
    assert "stop" in names and "start-backend" in names      # `stop-%` does not match `stop`
    r = make_n(repo, "stop-backend", "force-clean-frontend", "start-backend")
    assert r.returncode == 0, r
    assert [l.rstrip() for l in r.stdout.splitlines()] == ["echo team stops backend", "echo team kills frontend",
                                     "python3 -S -m procclean start-backend"], r


def test_a_pattern_rules_recipe_line_is_no_pattern(project, init):
    """make -p prints a pattern rule's recipe under it: `@echo start: $*` there names no
    pattern `start`, which would have hidden start-backend."""
    need_make()
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text("stop-%:\n\t@echo start: $*\n")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    assert "pattern rule(s) stop-% already make: stop-backend stop-frontend;" in out, out
    r = make_n(repo, "start-backend")
    assert r.returncode == 0 and r.stdout.strip() == "python3 -S -m procclean start-backend", r


def test_recipes_written_with_the_makefiles_recipe_prefix(project, init):
    need_make()
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text(".RECIPEPREFIX = >\nall:\n> @echo all\n\ntest:\n> @echo t\n")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    text = read(repo / "Makefile")
    assert "stop-backend:\n>@$(PROCCLEAN) $@ $(ARGS)\n" in text, text
    assert "\t@$(PROCCLEAN)" not in text
    assert "make -n accepts the new Makefile" in out
    r = make_n(repo, "all", "test", "stop-backend", "doctor")
    assert r.returncode == 0, r
    assert [l.rstrip() for l in r.stdout.splitlines()] == ["echo all", "echo t", "python3 -S -m procclean stop-backend",
                                     "python3 -S -m procclean doctor"], r


def test_recipe_prefix_read_from_the_text_where_there_is_no_make(project, init, monkeypatch):
    repo = project("fastapi-vite")
    monkeypatch.setattr(procclean, "ask_make", lambda folder, name: None)
    (repo / "Makefile").write_text("P := >\n.RECIPEPREFIX := $(P)\nall:\n> @echo all\n"
                                   "include more.mk\n")
    (repo / "more.mk").write_text("stop-%:\n> @echo $*\nclean:\n> @echo c\n")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    assert "no GNU make here: read Makefile and its includes as text" in out, out
    assert "Makefile already has: clean; not duplicated" in out, out
    text = read(repo / "Makefile")
    assert "start-backend:\n>@$(PROCCLEAN) $@ $(ARGS)\n" in text, text
    assert "stop-backend:" not in text
    if shutil.which("make"):
        r = make_n(repo, "start-backend", "stop-frontend")
        assert [l.rstrip() for l in r.stdout.splitlines()] == ["python3 -S -m procclean start-backend", "echo frontend"], r


def test_makefile_make_rejects_is_restored(project, init, monkeypatch):
    """A reading that gets the recipe prefix wrong (as the text reading of issue 12 did):
    make rejects the result, and the Makefile is put back as it was."""
    need_make()
    repo = project("fastapi-vite")
    original = ".RECIPEPREFIX = >\nall:\n> @echo all\n"
    (repo / "Makefile").write_text(original)
    wrong = procclean.MakeInfo({"all": "Makefile"}, [], "\t", ["Makefile"])
    monkeypatch.setattr(procclean, "ask_make", lambda folder, name: wrong)
    code, out, err = init("--makefile")
    assert code == 1, (out, err)
    assert "make rejects the new Makefile (" in err and "missing separator" in err, err
    assert "the original is restored" in err
    assert read(repo / "Makefile") == original
    assert not (repo / "Makefile.procclean.bak").exists()
    assert "added to Makefile" not in out
    assert make_n(repo, "all").stdout.strip() == "echo all"


def test_a_makefile_make_already_rejects_is_not_touched(project, init):
    need_make()
    repo = project("fastapi-vite")
    broken = "all:\n    echo spaces, not a tab\n"
    (repo / "Makefile").write_text(broken)
    code, out, err = init("--makefile")
    assert code == 1, (out, err)
    assert "make rejects Makefile as it is: Makefile:2: *** missing separator" in err, err
    assert read(repo / "Makefile") == broken
    assert not (repo / "Makefile.procclean.bak").exists()


def test_backup_kept_when_the_makefile_changes(project, init):
    need_make()
    repo = project("fastapi-vite")
    before = read(repo / "Makefile")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    assert "the previous Makefile is kept as Makefile.procclean.bak" in out
    assert read(repo / "Makefile.procclean.bak") == before


# --- init --makefile --replace (issue 14) ---------------------------------------------------------

SEED_PROCESS_TARGETS = ["start-backend", "start-frontend", "start", "stop-backend",
                        "stop-frontend", "stop", "force-clean-backend", "force-clean-frontend",
                        "force-clean", "show-processes", "status"]


def test_replace_swaps_seed_recipes_and_keeps_the_rest(project, init):
    need_make()
    repo = project("seed-repo", vendored="tools/procclean.py")
    before = read(repo / "Makefile")
    (repo / "procclean.ini").write_text("[backend]\nport = 8000\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert "procclean.ini exists: kept as it is" in out
    for target in SEED_PROCESS_TARGETS:
        assert re.search(r"replaced %s \(line \d+, \d+ recipe line\(s\)\) with one procclean "
                         r"call" % re.escape(target), out), (target, out)
    assert re.search(r"kept clean \(line \d+\): its recipe does more than procclean "
                     r"\(rm -rf frontend/dist\)", out), out
    assert "the previous Makefile is kept as Makefile.procclean.bak" in out
    assert read(repo / "Makefile.procclean.bak") == before
    after = read(repo / "Makefile")
    recipes = [l for l in after.splitlines() if l.startswith("\t")]
    assert not [l for l in recipes if "ps -ef" in l or "kill" in l], after
    assert "PROCCLEAN ?= $(PYTHON) -S -m tools.procclean" in after
    names = targets_in(after)
    assert len(names) == len(set(names)), after
    r = make_n(repo, *SEED_PROCESS_TARGETS)
    assert r.returncode == 0 and not r.stderr, r
    assert [l.rstrip() for l in r.stdout.splitlines()] == ["python3 -S -m tools.procclean " + t
                                     for t in SEED_PROCESS_TARGETS], r
    # every other target exactly as it was
    r = make_n(repo, "install", "test", "build", "clean")
    assert [l.rstrip() for l in r.stdout.splitlines()] == [
        "cd backend && pip install -r requirements.txt", "cd frontend && npm install",
        "echo running the tests", "cd frontend && npm run build",
        "rm -f backend.pid frontend.pid backend.log frontend.log", "rm -rf frontend/dist"], r
    for block in ("install:\n\tcd backend", "test:\n\t@echo running", "clean:\n\trm -f backend"):
        assert block in after
    # again: nothing left to replace or add
    code, out, err = init("--makefile", "--replace")
    assert code == 0 and "replaced" not in out and "added to Makefile" not in out, out
    assert [l for l in out.splitlines() if l.startswith("kept ")] == [
        l for l in out.splitlines() if l.startswith("kept clean ")], out
    assert read(repo / "Makefile") == after


def test_a_procclean_line_that_does_not_run_this_file(project, init):
    """The README's root line copied into a repo that keeps procclean in tools/: named, and
    with --replace swapped for the line of this layout."""
    need_make()
    repo = project("fastapi-vite", vendored="tools/procclean.py")
    (repo / "Makefile").write_text("PROCCLEAN ?= $(PYTHON) -m procclean\n\n"
                                   "stop:\n\t@$(PROCCLEAN) $@\n")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    assert ("the Makefile's PROCCLEAN ($(PYTHON) -m procclean) does not run tools/procclean.py; "
            "for this layout: PROCCLEAN = $(PYTHON) -S -m tools.procclean") in err, err
    assert make_n(repo, "stop").stdout.strip() == "python3 -m procclean stop"
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert "PROCCLEAN = $(PYTHON) -m procclean did not run procclean here: now " \
        "$(PYTHON) -S -m tools.procclean" in out, out
    assert read(repo / "Makefile").startswith("PROCCLEAN ?= $(PYTHON) -S -m tools.procclean\n")
    assert [l.rstrip() for l in make_n(repo, "stop", "start").stdout.splitlines()] == [
        "python3 -S -m tools.procclean stop", "python3 -S -m tools.procclean start"]
    assert init("--makefile")[2] == ""          # now it runs this file: nothing to say


def test_without_replace_seed_recipes_are_kept_and_named(project, init):
    need_make()
    repo = project("seed-repo")
    before = read(repo / "Makefile")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    assert read(repo / "Makefile").startswith(before)
    hint = [l for l in out.splitlines() if "python3 procclean.py init --makefile --replace swaps them" in l]
    assert len(hint) == 1 and "stop-backend" in hint[0] and "install" not in hint[0], out


def test_replace_dry_run_changes_nothing(project, init):
    need_make()
    repo = project("seed-repo")
    before = snapshot(repo)
    code, out, err = init("--makefile", "--replace", "--dry-run")
    assert code == 0, (out, err)
    assert snapshot(repo) == before
    assert re.search(r"would replace stop-backend \(line \d+", out), out


def test_replace_reads_what_each_line_does(tmp_path):
    """Only lines that are all process work make a recipe replaceable (issue 20): a
    `pkill -f x; rm -rf dist build` line is not, nor a docker line, nor a sub-make of a
    target with other goals."""
    plans = plan_texts(tmp_path, (
        "stop-backend:\n\t@PIDS=$$(ps -ef | grep -E \"x\" | grep -v grep | awk '{print $$2}'); "
        "for p in $$PIDS; do kill $$p; done\n"
        "stop-frontend:\n\t@echo stopping\n\t@pkill -f vite || true\n"
        "stop:\n\t@$(MAKE) stop-backend\n\t@$(MAKE) stop-frontend\n"
        "both:\n\t@$(MAKE) stop-backend build\n"
        "clean-all:\n\tpkill -f worker.py; rm -rf dist build\n"
        "down:\n\tdocker compose down\n\tpkill -f celery\n"
        "hello:\n\t@echo only a message\n"))
    assert plans["stop-backend"] == ("stop", ["backend"])
    assert plans["stop-frontend"] == ("stop", ["frontend"])
    assert plans["stop"] == ("stop", ["backend", "frontend"])
    assert plans["both"] == "mk_make_kept"
    assert plans["clean-all"] == "init_kept_more"
    assert plans["down"] == "init_kept_more"
    assert plans["hello"] is None


def test_a_status_that_keeps_or_tests_the_pids_it_looks_up_is_a_status(tmp_path):
    """H21465/claude-log-viewer's `status:` keeps `pgrep -f`'s PIDs in a variable and
    tests it (tests/data/makefiles/pgrep-status-vars): a look, so `make status` becomes
    procclean's (it was kept, saying nothing, with its machine-wide pgrep), and a status,
    not a listing of the processes. Its neighbours: the test of a command substitution,
    lsof's PIDs, a pidfile's; PIDs kept and then killed stay a stop."""
    plans = plan_texts(tmp_path, (
        "start:\n\t@cd backend && uvicorn main:app --port 8000 & echo $$! > .backend.pid\n"
        "\t@cd frontend && npx vite & echo $$! > .frontend.pid\n"
        "stop:\n\t@pkill -f \"uvicorn main:app\" || true\n\t@pkill -f vite || true\n"
        "status:\n\t@up=$$(pgrep -f \"uvicorn main:app\" 2>/dev/null); \\\n"
        "\tif [ -n \"$$up\" ]; then echo \"Backend: running ($$up)\"; \\\n"
        "\telse echo \"Backend: stopped\"; fi\n"
        "\t@web=`pgrep -f vite`; [ -n \"$$web\" ] && echo up || echo down\n"
        "isup:\n\t@if [ -n \"$$(pgrep -f vite)\" ]; then echo up; fi\n"
        "listening:\n\t@[ -n \"$$(lsof -ti :8000)\" ] && echo up || echo down\n"
        "pids:\n\t@echo \"backend: $$(cat .backend.pid)\"\n"
        "alive:\n\t@kill -0 $$(pgrep -f vite) 2>/dev/null && echo up\n"
        "zap:\n\t@P=$$(pgrep -f \"uvicorn main:app\"); [ -n \"$$P\" ] && kill -9 $$P\n"
        "version:\n\t@V=$$(git describe); echo $$V\n"
        # its later Makefile (0f817d7): a port file read is no pidfile, nor a service
        "url:\n\t@if [ -f .backend_port ]; then echo \"http://localhost:$$(cat "
        ".backend_port)\"; fi\n"))
    api, web = plans["start"][1]
    assert plans["stop"] == ("stop", [api, web])
    assert plans["status"] == ("status", [api, web])
    assert plans["isup"] == ("status", [web])
    assert plans["listening"] == ("status", [api])
    assert plans["pids"] == ("status", [api])
    assert plans["alive"] == ("status", [web])
    assert plans["zap"] == ("stop", [api])
    assert plans["version"] is None
    assert plans["url"] is None


def plan_texts(tmp_path, text, name="Makefile"):
    """{target: (verb, [services]) | kept message key | None} of --replace's plan for a
    Makefile's text, read as text (no make run)."""
    (tmp_path / name).write_text(text)
    info = procclean.read_makefile(str(tmp_path), name)
    services, plans = procclean.analyse_makefile(str(tmp_path), name, info)
    return dict((p.rule.names[0], (p.verb, [s.name for s in p.services]) if p.verb else
                 p.kept[0] if p.kept else None) for p in plans)


# --- where procclean lives (issue 14) -----------------------------------------------------------

@pytest.mark.parametrize("where, line", [
    ("procclean.py", "$(PYTHON) -S -m procclean"),
    ("tools/procclean.py", "$(PYTHON) -S -m tools.procclean"),
    ("scripts/procclean.py", "$(PYTHON) -S -m scripts.procclean"),
    ("scripts/proc-clean.py", "$(PYTHON) -S scripts/proc-clean.py"),
])
def test_makefile_line_for_each_layout(project, init, where, line):
    need_make()
    repo = project("fastapi-vite", vendored=where)
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    text = read(repo / "Makefile")
    assert "PROCCLEAN ?= %s\n" % line in text, text
    assert "added by `python3 %s init --makefile`" % where in text
    assert "written by `python3 %s init`" % where in read(repo / "procclean.ini")
    assert "make runs procclean as %s (" % line in out, out
    expected = line.replace("$(PYTHON)", "python3") + " stop-backend"
    assert make_n(repo, "stop-backend").stdout.strip() == expected


def test_a_shadowing_package_falls_back_to_the_script_form(project, init, tmp_path,
                                                          monkeypatch):
    repo = project("fastapi-vite", vendored="tools/procclean.py")
    shadow = tmp_path / "site" / "tools"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    code, out, err = init()
    assert code == 0, (out, err)
    assert "PROCCLEAN ?= $(PYTHON) -S tools/procclean.py\n" in out, out
    assert "tools/procclean.py cannot be run with -m from the root" in out


def test_procclean_outside_the_repo_is_named_by_its_absolute_path(project, init):
    repo = project("fastapi-vite", vendored=None)
    code, out, err = init()
    assert code == 0, (out, err)
    here = os.path.join(REPO, "procclean.py")
    assert "PROCCLEAN ?= $(PYTHON) -S %s\n" % here in out, out
    assert "is outside this folder; copy it into the repo and run init again" in out


# --- toolchains (issue 14) ----------------------------------------------------------------------

def fake_tool(folder, name):
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(str(path), 0o755)
    return path


def fake_venv(folder):
    """A venv's bin/python (a link to this interpreter, as venv makes it)."""
    bindir = folder / "bin"
    bindir.mkdir(parents=True)
    os.symlink(sys.executable, str(bindir / "python"))
    return str(bindir / "python")


def test_python_toolchain_order(tmp_path, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    bindir = tmp_path / "toolbin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    (tmp_path / "backend").mkdir()
    tc = procclean.python_toolchain
    assert tc("backend") == ([sys.executable], "tc_self", {})
    # pdm's lock file names it as uv's, poetry's and pipenv's do theirs
    (tmp_path / "pdm.lock").write_text("")
    fake_tool(bindir, "pdm")
    assert tc("backend") == (["pdm", "run", "python"], "tc_lock",
                             {"lock": "pdm.lock", "tool": "pdm"})
    os.remove(str(tmp_path / "pdm.lock"))
    (tmp_path / "poetry.lock").write_text("")
    assert tc("backend")[1:] == ("tc_lock_no_tool", {"lock": "poetry.lock", "tool": "poetry"})
    fake_tool(bindir, "poetry")
    assert tc("backend") == (["poetry", "run", "python"], "tc_lock",
                             {"lock": "poetry.lock", "tool": "poetry"})
    (tmp_path / "backend" / "uv.lock").write_text("")
    fake_tool(bindir, "uv")
    assert tc("backend")[0] == ["uv", "run", "python"]
    fake_venv(tmp_path / "venv")
    assert tc("backend") == ([str(tmp_path / "venv" / "bin" / "python")], "tc_venv",
                             {"where": "venv"})
    fake_venv(tmp_path / "backend" / ".venv")
    python = str(tmp_path / "backend" / ".venv" / "bin" / "python")
    assert tc("backend") == ([python], "tc_venv", {"where": "backend/.venv"})
    # the venv's python as the venv names it (a link), not the base interpreter
    assert os.path.islink(python)
    other = tmp_path / "active"
    fake_venv(other)
    assert tc("backend", environ={"VIRTUAL_ENV": str(other)}) == (
        [str(other / "bin" / "python")], "tc_env", {"where": str(other)})
    # {python} in a start command is that interpreter
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    assert procclean.command_argv("{python} main.py", "backend") == [python, "main.py"]
    assert procclean.command_argv("{python} main.py", ".")[0] == \
        str(tmp_path / "venv" / "bin" / "python")


def test_a_venv_of_any_name_is_the_projects(tmp_path, monkeypatch):
    # testdrivenio/flask-vue-crud's README: `cd server`, `python3 -m venv env`, `flask run`
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    fake_venv(tmp_path / "server" / "env")
    fake_venv(tmp_path / "server" / "tools")
    tc = procclean.python_toolchain
    assert tc("server") == ([sys.executable], "tc_self", {})     # no pyvenv.cfg: no venv
    (tmp_path / "server" / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    python = str(tmp_path / "server" / "env" / "bin" / "python")
    assert tc("server") == ([python], "tc_venv", {"where": "server/env"})
    assert procclean.command_argv("{python} -m flask run", "server")[0] == python
    fake_venv(tmp_path / "server" / "venv")     # .venv and venv still come first
    assert tc("server")[2] == {"where": "server/venv"}


@pytest.mark.parametrize("lock, command, matches", [
    # pnpm (7+), yarn and bun pass what follows the script's name to it; npm what follows --
    ("pnpm-lock.yaml", "pnpm run dev --port {port} --strictPort",
     "node /usr/lib/node_modules/pnpm/bin/pnpm.cjs run dev --port 5173 --strictPort"),
    ("yarn.lock", "yarn run dev --port {port} --strictPort",
     "node /usr/lib/node_modules/yarn/bin/yarn.js run dev --port 5173 --strictPort"),
    ("bun.lockb", "bun run dev --port {port} --strictPort", "bun run dev --port 5173"),
    ("package-lock.json", VITE_DEV, "npm run dev -- --port 5173 --strictPort"),
])
def test_node_package_manager_by_lock_file(project, init, lock, command, matches):
    repo = project("fastapi-vite")
    (repo / "frontend" / lock).write_text("")
    code, out, err = init()
    assert code == 0, (out, err)
    tool = command.split()[0]
    assert "frontend runs with %s (frontend/%s found)" % (tool, lock) in out, out
    frontend = config().services["frontend"]
    assert frontend.command == command
    assert frontend.regex.search("root 10 1 0 09:00 ? 00:00:01 " + matches)
    assert frontend.regex.search("root 11 10 0 09:00 ? 00:00:01 node "
                                 "frontend/node_modules/.bin/vite")


def test_a_frontend_the_makefile_runs_with_npm_beside_a_bun_lock_says_npm(project, init):
    """alexeygrigorev/simple-sell: `frontend: cd frontend && npm run dev` beside
    frontend/bun.lockb and package-lock.json. init kept the Makefile's npm command and
    said `frontend runs with bun (frontend/bun.lockb found)`."""
    need_make()
    repo = project("make-npm-beside-bun-lock")
    code, out, err = init()
    assert code == 0, (out, err)
    assert "frontend runs with npm (as its command says; frontend/bun.lockb names bun)" \
        in out, out
    assert config().services["frontend"].command.split()[:3] == ["npm", "run", "dev"]
    assert config().services["frontend"].port == 8080
    os.remove(str(repo / "Makefile"))       # the lock file chooses where nothing says
    code, out, err = init("--force")
    assert "frontend runs with bun (frontend/bun.lockb found)" in out, out
    assert config().services["frontend"].command.startswith("bun run dev")


def test_init_says_which_python_and_why(project, init, monkeypatch):
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    repo = project("fastapi-vite")
    code, out, err = init()
    assert "backend runs with %s (no virtual environment or lock file found; the interpreter " \
        "running procclean)" % sys.executable in out, out
    python = fake_venv(repo / ".venv")
    code, out, err = init("--force")
    assert "backend runs with %s (the virtual environment .venv)" % python in out, out
    # the config keeps {python}: the choice is made again on each start
    assert config().services["backend"].command == "{python} main.py"


# --- .gitignore advice (issue 14 item 7) --------------------------------------------------------

def test_gitignore_advice_covers_the_state_files(project, init):
    repo = project("fastapi-vite")
    (repo / ".gitignore").write_text("*.pid\n*.log\n")
    code, out, err = init()
    assert "add to .gitignore (pidfiles, their state and start records, logs, bytecode, " \
        "port offset): __pycache__/ .procclean-offset *.pid.state *.pid.start *.log.1" in out, out
    (repo / ".gitignore").write_text("*.pid\n*.pid.state\n*.pid.start\n*.log*\n__pycache__/\n"
                                     ".procclean-offset\n")
    code, out, err = init("--force")
    assert "add to .gitignore" not in out, out


def test_gitignore_advice_names_a_log_that_is_no_log_by_its_name(project, init):
    """tests/data/makefiles/go-run-wildcard-two-logs: the recipe's log is
    notesrv-out.txt, and init said to ignore `*.txt *.txt.1` (requirements.txt,
    CMakeLists.txt...). Only pidfiles and logs named so go by their extension. With
    procclean.ini kept, the advice is of its files, not of the layout's."""
    need_make()
    repo = project("neither")
    (repo / "Makefile").write_text("start:\n\tuvicorn main:app > srv-out.txt 2>&1 & "
                                   "echo $$! > srv.pid\n")
    (repo / "main.py").write_text(FASTAPI_APP)
    code, out, err = init()
    assert " srv-out.txt srv-out.txt.1" in out and "*.txt" not in out, out
    (repo / "procclean.ini").write_text("[procclean]\nservices = api\n\n[api]\n"
                                        "logfile = api.out\ncommand = uvicorn main:app\n")
    code, out, err = init("--makefile")
    assert " api.out api.out.1" in out and "srv-out.txt" not in out, out


# --- Chinese (issue 15: init and doctor speak one language) -------------------------------------

def test_init_in_chinese_has_no_english_lines(project, init):
    need_make()
    project("seed-repo", vendored="tools/procclean.py")
    code, out, err = init("--makefile", "--replace", "--lang", "zh")
    assert code == 0, (out, err)
    for line in out.splitlines():
        if not line.strip() or line.startswith(("\t", "#", ".PHONY", "PYTHON", "PROCCLEAN")) \
                or re.match(r"^[\w-]+:$", line):
            continue
        assert re.search(u"[\u4e00-\u9fff]", line), line


def test_asking_make_runs_no_recipe_not_even_recursive_ones(project, init):
    """make runs $(MAKE) lines even under -q: the question goes to a goal with nothing to
    do, so the default goal's recipes (here a line naming $(MAKE) that writes a file) never
    run."""
    need_make()
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text("all:\n\t$(MAKE) --version >/dev/null; touch ran\n")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    assert not (repo / "ran").exists()
    assert "asked make what Makefile defines" in out
    assert "procclean--probe" not in read(repo / "Makefile") + out


def test_seed_style_leaves_other_process_managers_and_keeps_help_comments(project, init):
    need_make()
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text(
        "help: ## list the targets\n\t@grep -E '^[a-z-]+:.*##' Makefile\n\n"
        "status: ## is it up?\n\tdocker ps\n\n"
        "stop-backend: ## stop the API\n\t@pkill -f 'uvicorn main:app' || true\n\n"
        "start-backend:\n\tcd backend && uvicorn main:app --port 8000 &\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    text = read(repo / "Makefile")
    assert "status: ## is it up?\n\tdocker ps\n" in text, text
    assert "stop-backend: ## stop the API\n\t@$(PROCCLEAN) $@ $(ARGS)\n" in text, text
    assert "start-backend:\n\t@$(PROCCLEAN) $@ $(ARGS)\n" in text, text
    assert re.search(r"kept status \(line 4\): its recipe does more than procclean "
                     r"\(docker ps\)", out), out
    r = make_n(repo, "help", "status", "stop-backend")
    assert r.returncode == 0, r
    assert r.stdout.splitlines()[1:] == ["docker ps", "python3 -S -m procclean stop-backend"], r


def test_targets_pass_options_through_make_as_ARGS(project, init):
    """`make logs ARGS=-f`, `make dev ARGS=--replace`: init's rules hand ARGS to procclean,
    and `logs` is among the targets it writes."""
    need_make()
    repo = project("fastapi-vite")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    assert make_n(repo, "logs", "ARGS=-f").stdout.strip() == "python3 -S -m procclean logs -f"
    assert make_n(repo, "dev", "ARGS=--replace").stdout.strip() == \
        "python3 -S -m procclean dev --replace"


def test_a_makefile_with_its_own_ARGS_gets_PROCCLEAN_ARGS(project, init):
    """A team's `ARGS ?= --reload` (for its own run target) never reaches procclean."""
    need_make()
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text("ARGS ?= --reload\nrun:\n\tpython main.py $(ARGS)\n")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    assert make_n(repo, "stop").stdout.strip() == "python3 -S -m procclean stop"
    assert make_n(repo, "logs", "PROCCLEAN_ARGS=-f").stdout.strip() == \
        "python3 -S -m procclean logs -f"
    assert make_n(repo, "run").stdout.strip() == "python main.py --reload"


def test_active_venv_outside_the_project_is_passed_over(tmp_path, monkeypatch):
    """Another project's venv left activated: the project's own interpreter wins, and the
    services launched get the project's venv first on PATH instead of the active one's;
    without one of its own, the active venv is used and said not to be the project's."""
    project = tmp_path / "proj"
    (project / "backend").mkdir(parents=True)
    monkeypatch.chdir(str(project))
    decoy = tmp_path / "decoy"
    fake_venv(decoy)
    env = {"VIRTUAL_ENV": str(decoy), "PATH": "%s/bin:/usr/bin" % decoy}
    tc = procclean.python_toolchain
    assert tc("backend", environ=env) == (
        [str(decoy / "bin" / "python")], "tc_env_outside", {"where": str(decoy)})
    fake_venv(project / "backend" / ".venv")
    venv = str(project / "backend" / ".venv")
    assert tc("backend", environ=env) == (
        [venv + "/bin/python"], "tc_venv", {"where": "backend/.venv", "ignored": str(decoy)})
    launched = dict(env)
    procclean.python_env(launched, "backend")
    assert launched["VIRTUAL_ENV"] == venv
    assert launched["PATH"] == "%s/bin:/usr/bin" % venv
    out = procclean.Reporter(lang="en")
    assert procclean.toolchain_why(out, *tc("backend", environ=env)[1:]) == (
        "the virtual environment backend/.venv; the active $VIRTUAL_ENV %s is not this "
        "project's (it is outside it): not used" % decoy)


def test_the_projects_venv_comes_first_on_path_with_no_venv_active(tmp_path, monkeypatch):
    """No venv active (a fresh terminal, make dev): the services get the project's venv
    first on PATH, as activating it would, so that a console script with no `python -m`
    form (`arq`, `rq worker`) is the venv's; an active venv of the project is left as
    it is, and a project without a venv keeps PATH."""
    monkeypatch.chdir(str(tmp_path))
    env = {"PATH": "/usr/local/bin:/usr/bin"}
    launched = dict(env)
    procclean.python_env(launched, ".")
    assert launched == env
    venv = os.path.dirname(os.path.dirname(fake_venv(tmp_path / ".venv")))
    procclean.python_env(launched, ".")
    assert launched == {"PATH": venv + "/bin:/usr/local/bin:/usr/bin", "VIRTUAL_ENV": venv}
    active = {"PATH": venv + "/bin:/usr/bin", "VIRTUAL_ENV": venv}
    procclean.python_env(active, ".")
    assert active == {"PATH": venv + "/bin:/usr/bin", "VIRTUAL_ENV": venv}


# --- issue 20: the Makefile as a source of services; --replace keeps every target ------------

MULTI = (
    "UV ?= uv\n"
    "APP = app.main:app\n"
    "API_PORT ?= 8001\n"
    "RUN = $(UV) run uvicorn $(APP) --reload --port $(API_PORT)\n"
    "\n"
    "dev:\n"
    "\tcd api && nohup $(RUN) > ../api.log 2>&1 & echo $$! > api.pid\n"
    "\tcd web && nohup pnpm dev --port 5174 > ../web.log 2>&1 & echo $$! > web.pid\n"
    "\tnohup celery -A proj worker > worker.log 2>&1 & echo $$! > worker.pid\n"
    "\n"
    "stop:\n"
    "\t-kill $$(cat api.pid) $$(cat web.pid) $$(cat worker.pid)\n"
    "\t-lsof -ti:8001 | xargs kill\n"
    "\t-fuser -k 5174/tcp\n"
    "\trm -f api.pid web.pid worker.pid\n"
    "\n"
    "status-worker:\n"
    "\t@pgrep -f 'celery -A proj worker' || echo not running\n")


def ini_sections(path):
    import configparser
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(str(path))
    return dict((s, dict(parser.items(s))) for s in parser.sections())


def test_makefile_recipes_are_services_with_make_variables_expanded(project, init):
    """Item 1: every pidfile, port, log, pattern and command of the recipes, with make's
    variables expanded, is a service in procclean.ini, each value credited to its line."""
    need_make()
    repo = project("neither")
    (repo / "Makefile").write_text(MULTI)
    code, out, err = init()
    assert code == 0, (out, err)
    ini = ini_sections(repo / "procclean.ini")
    assert ini["procclean"]["services"] == "api web worker"
    cfg = procclean.load_config(folder=str(repo), environ={})
    api, web, worker = (cfg.services[n] for n in ("api", "web", "worker"))
    assert (api.pidfile, api.port, api.logfile, api.cwd, api.pattern) == (
        "api.pid", 8001, "api.log", "api", r"uvicorn app\.main:app")
    assert api.command == "uv run uvicorn app.main:app --reload --port {port}"    # 8001
    assert (web.port, web.command, web.cwd) == (5174, "pnpm dev --port {port}", "web")
    assert (worker.pattern, worker.pidfile, worker.logfile) == (
        "celery -A proj worker", "worker.pid", "worker.log")
    text = read(repo / "procclean.ini")
    assert "# Makefile:7 (dev), Makefile:13 (stop)\nport = 8001" in text, text
    assert "# Makefile:18 (status-worker)\npattern = celery -A proj worker" in text, text


def test_a_background_dev_becomes_start_and_its_stop_is_carried_whole(project, init):
    """Item 2: a `dev:` that starts its processes in the background is `start`, never the
    foreground `dev`; the stop covering every pidfile and port is replaced because
    procclean.ini carries each of them."""
    need_make()
    repo = project("neither")
    (repo / "Makefile").write_text(MULTI)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    r = make_n(repo, "dev", "stop", "status-worker")
    assert r.stdout.splitlines() == ["python3 -S -m procclean start api web worker",
                                     "python3 -S -m procclean stop",       # every service
                                     "python3 -S -m procclean show-processes worker"], r
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert [cfg.services[s].pidfile for s in ("api", "web", "worker")] == [
        "api.pid", "web.pid", "worker.pid"]
    assert (cfg.services["api"].port, cfg.services["web"].port) == (8001, 5174)


def test_a_stop_is_kept_with_the_start_it_pairs_with(project, init):
    """Item 2: gunicorn daemonizes itself (procclean start cannot carry it): its stop,
    which reads the same pidfile, is kept too, and both are named with the reason."""
    need_make()
    repo = project("neither")
    original = ("start:\n\tgunicorn -D --pid app.pid -b 127.0.0.1:8000 app:app\n"
                "stop:\n\tkill `cat app.pid`\n"
                "restart:\n\tkill -HUP `cat app.pid`\n")
    (repo / "Makefile").write_text(original)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert read(repo / "Makefile").startswith(original)
    assert "kept start (line 1): the server puts itself in the background" in out, out
    assert re.search(r"kept stop \(line 3\): (start|restart) \(Makefile:\d\) also manages "
                     r"gunicorn and is kept", out), out
    assert "kept restart (line 5): it sends SIGHUP" in out, out
    code, out, err = init("--makefile", "--replace", "--lang", "zh")
    assert "保留 restart (第 5 行): 它发送 SIGHUP" in out, out


def test_a_sub_make_counts_only_for_replaced_goals_of_this_makefile(project, init):
    """Item 2: `$(MAKE) stop-backend` is not swapped while stop-backend (docker) is kept;
    `$(MAKE) -C services/api stop` is another Makefile's."""
    need_make()
    repo = project("neither")
    original = ("stop-backend:\n\tdocker compose stop api\n"
                "stop:\n\t$(MAKE) stop-backend\n"
                "stop-api:\n\t$(MAKE) -C services/api stop\n"
                "kill-web:\n\tpkill -f 'vite --port 5175'\n"
                "down:\n\t$(MAKE) kill-web\n")
    (repo / "Makefile").write_text(original)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    text = read(repo / "Makefile")
    assert "stop:\n\t$(MAKE) stop-backend\n" in text
    assert "stop-api:\n\t$(MAKE) -C services/api stop\n" in text
    assert "kept stop (line 3): it runs make stop-backend, which is kept" in out, out
    assert "kept stop-api (line 5): it runs make in another folder" in out, out
    r = make_n(repo, "kill-web", "down")
    assert r.stdout.splitlines() == ["python3 -S -m procclean stop web"] * 2, r


def test_a_line_with_other_work_keeps_its_recipe(project, init):
    need_make()
    repo = project("neither")
    original = "clean:\n\tpkill -f 'python worker.py'; rm -rf dist build\n"
    (repo / "Makefile").write_text(original)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert read(repo / "Makefile").startswith(original)
    assert "kept clean (line 1): its recipe does more than procclean (rm -rf dist build)" \
        in out, out


@pytest.mark.parametrize("ini, gives", [
    # Item 2: the ini carries another pidfile than the Makefile's
    ("[api]\npidfile = api.pid\n", "api.pid"),
    # no section for the Makefile's service at all (it was an internal error)
    ("[backend]\nport = 8000\n", "-"),
])
def test_an_ini_that_says_otherwise_keeps_the_recipes(project, init, ini, gives):
    """With a procclean.ini init keeps, a recipe is replaced only where the ini carries
    its pidfile (and port, log, pattern, command, folder); else it is kept, and said so."""
    need_make()
    repo = project("neither")
    (repo / "Makefile").write_text("start-api:\n\tnohup ./api > api.log 2>&1 & "
                                   "echo $$! > run/api.pid\n"
                                   "stop-api:\n\tkill $$(cat run/api.pid)\n")
    (repo / "procclean.ini").write_text(ini)
    code, out, err = init("--makefile", "--replace")
    assert code == 0 and "internal error" not in err, (out, err)
    assert "kept start-api (line 1): procclean.ini exists and gives api pidfile = %s, " \
        "not the Makefile's run/api.pid" % gives in out, out
    assert "kept stop-api (line 3)" in out and "replaced" not in out


def test_no_rule_for_a_prerequisite_or_a_phony_name(project, init):
    """Item 3: `clean` only as build's prerequisite, `logs` only in .PHONY: make knows
    them, so init adds no rule for them (make build would now run procclean)."""
    need_make()
    repo = project("neither")
    original = (".PHONY: build clean logs\nbuild: clean\n\tgo build ./...\n"
                "run:\n\t$(PYTHON) app.py\n")
    (repo / "Makefile").write_text(original)
    before = [make_n(repo, t).stdout for t in ("build", "clean", "logs", "run")]
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    text = read(repo / "Makefile")
    assert "\nclean:" not in text and "\nlogs:" not in text, text
    assert [make_n(repo, t).stdout for t in ("build", "clean", "logs", "run")] == before
    assert "PYTHON ?=" not in text          # its run uses $(PYTHON) unset: left so


def test_a_backup_that_cannot_be_written_whole_leaves_the_makefile_as_it_was(
        project, init, monkeypatch):
    """A full disk while the backup is written: no half backup (a failed make check would
    restore the Makefile from it), the Makefile untouched, one line, exit 1."""
    repo = project("neither")
    original = "start-api:\n\tnohup ./api > api.log 2>&1 & echo $$! > api.pid\n" + "".join(
        "task-%d:\n\t@echo %d\n" % (n, n) for n in range(50))
    (repo / "Makefile").write_text(original)
    real_write = os.write

    def disk_full_after_100_bytes(fd, data):
        if os.path.basename(os.readlink("/proc/self/fd/%d" % fd)).startswith(
                "Makefile.procclean.bak"):
            if os.fstat(fd).st_size >= 100:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, bytes(data[:100]))
        return real_write(fd, data)

    monkeypatch.setattr(procclean.os, "write", disk_full_after_100_bytes)
    code, out, err = init("--makefile")
    assert code == 1, (out, err)
    assert "cannot write Makefile: No space left on device" in err, err
    assert read(repo / "Makefile") == original
    assert sorted(p.name for p in repo.iterdir() if "procclean.bak" in p.name) == []


def test_backups_never_overwrite_an_older_one(project, init):
    need_make()
    repo = project("neither")
    original = "start-api:\n\tnohup ./api > api.log 2>&1 & echo $$! > api.pid\n"
    (repo / "Makefile").write_text(original)
    assert init("--makefile")[0] == 0
    assert read(repo / "Makefile.procclean.bak") == original
    first = read(repo / "Makefile")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert read(repo / "Makefile.procclean.bak") == original
    assert read(repo / "Makefile.procclean.bak.1") == first
    assert "kept as Makefile.procclean.bak.1" in out


def test_a_makefile_that_already_failed_is_said_so(project, init):
    """Item 3: make -n fails on the original too (a missing prerequisite file): init says
    so, not that make rejects the new Makefile."""
    need_make()
    repo = project("neither")
    (repo / "Makefile").write_text("stop: gone.txt\n\tkill $$(cat app.pid)\n"
                                   "start:\n\t./app > app.log 2>&1 & echo $$! > app.pid\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert "make -n already failed on the original Makefile for stop start: make: *** No " \
        "rule to make target 'gone.txt'" in err, err
    assert "make rejects the new" not in err
    assert "fails on the new Makefile only as it failed on the original" in out


def test_service_names_from_target_names():
    name = procclean.service_name_of
    assert [name(t) for t in ("start-worker", "worker-stop", "stop_api", "run-api",
                              "api-start", "force-clean-web", "start", "stop-all", "kill")] == [
        "worker", "worker", "api", "api", "api", "web", None, None, None]
    assert name("backend", launches=True) == "backend"
    assert name("proxy.pid", launches=True) == "proxy"
    assert name("backend") is None          # a target named for a thing that starts nothing
    # sandonemaki/to_do_app_v2's kill-server-and-start-server-as-daemon: two steps, no name
    assert name("kill-server-and-start-server-as-daemon", launches=True) is None
    assert name("stop-and-clean") is None and name("start-api-and-web") is None
    # words that say how, not what: `prod-daemon: gunicorn --daemon ...` is no "prod-daemon"
    assert name("prod-daemon", launches=True) is None and name("start_dev_local") is None
    assert name("prod-api", launches=True) == "prod-api"


@pytest.mark.parametrize("recipe, port", [
    ("lsof -ti:8001 | xargs kill", "8001"), ("kill $$(lsof -t -i :8002)", "8002"),
    ("lsof -tiTCP:8003 -sTCP:LISTEN | xargs -r kill", "8003"), ("fuser -k 8004/tcp", "8004"),
    ("uvicorn main:app --port 8005 &", "8005"), ("uvicorn main:app --port=8006 &", "8006"),
    ("npx next dev -p 3007 &", "3007"), ("gunicorn -b 0.0.0.0:8008 app:app &", "8008"),
    ("python manage.py runserver 127.0.0.1:8009 &", "8009"),
    ("PORT=3010 npm start &", "3010"),
    # Go's flag package: one dash, `-port 9090`, `-addr :9091`, `-http=127.0.0.1:9092`
    ("./bin/api -port 9090 &", "9090"), ("./server -addr :9091 &", "9091"),
    ("go run ./cmd/web -http=127.0.0.1:9092 &", "9092"),
    ("python3 -m http.server 8093 --bind 127.0.0.1 &", "8093"),
    # the app's port, not the debugger's address before it
    ("python -m debugpy --listen 0.0.0.0:5678 -m uvicorn main:app --port 8011 &", "8011")])
def test_ports_each_recipe_form_names(tmp_path, recipe, port):
    (tmp_path / "Makefile").write_text("go:\n\t%s\n" % recipe)
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    services, _ = procclean.analyse_makefile(str(tmp_path), "Makefile", info)
    assert [s.fields.get("port") for s in services] == [port], recipe


@pytest.mark.parametrize("recipe", [
    "lsof -ti:3000,8080 | xargs kill -9", "fuser -k 3000/tcp 8080/tcp",
    "kill -9 $$(lsof -t -i :3000 -i :8080)"])
def test_a_recipe_freeing_several_ports_frees_each(project, init, recipe):
    """`kill: lsof -ti:3000,8080 | xargs kill -9`: only the first port was read, so the
    replaced `make kill` left 8080 taken; and the `run:` beside two port-freeing services
    was dropped (which port it is was not known): no service ran it."""
    need_make()
    repo = project("neither")
    (repo / "Makefile").write_text("run:\n\tgo run ./cmd/api\nkill:\n\t%s\n" % recipe)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert make_n(repo, "kill").stdout.splitlines() == [
        "python3 -S -m procclean stop port-3000 port-8080"], out
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.services["backend"].command == "go run ./cmd/api", out


@pytest.mark.parametrize("text", [
    ".ONESHELL:\nup:\n\tpoetry run python server.py > run/s.log 2>&1 &\n\tSERVER_PID=$$!\n"
    "\techo \"$$SERVER_PID\" > run/s.pid\n",
    "up:\n\tnohup python server.py > run/s.log 2>&1 & PID=$$!; echo $$PID > run/s.pid\n"])
def test_a_pid_kept_in_a_shell_variable_is_the_pidfile_s(tmp_path, text):
    """`SERVER_PID=$$!` then `echo "$$SERVER_PID" > run/s.pid`: the echo was harmless
    output, so the service had no pidfile and the recipe's stop (`kill $$(cat run/s.pid)`)
    was another service's, a pidfile nobody wrote."""
    found = services_of(tmp_path, text + "down:\n\tkill $$(cat run/s.pid)\n")
    assert [f.get("pidfile") for f in found.values()] == ["run/s.pid"], found


def test_patterns_as_grep_and_pgrep_read_them(tmp_path):
    plans = plan_texts(tmp_path, (
        "stop-a:\n\tps aux | grep 'serve\\(r\\|d\\).py' | grep -v grep | awk '{print $$2}'"
        " | xargs kill\n"
        "stop-b:\n\tkill $$(pgrep -f \"node (api|web)\\.js\")\n"
        "stop-c:\n\tps -ef | grep -w blog | awk '{print $$2}' | xargs kill -9\n"
        "stop-d:\n\tps -ef | grep gunicorn | grep app | awk '{print $$2}' | xargs kill\n"))
    assert plans["stop-a"] == ("stop", ["a"]) and plans["stop-b"] == ("stop", ["b"])
    assert plans["stop-c"] == ("stop", ["c"])
    assert plans["stop-d"] == ("stop", ["d"])      # both greps: one pattern, either order
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    services = dict((s.name, s) for s in procclean.analyse_makefile(
        str(tmp_path), "Makefile", info)[0])
    assert services["a"].fields["pattern"] == "serve(r|d).py"
    assert services["b"].fields["pattern"] == "node (api|web)\\.js"
    assert re.search(services["c"].fields["pattern"], "u 1 0 0 ? 0 ./blog -c x")
    assert not re.search(services["c"].fields["pattern"], "u 1 0 0 ? 0 ./weblog")
    assert services["d"].fields["pattern"] == "gunicorn.*app|app.*gunicorn"


def test_plain_init_reads_the_makefile_without_running_make(project, init):
    """init without --makefile writes the recipes' services from the Makefile's text: make,
    which would run the $(shell ...) here, is not asked."""
    repo = project("neither")
    (repo / "Makefile").write_text("STAMP := $(shell touch ran)\nPORT = 8011\n"
                                   "start-api:\n\t./api --port $(PORT) > api.log 2>&1 & "
                                   "echo $$! > api.pid\n")
    code, out, err = init()
    assert code == 0, (out, err)
    assert not (repo / "ran").exists()
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert (cfg.services["api"].port, cfg.services["api"].command) == (
        8011, "./api --port {port}")


def test_a_start_that_stops_first_through_make_is_a_restart(tmp_path):
    """start runs `$(MAKE) -s stop` then starts: the two rules call each other's services,
    and are replaced together (stop; start as restart; restart: stop start as restart)."""
    plans = plan_texts(tmp_path, (
        "PID_FILE = backend.pid\n"
        "start:\n\t@$(MAKE) -s stop\n\t@rm -f $(PID_FILE)\n"
        "\t@nohup ./venv/bin/uvicorn backend.main:app --port 8000 > backend.log 2>&1 & "
        "echo $$! > $(PID_FILE)\n"
        "stop:\n\t@if [ -f $(PID_FILE) ]; then kill $$(cat $(PID_FILE)) || true; "
        "rm -f $(PID_FILE); fi\n\t@pkill -f \"uvicorn backend.main:app\" || true\n"
        "restart: stop start\n"
        "logs:\n\ttail -f backend.log\n"))
    assert plans == {"start": ("restart", ["backend"]), "stop": ("stop", ["backend"]),
                     "restart": ("restart", ["backend"]), "logs": "init_kept_more"}, plans


def test_a_recipe_starting_what_the_layout_found_is_that_service(project, init):
    """`cd frontend && npm run dev &` in a bare `web:` target starts the frontend init found
    in frontend/package.json: one service (named for the target), not two."""
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text(
        "web:\n\tcd frontend && nohup npm run dev > ../web.log 2>&1 & echo $$! > web.pid\n")
    code, out, err = init()
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["web", "backend"], cfg.default_names
    front = cfg.services["web"]
    assert (front.pidfile, front.logfile, front.cwd) == ("web.pid", "web.log", "frontend")
    # port: package.json's; the recipe's `npm run dev` is that of init, which passes the port
    assert (front.command, front.port) == (VITE_DEV, 3000)


def test_a_loop_over_a_glob_of_pidfiles_names_no_pidfile(tmp_path):
    """A public Makefile (code index file 57426972861) starts five Go binaries by
    `bin/NAME & echo $$! > .pids/NAME.pid` and stops them by `for f in .pids/*.pid; do
    pid=$$(cat "$$f"); ... kill "$$pid"; rm -f "$$f"; done`: the loop's variable was read
    as a pidfile, a service "app" with `pidfile = $f` in procclean.ini (and make stop-app
    would have looked for a file named $f).  A file a shell variable names is unknown."""
    found = services_of(tmp_path, "run-all:\n\t@bin/ingest & echo $$! > .pids/ingest.pid\n"
                        "stop-all:\n\t@for f in .pids/*.pid; do \\\n"
                        "\t\tpid=$$(cat \"$$f\"); kill \"$$pid\"; rm -f \"$$f\"; \\\n\tdone\n")
    assert [f.get("pidfile") for f in found.values()] == [".pids/ingest.pid"], found


def test_a_go_run_of_a_package_is_the_binary_built_from_it(tmp_path):
    """The same Makefile runs each app in the foreground by `run-NAME: go run ./cmd/NAME`
    and all in the background by `run-all: build` (`go build -o bin/NAME ./cmd/NAME`),
    `bin/NAME & echo $$! > .pids/NAME.pid`: ten services, backend-2 to backend-6 (the
    binaries) beside orchestrator, ingest... (the go runs), two of each app in make
    status and stop.  A go run of ./cmd/NAME is the one background run of bin/NAME."""
    text = "".join("run-%s:\n\tgo run ./cmd/%s\n" % (n, n) for n in ("api", "jobs"))
    text += "run-all:\n" + "".join("\t@bin/%s & echo $$! > .pids/%s.pid\n" % (n, n)
                                   for n in ("api", "jobs"))
    found = services_of(tmp_path, text)
    assert [(n, f["command"], f.get("pidfile")) for n, f in found.items()] == [
        ("api", "bin/api", ".pids/api.pid"), ("jobs", "bin/jobs", ".pids/jobs.pid")], found


def test_a_loop_over_ports_frees_each_of_them(tmp_path):
    plans = plan_texts(tmp_path, (
        "stop-ports:\n\t@for port in 3000 8080; do \\\n"
        "\t\tpids=$$(lsof -tiTCP:$$port -sTCP:LISTEN 2>/dev/null || true); \\\n"
        "\t\tif [ -n \"$$pids\" ]; then kill -TERM $$pids 2>/dev/null || true; fi; \\\n"
        "\tdone\n"))
    assert plans == {"stop-ports": ("stop", ["port-3000", "port-8080"])}, plans


# --- found by trying real repos (qa): a recipe's port flag moves with the port setting --------

PIDFILE_PAIR = (
    "APP = app.main:app\n"
    "PID_FILE = .uvicorn.pid\n"
    "\n"
    "start:\n"
    "\tnohup python -m uvicorn $(APP) --host 0.0.0.0 --port 8000 --reload \\\n"
    "\t  > .uvicorn.out 2>&1 & echo $$! > $(PID_FILE)\n"
    "\n"
    "stop:\n"
    "\t@if [ -f $(PID_FILE) ]; then kill $$(cat $(PID_FILE)) && rm -f $(PID_FILE); fi\n")


def test_a_recipes_literal_port_becomes_the_port_setting(project, init, monkeypatch):
    """yizhengtang/CICD2_Lab_6_Service_B's Makefile: the command init takes from `start`
    says `--port 8000`; written as `--port {port}` it is the same command at 8000, and
    `PROCCLEAN_BACKEND_PORT=8001 make start` (procclean's own hint) and port_offset move
    it, instead of starting on 8000 again. A second init still finds every value
    carried, so the recipes stay replaced."""
    need_make()
    repo = project("neither")
    (repo / "Makefile").write_text(PIDFILE_PAIR)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert "--port {port} --reload" in read(repo / "procclean.ini")
    assert make_n(repo, "start", "stop").stdout.splitlines() == [
        "python3 -S -m procclean start", "python3 -S -m procclean stop"]
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert procclean.launch_plan(cfg.services["backend"])[2].endswith(
        "uvicorn app.main:app --host 0.0.0.0 --port 8000 --reload")
    cfg = procclean.load_config(folder=str(repo), environ={"PROCCLEAN_BACKEND_PORT": "8001"})
    assert procclean.launch_plan(cfg.services["backend"])[2].endswith(
        "uvicorn app.main:app --host 0.0.0.0 --port 8001 --reload")
    (repo / "Makefile").write_text(PIDFILE_PAIR)        # the team's Makefile again
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert "kept start" not in out and "kept stop" not in out, (out, err)
    assert make_n(repo, "start", "stop").stdout.splitlines() == [
        "python3 -S -m procclean start", "python3 -S -m procclean stop"]


def test_a_recipe_serving_the_layouts_folder_is_that_service_not_a_second(project, init):
    """kylegrantlucas/c964-movie-recommender: `cd backend && flask --debug run --port 5002 &`
    serves backend/app.py, which the layout found too: init wrote two services for one app
    (backend-2 from the Makefile, backend from the code, ports 5002 and 5000), so `make
    restart` would start it twice. One service, with the recipe's command and port; a
    worker started in the same folder stays a service of its own."""
    need_make()
    repo = project("neither")
    (repo / "backend").mkdir()
    (repo / "backend" / "requirements.txt").write_text("Flask==3.0.0\ncelery\n")
    (repo / "backend" / "app.py").write_text(
        "from flask import Flask\n\napp = Flask(__name__)\n\n"
        "if __name__ == '__main__':\n    app.run(debug=True)\n")
    (repo / "Makefile").write_text(
        "dev:\n\t@cd backend && flask --debug run --port 5002 &\n"
        "\t@cd backend && celery -A tasks worker &\n")
    code, out, err = init()
    assert code == 0, (out, err)
    assert "backend-2" not in out + read(repo / "procclean.ini"), out
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["backend", "worker"], cfg.default_names
    assert cfg.services["worker"].command == "celery -A tasks worker"
    backend = cfg.services["backend"]
    assert (backend.command, backend.port, backend.cwd) == (
        "flask --debug run --port {port}", 5002, "backend")


def test_a_target_named_backend_that_runs_another_app_is_not_the_layouts(project, init):
    """bedminer1/LIQUIDITY_TRACKER's Makefile: `backend: cd backend/cmd/api && go run .`
    (a Go API), `microservice: cd ai_microservice && ... python microservice.py` (the
    Flask app init finds in the layout, so named backend), `frontend: cd frontend && npm
    run dev &`.  The target `backend` took the layout's backend: one service ran `go
    run .` on the Flask app's port 5433, and the Flask app was no service.  Each is one,
    named by its target (the Go API on the port its code listens on: echo's Start)."""
    repo = project("neither")
    files = {
        "backend/go.mod": "module tracker\n\ngo 1.22\n",
        "backend/cmd/api/server.go": 'package main\n\nfunc main() {\n\te.Start(":4000")\n}',
        "ai_microservice/requirements.txt": "flask\npandas\n",
        "ai_microservice/microservice.py": "from flask import Flask\n\napp = Flask("
        "__name__)\n\nif __name__ == '__main__':\n    app.run(port=5433)\n",
        "Makefile": "backend:\n\t@cd backend/cmd/api && go run .\n\nmicroservice:\n"
        "\t@cd ai_microservice && . .venv/bin/activate && python microservice.py\n"}
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    code, out, err = init()
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    ran = dict((n, (cfg.services[n].command, cfg.services[n].cwd, cfg.services[n].port))
               for n in cfg.default_names)
    assert ran == {"backend": ("go run .", "backend/cmd/api", 4000),
                   "microservice": ("{python} microservice.py", "ai_microservice", 5433)}, \
        read(repo / "procclean.ini")


@pytest.mark.parametrize("run", ["python -m app", "python3 -m app.main"])
def test_a_recipe_running_the_layouts_app_as_a_module_is_that_app(project, init, run):
    """`run: python -m app` (app/__main__.py calls uvicorn.run on app.main's app, the
    app init finds): two services, backend-2 with the recipe's command and backend with
    init's `uvicorn app.main:app`, two copies of one app, the second on the port the
    first holds.  The recipe runs the layout's app: one service, run as the recipe
    says."""
    repo = project("neither")
    (repo / "app").mkdir()
    (repo / "app" / "__init__.py").write_text("")
    (repo / "app" / "main.py").write_text("from fastapi import FastAPI\n\napp = FastAPI()"
                                          "\n\nif __name__ == '__main__':\n    import "
                                          "uvicorn\n    uvicorn.run(app)\n")
    (repo / "app" / "__main__.py").write_text("import uvicorn\n\nfrom app.main import app"
                                              "\n\nuvicorn.run(app)\n")
    (repo / "requirements.txt").write_text("fastapi\nuvicorn\n")
    (repo / "Makefile").write_text("run:\n\t%s\n" % run)
    code, out, err = init()
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["backend"], read(repo / "procclean.ini")
    assert cfg.services["backend"].command == run


def test_init_in_a_folder_of_the_project_works_on_the_roots_file(project, init,
                                                                  monkeypatch):
    """`cd backend && python3 ../procclean.py init` in a project whose procclean.ini is
    at the root: init reads and writes the root's file, not a second one in backend/
    (which every command run from backend/ would then take for the project's), and says
    which file it is: `procclean.ini exists` named no folder."""
    repo = project("fastapi-vite")
    assert init()[0] == 0
    (repo / "procclean.ini").write_text(read(repo / "procclean.ini") + "# kept\n")
    monkeypatch.chdir(str(repo / "backend"))
    monkeypatch.setenv("PWD", str(repo / "backend"))
    code, out, err = init()
    assert code == 0, (out, err)
    assert "%s exists: kept as it is" % (repo / "procclean.ini") in out, out
    assert read(repo / "procclean.ini").endswith("# kept\n")
    monkeypatch.chdir(str(repo / "backend"))
    code, out, err = init("--force")
    assert code == 0, (out, err)
    assert "wrote %s\n" % (repo / "procclean.ini") in out, out
    assert not read(repo / "procclean.ini").endswith("# kept\n")
    assert not (repo / "backend" / "procclean.ini").exists()


@pytest.mark.parametrize("stop, pidfile", [
    ("-kill $$(cat api/.pid) 2>/dev/null; rm -f api/.pid", "api/.pid"),
    ("test -f api/run/server.pid && kill `cat api/run/server.pid` || true",
     "api/run/server.pid"),
    ("cd api && kill $$(cat .pid)", "api/.pid")], ids=["rm", "deeper", "cd"])
def test_a_stop_only_pidfile_in_a_services_folder_is_that_services(project, init, stop,
                                                                   pidfile):
    """A Makefile whose `stop` only kills the PID in api/.pid (the process `dev` runs in
    api/, its pidfile written by hand or by another tool): init wrote a service `app`
    with that pidfile and no command, so `make dev` failed on it.  The pidfile is the
    service's whose folder it is in: one service, which writes and reads it."""
    repo = project("neither")
    (repo / "api").mkdir()
    (repo / "api" / "requirements.txt").write_text("fastapi\nuvicorn\n")
    (repo / "api" / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    (repo / "Makefile").write_text(
        "dev:\n\tcd api && uvicorn main:app --reload\n\nstop:\n\t%s\n" % stop)
    code, out, err = init()
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["backend"], read(repo / "procclean.ini")
    backend = cfg.services["backend"]
    assert (backend.pidfile, backend.cwd) == (pidfile, "api")
    assert backend.command.startswith("uvicorn main:app --reload")


@pytest.mark.parametrize("stop, pidfile", [
    ("stop:\n\tkill $$(cat worker.pid)", "worker.pid"),
    ("stop:\n\t-kill $$(cat .celery.pid)", ".celery.pid"),
    ("stop-celery:\n\tkill $$(cat /tmp/q.pid)", "/tmp/q.pid")],
    ids=["kind", "program", "target"])
def test_a_stop_only_pidfile_named_after_a_root_worker_is_the_workers(project, init, stop,
                                                                      pidfile):
    """A celery worker run from the root and a stop that only kills the PID in
    worker.pid: init wrote a service `worker-2` (or `celery`) with that pidfile and no
    command beside the worker, so `make dev` failed on it.  A pidfile named after one
    service (its kind, its program, or the stop's target) is that service's."""
    repo = project("neither")
    (repo / "api").mkdir()
    (repo / "api" / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    (repo / "tasks.py").write_text("from celery import Celery\ncelery = Celery(__name__)\n")
    (repo / "requirements.txt").write_text("fastapi\nuvicorn\ncelery\n")
    (repo / "Makefile").write_text("dev:\n\tcd api && uvicorn main:app --reload\n\nworker:"
                                   "\n\tcelery -A tasks worker\n\n%s\n" % stop)
    code, out, err = init()
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert sorted(cfg.default_names) == ["backend", "worker"], read(repo / "procclean.ini")
    worker = cfg.services["worker"]
    assert (worker.command, worker.pidfile, worker.cwd) == (
        "celery -A tasks worker", pidfile, ".")


@pytest.mark.parametrize("runs", [
    "run:\n\tnohup ./server > server.log 2>&1 &\n\tnohup ./worker > worker.log 2>&1 &\n",
    "start-server:\n\tnohup ./server &\nstart-worker:\n\tnohup ./worker &\n"])
def test_two_apps_run_in_one_place_beside_a_port_stop_stay_two(project, init, runs):
    """A server and a worker started in the background at the root, beside `stop: lsof
    -t -i:8080 | xargs kill`: which one holds 8080 is not known.  Since 1ffab49 both
    became one service with the server's command: the worker's was lost (procclean
    start never ran it), its pattern stood for both.  Each app is a service."""
    need_make()
    repo = project("neither")
    (repo / "Makefile").write_text(runs + "stop:\n\tlsof -t -i:8080 | xargs kill\n")
    commands = ["./server", "./worker"]
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    ran = dict((cfg.services[n].command, n) for n in cfg.default_names)
    assert sorted(ran) == [""] + commands, read(repo / "procclean.ini")
    assert cfg.services[ran[""]].port == 8080, read(repo / "procclean.ini")


@pytest.mark.parametrize("worker", ["./dist/hubworker > var/worker.log 2>&1 &",
                                    "nohup ./dist/hubworker &", "./dist/hubworker &"])
def test_two_programs_of_one_folder_started_by_two_targets_stay_two(tmp_path, worker):
    """qa-repo-31's proxyhub (modelled on a Go repo's Makefile): `start: ./dist/proxyhub >
    LOG & echo $$! > PIDFILE` and `worker: ./dist/hubworker &` were one service, "worker",
    running ./dist/proxyhub: a run naming no pidfile was put with the group launching
    from the same folder.  Two programs started in the background are two apps; the
    foreground `go run ./cmd/api` beside `./bin/api & echo $$! > api.pid` stays one."""
    (tmp_path / "Makefile").write_text(
        "start:\n\tmkdir -p var\n\t./dist/proxyhub > var/hub.log 2>&1 & echo $$! > "
        "var/hub.pid\nstop:\n\tkill $$(cat var/hub.pid)\nworker:\n\t%s\n" % worker)
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    services, _ = procclean.analyse_makefile(str(tmp_path), "Makefile", info)
    assert sorted((s.fields["command"], s.fields.get("pidfile")) for s in services) == [
        ("./dist/hubworker", None), ("./dist/proxyhub", "var/hub.pid")], worker
    (tmp_path / "Makefile").write_text(
        "dev:\n\tgo run ./cmd/api\nstart:\n\t./bin/api > api.log 2>&1 & echo $$! > "
        "api.pid\nstop:\n\tkill $$(cat api.pid)\n")
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    services, _ = procclean.analyse_makefile(str(tmp_path), "Makefile", info)
    assert [s.fields["command"] for s in services] == ["./bin/api"]


@pytest.mark.parametrize("stop", [
    "stop-mailer:\n\tkill $$(cat api/mailer.pid)\n",
    "stop:\n\tkill $$(cat api/celery.pid)\n"],
    ids=["target", "file"])
def test_a_pidfile_in_a_services_folder_that_names_another_process_is_not_its(
        project, init, stop):
    """The pidfile of another process in the API's folder (a mailer, a worker its own
    tool starts) is not the API's: it became the API's pidfile, and the API was named
    after it, so `make stop-mailer` stopped the API and `start` wrote over that pidfile."""
    repo = project("neither")
    (repo / "api").mkdir()
    (repo / "api" / "requirements.txt").write_text("fastapi\nuvicorn\n")
    (repo / "api" / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    (repo / "Makefile").write_text("dev:\n\tcd api && uvicorn main:app --reload\n\n" + stop)
    code, out, err = init()
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    other = next(n for n in cfg.default_names if n != "backend")
    assert sorted(cfg.default_names) == sorted(["backend", other]), out
    assert not cfg.services["backend"].pidfile.endswith(("mailer.pid", "celery.pid"))
    assert cfg.services[other].pidfile.startswith("api/")
    assert not cfg.services[other].command and not cfg.services[other].pattern


@pytest.mark.parametrize("recipe, command, cwd", [
    ("npm --prefix web run dev &", "npm run dev", "web"),
    ("npm run dev --prefix=web &", "npm run dev", "web"),
    ("nohup npm -C web run dev > web.log 2>&1 &", "npm run dev", "web"),
    ("pnpm -C web dev &", "pnpm dev", "web"),
    ("pnpm --dir web run dev &", "pnpm run dev", "web"),
    ("yarn --cwd web dev &", "yarn dev", "web"),
    ("bun --cwd web run dev &", "bun run dev", "web"),
    ("uv run --directory api uvicorn main:app &", "uv run uvicorn main:app", "api"),
    ("uv --directory api run uvicorn main:app &", "uv run uvicorn main:app", "api"),
    ("cd services && go -C api run . &", "go run .", "services/api"),
    ("uv run --project api uvicorn main:app &", "uv run --project api uvicorn main:app",
     ".")])
def test_a_tools_folder_option_is_where_the_command_runs(tmp_path, recipe, command, cwd):
    """`npm --prefix web run dev` is `cd web && npm run dev` (and so for pnpm -C, yarn
    --cwd, bun --cwd, uv run --directory, go -C): the service runs in that folder, with
    the command as it is run there. (uv's --project names the project, not the folder.)"""
    (tmp_path / "Makefile").write_text("go:\n\t%s\n" % recipe)
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    services, _ = procclean.analyse_makefile(str(tmp_path), "Makefile", info)
    assert [(s.fields["command"], s.fields["cwd"]) for s in services] == [(command, cwd)]


def test_a_recipe_running_the_layouts_apps_from_the_root_is_not_a_second_service(
        project, init):
    """A start run from the root with `uv run --directory backend` and `npm --prefix
    frontend` starts what the layout found in backend/ and frontend/: init wrote backend-2
    and frontend-2 beside backend and frontend (four services: `make dev` started each app
    twice). One of each, run in its folder, with the recipe's ports, and the start and stop
    replaced."""
    need_make()
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text(
        "API_PORT ?= 8003\n"
        "start:\n"
        "\tuv run --directory backend uvicorn main:app --port $(API_PORT)"
        " > backend.log 2>&1 & echo $$! > backend.pid\n"
        "\tnpm --prefix frontend run dev -- --port 5180 > frontend.log 2>&1"
        " & echo $$! > frontend.pid\n"
        "stop:\n\t-kill $$(cat backend.pid) $$(cat frontend.pid)\n"
        "\trm -f backend.pid frontend.pid\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["backend", "frontend"], out
    backend, frontend = cfg.services["backend"], cfg.services["frontend"]
    assert (backend.command, backend.cwd, backend.port) == (
        "uv run uvicorn main:app --port {port}", "backend", 8003)
    assert (frontend.cwd, frontend.port) == ("frontend", 5180)
    assert frontend.command.startswith("npm run dev -- --port {port}"), frontend.command
    assert (backend.pidfile, backend.logfile) == ("backend.pid", "backend.log")
    assert make_n(repo, "start", "stop").stdout.splitlines() == [
        "python3 -S -m procclean start", "python3 -S -m procclean stop"]


FASTAPI_APP = "from fastapi import FastAPI\n\napp = FastAPI()\n"


def test_a_foreground_run_gives_the_layouts_app_its_command_and_port(project, init):
    """The commonest dev Makefile, `run: uvicorn main:app --reload --port 8001`, with the
    layout's main.py: init wrote the layout's command at port 8000 (the recipe's port
    and --reload lost), so `make start` served where the frontend does not look. The
    recipe's command and port, credited to it; the run itself stays make's."""
    need_make()
    repo = project("neither")
    (repo / "main.py").write_text(FASTAPI_APP)
    (repo / "requirements.txt").write_text("fastapi\n")
    (repo / "Makefile").write_text("run:\n\tuvicorn main:app --reload --port 8001\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["backend"], cfg.default_names
    backend = cfg.services["backend"]
    assert (backend.command, backend.port, backend.cwd) == (
        "uvicorn main:app --reload --port {port}", 8001, ".")
    assert "# Makefile:2 (run)\npattern = uvicorn main:app\nport = 8001\n" in read(
        repo / "procclean.ini")
    assert "kept run (line 1): it runs the server in the foreground" in out, out
    assert make_n(repo, "run").stdout.splitlines() == [
        "uvicorn main:app --reload --port 8001"]


def test_subshells_each_run_in_their_own_folder(project, init):
    """`trap 'kill 0' EXIT; (cd api && ...) & (cd web && ...) & wait`: the second subshell
    starts where the recipe runs, not in api/ (init wrote a third service in api/web)."""
    need_make()
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text(
        "dev:\n\ttrap 'kill 0' EXIT; \\\n"
        "\t(cd backend && uvicorn main:app --reload --port 8002) & \\\n"
        "\t(cd frontend && npm run dev) & \\\n\twait\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["backend", "frontend"], out
    backend, frontend = cfg.services["backend"], cfg.services["frontend"]
    assert (backend.command, backend.port, backend.cwd) == (
        "uvicorn main:app --reload --port {port}", 8002, "backend")
    assert frontend.cwd == "frontend" and frontend.command.startswith("npm run dev")


def test_a_subshell_after_cd_starts_in_that_folder(tmp_path):
    """`cd api && (nohup uvicorn ... > api.log 2>&1 & echo $$! > api.pid)`: the `&`
    inside the subshell took the shell back to where the line began, so the pidfile
    was api.pid where the recipe wrote api/api.pid ("two pidfiles" beside the stop
    that reads it: start and stop were kept)."""
    found = services_of(tmp_path, "start:\n\tcd api && (nohup uvicorn main:app "
                        "> api.log 2>&1 & echo $$! > api.pid)\n"
                        "stop:\n\tkill `cat api/api.pid`\n")
    assert list(found) == ["api"], found
    assert (found["api"]["pidfile"], found["api"]["logfile"], found["api"]["cwd"]) == (
        "api/api.pid", "api/api.log", "api")


@pytest.mark.parametrize("recipe", [
    "api-up:\n\tuvicorn api.main:app --reload --port 8021\n",
    "api-up:\n\t.venv/bin/fastapi dev ./api/main.py --port 8021\n"
    "stop:\n\t-lsof -ti :8021 | xargs kill -9 2>/dev/null || true\n"])
def test_a_run_at_the_root_of_the_layouts_module_is_that_app(project, init, recipe):
    """MelonChunk/KeyBento: `uvicorn api.main:app` run at the root serves api/main.py, the
    app the layout runs as `uvicorn main:app` in api/: one service, not api and backend;
    INSA-4IF-Hexanome21/WebSemantique: so does `fastapi dev ./api/main.py`, whose port a
    `stop:` frees."""
    need_make()
    repo = project("neither")
    (repo / "api").mkdir()
    (repo / "api" / "main.py").write_text(FASTAPI_APP)
    (repo / "requirements.txt").write_text("fastapi\n")
    (repo / "Makefile").write_text(recipe)
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["api"], out
    api = cfg.services["api"]
    command = re.search(r"\t(.*) --port 8021", recipe).group(1) + " --port {port}"
    assert (api.command, api.port, api.cwd) == (command, 8021, ".")


ENV_PORT = """\
include .env
export

LOG ?= run/api.log

start:
\t@mkdir -p run
\tnohup uvicorn main:app --port $$PORT > $(LOG) 2>&1 & echo $$! > $(PIDFILE)

stop:
\t@test -f $(PIDFILE) && kill `cat $(PIDFILE)` && rm -f $(PIDFILE) || echo "not running"

dev:
\tuvicorn main:app --reload --port $${PORT:-8000}
"""


def test_a_port_the_makefile_exports_from_its_env_file_is_the_port_setting(project, init):
    """`include .env` + `export`, and a recipe serving on `--port $$PORT`: procclean.ini
    had no port (the backend's 8000), and procclean start sets PORT itself, so `make start`
    served on 8000 instead of .env's 8055. The port is make's value, the command's
    `$PORT` is `{port}`; the `mkdir -p` of the pidfile's folder is what procclean start
    does, so start and stop are replaced."""
    need_make()
    repo = project("neither")
    (repo / "main.py").write_text(FASTAPI_APP)
    (repo / ".env").write_text("PORT=8055\nPIDFILE=run/api.pid\n")
    (repo / "Makefile").write_text(ENV_PORT)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    backend = cfg.services["backend"]
    assert (backend.command, backend.port, backend.pidfile, backend.logfile) == (
        "uvicorn main:app --port {port}", 8055, "run/api.pid", "run/api.log")
    assert make_n(repo, "start", "stop").stdout.splitlines() == [
        "python3 -S -m procclean start", "python3 -S -m procclean stop"]
    assert "kept dev (line 13): it runs the server in the foreground" in out, out


@pytest.mark.parametrize("text, port, command", [
    ("export API_PORT := 8056\nrun:\n\tuvicorn main:app --port $$API_PORT &\n",
     "8056", "uvicorn main:app --port {port}"),
    ("API_PORT = 8057\nexport API_PORT\nrun:\n\tuvicorn main:app --port=$${API_PORT} &\n",
     "8057", "uvicorn main:app --port={port}"),
    ("run:\n\tuvicorn main:app --port $${API_PORT:-8058} &\n",
     "8058", "uvicorn main:app --port {port}"),
    # not exported: the shell does not see make's value
    ("API_PORT = 8059\nrun:\n\tuvicorn main:app --port $$API_PORT &\n",
     None, "uvicorn main:app --port $API_PORT")])
def test_a_port_in_a_shell_variable_is_what_make_exports(tmp_path, text, port, command):
    found = services_of(tmp_path, text)["backend"]
    assert (found.get("port"), found["command"]) == (port, command)


def test_start_makes_the_folders_of_its_pidfile_and_log(tmp_path):
    """What a recipe's `mkdir -p tmp/pids log` did before it started its server."""
    system = procclean.System()
    pidfile = tmp_path / "tmp" / "pids" / "api.pid"
    system.write_pidfile(str(pidfile), os.getpid())
    assert pidfile.read_text() == "%d\n" % os.getpid()
    os.close(system.open_log(str(tmp_path / "log" / "api.log")))
    assert (tmp_path / "log" / "api.log").is_file()


def test_a_sub_make_in_another_folder_is_read_there(project, init):
    """A root Makefile handing each app to its folder's (`$(MAKE) -C backend run`, `cd
    frontend && make dev`): init never looked into backend/Makefile, so procclean.ini had
    the layout's backend at 8000 while the team's runs on 8010. Those recipes are read
    as run in their folder; the root's runs stay make's, and its start and stop, whose
    rules there make nothing first, are procclean's (they were kept: "it runs make in
    another folder")."""
    need_make()
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text(
        "backend:\n\t$(MAKE) -C backend run\n"
        "frontend:\n\tcd frontend && $(MAKE) dev\n"
        "dev:\n\t$(MAKE) -C backend run & $(MAKE) -C frontend dev & wait\n"
        "start:\n\t$(MAKE) -C backend start\n"
        "stop:\n\t$(MAKE) -C backend stop\n")
    (repo / "backend" / "Makefile").write_text(
        "PORT ?= 8010\nrun:\n\tuvicorn main:app --reload --port $(PORT)\n"
        "start:\n\tnohup uvicorn main:app --port $(PORT) > api.log 2>&1"
        " & echo $$! > api.pid\n"
        "stop:\n\tkill $$(cat api.pid)\n")
    (repo / "frontend" / "Makefile").write_text("dev:\n\tnpm run dev -- --port 5190\n")
    original = read(repo / "Makefile")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["backend", "frontend"], out
    backend, frontend = cfg.services["backend"], cfg.services["frontend"]
    assert (backend.command, backend.port, backend.cwd, backend.pidfile) == (
        "uvicorn main:app --port {port}", 8010, "backend", "backend/api.pid")
    assert (frontend.port, frontend.cwd) == (5190, "frontend")
    assert "backend/Makefile:5 (start)" in read(repo / "procclean.ini")
    assert read(repo / "Makefile").startswith(original.split("start:")[0])
    for target in ("backend", "frontend", "dev"):
        assert "kept %s (line" % target in out, out
    assert make_n(repo, "start", "stop", "PORT=9000").stdout.splitlines() == [
        "python3 -S -m procclean start backend --set backend.port=9000",
        "python3 -S -m procclean stop backend --set backend.port=9000"]
    # a rule there that makes something first (`start: install`) keeps the root's
    (repo / "backend" / "Makefile").write_text(
        read(repo / "backend" / "Makefile").replace("start:", "start: install") +
        "install:\n\tpip install -r requirements.txt\n")
    (repo / "Makefile").write_text(original)
    code, out, err = init("--makefile", "--replace", "--force")
    assert "kept start (line 7): it runs make in another folder" in out, out


def test_a_sub_make_of_itself_or_of_another_file_is_not_followed(tmp_path):
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Makefile").write_text(
        "a:\n\t$(MAKE) a\n\tuvicorn m:app --port 8011\n")
    (tmp_path / "api" / "other.mk").write_text("b:\n\tuvicorn m:app --port 8012\n")
    found = services_of(tmp_path, "run:\n\t$(MAKE) -C api a\n"
                        "up:\n\t$(MAKE) -C api -f other.mk b\n")
    assert [(f["port"], f["cwd"]) for f in found.values()] == [("8011", "api")], found


def test_a_bare_python_tool_runs_with_the_projects_venv(project, init):
    """`cd backend && . venv/bin/activate && uvicorn ...`, or a team that activates its venv
    before `make run`: the recipe's bare uvicorn is the venv's. Written as it is, `make
    start` ran whatever uvicorn PATH had (none: `command not found`); the layout alone
    wrote `{python} -m uvicorn`. As `{python} -m uvicorn`, start runs the venv's."""
    need_make()
    repo = project("neither")
    (repo / ".venv" / "bin").mkdir(parents=True)
    os.symlink(sys.executable, str(repo / ".venv" / "bin" / "python"))
    (repo / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (repo / "main.py").write_text(FASTAPI_APP)
    (repo / "Makefile").write_text(
        "run:\n\tuvicorn main:app --reload --port 8013\n"
        "start:\n\tnohup uvicorn main:app --port 8013 > api.log 2>&1 & echo $$! > api.pid\n"
        "stop:\n\tkill $$(cat api.pid); rm -f api.pid\n")
    original = read(repo / "Makefile")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.services["backend"].command == "{python} -m uvicorn main:app --port {port}"
    (repo / "Makefile").write_text(original)    # again, with that procclean.ini kept
    code, out, err = init("--makefile", "--replace")
    assert code == 0 and "kept start" not in out and "kept stop" not in out, (out, err)


def test_no_target_is_added_that_starts_a_service_with_no_command(project, init):
    """A Makefile that only stops its server (the start is a shell script, a systemd unit,
    an IDE's run button): init added `make start`, `make dev`, `make restart` and
    start-server, each failing with "no start command configured". They are left out;
    beside a service that has a command, dev, start and restart start those that have
    one, whenever it runs: they named those of init's day, so a command given to the
    other later (procclean.ini) needed init again."""
    need_make()
    repo = project("neither")
    (repo / "Makefile").write_text("stop:\n\t-kill $$(cat tmp/server.pid)\n"
                                   "\trm -f tmp/server.pid\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert "added to Makefile: status show-processes logs clean force-clean doctor " \
        "stop-server force-clean-server\n" in out, out
    (repo / "Makefile").write_text(
        "start:\n\tnohup uvicorn main:app --port 8011 > api.log 2>&1 & echo $$! > api.pid\n"
        "free-mq:\n\tfuser -k 9000/tcp\n")
    code, out, err = init("--makefile", "--replace", "--force")
    assert code == 0, (out, err)
    assert make_n(repo, "dev", "start", "restart", "stop").stdout.splitlines() == [
        "python3 -S -m procclean dev", "python3 -S -m procclean start backend",  # replaced
        "python3 -S -m procclean restart", "python3 -S -m procclean stop"]
    assert "start-port-9000" not in read(repo / "Makefile")
    for verb in ("start", "dev", "restart"):
        code, out, err = invoke([verb, "--dry-run"], FakeSystem([]), environ={})
        started = re.findall(r"would start (\w[\w-]*)", out)
        assert (code, started, err) == (0, ["backend"], ""), (verb, out)
    with open("procclean.ini", "a") as ini:
        ini.write("command = python3 -m mq --port {port}\n")       # [port-9000] is last
    code, out, err = invoke(["dev", "--dry-run"], FakeSystem([]), environ={})
    assert re.findall(r"would start (\w[\w-]*)", out) == ["backend", "port-9000"], out


RUNS = ("run-api:\n\tcd api && uvicorn main:app --reload --port 8041\n"
        "run-web:\n\tcd web && npm run dev\n"
        "lint:\n\truff check .\n")


def two_apps(repo):
    """api/ (FastAPI, with a Makefile of its own) and web/ (Vite, the same) in repo."""
    for folder, app, makefile in (
            ("api", ("main.py", FASTAPI_APP), "run:\n\tuvicorn main:app --reload --port 8041\n"),
            ("web", ("package.json", '{"scripts": {"dev": "vite"}}'), "dev:\n\tnpm run dev\n")):
        (repo / folder).mkdir()
        (repo / folder / app[0]).write_text(app[1])
        (repo / folder / "Makefile").write_text(makefile)


@pytest.mark.parametrize("dev", [
    "$(MAKE) -j2 run-api run-web", "$(MAKE) -j run-api run-web", "make --jobs=2 run-web run-api",
    "make run-api & make run-web",                         # MelonChunk/KeyBento
    "$(MAKE) run-api & \\\n\t$(MAKE) run-web & \\\n\twait",
    "trap 'kill 0' EXIT; (cd api && uvicorn main:app --reload --port 8041) & "
    "(cd web && npm run dev) & wait",
    "cd api && uvicorn main:app --reload --port 8041 &\n\tpushd web && npm run dev && popd",
    "(trap 'kill 0' INT; (cd api && make run) & (cd web && make dev))",
    "$(MAKE) -C api run & $(MAKE) -C web dev & wait",
    'npx concurrently -k -n api,web "cd api && uvicorn main:app --reload --port 8041" '
    '"cd web && npm run dev"'])
def test_a_dev_target_running_several_apps_at_once_becomes_procclean_dev(project, init, dev):
    """`make -j2 run-api run-web`, `trap 'kill 0' EXIT; ... & ... & wait`, `concurrently`:
    the stack in one terminal, what `procclean dev` does, was kept (as if one server ran in
    the foreground), so Ctrl-C left an app running and its port taken. Replaced; the runs
    it makes stay make's, and procclean.ini has what they run."""
    need_make()
    repo = project("neither")
    two_apps(repo)
    (repo / "Makefile").write_text(RUNS + "dev:\n\t%s\n" % dev)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert re.search(r"replaced dev \(line 7", out), out
    assert make_n(repo, "dev").stdout.splitlines() == ["python3 -S -m procclean dev"]
    assert make_n(repo, "run-api").stdout == "cd api && uvicorn main:app --reload --port 8041\n"
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["api", "web"], out
    api, web = cfg.services["api"], cfg.services["web"]
    assert (api.command, api.cwd, api.port) == (
        "uvicorn main:app --reload --port {port}", "api", 8041)
    assert (web.command, web.cwd) == (VITE_DEV, "web")


@pytest.mark.parametrize("venv, activate, replaced", [
    ("api/.venv", "cd api && source .venv/bin/activate && ", True),
    ("api/venv", "cd api && . venv/bin/activate; ", True),
    ("venv", "source venv/bin/activate && cd api && ", True),
    ("env", "source env/bin/activate && cd api && ", "../env/bin/")])   # not procclean's
def test_activating_the_venv_procclean_runs_with_is_no_work_of_its_own(
        project, init, venv, activate, replaced):
    """`source .venv/bin/activate && uvicorn ...`: the run was kept as other work, and so
    was the dev session that makes it; procclean runs every service with the project's
    venv activated (its bin first on PATH, VIRTUAL_ENV), so that activation is its own.
    Another venv (env/, which procclean does not look for) runs the command from its bin:
    the run was kept, and the service had no venv at all."""
    need_make()
    repo = project("neither")
    two_apps(repo)
    fake_venv(repo / venv)
    (repo / "Makefile").write_text(RUNS.replace("cd api && ", activate) +
                                   "dev:\n\t$(MAKE) -j2 run-api run-web\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert re.search(r"replaced dev \(line 7", out), out
    api = procclean.load_config(folder=str(repo), environ={}).services["api"]
    assert (api.command, api.cwd) == (
        "{python} -m uvicorn main:app --reload --port {port}" if replaced is True else
        replaced + "uvicorn main:app --reload --port {port}", "api")


def test_a_dev_session_of_sub_makes_still_takes_their_port_variable(project, init):
    """`$(MAKE) -C api run & $(MAKE) -C web dev & wait`, api/Makefile's run on `--port
    $(PORT)` (`PORT ?= 8041`): `make dev PORT=9000` served the API on 9000 (make passes
    it on); replaced, procclean dev served 8041 whatever was said."""
    need_make()
    repo = project("neither")
    two_apps(repo)
    (repo / "api" / "Makefile").write_text(
        "PORT ?= 8041\nrun:\n\tuvicorn main:app --reload --port $(PORT)\n")
    (repo / "Makefile").write_text("dev:\n\t$(MAKE) -C api run & $(MAKE) -C web dev & wait\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert make_n(repo, "dev").stdout.split() == "python3 -S -m procclean dev".split()
    assert make_n(repo, "dev", "PORT=9000").stdout.split() == \
        "python3 -S -m procclean dev --set backend.port=9000".split(), out


def test_a_dev_session_of_targets_that_run_make_in_their_folders(project, init):
    """`backend: cd backend && $(MAKE) run` and `dev: kill-all` + `$(MAKE) -j 2 backend
    frontend`: a run through another folder's make was no run (make elsewhere), so the
    session was kept. It is one; kill-all, a prerequisite, still runs first."""
    need_make()
    repo = project("neither")
    two_apps(repo)
    (repo / "Makefile").write_text(
        "run-api:\n\tcd api && $(MAKE) run\nrun-web:\n\t$(MAKE) -C web dev\n"
        "free:\n\t-lsof -ti:8041 | xargs kill\n"
        "dev: free\n\t@echo starting\n\t@$(MAKE) -j 2 run-api run-web\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert make_n(repo, "dev").stdout.splitlines()[-1] == "python3 -S -m procclean dev", out
    assert "kept run-api (line 1): it runs the server in the foreground" in out, out


@pytest.mark.parametrize("dev", [
    "cd web && npm run dev & cd api && uvicorn main:app --reload --port 8041 && fg",
    "(cd api && uvicorn main:app --reload --port 8041) & cd web && npm run dev; fg"])
def test_fg_after_a_server_run_with_amp_is_the_dev_session(project, init, dev):
    """sail-host/cloud's `run: cd web && npm run dev & ~/go/bin/air && fg`: `fg` (no job
    control in make's shell: it waits, or fails once the foreground run ends) was
    other work, so the session was kept; it is procclean dev's, which waits for both."""
    need_make()
    repo = project("neither")
    two_apps(repo)
    (repo / "Makefile").write_text("dev:\n\t%s\n" % dev)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert make_n(repo, "dev").stdout.splitlines() == ["python3 -S -m procclean dev"], out


@pytest.mark.parametrize("runs, dev", [
    (RUNS, "$(MAKE) run-api; $(MAKE) run-web"),    # the first never ends: web never runs
    (RUNS, "$(MAKE) -j2 run-api lint"),             # a task beside the server
    (RUNS.replace("run-web:", "run-web: lint"), "$(MAKE) -j2 run-api run-web"),  # lints first
    (RUNS, "$(MAKE) run-api & $(MAKE) -C web dev & $(MAKE) -C docs serve & wait"),  # no docs/
    (RUNS, "uvicorn main:app --port 8041 & cd web && npm run dev & wait"),  # not api's command
    (RUNS, "docker compose up -d db & $(MAKE) run-api"),     # it ends at once: dev would too
    (RUNS, "npm run build & $(MAKE) run-api")])
def test_a_dev_session_is_replaced_only_when_procclean_dev_runs_all_of_it(project, init, runs,
                                                                          dev):
    need_make()
    repo = project("neither")
    two_apps(repo)
    (repo / "Makefile").write_text(runs + "dev:\n\t%s\n" % dev)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert re.search(r"kept dev \(line 7\)", out), out


def test_a_targets_prerequisites_on_a_line_of_their_own_are_its_own(project, init):
    """`run-web: lint` on a line apart from run-web's recipe: make lints before the web
    app runs, but init did not see it, and replaced `dev: $(MAKE) -j2 run-api run-web`
    with procclean dev, which lints nothing.  `restart: stop` and `restart: start` on
    two lines were both given a recipe: make rejected the new Makefile ("overriding
    recipe") and nothing was replaced.  The session is kept; restart stays as it is,
    making stop and start, each replaced."""
    need_make()
    repo = project("neither")
    two_apps(repo)
    (repo / "Makefile").write_text(
        RUNS + "run-web: lint\n" + "dev:\n\t$(MAKE) -j2 run-api run-web\n"
        "start:\n\tcd api && (nohup uvicorn main:app --port 8041 > api.log 2>&1 & "
        "echo $$! > api.pid)\nstop:\n\tkill `cat api/api.pid`\n"
        "restart: stop\nrestart: start\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert re.search(r"kept dev \(line 8\)", out), out
    assert make_n(repo, "dev").stdout.splitlines()[0].endswith("make -j2 run-api run-web")
    assert make_n(repo, "restart").stdout.splitlines() == [
        "python3 -S -m procclean stop api", "python3 -S -m procclean start api"], out


# Dev scripts a Makefile's `dev:` runs: as robertplawski/unchained-launcher's dev.sh
# (7973dfabc3d7f2089d0d90c87839338f5fc6ec28: no shebang, `npm run dev &` in frontend/,
# then uvicorn in the foreground over continued lines), and as a template's
# scripts/dev.sh (`set -e`, `trap 'kill 0' EXIT`, two servers with `&`, `wait`).
DEV_SH = ("cd frontend\nnpm run dev &\ncd ..\nuvicorn \\\n  --reload \\\n"
          "  --port 8000 \\\n  --reload-dir . \\\n  backend.main:app\n")
DEV_TRAP = ("#!/usr/bin/env bash\nset -euo pipefail\ncd \"$(dirname \"$0\")/..\"\n"
            "trap 'kill 0' EXIT\n\n# the API, then the web app\n"
            "uvicorn backend.main:app --reload --port 8000 &\n"
            "npm --prefix frontend run dev &\nwait\n")


# ...and as scripts that put their work in a function: `main "$@"` at the end.
DEV_MAIN = ("#!/bin/sh\nmain() {\n  uvicorn backend.main:app --reload --port 8000 &\n"
            "  npm --prefix frontend run dev\n}\n\nmain \"$@\"\n")


@pytest.mark.parametrize("script, text, recipe", [
    ("dev.sh", DEV_SH, "./dev.sh"), ("scripts/dev.sh", DEV_TRAP, "@./scripts/dev.sh"),
    ("scripts/dev.sh", DEV_MAIN, "./scripts/dev.sh --fast"),
    ("bin/dev", DEV_TRAP.replace("bash", "sh"), "bin/dev"),
    ("scripts/dev.sh", DEV_TRAP.replace("#!/usr/bin/env bash\n", ""),
     "bash scripts/dev.sh")])
def test_a_dev_script_the_recipe_runs_is_read_as_its_shell_runs_it(project, init, script,
                                                                   text, recipe):
    """`dev: ./scripts/dev.sh`, a plain shell script of the repo running the API and the
    web app at once: its servers were not seen (the recipe was other work, kept), so init
    wrote no service for the API and `make start` had nothing to run it with.  The
    script is read where it runs, as its shell runs it: two services, and the dev
    session is procclean dev."""
    need_make()
    repo = project("neither")
    (repo / "backend").mkdir()
    (repo / "backend" / "main.py").write_text(FASTAPI_APP)
    (repo / "frontend").mkdir()
    (repo / "frontend" / "package.json").write_text('{"scripts": {"dev": "vite"}}')
    (repo / script).parent.mkdir(exist_ok=True)
    (repo / script).write_text(text)
    (repo / "Makefile").write_text("dev:\n\t%s\n" % recipe)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert make_n(repo, "dev").stdout.splitlines() == ["python3 -S -m procclean dev"], out
    cfg = procclean.load_config(folder=str(repo), environ={})
    ran = sorted((s.command.split()[0], s.cwd, s.port, "backend.main:app" in s.command)
                 for s in cfg.services.values() if s.name in cfg.default_names)
    # (a dev.sh at the root is a document init reads too: uvicorn as its README commands)
    server = "{python}" if script in procclean.DOC_FILES else "uvicorn"
    assert ran == [("npm", "frontend", 5173, False), (server, ".", 8000, True)], \
        read(repo / "procclean.ini")
    assert "%s:" % script in read(repo / "procclean.ini")        # credited to the script


def test_a_dev_script_given_a_backslash_is_read(tmp_path):
    """The words a recipe gives its script go in where it says "$@", as they are: a
    backslash among them (`--reload-exclude 'a\\d*'`) ended init in an internal error."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "dev.sh").write_text('#!/bin/sh\nuvicorn main:app "$@"\n')
    found = services_of(tmp_path, "dev:\n\t./scripts/dev.sh --reload-exclude 'a\\d*'\n")
    assert found["backend"]["command"] == "uvicorn main:app --reload-exclude 'a\\d*'"


def test_a_script_started_in_the_background_is_on_its_servers_port(tmp_path):
    """A public Makefile (code index file 8659210617): `./scripts/start-backend.sh >
    $(BACKEND_LOG) 2>&1 & echo $$! > $(BACKEND_PID)`, the script ending in `exec uvicorn
    ... --port 8080`, and `stop-ports` freeing 3000 and 8080: the backend had no port
    (status never looked at 8080) and 8080 was a service of its own with no command."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "start-backend.sh").write_text(
        '#!/bin/sh\ncd "$(dirname "$0")/../backend"\n'
        "exec uvicorn app.main:app --host 0.0.0.0 --port 8080\n")
    found = services_of(tmp_path, "PIDS := .pids\nstart-backend:\n\t@mkdir -p $(PIDS)\n"
                        "\t./scripts/start-backend.sh > $(PIDS)/backend.log 2>&1 & "
                        "echo $$! > $(PIDS)/backend.pid\n"
                        "stop-ports:\n\t@for port in 8080; do \\\n"
                        "\t\tkill $$(lsof -tiTCP:$$port -sTCP:LISTEN); done\n")
    assert found == {"backend": {
        "command": "./scripts/start-backend.sh", "cwd": ".", "port": "8080",
        "pidfile": ".pids/backend.pid", "logfile": ".pids/backend.log",
        "pattern": "(^|[ /])start-backend\\.sh( |$)"}}, found


@pytest.mark.parametrize("lock, recipe, command", [
    (None, "npm run dev -- --host 127.0.0.1",
     "npm run dev -- --host 127.0.0.1 --port {port} --strictPort"),
    ("pnpm-lock.yaml", "pnpm run dev --host", "pnpm run dev --host --port {port} --strictPort"),
    (None, "npm run dev --silent", "npm run dev --silent -- --port {port} --strictPort")])
def test_a_recipes_dev_server_with_words_of_its_own_moves_with_the_port(
        project, init, lock, recipe, command):
    """megaborsch/ai-sandbox's scripts/start-frontend.sh (ad431d65): `nohup npm run dev --
    --host 127.0.0.1 > log &`. The recipe's `npm run dev` gets Vite's port flag, but not
    this one: the port setting and port_offset did not move it (a second checkout's
    frontend on the first one's 5173)."""
    need_make()
    repo = project("neither")
    (repo / "frontend").mkdir()
    (repo / "frontend" / "package.json").write_text('{"scripts": {"dev": "vite"}}')
    if lock:
        (repo / "frontend" / lock).write_text("")
    (repo / "Makefile").write_text("start-frontend:\n\tcd frontend && nohup %s > ../vite.log "
                                   "2>&1 & echo $$! > vite.pid\n" % recipe)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.services["frontend"].command == command, read(repo / "procclean.ini")
    assert cfg.services["frontend"].port == 5173
    assert "replaced start-frontend" in out, out


def test_a_recipes_npm_run_start_is_npm_start_with_the_port_flag(project, init):
    """A public Makefile (code index file 49289005003): `run-frontent: cd frontend && npm
    run start`, the start script `vite`. init's own run is `npm start -- --port {port}
    --strictPort`; the recipe's `npm run start`, the same script, kept no flag, so the
    port setting and port_offset did not move it."""
    need_make()
    repo = project("neither")
    (repo / "frontend").mkdir()
    (repo / "frontend" / "package.json").write_text('{"scripts": {"start": "vite"}}')
    (repo / "Makefile").write_text("run-ui:\n\tcd frontend && npm run start\n")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.services["ui"].command == "npm run start -- --port {port} --strictPort", \
        read(repo / "procclean.ini")


def test_init_makefile_adds_the_targets_of_the_kept_procclean_ini(project, init):
    """A second `init --makefile --replace` of a repo whose first one replaced every
    recipe (tests/data/makefiles/scripts-state-dir-pids: services api and web): with
    procclean.ini kept, it added start-backend ... force-clean-frontend for the layout's
    apps, and `make start-backend` ran the built-in backend (`python3 main.py`, exit 2)."""
    need_make()
    repo = project("neither")
    (repo / "backend").mkdir()
    (repo / "backend" / "main.py").write_text(FASTAPI_APP)
    (repo / "procclean.ini").write_text(
        "[procclean]\nservices = api\n\n[api]\ncommand = uvicorn backend.main:app\n")
    (repo / "Makefile").write_text("up:\n\t@echo up\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert "start-api:" in read(repo / "Makefile"), out
    assert "backend" not in read(repo / "Makefile"), out


def test_a_scripts_paths_in_its_variables_are_read(tmp_path):
    """megaborsch/ai-sandbox's scripts/start-backend.sh (ad431d65), run by `make
    start-backend`: `RUN_DIR="$ROOT/.run"`, `PID_FILE="$RUN_DIR/backend.pid"`, `echo $! >
    "$PID_FILE"`. init wrote `pidfile = $PID_FILE` (a file of that name), gave the
    frontend's script's `$PID_FILE` to the backend too, and a pattern (`\\$PY.*uvicorn`)
    that no process matches. A variable the script set to a known value is that value;
    its venv's python, else one found on PATH (`command -v python3`), is python3 (which
    init runs with the venv where there is one)."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "start-api.sh").write_text(
        '#!/usr/bin/env bash\nROOT="$(cd "$(dirname "$0")/.." && pwd)"\nRUN="$ROOT/.run"\n'
        'PID_FILE="$RUN/api.pid"\nPY="$ROOT/.venv/bin/python"\n'
        'if [ ! -x "$PY" ]; then PY="$(command -v python3)"; fi\ncd "$ROOT/api"\n'
        'nohup "$PY" -m uvicorn app.main:app --port 8000 > "$ROOT/logs/api.log" 2>&1 &\n'
        'echo $! > "$PID_FILE"\n')
    found = services_of(tmp_path, "start-api:\n\t@bash scripts/start-api.sh\n")
    assert found == {"api": {
        "command": "python3 -m uvicorn app.main:app --port 8000",
        "cwd": "api", "pidfile": ".run/api.pid", "logfile": "logs/api.log", "port": "8000",
        "pattern": "uvicorn app\\.main:app"}}, found


@pytest.mark.parametrize("text", [
    DEV_TRAP.replace("wait", "npm --prefix frontend install\nwait"),    # more work
    DEV_TRAP.replace("uvicorn", 'cd "$ROOT" && uvicorn'),               # a folder unknown
    "#!/usr/bin/env python3\nimport subprocess\nsubprocess.run('uvicorn x:app')\n",
    # what runs depends on its words: every branch read as one run would be a mix
    "#!/bin/sh\ncase \"$1\" in\n  prod) gunicorn backend.main:app -w 4 ;;\n"
    "  *) uvicorn backend.main:app --reload & npm --prefix frontend run dev; wait ;;\nesac\n",
    "#!/bin/sh\nrun_dev() {\n  uvicorn backend.main:app --reload & npm --prefix frontend "
    "run dev\n}\nrun_prod() {\n  gunicorn backend.main:app\n}\nrun_${1:-dev}\n"])
def test_a_dev_script_doing_more_or_in_places_unknown_is_kept(project, init, text):
    need_make()
    repo = project("neither")
    (repo / "frontend").mkdir()
    (repo / "frontend" / "package.json").write_text('{"scripts": {"dev": "vite"}}')
    (repo / "scripts").mkdir()
    (repo / "scripts" / "dev").write_text(text)
    (repo / "Makefile").write_text("dev:\n\t./scripts/dev\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert read(repo / "Makefile").startswith("dev:\n\t./scripts/dev\n"), out
    assert "kept dev (line 1)" in out, out


@pytest.mark.parametrize("fixture, recipe, call", [
    ("procfile-gunicorn-celery", "run:\n\thoncho start", "dev web worker beat"),  # pawelad/nba-rank
    ("procfile-gunicorn-celery", "dev:\n\tbundle exec foreman start", "dev"),
    ("procfile-gunicorn-celery", "up:\n\tovermind start", "dev web worker beat"),
    ("procfile-gunicorn-celery", "web-dev:\n\thoncho start web", "dev web"),
    ("django-procfile-dev", "dev:\n\thoncho -f Procfile.dev start", "dev"),
    ("django-procfile-dev", "dev:\n\tforeman start -f Procfile.dev", "dev"),
    ("django-procfile-dev", "dev:\n\theroku local -f Procfile.dev web", "dev web")])
def test_a_procfile_runner_becomes_procclean_dev_of_its_services(project, init, fixture,
                                                                 recipe, call):
    """`run: honcho start`, `foreman start -f Procfile.dev`, `overmind start`: the Procfile's
    entries at once in one terminal, what `procclean dev` does with the services init reads
    from that same Procfile; it was kept as other work."""
    need_make()
    repo = project(fixture)
    (repo / "Makefile").write_text(recipe + "\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    target = recipe.split(":")[0]
    assert make_n(repo, target).stdout.splitlines() == ["python3 -S -m procclean " + call]


@pytest.mark.parametrize("fixture, recipe", [
    ("django-procfile-dev", "honcho start"),  # Procfile: not the Procfile.dev init read
    ("procfile-gunicorn-celery", "honcho start -f Procfile.dev"),
    ("procfile-gunicorn-celery", "honcho start -e .env.local"),
    ("procfile-gunicorn-celery", "honcho start api"),       # no such entry
    ("procfile-gunicorn-celery", "honcho run web"),
    # what the runner reads and procclean does not: variables, its own options (another
    # first port: `.foreman`'s `port: 3000`, `.overmind.env`'s OVERMIND_PORT)
    ("procfile-gunicorn-celery", ".env:honcho start"),
    ("procfile-gunicorn-celery", ".foreman:foreman start"),
    ("procfile-gunicorn-celery", ".forego:forego start"),
    ("procfile-gunicorn-celery", ".overmind.env:overmind start")])
def test_a_procfile_runner_doing_more_than_procclean_dev_is_kept(project, init, fixture,
                                                                 recipe):
    need_make()
    repo = project(fixture)
    if recipe.startswith("."):
        name, recipe = recipe.split(":")
        (repo / name).write_text("OVERMIND_PORT=3000\n" if "overmind" in name else
                                 "port: 3000\n")
    (repo / "Makefile").write_text("dev:\n\t%s\n" % recipe)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert read(repo / "Makefile").startswith("dev:\n\t%s\n" % recipe), out
    assert "replaced" not in out, out
    assert re.search(r"kept dev \(line 1\): it (runs another Procfile, entry or option than "
                     r"procclean dev, which runs Procfile|reads \.\w+(\.env)?, whose settings"
                     r" procclean dev does not take)", out), out


def test_package_scripts_run_together_are_a_service_each(project, init, tmp_path):
    """`npm run start:server:dev & npm run start:frontend:dev` after a trap: the second
    was no server (only dev, start, serve, preview were), so the session stayed make's,
    and the first, folded with the layout's frontend by its folder, was that frontend's
    command on the frontend's port. Each script is a service, named by its script."""
    need_make()
    repo = project("neither")
    (repo / "package.json").write_text(json.dumps({"scripts": {
        "build": "tsc", "start:server:dev": "nodemon server/main.ts",
        "start:frontend:dev": "vite --port 5180"}}))
    (repo / "Makefile").write_text(
        "build:\n\tnpm run build\nrun: build\n\ttrap 'kill $$(jobs -p)' INT TERM; \\\n"
        "\tnpm run start:server:dev & \\\n\tnpm run start:frontend:dev\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert make_n(repo, "run").stdout.splitlines() == [
        "npm run build", "python3 -S -m procclean dev server frontend"], out
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert [(n, cfg.services[n].command, cfg.services[n].port) for n in cfg.default_names] \
        == [("server", "npm run start:server:dev", None),
            ("frontend", "npm run start:frontend:dev", 5180)]
    assert services_of(tmp_path, "seed:\n\tnpm run dev:seed\n") == {}


def test_django_s_other_servers_are_services_of_their_own(project, init):
    """Afani97/Timary's `python manage.py runserver & python manage.py qcluster`, with
    django-extensions' runserver_plus (weshy007/plumbing-company): runserver_plus served
    nothing, and qcluster run from the same manage.py was folded into the site: one
    service, the worker's name on the site's command. Two, and the session is `dev`."""
    need_make()
    repo = project("neither")
    (repo / "manage.py").write_text("import django\n")
    site = "python3 manage.py runserver_plus 0.0.0.0:8051 --cert-file dev.crt"
    (repo / "Makefile").write_text(
        "serve:\n\t%s\nqueue:\n\tpython3 manage.py qcluster\n"
        "run:\n\t%s & python3 manage.py qcluster\n" % (site, site))
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert [(n, cfg.services[n].command, cfg.services[n].port) for n in cfg.default_names] \
        == [("backend", site.replace("8051", "{port}"), 8051),
            ("queue", "python3 manage.py qcluster", None)], out
    assert make_n(repo, "run").stdout.splitlines() == [
        "python3 -S -m procclean dev backend queue"], out


def test_a_sub_make_that_runs_procclean_already_is_no_service(tmp_path):
    """backend/Makefile adopted first (`start: @$(PROCCLEAN) $@`), then the root's `api:
    $(MAKE) -C backend start`: the sub-make's recipe was read as a server run by python,
    procclean itself (`python3 -S procclean.py start` as service api's command)."""
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "Makefile").write_text(
        "PROCCLEAN ?= python3 -S ../procclean.py\nstart:\n\t@$(PROCCLEAN) $@ $(ARGS)\n")
    assert services_of(tmp_path, "api:\n\t$(MAKE) -C backend start\n") == {}


@pytest.mark.parametrize("recipe, port", [
    ("cd backend && go run ./cmd/server", None),     # RuffLogix/computer-network-project
    ("cd backend && uvicorn app:api --reload", 8000), ("cd backend && flask run", 5000),
    ("cd backend && python main.py", 8000)])       # the built-in's own command: its port
def test_a_recipe_s_server_named_like_a_built_in_has_its_own_port(project, init, recipe,
                                                                   port):
    """`backend: cd backend && go run ./cmd/server`: the service, named by its target, took
    the built-in backend's port 8000, so procclean passed PORT=8000 and the Go server,
    which make ran on its own 8080, moved there (its frontend's proxy pointed at 8080).
    It has the port its server has: none said, or the tool's default."""
    need_make()
    repo = project("neither")
    (repo / "backend").mkdir()
    (repo / "Makefile").write_text("backend:\n\t%s\n" % recipe)
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    assert procclean.load_config(folder=str(repo), environ={}).services["backend"].port \
        == port, read(repo / "procclean.ini")


def test_drafts_are_no_daemon_and_another_port_is_another_app(tmp_path):
    """`hugo server -D` and `jekyll serve -D` (drafts) were read as servers that put
    themselves in the background (gunicorn's -D): kept, and `-D` dropped from their
    command; and hugo's foreground run on 1414 was folded into jekyll's on 4001."""
    found = services_of(tmp_path, "serve:\n\thugo server -D --port 1414\n"
                        "watch:\n\tbundle exec jekyll serve -D --port 4001 &\n")
    assert sorted((f["command"], f["port"]) for f in found.values()) == [
        ("bundle exec jekyll serve -D --port 4001", "4001"),
        ("hugo server -D --port 1414", "1414")], found
    found = services_of(tmp_path, "up:\n\tbundle exec jekyll serve -B --port 4001\n")
    assert all("command" not in f for f in found.values()), found     # -B: it detaches


def test_a_daemons_command_is_the_service_s_without_its_flag(tmp_path):
    """gunicorn --daemon (and rails server -d) put themselves in the background, which
    procclean start cannot carry, so the recipe stays make's; but procclean.ini had no
    command at all, so `make start-gunicorn` and `make dev` failed. Without the flag it
    is the same server, staying procclean's child, its pidfile the one it writes."""
    found = services_of(tmp_path, (
        "start:\n\tgunicorn --daemon --pid tmp/app.pid --bind 127.0.0.1:8200 "
        "--access-logfile tmp/access.log wsgi:app\n"
        "reload:\n\tkill -HUP $$(cat tmp/app.pid)\n"
        "stop:\n\tkill -TERM $$(cat tmp/app.pid)\n"))
    assert found == {"gunicorn": {
        "command": "gunicorn --pid tmp/app.pid --bind 127.0.0.1:8200 "
                   "--access-logfile tmp/access.log wsgi:app",
        "cwd": ".", "pattern": "gunicorn.*wsgi:app", "pidfile": "tmp/app.pid",
        "port": "8200"}}
    found = services_of(tmp_path, "up:\n\tbin/rails server -d -p 3001\n"
                        "down:\n\tkill $$(cat tmp/pids/server.pid)\n")
    assert found["rails"]["command"] == "bin/rails server -p 3001", found
    # celery multi manages nodes of its own: no one flag makes it a foreground worker
    assert "command" not in services_of(tmp_path, (
        "w:\n\tcelery multi start 2 -A proj --pidfile=run/%n.pid\n"
        "s:\n\tcelery multi stopwait 2 --pidfile=run/%n.pid\n"
        "k:\n\tkill $$(cat run/w1.pid)\n")).get("w1", {})


def test_a_server_given_no_module_serves_what_it_finds_in_its_folder(project, init):
    """`cd api && uv run fastapi dev` serves api/app/main.py as fastapi-cli finds it: the
    layout's app, one service, not api and backend."""
    need_make()
    repo = project("neither")
    (repo / "api" / "app").mkdir(parents=True)
    (repo / "api" / "app" / "__init__.py").write_text("")
    (repo / "api" / "app" / "main.py").write_text(FASTAPI_APP)
    (repo / "api" / "pyproject.toml").write_text(
        '[project]\nname = "api"\ndependencies = ["fastapi[standard]"]\n')
    (repo / "Makefile").write_text("api:\n\tcd api && uv run fastapi dev --port 8041\n")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["api"], out
    api = cfg.services["api"]
    assert (api.command, api.port, api.cwd) == (
        "uv run fastapi dev --port {port}", 8041, "api")


def test_uvicorns_app_dir_is_where_its_module_is(project, init):
    """`uvicorn --app-dir backend app.main:app` run at the root serves backend/app/main.py,
    the layout's app: one service, not a second."""
    need_make()
    repo = project("neither")
    (repo / "backend" / "app").mkdir(parents=True)
    (repo / "backend" / "app" / "__init__.py").write_text("")
    (repo / "backend" / "app" / "main.py").write_text(FASTAPI_APP)
    (repo / "backend" / "requirements.txt").write_text("fastapi\n")
    (repo / "Makefile").write_text(
        "dev-backend:\n\tuvicorn --app-dir backend app.main:app --reload --port 8033\n")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["backend"], out
    assert (cfg.services["backend"].port, cfg.services["backend"].cwd) == (8033, ".")


def test_a_replaced_rule_still_takes_the_port_a_make_variable_gave(project, init):
    """`PORT ?= 8000` and `--port $(PORT)`: `make start PORT=8091` (or PORT in the
    environment) served on 8091; replaced, procclean started on 8000 whatever the user
    said. The replaced rules pass the variable on when the user, not the Makefile, set
    it."""
    need_make()
    repo = project("neither")
    (repo / "main.py").write_text(FASTAPI_APP)
    (repo / "Makefile").write_text(
        "PORT ?= 8000\nstart:\n\tnohup uvicorn main:app --port $(PORT) > api.log 2>&1"
        " & echo $$! > api.pid\nstop:\n\tkill $$(cat api.pid); rm -f api.pid\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert make_n(repo, "start", "stop").stdout.splitlines() == [
        "python3 -S -m procclean start", "python3 -S -m procclean stop"]
    assert make_n(repo, "start", "stop", "PORT=8091").stdout.splitlines() == [
        "python3 -S -m procclean start --set backend.port=8091",
        "python3 -S -m procclean stop --set backend.port=8091"]
    env = dict((k, v) for k, v in os.environ.items()
               if not k.startswith(("MAKE", "MFLAGS")))
    env["PORT"] = "8092"
    r = subprocess.run(["make", "-n", "start"], cwd=str(repo), env=env, timeout=30,
                       stdout=subprocess.PIPE, universal_newlines=True)
    assert r.stdout.split() == \
        "python3 -S -m procclean start --set backend.port=8092".split()
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.services["backend"].port == 8000


def test_a_port_variable_only_init_s_environment_had_is_not_passed_empty(
        project, init, monkeypatch):
    """`--port $(APIPORT)` with APIPORT exported where init ran: procclean.ini got its
    8123, and the replaced `make start`, where it was not set, passed `--set
    backend.port=` (empty): an undefined variable's origin is no Makefile's value."""
    need_make()
    repo = project("neither")
    (repo / "main.py").write_text(FASTAPI_APP)
    (repo / "Makefile").write_text(
        "start:\n\tnohup uvicorn main:app --port $(APIPORT) > api.log 2>&1"
        " & echo $$! > api.pid\nstop:\n\tkill $$(cat api.pid)\n")
    monkeypatch.setenv("APIPORT", "8123")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    monkeypatch.delenv("APIPORT")
    assert make_n(repo, "start").stdout.splitlines() == ["python3 -S -m procclean start"]
    assert make_n(repo, "start", "APIPORT=9000").stdout.splitlines() == [
        "python3 -S -m procclean start --set backend.port=9000"]
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.services["backend"].port == 8123


def test_a_rails_server_is_one_service_with_its_own_pidfile_apart(project, init):
    """A Rails repo: Procfile.dev's web, `server: bin/rails s -p 3002` and a stop reading
    tmp/pids/server.pid were two services (server from the pidfile, server-2 from the
    command, started on the same port by `make dev`). One, whose pidfile is the one the
    stop reads; Rails, which refuses to start while that file names a live process (its
    own too), is told its own with -P. A second init finds it all carried."""
    need_make()
    repo = project("neither")
    (repo / "Gemfile").write_text("source 'https://rubygems.org'\n")
    (repo / "Procfile.dev").write_text("web: bin/rails server -p 3002\n"
                                       "css: bin/rails tailwindcss:watch\n")
    original = ("server:\n\tbin/rails s -p 3002\n"
                "stop:\n\t@if [ -f tmp/pids/server.pid ]; then "
                "kill `cat tmp/pids/server.pid`; fi\n")
    (repo / "Makefile").write_text(original)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["server", "css"], out
    server = cfg.services["server"]
    assert (server.command, server.pidfile, server.port) == (
        "bin/rails s -p {port} -P tmp/pids/rails-server.pid", "tmp/pids/server.pid", 3002)
    # `rails s` is not Rails' other processes of the project (rails solid_queue:start)
    assert re.search(server.pattern,
                     "ruby bin/rails s -p 3002 -P tmp/pids/rails-server.pid")
    assert not re.search(server.pattern, "ruby bin/rails solid_queue:start")
    assert "replaced stop (line 3" in out, out
    (repo / "Makefile").write_text(original)
    code, out, err = init("--makefile", "--replace")
    assert code == 0 and "replaced stop (line 3" in out, (out, err)


def test_a_rails_server_given_no_port_is_on_3000_and_moves_with_port(project, init):
    """sandonemaki/to_do_app_v2's `up: bundle exec rails s -b 0.0.0.0` (and `rails s -b
    0.0.0.0 -d` after a kill of tmp/pids/server.pid's PID), no config/puma.rb: init wrote
    `port =` (none: status never looked at 3000), and `-b 0.0.0.0` was taken for a port
    named, so start warned that the port setting and port_offset would not move it,
    though rails server listens on $PORT, else 3000."""
    need_make()
    repo = project("neither")
    (repo / "Gemfile").write_text("source 'https://rubygems.org'\ngem 'rails'\n")
    (repo / "Makefile").write_text("up:\n\tbundle exec rails s -b 0.0.0.0\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    server = cfg.services["backend"]
    assert (server.command, server.port) == (
        "bundle exec rails s -b 0.0.0.0 -P tmp/pids/rails-server.pid", 3000), out
    assert procclean.port_follows(server)


RUN_DIR = """\
RUN_DIR := $(CURDIR)/.run
PIDFILE ?= $(RUN_DIR)/web.pid
APP_PORT ?= 8075

start:
\t@mkdir -p $(RUN_DIR)
\t@if [ -f $(PIDFILE) ] && kill -0 $$(cat $(PIDFILE)) 2>/dev/null; then \\
\t\techo "already running"; \\
\telse \\
\t\tnohup python3 -m http.server $(APP_PORT) --bind 127.0.0.1 > $(RUN_DIR)/web.log 2>&1 \\
\t\t  & echo $$! > $(PIDFILE); \\
\tfi

stop:
\t@if [ -f $(PIDFILE) ]; then kill $$(cat $(PIDFILE)) && rm -f $(PIDFILE); fi
"""


def test_a_pidfile_in_a_run_folder_and_a_positional_port_are_carried(project, init):
    """A start that makes $(CURDIR)/.run, checks `kill -0` before it starts, and serves
    `python3 -m http.server $(APP_PORT)`: the positional port was not read (the service
    claimed 8000, `make start APP_PORT=8076` could not move it). Port 8075, `{port}` in
    the command, and the variable passed on."""
    need_make()
    repo = project("neither")
    (repo / "Makefile").write_text(RUN_DIR)
    code, out, err = init("--makefile", "--replace")
    assert code == 0 and "replaced start" in out and "replaced stop" in out, (out, err)
    backend = procclean.load_config(folder=str(repo), environ={}).services["backend"]
    assert (backend.command, backend.port, backend.pidfile, backend.logfile) == (
        "python3 -m http.server {port} --bind 127.0.0.1", 8075, ".run/web.pid",
        ".run/web.log")
    assert make_n(repo, "start", "APP_PORT=8076").stdout.splitlines() == [
        "python3 -S -m procclean start --set backend.port=8076"]


def services_of(tmp_path, text):
    """{service: fields} init reads from a Makefile's text (no layout, no make run)."""
    (tmp_path / "Makefile").write_text(text)
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    return dict((s.name, s.fields) for s in procclean.analyse_makefile(
        str(tmp_path), "Makefile", info)[0])


@pytest.mark.parametrize("target", ["/dev/null", "/dev/stdout"])
def test_a_pid_echoed_to_a_device_is_no_pidfile(tmp_path, target):
    """`echo $! > /dev/null` became `pidfile = /dev/null`: start, as root, then put a
    file where the machine's /dev/null was.  A device is no pidfile (the log may be one:
    `> /dev/stdout` sends the service's output where procclean's goes)."""
    found = services_of(tmp_path, "start:\n\tnohup uvicorn main:app --port 8000 > %s "
                        "2>&1 & echo $$! > %s\n" % (target, target))
    assert [f.get("pidfile") for f in found.values()] == [None], found


def test_uv_run_of_a_python_script_runs_it_with_python(tmp_path):
    """yale/allergen_tracker's `api: cd api && uv run src/main.py` (uv runs a .py file with
    the project's python; the script calls uvicorn.run) beside `frontend: npm run dev`
    and `dev: make -j2 api frontend`: init found no api, kept `make dev` (its api was
    unknown work) and `make start` ran the frontend alone."""
    assert services_of(tmp_path, "api:\n\tcd api && uv run src/main.py\n") == {"api": {
        "command": "uv run src/main.py", "cwd": "api",
        "pattern": "[Pp]ython.*[ /]src/main\\.py\\b"}}


def test_a_python_script_is_a_server_on_its_codes_port_or_a_command_line_tool(tmp_path):
    """`run: python run.py` whose run.py calls uvicorn.run(app, port=8005) (or Flask's
    app.run(port=...), or a port from a variable) is on that port: it had none, so
    status could not say who held it.  `run: python main.py data.csv` of a script that
    reads its arguments and serves nothing, in a project with no web framework, is a
    command-line tool (as a bare repo's main.py is, f9f2ba6): it was a backend that
    make dev ran and that exited at once.  A script in the background (a bot with its
    pidfile) is a process to manage all the same."""
    scripts = {"run.py": "import uvicorn\nfrom api import app\n\nuvicorn.run(app, port=8005)\n",
               "web.py": "from flask import Flask\napp = Flask(__name__)\n"
                         "app.run(port=int(os.getenv('WEB_PORT', 5055)))\n",
               "main.py": "import sys\n\nfor path in sys.argv[1:]:\n    print(open(path).read())\n"}
    for name, text in scripts.items():
        (tmp_path / name).write_text(text)
    assert services_of(tmp_path, "run:\n\tpython3 run.py\n") == {"backend": {
        "command": "python3 run.py", "cwd": ".", "port": "8005",
        "pattern": "[Pp]ython.*[ /]run\\.py\\b"}}
    assert services_of(tmp_path, "web:\n\tpython web.py\n")["web"]["command"] == \
        "WEB_PORT={port} python web.py"
    assert services_of(tmp_path, "run:\n\tpython main.py data.csv\n") == {}
    found = services_of(tmp_path, "start:\n\tpython main.py & echo $$! > main.pid\n")
    assert found["backend"]["pidfile"] == "main.pid", found
    # a module run with -m, as a script (a public Makefile, code index file 33870482701:
    # `run: python -m app.pipeline "$(artist)"` beside `kill: kill -9 $(shell lsof ...)`)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "pipeline.py").write_text(scripts["main.py"])
    (tmp_path / "app" / "serve.py").write_text(scripts["run.py"])
    assert services_of(tmp_path, 'run:\n\tpython -m app.pipeline "$(artist)"\n') == {}
    found = services_of(tmp_path, "run:\n\tpython -m app.serve\n")
    assert found["backend"]["port"] == "8005", found
    (tmp_path / "requirements.txt").write_text("flask\n")     # (a web app's main.py)
    assert services_of(tmp_path, "run:\n\tpython main.py data.csv\n")["backend"]


@pytest.mark.parametrize("serve", [
    'PORT = 8081\nThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()',
    'http.server.ThreadingHTTPServer(("", 8081), H).serve_forever()',
    'with socketserver.TCPServer(("", int(os.environ.get("PORT", "8081"))), H) as s:\n'
    '    s.serve_forever()',
    'make_server("", 8081, app).serve_forever()'])
def test_a_stdlib_servers_address_gives_its_port(tmp_path, serve):
    """A public Makefile (code index file 68408630237) runs `cd codebase && python
    server.py &` and frees its port first with `fuser -k 8081/tcp`: with a stdlib server
    (`ThreadingHTTPServer(("0.0.0.0", PORT), Handler)`, PORT = 8081) init read no port
    (only `port=` keywords), so the fuser was a service port-8081 of its own beside the
    backend, and `start` was kept.  The address a stdlib server binds (http.server,
    socketserver, wsgiref's make_server) is its port: one service."""
    (tmp_path / "codebase").mkdir()
    (tmp_path / "codebase" / "server.py").write_text("import http.server\n" + serve + "\n")
    found = services_of(tmp_path, "start:\n\t@fuser -k 8081/tcp || true\n"
                        "\t@fuser -k 8082/tcp || true\n"
                        "\t@cd codebase && python server.py &\n"
                        "\t@python -m http.server 8082 &\n")
    assert dict((n, f.get("port")) for n, f in found.items()) == {
        "backend": "8082", "codebase": "8081"}, found


def test_a_python_runner_is_read_as_what_it_runs(tmp_path):
    """A public Makefile (code index file 7355907565) runs `dev: ./dev.py`, a Python
    runner that Popens uvicorn in one folder and `npm run dev` in another: init read
    shell scripts only, so dev was kept (its recipe did more than procclean) and the
    runner's servers were unknown.  Its subprocess calls are now read as the lines a
    shell script would run (Popen in the background, then a wait): the argument list
    (sys.executable is python, a list set by name), the cwd (a string, os.path.join or
    Path's / onto the root, str(...)); `python3 scripts/dev.py` and a shell=True string
    the same.  A script that runs a program and serves is no runner."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "dev.py").write_text(
        "#!/usr/bin/env python3\nimport os, subprocess, sys\n"
        "ROOT = os.path.dirname(os.path.abspath(__file__))\n"
        "subprocess.run(['npm', 'install'], cwd=os.path.join(ROOT, 'web'))\n"
        "api = subprocess.Popen([sys.executable, '-m', 'uvicorn', 'app.main:app',\n"
        "    '--port', '8044', '--reload'], cwd=os.path.join(ROOT, 'api'))\n"
        "web = subprocess.Popen(['npm', 'run', 'dev'], cwd=os.path.join(ROOT, 'web'))\n"
        "api.wait()\n")
    (tmp_path / "scripts" / "dev.py").write_text(
        "from pathlib import Path\nfrom subprocess import Popen\nimport sys\n"
        "ROOT = Path(__file__).resolve().parents[1]\nUI = ROOT / 'web' / 'ui'\n"
        "API = [sys.executable, '-m', 'uvicorn', 'svc:app', '--port', '8045']\n"
        "procs = [Popen(API, cwd=ROOT), Popen('npm run dev', shell=True, cwd=str(UI))]\n"
        "for p in procs:\n    p.wait()\n")
    found = services_of(tmp_path, "dev:\n\t@./dev.py\n")
    assert [(f["command"], f["cwd"], f.get("port")) for f in found.values()] == [
        ("python -m uvicorn app.main:app --port 8044 --reload", "api", "8044"),
        ("npm run dev", "web", None)], found
    found = services_of(tmp_path, "dev:\n\tpython3 scripts/dev.py\n")
    assert [(f["command"], f["cwd"], f.get("port")) for f in found.values()] == [
        ("python -m uvicorn svc:app --port 8045", ".", "8045"),
        ("npm run dev", "web/ui", None)], found
    (tmp_path / "serve.py").write_text(
        "import subprocess, uvicorn\nREV = subprocess.run(['git', 'rev-parse', 'HEAD'])\n"
        "uvicorn.run('app.main:app', port=8046)\n")
    found = services_of(tmp_path, "run:\n\tpython serve.py\n")
    assert [(f["command"], f.get("port")) for f in found.values()] == [
        ("python serve.py", "8046")], found


@pytest.mark.parametrize("check", ["command -v air > /dev/null 2>&1", "command -V air",
                                   "which air >/dev/null", "type air"])
def test_a_look_up_of_a_program_runs_nothing(tmp_path, check):
    """A public Makefile (code index file 52893309625) runs its air servers under `if
    command -v air > /dev/null 2>&1; then ...; fi`: `command -v air` was read as running
    air (command is a wrapper, as in `command air`), and the service's command was
    `command -v air`: make start-backend ran the look-up, which ended at once."""
    found = services_of(tmp_path, "dev:\n\t@if %s; then air -c .air.toml; fi\n" % check)
    assert [f["command"] for f in found.values()] == ["air -c .air.toml"], found


def test_a_script_that_asks_its_user_is_no_service(tmp_path):
    """A public Makefile (code index file 68408630237): `run-cli: cd codebase && python
    chat.py --provider openrouter --version v3`, a chat in the terminal beside a FastAPI
    backend (so not a project without a web framework, where a tool is told by its
    arguments): it was a service "cli" that make dev started with no terminal, where it
    read EOF at once and ended the session. A script that serves nothing and asks its
    user (input(), sys.stdin, getpass, prompt_toolkit, rich's Prompt.ask) is a tool."""
    (tmp_path / "requirements.txt").write_text("fastapi\nuvicorn\n")
    for ask in ("line = input('> ')", "for line in sys.stdin:", "Prompt.ask('you')"):
        (tmp_path / "chat.py").write_text(
            "import argparse, sys\n\nparser = argparse.ArgumentParser()\n"
            "parser.add_argument('--provider')\nargs = parser.parse_args()\n"
            "while True:\n    %s\n    print(line)\n" % ask)
        assert services_of(tmp_path, "run-cli:\n\tpython chat.py --provider x\n") == {}
    # one that serves is a server all the same, and one in the background a process
    (tmp_path / "chat.py").write_text("import uvicorn\nname = input()\nuvicorn.run(app, "
                                      "port=8011)\n")
    assert services_of(tmp_path, "run-cli:\n\tpython chat.py\n")["cli"]["port"] == "8011"
    (tmp_path / "chat.py").write_text("line = input()\n")
    assert list(services_of(tmp_path, "bot:\n\tpython chat.py &\n")) == ["bot"]


def test_a_module_of_a_src_layout_package_is_the_projects(tmp_path):
    """A public Makefile (code index file 69487773415): `worker: cd services/analyzer &&
    uv run python -m analyzer.worker` (its package in services/analyzer/src/, which uv
    installs) beside `web: pnpm --filter web dev`, and `dev:` making both at once: the
    module was looked for in services/analyzer/analyzer/ only, so the worker was no
    service and make dev, which runs it, was kept."""
    (tmp_path / "svc" / "src" / "jobs").mkdir(parents=True)
    (tmp_path / "svc" / "src" / "jobs" / "worker.py").write_text(
        "import time\n\nwhile True:\n    time.sleep(5)\n")
    for make in ("make", "$(MAKE)"):
        found = services_of(tmp_path, "dev:\n\ttrap 'kill 0' EXIT; %s worker & wait\n"
                                      "worker:\n\tcd svc && uv run python -m jobs.worker\n"
                            % make)
        assert found == {"worker": {"command": "uv run python -m jobs.worker", "cwd": "svc",
                                    "pattern": "(^|[ /])jobs\\.worker( |$)"}}, found


def test_apps_of_one_folder_are_named_by_their_scripts(tmp_path):
    """umermansoor/microservices (makefile): `launch:` starts five `. venv/bin/activate;
    python  services/movies.py &` (showtimes, bookings, users, rewards), `shutdown:`
    greps each: 1b530ae names apps of one kind by their script's folder, so the first was
    "services" and the others backend-2, backend-3... (the folder taken), and `make
    start-backend-2` started the showtimes. A script is named by its own name now, and by
    its folder where the file's name says nothing of it (dash/app.py: dash)."""
    text = "launch:\n" + "".join("\tpython services/%s.py &\n" % name for name in (
        "movies", "showtimes", "users")) + "\tpython dash/app.py &\n\tpython run.py &\n"
    assert list(services_of(tmp_path, text)) == ["movies", "showtimes", "users", "dash",
                                                 "backend"]


@pytest.mark.parametrize("start, stop", [("launch", "shutdown"), ("boot", "halt")])
def test_a_target_named_by_a_verb_names_no_service(tmp_path, start, stop):
    """PatrickLuCN/FiboService (Makefile): `launch: venv install` runs `. venv/bin/activate;
    python ./calcRestService.py &` and `shutdown:` greps it away: the service was named
    "launch" (make start-launch, stop-launch), a word that says what the target does, as
    start and run do, which name none."""
    stops = "ps -ef | grep calc.py | grep -v grep | awk '{print $$2}' | xargs kill"
    found = services_of(tmp_path, "%s:\n\tpython ./calc.py &\n%s:\n\t%s\n" % (
        start, stop, stops))
    assert list(found) == ["backend"], found


@pytest.mark.parametrize("target, name", [
    ("service", "service"), ("services", "backend"), ("svc", "svc"),
    ("microservice", "microservice"), ("api-service", "api-service")])
def test_a_target_named_for_a_service_runs_it(tmp_path, target, name):
    """`service: uvicorn app:app` (no port, in the foreground) gave no service: a
    target's name said it runs one only as run, dev, serve, *server, start..."""
    assert services_of(tmp_path, "%s:\n\tuvicorn app:app\n" % target) == {name: {
        "command": "uvicorn app:app", "cwd": ".", "pattern": "uvicorn app:app"}}


@pytest.mark.parametrize("target", ["reset", "cleanup"])
def test_a_target_named_for_what_it_does_names_no_service(tmp_path, target):
    """A public Makefile (code index file 66471021634): `reset:` frees ports 8501 and
    8502 with kill -9, then starts the app again in the background: the service was
    named "reset" (make start-reset, stop-reset)."""
    found = services_of(tmp_path, "%s:\n\t-kill -9 $$(lsof -t -i:8001) || true\n\t"
                                  "uvicorn app:app --port 8001 &\n" % target)
    assert list(found) == ["backend"], found


def test_makes_or_and_if_give_a_recipe_its_values(tmp_path):
    """A public Makefile (code index file 71193984652): `API_PORT ?= $(or $(APP_PORT),8765)`
    and `nohup uv run python -m uvicorn ... --port $(API_PORT) --reload > ../$(API_LOG)
    2>&1 & echo $$! > $(API_PID)`: $(or) left the line unread, so the app was no
    service's (its pidfile alone one named api, and the layout's app another)."""
    found = services_of(tmp_path, "API_PORT ?= $(or $(APP_PORT),8765)\nLOG = $(if $(V),"
                        "v.log,api.log)\nup:\n\tnohup uvicorn main:app --port $(API_PORT) "
                        "> $(LOG) 2>&1 & echo $$! > api.pid\n")
    assert found == {"backend": {"command": "uvicorn main:app --port 8765", "cwd": ".",
                                 "pattern": "uvicorn main:app", "port": "8765",
                                 "pidfile": "api.pid", "logfile": "api.log"}}, found


def test_a_server_a_target_daemonizes_is_the_service_in_the_foreground(tmp_path):
    """A public Makefile (code index file 6847411763): `start: stop` then `gunicorn
    --daemon -w 4 --bind '127.0.0.1:8123' app.main:app`, `stop: pkill -9 gunicorn`. Its
    one run daemonizes, so it served nothing: init wrote the layout's Flask dev server
    on 5000 (or nothing), and status looked at 5000 while make start served 8123.  As
    with a pidfile (test_a_daemons_command_is_the_service_s_without_its_flag), it is
    the service without --daemon."""
    found = services_of(tmp_path, "start: stop\n\tgunicorn --daemon -w 4 --bind "
                        "'127.0.0.1:8123' app.main:app\n\tsleep 1\n\nstop:\n\tpkill -9 "
                        "gunicorn || true\n")
    assert found == {"gunicorn": {
        "command": "gunicorn -w 4 --bind '127.0.0.1:8123' app.main:app", "cwd": ".",
        "pattern": "gunicorn.*app\\.main:app", "port": "8123"}}, found
    assert services_of(tmp_path, "start:\n\tcelery multi start w1 -A proj\n") == {}


@pytest.mark.parametrize("detach, options", [
    ("--detach", "--logfile=logs/celery.log --pidfile=run/celery.pid"),
    ("-D", "-f logs/celery.log --pidfile run/celery.pid")])
def test_a_detached_celery_worker_is_the_service_with_its_own_options(tmp_path, detach,
                                                                      options):
    """A public Makefile (code index file 42736370029): `celery -A $(APP) worker
    --loglevel=info --concurrency=1 --pool=solo --detach --logfile=... --pidfile=...`.
    The service's command was the layout's worker, without the team's --concurrency and
    --pool (celery was left out with celery multi).  It is the team's, in the foreground:
    without --detach, and without the log and pidfile it writes then (procclean's log
    gets its output; its pidfile is the service's, which procclean writes)."""
    found = services_of(tmp_path, "start:\n\tcelery -A proj worker --loglevel=info "
                        "--concurrency=1 --pool=solo %s %s\n" % (detach, options))
    assert [f.get("command") for f in found.values()] == [
        "celery -A proj worker --loglevel=info --concurrency=1 --pool=solo"], found


def test_apps_a_console_module_runs_are_named_by_their_subcommands(tmp_path):
    """A public Makefile (code index file 58332648733): `web-bg:` starts `python -m
    dawn_groupware.cli site --port 8810` and `... cli portal --port 8811`: they were
    named backend (or cli, by the module) and backend-2, so `make start-backend-2` started
    the portal.  A module's subcommand names its app; a serve word does not."""
    found = services_of(tmp_path, (
        "web-bg:\n\t(setsid nohup .venv/bin/python -m dawn_groupware.cli site --port 8810 "
        "> var/site.log 2>&1 &)\n\t(setsid nohup .venv/bin/python -m dawn_groupware.cli "
        "portal --port 8811 > var/portal.log 2>&1 &)\n"))
    assert sorted((n, f["port"]) for n, f in found.items()) == [
        ("portal", "8811"), ("site", "8810")], found
    found = services_of(tmp_path, "bg:\n\tpython -m shop.cli serve --port 8812 &\n")
    assert list(found) == ["backend"], found


def test_a_venv_a_recipe_activates_runs_its_python(tmp_path):
    """A public Makefile (code index file 57069778081): `cd model && . venv_model/bin/
    activate && nohup python3 api.py &`. procclean finds .venv/ and venv/ only, so the
    service ran api.py with procclean's own python, without the venv's packages
    (ModuleNotFoundError at once).  The venv's python runs it now; one procclean finds
    itself stays {python}, and a file that only looks like a venv changes nothing."""
    for venv in ("model/venv_model", "model/venv"):
        (tmp_path / venv / "bin").mkdir(parents=True)
        (tmp_path / venv / "bin" / "activate").write_text("")
    (tmp_path / "model" / "venv_model" / "bin" / "python").write_text("")
    found = services_of(tmp_path, "start:\n\tcd model && . venv_model/bin/activate && "
                        "nohup python3 api.py > api.log 2>&1 &\n")
    assert found["model"]["command"] == "venv_model/bin/python3 api.py", found
    found = services_of(tmp_path, "start:\n\tcd model && . venv/bin/activate && "
                        "nohup uvicorn api:app &\n")
    assert found["model"]["command"] == "uvicorn api:app", found


def test_a_package_script_run_with_npms_options_names_its_service(tmp_path):
    """A public Makefile (code index file 52712948467): `nohup npm run -s dev:api >LOG
    2>&1 & echo $$! > PIDFILE`. The script's name was read as the word after `run`: -s
    failed, so the service was "run" (make start-run); and `npm run --silent dev` in the
    foreground ran no server (its script was --silent)."""
    assert list(services_of(tmp_path, "up:\n\tnohup npm run -s dev:api > api.log 2>&1 & "
                            "echo $$! > api.pid\n")) == ["api"]
    assert services_of(tmp_path, "dev:\n\tnpm run --silent dev\n")["frontend"] == {
        "command": "npm run --silent dev", "cwd": ".", "pattern": "npm run.*dev"}


def test_go_run_of_makes_wildcard_writing_two_logs_is_the_service(tmp_path):
    """A public Makefile (code index file 26257635834): `SOURCES = $(wildcard *.go)`, `go
    run $(SOURCES) > $(STDOUT) 2> $(STDERR) & echo $$! > $(PID)`. $(wildcard) left the
    line unread, and a launch into two logs gave the service no command: init wrote a
    pidfile alone (no pattern, no port: status could not say who held 8080). The files
    make lists; the run is the service's, its recipe kept (procclean keeps one log)."""
    (tmp_path / "main.go").write_text('package main\n\nimport "net/http"\n\nfunc main() '
                                      '{ http.ListenAndServe(":8091", nil) }\n')
    found = services_of(tmp_path, "SOURCES = $(wildcard *.go)\nPID = .srv.pid\n\nstart :\n"
                        "\t@ go run $(SOURCES) > out.txt 2> err.txt & echo $$! > $(PID)\n")
    assert found == {"backend": {"command": "go run main.go", "cwd": ".", "pidfile": ".srv.pid",
                                 "logfile": "out.txt", "pattern": "go run main\\.go"}}, found


def test_makes_wildcard_lists_each_pattern_as_make_does(tmp_path):
    """GNU make 4.3 sorts each pattern's files and keeps the pattern's own path: `go run
    $(wildcard ./*.go)` runs `go run ./main.go`, which a pattern `go run main.go` (the
    path made relative again) did not find."""
    for name in ("main.go", "b.go", "a.go"):
        (tmp_path / name).write_text("package main\n")
    found = services_of(tmp_path, "start:\n\tgo run $(wildcard ./m*.go ./[ab].go) & "
                        "echo $$! > .srv.pid\n")
    assert found["backend"]["command"] == "go run ./main.go ./a.go ./b.go", found


def test_each_pid_echoed_after_two_launches_is_its_own_launchs(tmp_path):
    """A public start.sh (code index file 54010754132): `node server.js & B=$!`, `npx
    vite --host & F=$!`, then `echo "$B" > .pids` and `echo "$F" >> .pids`. Every echo
    went to the last launch: `echo $B > api.pid; echo $W > web.pid` gave web.pid to the
    web app and api.pid to none, and the file of two PIDs was the UI's pidfile (one
    procclean finds invalid and removes, the file the stop script reads)."""
    found = services_of(tmp_path, "start:\n\tnode api.js & B=$$!; python3 web.py & W=$$!; "
                        "echo $$B > api.pid; echo $$W > web.pid\n")
    assert [(f["command"], f.get("pidfile")) for f in found.values()] == [
        ("node api.js", "api.pid"), ("python3 web.py", "web.pid")], found
    found = services_of(tmp_path, "start:\n\tnode api.js & B=$$!; python3 web.py & W=$$!; "
                        "echo $$B > .pids; echo $$W >> .pids\n")
    assert [(f["command"], f.get("pidfile")) for f in found.values()] == [
        ("node api.js", None), ("python3 web.py", None)], found


def test_a_recipe_that_repeats_forever_is_kept(tmp_path):
    """A public Makefile (code index file 4595209191): `pidfile: build/server` runs
    `$(MAKE) stop` and `env PORT=8080 $< & echo $$! > pidfile`; `watch: while true; do
    $(MAKE) --silent pidfile; sleep 2; done` restarts the server whenever its binary is
    rebuilt. --replace made `watch` one `procclean restart` (it ended at once, watching
    nothing), and the service was named "pidfile" (make start-pidfile)."""
    (tmp_path / "Makefile").write_text(
        "build/server:\n\tgo build -o $@\n\npidfile: build/server\n\t$(MAKE) stop\n"
        "\tenv PORT=8080 $< & echo $$! > pidfile\n\nstop:\n\tif [ -f pidfile ]; then "
        "kill \"$$(cat pidfile)\"; rm pidfile; fi\n\nwatch:\n\t$(MAKE) stop\n"
        "\twhile true; do $(MAKE) --silent pidfile; sleep 2; done\n")
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    services, plans = procclean.analyse_makefile(str(tmp_path), "Makefile", info)
    assert [s.name for s in services] == ["backend"]
    verbs = dict((p.rule.names[0], p.verb) for p in plans)
    assert verbs["watch"] is None and verbs["stop"] and verbs["pidfile"], verbs


def test_a_recipe_line_continued_with_a_backslash_is_what_make_and_sh_run(tmp_path):
    """GNU make keeps a recipe's backslash-newline (dropping the tab after it) and sh
    drops it, every space kept: since ac4f3b6 the spaces around it were one, in quotes
    too, and a word split across lines was two."""
    variables = {}
    rules = procclean.parse_makefile_text(
        'FILES = a \\\n    b\nx:\n\t@echo "a  \\\n\t   b" \\\n\t  --c\n'
        "\tcd /srv/\\\n\tapi && run\n", variables=variables)[0]
    assert rules[0].recipe == ['@echo "a     b"   --c', "cd /srv/api && run"]
    assert variables == {"FILES": "a b"}       # (not a recipe: one space, as before)
    found = services_of(tmp_path, "api:\n\tcd srv/\\\n\tv2 && uvicorn main:app &\n")
    assert found["api"]["cwd"] == "srv/v2", found


def test_init_credits_each_line_once_and_ignores_no_file_outside_the_repo(project, init):
    """A script run by three targets was credited once per target and line (21 credits
    in one `# found:` line of scripts-state-dir-pids); a pidfile in /tmp got `*.pid`
    advice for .gitignore, which has nothing to ignore in the repo."""
    repo = project("neither")
    (repo / "up.sh").write_text("#!/bin/sh\nnohup uvicorn api:app --port 8071 > api.log "
                                "2>&1 &\necho $! > /tmp/api-8071.pid\n")
    (repo / "Makefile").write_text("up:\n\t@sh ./up.sh\nrestart: down\n\t@sh ./up.sh\n"
                                   "down:\n\tkill `cat /tmp/api-8071.pid`\n")
    code, out, err = init("--makefile", "--dry-run")
    assert code == 0, (out, err)
    assert "found backend: up.sh:2 (up, restart), Makefile:6 (down)\n" in out, out
    assert "(up, restart)" in re.search(r"# found: .*", out).group(0)
    gitignore = re.search(r"add to .gitignore .*: (.*)", out).group(1).split()
    assert "*.log" in gitignore and not [w for w in gitignore if "pid" in w], gitignore
    # (bounce, a word for restart, names no service either: it was "bounce")
    (repo / "Makefile").write_text(read(repo / "Makefile").replace("restart", "bounce"))
    assert "found backend: up.sh:2 (up, bounce)" in init("--makefile", "--dry-run")[1]


def test_only_an_echo_of_the_bare_pid_writes_a_pidfile(tmp_path):
    """`echo $$PID started > out.log` (or `echo "started $$!" > run.log`) writes a line
    of text: since 7fe1a18 the log was the launch's pidfile (one procclean reports
    invalid and removes). `echo -n $$! > api.pid` and `echo "$$!"` write the PID alone."""
    for echo in ("PID=$$!; echo $$PID started > out.log", 'echo "started $$!" > out.log',
                 "echo $$! started > out.log"):
        found = services_of(tmp_path, "start:\n\tuvicorn app:app & %s\n" % echo)
        assert "pidfile" not in found["backend"], (echo, found)
    for echo in ("echo -n $$! > api.pid", 'echo "$$!" > api.pid', "P=$$!; echo $$P > api.pid"):
        found = services_of(tmp_path, "start:\n\tuvicorn app:app & %s\n" % echo)
        assert found["backend"]["pidfile"] == "api.pid", (echo, found)


def test_foreground_runs_of_one_app_are_one_service(tmp_path):
    """A Go repo with `dev: air` and `run: go run ...` (nothing else: init wrote nothing,
    and `make start` had no command): one service, run as the dev target runs it; a
    `kill:` freeing a port beside a foreground run frees that run's port."""
    assert services_of(tmp_path, "dev:\n\tair -c .air.toml\n"
                       "run:\n\tPORT=8088 go run ./cmd/server\n") == {
        "backend": {"command": "air -c .air.toml", "cwd": ".",
                    "pattern": "(^|[ /])air( |$)"}}
    # emil14/remembro's `run: CompileDaemon --build=... --command=./main`: Go's other
    # live reloaders (CompileDaemon, gow, wgo) are the app's dev run as air is
    for watch in ('CompileDaemon --build="go build -o main ./cmd/server" --command=./main',
                  "gow run ./cmd/server", "wgo run ./cmd/server"):
        found = services_of(tmp_path, "dev:\n\t%s\nrun:\n\tgo run ./cmd/server\n" % watch)
        assert [(n, f["command"]) for n, f in found.items()] == [("backend", watch)], found
    # sail-host/cloud's `~/go/bin/air` (a tool's path, not a program of the project)
    found = services_of(tmp_path, "run:\n\t~/go/bin/air\n"
                        "dev:\n\tgo run cmd/main.go app --dev\n")
    assert [(n, f["command"]) for n, f in found.items()] == [("backend", "~/go/bin/air")]
    assert services_of(tmp_path, "run:\n\tgo run ./cmd/server\n"
                       "kill:\n\tlsof -ti:8090 | xargs kill -9\n") == {
        "backend": {"command": "go run ./cmd/server", "cwd": ".", "port": "8090",
                    "pattern": "go run \\./cmd/server"}}
    # a debug run of what `start` runs in the background is that service, not a second
    found = services_of(tmp_path, "debug:\n\tpython bot.py --debug\n"
                        "start:\n\tpython bot.py > bot.log 2>&1 & echo $$! > bot.pid\n")
    assert list(found) == ["backend"] and found["backend"]["command"] == "python bot.py"


def test_runs_of_one_program_a_flag_tells_apart_are_services_apart(tmp_path):
    """A dev session running one program several times, each told apart by a config
    (code index file 52893309625: `air -c .air.toml & air -c .air.agent.toml & air -c
    .air.hub.toml & wait` under a trap): one service ran the first config alone, with the
    pattern `(^|[ /])air( |$)`, so make start started one app of three.  Each is a service
    of its own, its pattern keeping the value (in words the linear matcher reads) and its
    name from it: celery's queues, uvicorn's --env-file the same."""
    found = services_of(tmp_path, "dev:\n\t@trap 'kill 0' SIGINT SIGTERM EXIT; \\\n"
                        "\tair -c .air.toml & \\\n\tair -c .air.agent.toml & \\\n"
                        "\tair -c .air.hub.toml & \\\n\twait\n")
    assert [(n, f["command"], f["pattern"]) for n, f in found.items()] == [
        ("backend", "air -c .air.toml", r"[ /]air .*-c \.air\.toml\b"),
        ("agent", "air -c .air.agent.toml", r"[ /]air .*-c \.air\.agent\.toml\b"),
        ("hub", "air -c .air.hub.toml", r"[ /]air .*-c \.air\.hub\.toml\b")]
    for name, fields in found.items():
        matcher = procclean.compile_pattern(fields["pattern"])
        assert isinstance(matcher, procclean._ChainMatcher), fields["pattern"]
        assert [bool(matcher.search("u 9 1 0 /go/bin/%s" % f["command"]))
                for f in found.values()] == [f is fields for f in found.values()], name
    found = services_of(tmp_path, "workers:\n\tcelery -A proj worker -Q emails &\n"
                        "\tcelery -A proj worker -Q reports &\n\twait\n")
    assert [(n, f["pattern"]) for n, f in found.items()] == [
        ("emails", r"celery -A proj worker.*-Q emails\b"),
        ("reports", r"celery -A proj worker.*-Q reports\b")]
    # one run with no value of its own (air's default config, celery's default queue):
    # its whole command, or its pattern takes the others' runs too
    for runs, first in [("air & air -c .air.agent.toml", r"[ /]air$"),
                        ("celery -A proj worker & celery -A proj worker -Q reports",
                         r"celery -A proj worker$")]:
        found = services_of(tmp_path, "dev:\n\t%s & wait\n" % runs)
        assert [f["pattern"] for f in found.values()
                if f["command"] == runs.split(" & ")[0]] == [first], found
        commands = [f["command"] for f in found.values()]
        for name, fields in found.items():
            matcher = procclean.compile_pattern(fields["pattern"])
            assert isinstance(matcher, procclean._ChainMatcher), fields["pattern"]
            assert [bool(matcher.search("u 9 1 0 /go/bin/%s" % command))
                    for command in commands] == [f is fields for f in found.values()], name
    found = services_of(tmp_path, "dev:\n\tuvicorn app:app --env-file dev.env --port 8001 & "
                        "uvicorn app:app --env-file live.env --port 8002 & wait\n")
    assert [(n, f["port"]) for n, f in found.items()] == [("dev", "8001"),
                                                          ("live", "8002")]


@pytest.mark.parametrize("server, worker", [("go run ./cmd/server", "go run ./cmd/worker"),
                                            ("node server.js", "node jobs/worker.js")])
def test_two_apps_run_in_the_foreground_beside_a_port_stop_stay_two(tmp_path, server,
                                                                    worker):
    """`run: go run ./cmd/server` and `run-worker: go run ./cmd/worker` beside `stop:`
    freeing 8080: both were one service named worker with the server's command (its
    `make start-worker` ran the server, its pattern found the server).  Which one holds
    8080 is not known: each app is a service, and the port's stop one of its own."""
    found = services_of(tmp_path, "run:\n\t%s\nrun-worker:\n\t%s\n" % (server, worker)
                        + "stop:\n\t-lsof -ti:8080 | xargs kill\n")
    ran = sorted((f.get("command", ""), f.get("port")) for f in found.values())
    assert ran == sorted([("", "8080"), (server, None), (worker, None)]), found
    assert found["worker"]["command"] == worker, found


def test_celery_beat_beside_its_worker_is_a_service_of_its_own(tmp_path):
    """`worker: celery ... worker` and `beat: celery ... beat` run in one folder are two
    processes, not two runs of one (the beat was folded into the worker and lost)."""
    found = services_of(tmp_path, "worker:\n\tcelery -A proj worker -l info\n"
                        "beat:\n\tcelery -A proj beat -l info\n"
                        "run:\n\tflask --app proj run --port 5050\n")
    assert [(n, f["command"]) for n, f in found.items()] == [
        ("worker", "celery -A proj worker -l info"),
        ("beat", "celery -A proj beat -l info"),
        ("backend", "flask --app proj run --port 5050")]


@pytest.mark.parametrize("text, command, port", [
    ("run:\n\t./mvnw spring-boot:run\nkill:\n\tlsof -ti:8080 | xargs kill\n",
     "./mvnw spring-boot:run", "8080"),
    ("dev:\n\tcargo run --release\n", "cargo run --release", None),
    ("serve:\n\tphp artisan serve --port=8050\n", "php artisan serve --port=8050", "8050"),
    ("run:\n\tjava -jar target/app.jar --server.port=8085\n",
     "java -jar target/app.jar --server.port=8085", "8085"),
    ("server:\n\tmix phx.server\n", "mix phx.server", None),
    ("watch:\n\tdotnet watch run\n", "dotnet watch run", None)])
def test_other_stacks_dev_servers_are_services(tmp_path, text, command, port):
    """Spring Boot, Cargo, Laravel, a jar, Phoenix, .NET run in the foreground (and a
    `kill:` freeing their port): the port-only service init wrote had no command, so the
    added `make start` and `make dev` failed ("no start command configured")."""
    found = services_of(tmp_path, text)
    assert [(f["command"], f.get("port")) for f in found.values()] == [(command, port)]


@pytest.mark.parametrize("api, port", [
    ("cd api && npx tsx watch src/index.ts", None),
    ("cd api && npx ts-node-dev --respawn src/index.ts", None),
    ("cd api && npx ts-node src/index.ts", None),
    ("python3 -m http.server 8000 --directory site", "8000")])
def test_node_and_python_dev_servers_in_a_dev_session(tmp_path, api, port):
    """`tsx watch`, `ts-node-dev`, `ts-node`, `python -m http.server` started with `&`
    beside `npm run dev`: no server (a task in the background), so the session was kept
    as a foreground run; and in the foreground alone, work of its own."""
    (tmp_path / "Makefile").write_text("dev:\n\t%s & cd web && npm run dev\n" % api)
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    services, plans = procclean.analyse_makefile(str(tmp_path), "Makefile", info)
    assert (plans[0].verb, [s.name for s in plans[0].services]) == (
        "dev", [services[0].name, "web"]), plans[0].kept
    assert services[0].fields.get("port") == port
    alone = services_of(tmp_path, "run-api:\n\t%s\n" % api)
    assert [f["command"] for f in alone.values()] == [api.split("&& ")[-1]]


def test_a_module_of_the_project_run_with_python_m_is_its_server(project, init):
    """A public Makefile (code index file 21494328892): `backend: cd backend &&
    $(PYTHON_BIN) -m backend.main` (a main.py that calls uvicorn.run), `stack: $(MAKE) -j2
    backend frontend`, stops by pkill -f.  The module run was no server (`-m backend` read
    as a tool), so `make stack` stayed make's and the backend's command was init's guess,
    not the team's.  It is the backend's run, and the stack is procclean dev."""
    need_make()
    repo = project("neither")
    (repo / "backend" / "backend").mkdir(parents=True)
    (repo / "backend" / "backend" / "__init__.py").write_text("")
    (repo / "backend" / "backend" / "main.py").write_text(
        FASTAPI_APP + "\nif __name__ == '__main__':\n    import uvicorn\n"
        "    uvicorn.run(app, port=8010)\n")
    (repo / "frontend").mkdir()
    (repo / "frontend" / "package.json").write_text(
        '{"scripts": {"dev": "next dev -p 3002"}, "dependencies": {"next": "14"}}')
    (repo / "Makefile").write_text(
        "PYTHON_BIN := python3\n"
        "backend:\n\tcd backend && PYTHONUNBUFFERED=1 $(PYTHON_BIN) -m backend.main\n"
        "frontend:\n\tcd frontend && npm run dev\n"
        "stack:\n\t$(MAKE) -j2 backend frontend\n"
        "stop-backend:\n\t-pkill -f \"backend.main\" || true\n"
        "stop-frontend:\n\t-pkill -f \"next dev -p 3002\" || true\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert make_n(repo, "stack").stdout.splitlines() == [
        "python3 -S -m procclean dev backend frontend"], out
    cfg = procclean.load_config(folder=str(repo), environ={})
    ini = read(repo / "procclean.ini")
    assert sorted(cfg.default_names) == ["backend", "frontend"], ini
    backend = cfg.services["backend"]
    assert (backend.command, backend.cwd) == (
        "PYTHONUNBUFFERED=1 python3 -m backend.main", "backend"), ini


@pytest.mark.parametrize("root", ["$(CURDIR)", "%s"])
def test_the_projects_own_folder_is_left_out_of_commands_and_patterns(tmp_path, root):
    """`$(CURDIR)/filesrv.py start &` (igroff/uploader), a public Makefile's `UVICORN :=
    $(PROJECT_ROOT)/.venv/bin/uvicorn` with `PROJECT_ROOT := /Users/.../Project\\ Simple`:
    procclean.ini had this checkout's absolute path, so another checkout (a teammate's,
    a second worktree) ran this one's venv or found no script, and its pattern only
    ever found this checkout's processes.  Paths are relative to where the command runs."""
    folder = tmp_path / ("project" if root.startswith("$") else "Project Simple")
    folder.mkdir()
    root = root if root.startswith("$") else str(folder).replace(" ", "\\ ")
    found = services_of(folder, "ROOT := %s\nstart:\n\tcd $(ROOT)/api && " % root +
                        "$(ROOT)/.venv/bin/uvicorn main:app --port 8050 > api.log 2>&1 &\n"
                        "stop:\n\tpkill -f '$(ROOT)/.venv/bin/uvicorn main:app'\n")
    assert (found["api"]["command"], found["api"]["pattern"], found["api"]["cwd"]) == (
        "../.venv/bin/uvicorn main:app --port 8050", ".venv/bin/uvicorn main:app", "api")


def test_a_dev_session_of_runs_naming_the_projects_folder_is_procclean_dev(tmp_path):
    """A public Makefile (code index file 8812930672): `BACKEND_DIR := $(abspath
    .)/backend`, each run naming it, `dev: $(MAKE) backend & $(MAKE) frontend & wait`:
    once procclean.ini left the folder out, the runs' commands were no longer the
    services', and the session was kept."""
    (tmp_path / "Makefile").write_text(
        "ROOT := $(abspath .)\napi:\n\tcd $(ROOT)/api && PYTHONPATH=$(ROOT)/api uvicorn "
        "main:app --reload --port 8041\nweb:\n\tnpm --prefix $(ROOT)/web run dev\n"
        "dev:\n\t$(MAKE) api & $(MAKE) web & wait\n")
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    services, plans = procclean.analyse_makefile(str(tmp_path), "Makefile", info)
    assert [s.fields["command"] for s in services] == [
        "PYTHONPATH=../api uvicorn main:app --reload --port 8041", "npm run dev"]
    assert (plans[2].verb, plans[2].kept) == ("dev", None)


def test_rackup_run_through_ruby_s_is_the_server(tmp_path):
    """floraison/corporate's Makefile: `serve: $(RUBY) -S rackup -p 7080 -o 0.0.0.0 -s
    puma` (RUBY = bundle exec ruby) and `kills: ps aux | grep "rackup -p 7080" | awk ...
    | xargs kill -9`: ruby was the program, no server, so the service had no command
    (no make start, make dev)."""
    found = services_of(tmp_path, "RUBY=bundle exec ruby\nserve:\n\tCORPORATE_ENV=dev \\\n"
                        "\t$(RUBY) -S rackup -p 7080 -o 0.0.0.0 -s puma\n"
                        "kills:\n\tps aux | grep \"rackup -p 7080\" | awk '{ print $$2 }'"
                        " | xargs kill -9\n")
    assert [(f.get("command"), f.get("port"), f.get("pattern")) for f in found.values()] == [
        ("CORPORATE_ENV=dev bundle exec ruby -S rackup -p 7080 -o 0.0.0.0 -s puma", "7080",
         "rackup -p 7080")], found


@pytest.mark.parametrize("tool", ["pnpm", "yarn", "pnpm exec", "npm exec", "pnpm dlx"])
def test_a_package_managers_bin_run_by_name_is_that_server(tmp_path, tool):
    """kishore1919/personal-website's `dev: pnpm next dev` and `start: pnpm next start
    $(arguments)` (84b5352e): pnpm runs node_modules/.bin/next, a server, but `next` was
    read as a package script that serves nothing, so init found nothing to write."""
    found = services_of(tmp_path, "dev:\n\t%s next dev\n" % tool +
                        "start:\n\t%s next start $(arguments)\n" % tool)
    assert [(n, f["command"]) for n, f in found.items()] == [
        ("frontend", "%s next dev" % tool)], found
    (tmp_path / "package.json").write_text('{"dependencies": {"next": "15"}}')
    frontend = procclean.found_with_makefile(procclean.analyse_makefile(
        str(tmp_path), "Makefile", procclean.read_makefile(str(tmp_path), "Makefile"))[0],
        [])[0]
    assert frontend.fields["port"] == "3000"          # Next's, not none


@pytest.mark.parametrize("recipe", [
    "db:\n\tflask db upgrade", "build:\n\tvite build", "migrate:\n\trails db:migrate",
    "seed:\n\tgo run ./cmd/seed", "shell:\n\tpython manage.py shell",
    "build:\n\t./gradlew build", "test:\n\tcargo test", "migrate:\n\tphp artisan migrate",
    "gen:\n\tnpx next build", "run-migrations:\n\tpython scripts/migrate.py",
    "dev-seed:\n\tpython scripts/seed.py --dev", "migrate-up:\n\tgo run ./cmd/migrate up",
    "run-tests:\n\tgo run ./cmd/e2e"])
def test_a_foreground_task_is_no_service(tmp_path, recipe):
    """Programs that also serve (flask, vite, rails, go run) running a task, or a run no
    target of which says it serves (`run-migrations` and `dev-seed` name a task: as
    services, `make dev` ran them and failed when they ended): nothing to start."""
    assert services_of(tmp_path, recipe + "\n") == {}


@pytest.mark.parametrize("recipe", [
    "pretest-ci:\n\tnode node_modules/puppeteer/install.mjs",
    "migrate:\n\tgo run ./cmd/migrate up"])
def test_a_task_run_by_a_servers_program_is_kept_as_other_work(tmp_path, recipe):
    """kishore1919/personal-website's `pretest-ci: node node_modules/puppeteer/
    install.mjs`: kept with "it runs the server in the foreground; make runs it as
    before", where no service runs it: it is work of the recipe's own."""
    (tmp_path / "Makefile").write_text(recipe + "\n")
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    services, plans = procclean.analyse_makefile(str(tmp_path), "Makefile", info)
    assert (services, plans[0].kept[0]) == ([], "init_kept_more")


def test_a_recipes_python_is_the_projects_venv(project, init):
    """yizhengtang/CICD2_Lab_6_Service_B with its .venv: the recipe says `python -m uvicorn`,
    run with the venv activated; replaced, `make start` without it activated ran the
    system's python (No module named uvicorn) while procclean knew the project's venv.
    Written {python}: the venv's python either way; a second init keeps the recipes
    replaced."""
    need_make()
    repo = project("neither")
    (repo / "Makefile").write_text(PIDFILE_PAIR)
    own = fake_venv(repo / ".venv")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    backend = cfg.services["backend"]
    assert backend.command == \
        "{python} -m uvicorn app.main:app --host 0.0.0.0 --port {port} --reload"
    assert procclean.launch_plan(backend)[1][0] == own
    (repo / "Makefile").write_text(PIDFILE_PAIR)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert make_n(repo, "start", "stop").stdout.splitlines() == [
        "python3 -S -m procclean start", "python3 -S -m procclean stop"]


def test_replaced_recipes_pass_options_through_make(project, init):
    """`make stop ARGS=--dry-run` (README: options go through make in ARGS) on a replaced
    `stop` ran a real stop: the replaced recipe was `@$(PROCCLEAN) $@` without them. It
    passes them as the added rules do (PROCCLEAN_ARGS where the Makefile has an ARGS of
    its own)."""
    need_make()
    repo = project("neither")
    (repo / "Makefile").write_text(PIDFILE_PAIR)
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert make_n(repo, "stop", "ARGS=--dry-run").stdout.splitlines() == [
        "python3 -S -m procclean stop --dry-run"]
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text("ARGS ?= --reload\n" + PIDFILE_PAIR)
    code, out, err = init("--makefile", "--replace", "--force")
    assert code == 0, (out, err)
    assert make_n(repo, "start", "PROCCLEAN_ARGS=--dry-run").stdout.splitlines() == [
        "python3 -S -m procclean start backend --dry-run"]     # its frontend is not the recipe's


@pytest.mark.parametrize("recipe, command", [
    ("rq worker high default", "uv run rq worker high default"),
    ("arq app.worker.WorkerSettings --watch app",
     "uv run arq app.worker.WorkerSettings --watch app"),
], ids=["rq", "arq"])
def test_a_recipes_bare_worker_runs_through_the_lock_files_runner(project, init, recipe,
                                                                  command):
    """A Makefile's `worker:` running a bare rq or arq in a uv project with no .venv ran
    whatever PATH holds (and an arq recipe was no service at all): as the layout's
    worker does, it runs through uv."""
    repo = project("neither")
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "shop"\ndependencies = ["rq", "arq"]\n')
    (repo / "uv.lock").write_text("")
    (repo / "Makefile").write_text("worker:\n\t%s\n" % recipe)
    code, out, err = init()
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    assert cfg.default_names == ["worker"], out
    assert cfg.services["worker"].command == command


def test_a_secret_from_dotenv_is_never_copied_into_procclean_ini(project, init):
    """`include .env` puts the database password and an API key into the recipes init
    reads; procclean.ini is committed and .env is not: the command takes them from the
    environment (`${DB_URL}`, run through sh), init says so, and no line it prints or
    writes holds them (a kept recipe's text neither)."""
    repo = project("fastapi-vite")
    (repo / ".env").write_text("DB_URL=postgres://admin:s3cretpw@localhost:5432/app\n"
                               "API_KEY=sk-live-abcdef123456\nWORKERS=4\n")
    (repo / ".env.example").write_text("DB_URL=postgres://user:changeme@localhost/app\n")
    (repo / "Makefile").write_text(
        "include .env\nexport\n\nrun:\n\tDATABASE_URL=$(DB_URL) API_KEY=$(API_KEY) "
        "uvicorn main:app --reload --port 8000\n\nmigrate-up:\n\tmigrate -database=$(DB_URL) "
        "up\n")
    code, out, err = init("--makefile", "--replace")
    assert code == 0, (out, err)
    assert "kept migrate-up (line 7): its recipe does more than procclean (migrate " \
        "-database=${DB_URL} up)" in out, out
    config = read(repo / "procclean.ini")
    assert "command = DATABASE_URL=${DB_URL} API_KEY=${API_KEY} " in config, config
    assert "backend: its command takes API_KEY DB_URL from the environment" in err, err
    for text in (config, out, err, read(repo / "Makefile")):
        assert "s3cretpw" not in text and "sk-live" not in text, text
    assert procclean.command_argv(procclean.load_config(environ={}).services[
        "backend"].command, ".", 8000)[:2] == ["/bin/sh", "-c"]


def test_init_reads_the_dotenv_secrets_once(project, init, monkeypatch):
    """They were read for procclean.ini, again for each fact of every recipe (the kept
    line's text, built whether a message said it or not), and again by --replace."""
    repo = project("fastapi-vite")
    (repo / ".env").write_text("API_KEY=sk-live-abcdef123456\n")
    (repo / "Makefile").write_text("include .env\nexport\n\nmigrate-up:\n\tmigrate "
                                   "--key $(API_KEY) up\n" + "".join(
                                       "t%d:\n\techo %d; touch f%d\n" % (n, n, n)
                                       for n in range(20)))
    reads = []
    secrets = procclean.dotenv_secrets
    monkeypatch.setattr(procclean, "dotenv_secrets", lambda *a: reads.append(a) or secrets(*a))
    code, out, err = init("--makefile", "--replace")
    assert code == 0 and len(reads) == 1, (reads, out, err)
    assert "(migrate --key ${API_KEY} up)" in out and "sk-live" not in out + err, out


def test_a_dotenv_value_that_is_a_short_word_is_no_secret(project, init):
    """POSTGRES_PASSWORD=postgres (docker's default) is also the image's name: taken for a
    secret, `docker run ... postgres:16` became `${POSTGRES_PASSWORD}:16`, and the
    pattern `docker run.*.*:16`."""
    repo = project("fastapi-vite")
    (repo / ".env").write_text("POSTGRES_PASSWORD=postgres\nAPI_TOKEN=tok-0a1b2c3d4e\n")
    (repo / "Makefile").write_text(
        "include .env\nexport\n\ndb:\n\tdocker run --rm --name app-db -e POSTGRES_PASSWORD="
        "$(POSTGRES_PASSWORD) -e API_TOKEN=$(API_TOKEN) -p 5432:5432 postgres:16 &\n")
    code, out, err = init("--makefile")
    db = procclean.load_config(environ={}).services["db"]
    assert code == 0 and db.command.endswith(" -p 5432:5432 postgres:16"), db.command
    assert "API_TOKEN=${API_TOKEN}" in db.command and "tok-0a1b" not in out + err, db.command


def test_a_secret_from_dotenv_in_a_stop_recipes_pattern_is_not_copied_either(project, init):
    """`pkill -f "worker.py --api-key $(API_KEY)"`: the pattern init takes from it held
    the key, written into procclean.ini and the --json document; it stands for any value
    there, and still finds the worker (whose command line has the key).  --replace
    compares the recipes with procclean.ini as written (the secrets hidden): it kept
    both, saying the ini differs, with the key in that line."""
    repo = project("fastapi-vite")
    (repo / ".env").write_text("API_KEY=sk-live-abcdef123456\n")
    (repo / "Makefile").write_text(
        "include .env\nexport\n\nstart:\n\tnohup python3 worker.py --api-key $(API_KEY) "
        "> worker.log 2>&1 & echo $$! > worker.pid\n\nstop:\n\tpkill -f "
        "\"worker.py --api-key $(API_KEY)\"\n")
    code, out, err = init("--makefile", "--replace")
    config = read(repo / "procclean.ini")
    assert code == 0 and "sk-live" not in config + out + err, (config, out, err)
    assert "replaced start" in out and "replaced stop" in out, out
    service = [s for s in procclean.load_config(environ={}).services.values()
               if "worker" in s.command][0]
    assert service.pattern == "worker.py --api-key .*", config
    assert service.regex.search("root 7 1 0 10:00 ? 00:00:00 python3 worker.py --api-key "
                                "sk-live-abcdef123456")


def test_four_apps_run_from_one_target_are_four_services_on_the_ports_their_code_says(
        project, init):
    """omar-besbes/rebu: `run-all` starts four apps, each `cd` into its folder writing its
    pidfile, and `kill-all` frees ports 9000-9003 by fuser.  The two Python apps (each a
    main.py running `uvicorn.run("app:app", port=PORT)`, PORT from APP_PORT) were found
    twice each, as backend/backend-2 from the Makefile and again from the layout (on
    8000/8001, as `uvicorn app:app`), and the ports of the Node and Go apps (.env's PORT)
    became services of their own (port-9001, port-9002): nine services for four apps."""
    repo = project("rebu-four-apps")
    code, out, err = init("--makefile", "--replace")
    config = procclean.load_config(environ={})
    assert code == 0 and config.default_names == [
        "driver-assignment", "invoice-generation", "route-optimization", "trip-management"], out
    expected = {"driver-assignment": ("9000", "APP_PORT={port} ./venv/bin/python main.py"),
                "invoice-generation": ("9001", "node app.js"),
                "route-optimization": ("9002", "go run main.go"),
                "trip-management": ("9003", "APP_PORT={port} ./venv/bin/python main.py")}
    for name, (port, command) in expected.items():
        service = config.services[name]
        assert (str(service.port), service.command) == (port, command), (name, out)
        assert os.path.basename(service.cwd) == name and service.pidfile.endswith(
            name + ".pid"), (name, service.cwd, service.pidfile)
        assert procclean.port_follows(service), name     # a port setting moves each one
    # kill-all stays the team's (it removes files too), so run-all, its pair, stays too
    makefile = read(repo / "Makefile")
    assert "kept run-all" in out and "./venv/bin/python main.py & echo $$! > " \
        "driver-assignment.pid" in makefile, out
    assert "\nstart-route-optimization:\n" in makefile and "\nstart:\n" in makefile


def test_a_project_cli_that_runs_uvicorn_is_the_backend_the_team_runs(project, init):
    """vstorm-co/full-stack-fastapi-nextjs-llm-template: `run: uv run --directory backend
    myapp server run --reload`, where myapp is the project's console script (pyproject's
    [project.scripts]) whose `server run` calls uvicorn.run("app.main:app").  init --makefile
    took the backend from the layout (`uvicorn app.main:app`, no --reload): `make dev` lost
    the reload, and status called the team's own `make run` server "not running", its port
    taken by a process not backend's.  `server routes` and `db upgrade` stay tasks, and
    `worker run`, whose `run` is a serve word, is no server."""
    repo = project("fastapi-next-cookiecutter")
    code, out, err = init("--makefile", "--replace")
    config = procclean.load_config(environ={})
    assert code == 0 and config.default_names == ["backend", "frontend"], out
    backend = config.services["backend"]
    assert (backend.command, backend.port) == (
        "uv run myapp server run --reload --port {port}", 8000), out
    assert os.path.basename(backend.cwd) == "backend" and procclean.port_follows(backend)
    shown = "%s/backend/.venv/bin/python %s/backend/.venv/bin/myapp server run --reload" % (
        repo, repo)
    pattern = re.compile(backend.pattern)
    assert pattern.search(shown) and pattern.search(shown + " --port 8123")
    assert not pattern.search(shown.replace("server run --reload", "server routes"))
    assert not pattern.search(shown.replace("server run --reload", "db upgrade"))
    makefile = read(repo / "Makefile")
    assert "\nroutes:\n\tuv run --directory backend myapp server routes\n" in makefile
    assert "\ndb-upgrade:\n\tuv run --directory backend myapp db upgrade\n" in makefile
    assert "\nworker:\n\tuv run --directory backend myapp worker run\n" in makefile
    assert not pattern.search(shown.replace("server run --reload", "worker run"))


@pytest.mark.parametrize("code, port", [
    ('@click.option("--host", default="0.0.0.0")\n@click.option("--port", default=8000, '
     'type=int)\n', "8000"),
    ("parser.add_argument('--port', type=int,\n                    default=5050)\n", "5050"),
    ("def serve(port: int = typer.Option(8001, help='port')):\n", "8001"),
    ("def serve(port: int = 8002):\n", "8002"),
    ('@click.option("--workers", default=4)\nsubprocess.run(["x", "--port", "8000"])\n',
     None)])
def test_a_command_line_programs_port_option_default_is_its_port(code, port):
    assert procclean._option_port(code) == port


def test_a_port_a_module_passes_by_name_is_read_where_the_name_is_set(tmp_path):
    """`PORT = int(os.getenv("APP_PORT", 9000))` ... `uvicorn.run(..., port=PORT)`: the
    port is APP_PORT's (the folder's .env may set it), else 9000."""
    text = ('import os\nimport uvicorn\n\nPORT = int(os.getenv("APP_PORT", 9000))\n\n'
            'if __name__ == "__main__":\n    uvicorn.run("app:app", port=PORT, reload=True)\n')
    assert procclean._code_port(str(tmp_path), text, "main.py")[::2] == ("9000", "APP_PORT")
    (tmp_path / ".env").write_text("APP_PORT=9010\n")
    assert procclean._code_port(str(tmp_path), text, "main.py")[::2] == ("9010", "APP_PORT")


def test_a_go_servers_port_from_dotenv_is_read_whole(tmp_path):
    """`port := os.Getenv("PORT")`, "8080" if unset, and .env's PORT=9002: 9002 (it was
    "02": the host part before the port took its first digits)."""
    code = ('port := os.Getenv("PORT")\n\tif port == "" {\n\t\tport = "8080"\n\t}\n'
            '\trouter.Run(":" + port)\n')
    folder = str(tmp_path)
    assert procclean._go_address("go run .", folder, folder, code)[1] == "8080"
    (tmp_path / ".env").write_text("PORT=9002\n")
    assert procclean._go_address("go run .", folder, folder, code)[1] == "9002"
    (tmp_path / ".env").write_text("PORT=127.0.0.1:9003\n")
    assert procclean._go_address("go run .", folder, folder, code)[1] == "9003"


def test_a_stop_by_the_program_a_package_script_runs_is_that_scripts_service(project, init):
    """`dev: cd frontend && npm run dev` and `stop: pkill -f vite`: the pattern finds what
    the script runs (dev: vite), not `npm run dev`, so the stop was a service of its own,
    "app", with no command (make start-app: nothing to start)."""
    repo = project("fastapi-vite")
    (repo / "Makefile").write_text("dev:\n\tcd frontend && npm run dev\n\n"
                                   "stop:\n\tpkill -f vite || true\n")
    code, out, err = init("--makefile")
    config = procclean.load_config(environ={})
    assert code == 0 and sorted(config.services) == ["backend", "frontend"], out
    assert config.services["frontend"].pattern == "vite", read(repo / "procclean.ini")


@pytest.mark.parametrize("follower", ["tail -n 100 -F .logs/web.log 2>/dev/null",
                                      "docker compose logs -f api postgres",
                                      "kubectl logs -f deploy/api", "less +F .logs/web.log",
                                      # the class, not the corpus's spelling (review-30)
                                      "journalctl --user -f -u api", "pm2 logs api",
                                      "stern api", "heroku logs --tail -a web"])
def test_what_follows_the_logs_in_the_background_is_no_service(tmp_path, follower):
    """A public Makefile (code index file 55963188702): `logs:` runs `tail -n 100 -F
    .logs/web.log &` and `docker compose logs -f api postgres &`, a trap that kills both
    and `wait`. Each was a service (backend-2, container) and --replace made `make logs`
    `procclean start backend-2 container`: it no longer showed the logs."""
    (tmp_path / "Makefile").write_text(
        "web-start:\n\tsetsid sh -c 'exec pnpm --filter web dev --port 3020 > .logs/web.log"
        " 2>&1' & echo $$! > .pids/web.pid\n\nlogs:\n\t@%s & TAIL_PID=$$!; \\\n\t"
        "uvicorn app:app & API_PID=$$!; \\\n\ttrap \"kill $$TAIL_PID $$API_PID\" INT TERM "
        "EXIT; \\\n\twait $$TAIL_PID $$API_PID\n" % follower)
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    services, plans = procclean.analyse_makefile(str(tmp_path), "Makefile", info)
    assert [s.name for s in services] == ["web", "backend"], services
    verbs = dict((p.rule.names[0], p.verb) for p in plans)
    assert verbs["logs"] is None and verbs["web-start"], verbs


def test_a_pidfile_named_in_a_loop_is_each_of_the_loops(tmp_path):
    """A public Makefile (code index file 70175121969): `stop:` and `status:` by `for name
    in backend frontend; do pidfile=$(RUN_DIR)/$$name.pid; ... kill \\`cat $$pidfile\\`;
    rm -f $$pidfile; done`. The loop's pidfile was a third service, "app", with
    `pidfile = $pidfile` (and `$pidfile` for .gitignore), which kept stop and status."""
    (tmp_path / "Makefile").write_text(
        "RUN_DIR := .run\n\nstart-backend:\n\t@cd backend && nohup uvicorn app.main:app "
        "--port 8000 & echo $$! > $(RUN_DIR)/backend.pid\n\nstart-frontend:\n\t@cd "
        "frontend && nohup vite --port 5173 & echo $$! > $(RUN_DIR)/frontend.pid\n\nstop:"
        "\n\t@for name in backend frontend; do \\\n\t\tpidfile=$(RUN_DIR)/$$name.pid; \\\n"
        "\t\tif [ -f $$pidfile ] && kill -0 `cat $$pidfile` 2>/dev/null; then \\\n\t\t\t"
        "kill `cat $$pidfile`; \\\n\t\tfi; \\\n\t\trm -f $$pidfile; \\\n\tdone\n")
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    services, plans = procclean.analyse_makefile(str(tmp_path), "Makefile", info)
    assert [s.name for s in services] == ["backend", "frontend"], services
    verbs = dict((p.rule.names[0], p.verb) for p in plans)
    assert verbs["stop"] == "stop", verbs


@pytest.mark.parametrize("cwd", ["backend", "."])
def test_a_subshells_output_is_its_launchs_log_from_the_folder_outside(tmp_path, cwd):
    """A public Makefile (code index file 70175121969): `( cd backend && exec nohup
    ../.venv/bin/uvicorn app.main:app --port 8000 ) > $(RUN_DIR)/backend.log 2>&1 &`.
    The log was the subshell's, not the command's, so the service had none: procclean
    wrote backend.log at the root while the team's `make logs` tailed .run/backend.log."""
    move = "cd backend && " if cwd == "backend" else ""
    found = services_of(tmp_path, "RUN_DIR := .run\n\nstart-api:\n\t@( %sexec nohup "
                        "uvicorn app.main:app --port 8000 ) > $(RUN_DIR)/api.log 2>&1 & "
                        "echo $$! > $(RUN_DIR)/api.pid\n" % move)
    assert found["api"]["logfile"] == ".run/api.log", found
    assert found["api"]["cwd"] == cwd, found


@pytest.mark.parametrize("app", ["src.api.celery_worker.celery_app",
                                 "src.api.celery_worker:celery_app"])
def test_a_recipes_worker_named_from_the_folder_above_is_the_layouts(project, init, app):
    """A public Makefile (code index file 65729664298) runs `celery -A
    src.api.celery_worker.celery_app worker` in `celery:` and in its dev session; the
    layout reads src/api/celery_worker.py as `celery -A api.celery_worker:celery_app`.
    They were two services, celery and worker, so make start ran the worker twice."""
    repo = project("neither")
    (repo / "main.go").unlink()
    (repo / "src" / "api").mkdir(parents=True)
    (repo / "src" / "api" / "celery_worker.py").write_text(
        'from celery import Celery\ncelery_app = Celery("w", broker="redis://")\n')
    (repo / "requirements.txt").write_text("celery\n")
    (repo / "Makefile").write_text("celery:\n\tcelery -A %s worker --loglevel=info &\n"
                                   % app)
    code, out, err = init("--makefile")
    assert code == 0 and "services = celery\n" in read(repo / "procclean.ini"), out


@pytest.mark.parametrize("trap, kept", [
    ("trap 'kill $$W $$A; redis-cli shutdown; rm -f .redis-started' INT TERM", True),
    ("trap 'docker compose stop db' EXIT", True),
    ("trap 'kill $$W $$A 2>/dev/null; exit 0' INT TERM", False),
    ("trap 'trap - INT TERM EXIT; kill 0' INT TERM EXIT", False),
    ("trap cleanup INT TERM", False)])
def test_a_dev_session_whose_trap_does_more_is_kept(tmp_path, trap, kept):
    """A public Makefile (code index file 65729664298): `dev: redis` runs a worker and
    an API under `trap '...; kill $$CELERY_PID $$API_PID; if [ -f MARKER ]; then
    redis-cli shutdown; rm -f MARKER; fi; exit 0' INT TERM`. --replace made it `procclean
    dev`, and Ctrl-C no longer shut down the Redis that make had started."""
    (tmp_path / "Makefile").write_text(
        "dev:\n\t@%s; \\\n\tcelery -A proj worker & W=$$!; \\\n\tuvicorn app:app "
        "--port 8000 & A=$$!; \\\n\twait $$W $$A\n" % trap)
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    services, plans = procclean.analyse_makefile(str(tmp_path), "Makefile", info)
    verbs = dict((p.rule.names[0], p.verb) for p in plans)
    assert (verbs["dev"] is None) == kept, verbs


def test_a_semicolon_in_a_rule_lines_comment_is_no_recipe():
    """A public Makefile (code index file 60298508087): `dev-docker: ## Docker 本机开发环境
    (构建+首次初始化+起服务,幂等;:18081)`. make reads all after `#` as the comment; init
    took `:18081)` for a recipe written after `;` (kept "does more than procclean
    (:18081)"), and a `start: ## start (api; web)` was kept for its `web)`."""
    rules = procclean.parse_makefile_text(
        "dev-docker: ## up (build; init; :18081)\n\tbash scripts/dev-up.sh\n\n"
        "x: ; echo \"#1\"\n")[0]
    assert rules[0].recipe == ["bash scripts/dev-up.sh"], rules[0]
    assert rules[0].comment == " ## up (build; init; :18081)", rules[0]
    assert rules[1].recipe == ['echo "#1"'], rules[1]


def test_a_recipe_running_another_apps_main_is_not_the_layouts_app(project, init):
    """The layout's app `uvicorn main:app` (./main.py) and a recipe's `uvicorn
    services.auth.main:app`, another app whose module also ends in main:app: 1405cce took
    the second for the first (a dotted name that ends with main.app), so the root app was
    no service (make start and dev did not run it).  Only the layout's own path, from the
    folder the recipe runs in (src.api.worker.app for PYTHONPATH=src), is its app."""
    repo = project("neither")
    (repo / "main.go").unlink()
    (repo / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    (repo / "services" / "auth").mkdir(parents=True)
    (repo / "services" / "auth" / "main.py").write_text(
        "from fastapi import FastAPI\napp = FastAPI()\n")
    (repo / "requirements.txt").write_text("fastapi\nuvicorn\n")
    (repo / "Makefile").write_text("auth:\n\tuvicorn services.auth.main:app --port 8001\n")
    code, out, err = init("--makefile")
    ini = read(repo / "procclean.ini")
    assert code == 0 and "services = auth backend\n" in ini, ini


@pytest.mark.parametrize("package", ["server", "server.app"])
def test_a_package_run_from_the_folder_above_is_the_layouts_app(project, init, package):
    """A public Makefile (code index file 52402713136): `start:` runs `.venv/bin/python3 -m
    server >> LOG & echo $$! > PIDFILE`; server/__main__.py serves server/app.py's app.
    The layout read that app in server/ (uvicorn app:app) and the recipe's run was a
    second service beside it, so make dev and start ran the app twice."""
    repo = project("neither")
    (repo / "main.go").unlink()
    (repo / "server").mkdir()
    (repo / "server" / "__init__.py").write_text("")
    (repo / "server" / "app.py").write_text(
        "from fastapi import FastAPI\napp = FastAPI()\n")
    (repo / "server" / "__main__.py").write_text(
        'import uvicorn\n\nif __name__ == "__main__":\n    uvicorn.run("server.app:app", '
        'port=7700)\n')
    (repo / "requirements.txt").write_text("fastapi\nuvicorn\n")
    (repo / "Makefile").write_text("start:\n\tpython3 -m %s >> .os2.log 2>&1 & echo $$! > "
                                   ".os2.pid\n" % package)
    code, out, err = init("--makefile")
    assert code == 0 and "services = backend\n" in read(repo / "procclean.ini"), out


@pytest.mark.parametrize("start, stop", [("office-bg", "office-stop"),
                                         ("office-daemon", "stop-office"),
                                         ("bg-office", "office-down")])
def test_a_target_named_for_running_in_the_background_names_its_app(tmp_path, start, stop):
    """A public Makefile (code index file 58332648733): `office-bg:` starts the office
    console with `setsid nohup ... &`, `office-stop:` stops it. The service was named
    office-bg (make start-office-bg, stop-office-bg), and the pidfile office-bg checks
    was a service of its own. A target starting two apps is still named by neither: its
    `pgrep -f APP >/dev/null || (APP &)` checks gave both apps one service, web."""
    found = services_of(tmp_path, "%s:\n\t@[ -s var/office.pid ] && kill -0 \"$$(cat "
                        "var/office.pid)\" || uvicorn office:app --port 8800 &\n\n%s:\n\t"
                        "kill $$(cat var/office.pid)\n\nweb-bg:\n\t@pgrep -f \"gw site\" >"
                        "/dev/null || (nohup python -m gw site --port 8810 &)\n\t@pgrep -f "
                        "\"gw portal\" >/dev/null || (nohup python -m gw portal --port "
                        "8811 &)\n" % (start, stop))
    assert sorted(found) == ["office", "portal", "site"], found     # (-m gw SUBCOMMAND)


@pytest.mark.parametrize("pattern", ["uvicorn|vite", "uvicorn main:app|npm run dev"])
def test_a_stop_whose_pattern_finds_several_services_stops_them(tmp_path, monkeypatch,
                                                                pattern):
    """`stop: pkill -f "uvicorn|vite"` beside `cd backend && uvicorn ... &` and `cd frontend
    && npm run dev &` (a public Makefile's `web-stop: pgrep -f "[d]awn_groupware.cli" |
    xargs -r kill`, code index file 58332648733, finds its two apps the same way): the
    pattern joined neither, so it was a third service, "app", with no command (make start
    and status listed it; make stop-app, force-clean-app). It is the stop of both."""
    monkeypatch.chdir(str(tmp_path))        # (init reads package.json from the root)
    (tmp_path / "frontend").mkdir()
    (tmp_path / "frontend" / "package.json").write_text('{"scripts": {"dev": "vite"}}')
    (tmp_path / "Makefile").write_text(
        "start:\n\tcd backend && uvicorn main:app --port 8000 &\n\tcd frontend && npm run "
        "dev &\n\nstop:\n\tpkill -f \"%s\" || true\n" % pattern)
    info = procclean.read_makefile(str(tmp_path), "Makefile")
    services, plans = procclean.analyse_makefile(str(tmp_path), "Makefile", info)
    assert [s.name for s in services] == ["backend", "frontend"], services
    stop = [p for p in plans if p.rule.names[0] == "stop"][0]
    assert stop.verb == "stop" and sorted(s.name for s in stop.services) == [
        "backend", "frontend"], stop


@pytest.mark.parametrize("proxy", ["'/api': 'http://localhost:8080'",
                                   "'/api': {target: 'http://127.0.0.1:8080'}"])
def test_a_recipes_server_whose_port_init_cannot_read_gets_the_proxy_target(project, init,
                                                                            proxy):
    """A public Makefile (code index file 60298508087): `start:` runs the built binary
    `./dist/proxyhub &` (its port is in a YAML config init does not read) and web/'s
    Vite proxies /api to localhost:8080, in Vite's short form (a path's string).  The
    backend got `port =`: status could not say whether it listened, and a port_offset
    moved nothing.  A server whose port init cannot read is on the port the frontend's
    proxy names (as a guessed port already was); Vite's short form is read too."""
    need_make()
    repo = project("neither")
    (repo / "main.go").unlink()
    (repo / "web").mkdir()
    (repo / "web" / "package.json").write_text('{"scripts": {"dev": "vite"}}')
    (repo / "web" / "vite.config.ts").write_text(
        "export default defineConfig({ server: { port: 5173, proxy: { %s } } })\n" % proxy)
    (repo / "Makefile").write_text(
        "start:\n\tmkdir -p var\n\t./dist/proxyhub > var/hub.log 2>&1 & echo $$! > var/hub.pid\n"
        "stop:\n\tkill $$(cat var/hub.pid)\n")
    code, out, err = init("--makefile")
    assert code == 0, (out, err)
    cfg = procclean.load_config(folder=str(repo), environ={})
    ports = dict((n, cfg.services[n].port) for n in cfg.default_names)
    assert ports["backend"] == 8080, read(repo / "procclean.ini")
    assert "# web/vite.config.ts (the proxy target of frontend)\nport = 8080\n" in read(
        repo / "procclean.ini")


SETUP_TYPO = ('from setuptools import setup, find_packages\n'
              'setup(name="fibo", version="0.1.0", package=find_packages())\n')


@pytest.mark.parametrize("files, modules", [
    # setuptools finds the modules itself (the typo leaves packages unset): two of them
    ({"setup.py": SETUP_TYPO, "main.py": ""}, ["main", "procclean"]),
    ({"pyproject.toml": '[build-system]\nbuild-backend = "setuptools.build_meta"\n',
      "main.py": ""}, ["main", "procclean"]),
    # modules or packages named, a package folder, another backend, no backend (uv's
    # app), names setuptools passes over, procclean alone: nothing to say
    ({"setup.py": 'from setuptools import setup\nsetup(py_modules=["main"])\n',
      "main.py": ""}, None),
    ({"setup.py": SETUP_TYPO, "main.py": "", "app/__init__.py": ""}, None),
    ({"pyproject.toml": '[build-system]\nbuild-backend = "setuptools.build_meta"\n'
                        '[tool.setuptools.packages.find]\nwhere = ["src"]\n',
      "main.py": ""}, None),
    ({"pyproject.toml": '[build-system]\nbuild-backend = "poetry.core.masonry.api"\n',
      "main.py": ""}, None),
    ({"pyproject.toml": '[project]\nname = "shop"\n', "main.py": ""}, None),
    ({"setup.py": SETUP_TYPO, "manage.py": "", "conftest.py": ""}, None),
    ({"setup.py": SETUP_TYPO}, None),
])
def test_a_root_procclean_setuptools_would_package_is_said(tmp_path, files, modules):
    """setuptools' discovery of a flat layout stops at a second top-level module:
    `pip install .` of a project with one main.py fails once procclean.py is beside it
    (a public Makefile's `launch: install` did, in /tmp/qa-make-31/flat.sh)."""
    for name, text in dict(files, **{"procclean.py": ""}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert procclean.setuptools_modules(str(tmp_path)) == modules


def test_init_says_to_move_procclean_out_of_setuptools_way(project, init):
    repo = project("neither")
    (repo / "main.go").unlink()
    (repo / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    (repo / "setup.py").write_text(SETUP_TYPO)
    code, out, err = init("--dry-run")
    assert code == 0, (out, err)
    assert "second top-level module to setuptools" in err and "(main, procclean)" in err
    code, out, err = init("--dry-run", "--lang", "zh")
    assert "第二个顶层模块" in err
