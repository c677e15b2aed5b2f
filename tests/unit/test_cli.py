"""The command line: configuration, options anywhere, messages, languages, exit codes."""
import io
import json
import os
import subprocess
import sys

import pytest

from fakes import FakeProc, FakeSystem, invoke
import procclean

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "procclean.py")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_options_before_or_after_the_command_and_names():
    for argv in (["--grace", "0.5", "stop", "backend"], ["stop", "backend", "--grace", "0.5"],
                 ["stop", "--grace", "0.5", "backend"]):
        system = FakeSystem([FakeProc(100, 1, "python main.py", term_delay=None),
                             FakeProc(200, 1, "npm run dev")])
        code, out, err = invoke(argv, system)
        assert code == 0, err
        assert [(t, pid) for t, pid, sig in system.sent if sig == 9] == [(0.5, 100)]
        assert 200 not in [pid for _, pid, _ in system.sent]


def test_unknown_service_and_command_are_usage_errors():
    code, _, err = invoke(["stop", "nosuch"], FakeSystem([]))
    assert code == 2 and "unknown service 'nosuch'" in err
    code, _, err = invoke(["explode"], FakeSystem([]))
    assert code == 2 and "unknown command" in err


def test_config_file_adds_a_worker_and_changes_a_port(in_tmp):
    (in_tmp / "procclean.ini").write_text(
        "[procclean]\ngrace = 0.25\n\n[backend]\nport = 8001\n\n"
        "[worker]\npattern = celery.*worker\ncommand = celery -A app worker\n")
    system = FakeSystem([FakeProc(100, 1, "celery -A app worker", term_delay=None),
                         FakeProc(101, 1, "python main.py")])
    code, out, _ = invoke(["stop", "worker"], system)
    assert code == 0
    assert [(t, pid, sig) for t, pid, sig in system.sent] == [(0, 100, 15), (0.25, 100, 9)]
    config = procclean.load_config(environ={})
    assert config.services["backend"].port == 8001
    assert list(config.services) == ["backend", "frontend", "worker"]


def test_environment_variables_override_the_file(in_tmp):
    (in_tmp / "procclean.ini").write_text("[backend]\nport = 8001\n")
    env = {"PROCCLEAN_BACKEND_PORT": "8002", "PROCCLEAN_QUEUE_PATTERN": "rq worker",
           "PROCCLEAN_SERVICES": "backend queue"}
    config = procclean.load_config(environ=env)
    assert config.services["backend"].port == 8002
    assert config.services["queue"].pattern == "rq worker"
    assert config.services["queue"].pidfile == "queue.pid"
    assert [s.name for s in config.select([])] == ["backend", "queue"]


def test_set_option_wins_over_everything():
    config = procclean.load_config(settings=["backend.port=9000", "api-2.pattern=gunicorn"],
                                   environ={"PROCCLEAN_BACKEND_PORT": "8002"})
    assert config.services["backend"].port == 9000
    assert config.services["api-2"].pattern == "gunicorn"


@pytest.mark.parametrize("settings,message", [
    (["backend.pattern=(unclosed"], "does not compile"),
    (["backend.port=70000"], "invalid port"),
    (["backend.port=abc"], "invalid port"),
    (["backend.colour=blue"], "unknown field"),
    (["nonsense"], "SERVICE.FIELD=VALUE"),
])
def test_config_errors_exit_2_with_one_line(settings, message):
    argv = ["status"]
    for s in settings:
        argv += ["--set", s]
    code, out, err = invoke(argv, FakeSystem([]))
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1


def test_bad_config_file_is_a_usage_error(in_tmp):
    (in_tmp / "procclean.ini").write_text("[backend]\ncolour = blue\n")
    code, _, err = invoke(["status"], FakeSystem([]))
    assert code == 2 and "procclean.ini" in err and "colour" in err


@pytest.mark.parametrize("grace", ["-1", "abc", "nan"])
def test_invalid_grace_is_a_usage_error(grace):
    code, _, err = invoke(["stop", "--grace", grace], FakeSystem([]))
    assert code == 2 and "grace" in err


def test_chinese_messages_with_lang_and_with_environment():
    system = FakeSystem([FakeProc(100, 1, "python main.py")])
    code, out, _ = invoke(["--lang", "zh", "stop-backend"], system)
    assert "后端进程已停止 (PID: 100)" in out
    system = FakeSystem([FakeProc(100, 1, "python main.py")])
    _, out, _ = invoke(["force-clean-backend"], system, environ={"PROCCLEAN_LANG": "zh"})
    assert "强制清理所有后端进程" in out
    _, out, _ = invoke(["stop-frontend"], FakeSystem([]), environ={"LANG": "zh_CN.UTF-8"})
    assert "前端: 没有运行中的进程" in out


def test_status_json_and_check():
    procs = [FakeProc(100, 1, "uvicorn main:app"), FakeProc(101, 100, "python worker")]
    system = FakeSystem(procs, listeners=[procclean.Listener(8000, "127.0.0.1", "ipv4", 101),
                                          procclean.Listener(3000, "::1", "ipv6", 555)])
    code, out, _ = invoke(["status", "--json", "--check"], system)
    assert code == 3, "frontend is not running"
    data = json.loads(out)
    backend, frontend = data["services"]
    assert backend["running"] and backend["pids"] == [100, 101]
    assert backend["listening"] and backend["listeners"][0]["own"]
    assert backend["memory_kb"] == 4096
    assert not frontend["running"] and frontend["listeners"][0]["own"] is False
    # Running, but its port 8000 is free: the check fails and says why.
    code, _, err = invoke(["status", "backend", "--check"], FakeSystem(procs))
    assert code == 3 and "nothing listens on its port 8000" in err, err
    own = FakeSystem(procs, listeners=[procclean.Listener(8000, "127.0.0.1", "ipv4", 101)])
    own.health_answers = {"http://127.0.0.1:8000/health": (200, 0.01, None)}
    code, _, err = invoke(["status", "backend", "--check"], own)
    assert code == 0, err


def test_status_text_names_a_stranger_on_the_port():
    system = FakeSystem([FakeProc(555, 1, "java -jar other.jar")],
                        listeners=[procclean.Listener(8000, "*", "ipv4", 555)])
    code, out, _ = invoke(["status", "backend"], system)
    assert code == 0
    assert "backend: not running" in out
    assert "port 8000: taken by PID 555 (java -jar other.jar), not backend's" in out


def test_show_processes_table_and_json():
    procs = [FakeProc(100, 1, "uvicorn main:app"), FakeProc(101, 100, "python worker"),
             FakeProc(300, 1, "python3 other.py")]
    code, out, _ = invoke(["show-processes"], FakeSystem(procs))
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["SERVICE", "PID", "PPID"]
    assert [l.split()[1] for l in lines[1:]] == ["100", "101"]
    code, out, _ = invoke(["show-processes", "--json"], FakeSystem(procs))
    records = json.loads(out)["processes"]
    assert [(r["pid"], r["via"]) for r in records] == [(100, "pattern"), (101, "child")]


def test_clean_keeps_a_live_pidfile_and_removes_stale_ones(in_tmp):
    (in_tmp / "backend.pid").write_text("100\n")
    (in_tmp / "backend.log").write_text("x")
    (in_tmp / "frontend.pid").write_text("4242\n")
    (in_tmp / "frontend.log").write_text("x")
    system = FakeSystem([FakeProc(100, 1, "python main.py")])
    code, out, err = invoke(["clean"], system)
    assert code == 0 and system.sent == []
    assert (in_tmp / "backend.pid").exists() and (in_tmp / "backend.log").exists()
    assert "backend.pid: kept" in err
    assert not (in_tmp / "frontend.pid").exists() and not (in_tmp / "frontend.log").exists()


def test_start_refuses_a_busy_port_and_names_the_holder():
    system = FakeSystem([FakeProc(555, 1, "python3 -m http.server 8000")],
                        listeners=[procclean.Listener(8000, "0.0.0.0", "ipv4", 555)])
    code, _, err = invoke(["start-backend"], system)
    assert code == 1
    assert "port 8000 is taken by PID 555 (python3 -m http.server 8000)" in err


def test_start_when_already_running_says_so():
    code, out, _ = invoke(["start-backend"], FakeSystem([FakeProc(100, 1, "python main.py")]))
    assert code == 0 and "already running (PID 100)" in out


def test_command_argv():
    assert procclean.command_argv("npm run dev") == ["npm", "run", "dev"]
    assert procclean.command_argv("{python} main.py")[1:] == ["main.py"]
    assert procclean.command_argv("cd app && exec node x.js") == [
        "/bin/sh", "-c", "cd app && exec node x.js"]


def test_resolve_cwd(in_tmp):
    assert procclean.resolve_cwd("backend?main.py") == "."
    (in_tmp / "backend").mkdir()
    (in_tmp / "backend" / "main.py").write_text("")
    assert procclean.resolve_cwd("backend?main.py") == "backend"


def test_reporter_ascii_terminal_gets_plain_marks_and_escapes():
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    reporter = procclean.Reporter(stdout=stream, stderr=stream, environ={})
    reporter.say("stopped", svc="backend", pid=1, cmd="python main.py caf\u00e9")
    stream.seek(0)
    text = stream.read()
    assert text == "[ok] stopped backend PID 1: python main.py caf\\xe9\n"


def test_reporter_no_color_and_tty():
    class Tty(io.StringIO):
        encoding = "utf-8"

        def isatty(self):
            return True

    assert procclean.Reporter(stdout=Tty(), environ={"TERM": "xterm"}).colour
    assert not procclean.Reporter(stdout=Tty(), environ={"TERM": "xterm", "NO_COLOR": "1"}).colour


def test_reporter_survives_a_closed_pipe():
    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    reporter = procclean.Reporter(stdout=Closed(), stderr=io.StringIO(), environ={})
    reporter.say("removed", path="x")
    reporter.say("removed", path="y")     # no exception, nothing more attempted


def run_script(*args, **kw):
    env = dict(os.environ)
    env.update(kw.pop("env", {}))
    return subprocess.run([sys.executable, SCRIPT] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, **kw)


def test_version_prints_a_hash_of_the_file():
    import hashlib
    result = run_script("--version")
    digest = hashlib.sha256(open(SCRIPT, "rb").read()).hexdigest()[:12]
    assert result.returncode == 0
    assert result.stdout.decode() == "procclean %s (sha256 %s)\n" % (procclean.__version__, digest)


def test_help_lists_commands_and_examples():
    result = run_script("--help")
    assert result.returncode == 0
    for word in (b"force-clean", b"kill-port", b"show-processes", b"examples:", b"exit codes"):
        assert word in result.stdout


def test_usage_errors_exit_2_without_traceback():
    for args in ([], ["--bogus", "status"], ["stop", "--grace"], ["kill-port", "abc"]):
        result = run_script(*args)
        assert result.returncode == 2, args
        assert b"Traceback" not in result.stderr
        assert result.stderr.strip()
