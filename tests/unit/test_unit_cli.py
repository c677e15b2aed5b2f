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


def test_an_unknown_option_is_an_error_and_nothing_is_signalled():
    system = FakeSystem([FakeProc(100, 1, "python main.py")])
    code, out, err = invoke(["stop", "--bogus", "backend"], system)
    assert (code, out, err) == (2, "", "procclean: unrecognized option '--bogus'\n")
    assert system.sent == []


@pytest.mark.parametrize("argv", [["start", "--port", "9001"], ["dev", "--port=9001"]])
def test_a_port_flag_says_where_a_service_s_port_is_set(argv):
    """`make start ARGS="--port 9001"` (uvicorn's and vite's flag) said only `unrecognized
    option '--port'`: the settings that move a service are named."""
    code, out, err = invoke(argv, FakeSystem([]))
    assert code == 2 and out == "", err
    assert "a service's port is one of its settings, for example --set backend.port=9001, " \
        "PROCCLEAN_BACKEND_PORT=9001, or port = 9001 under [backend] in procclean.ini" \
        in err, err


def test_every_command_is_dispatched_to_its_own_handler_not_to_restart():
    """restart used to be what was left at the end of an if-chain."""
    system = FakeSystem([FakeProc(100, 1, "python main.py")])
    code, out, err = invoke(["show-processes", "backend", "--dry-run"], system)
    assert code == 0 and out.split()[:2] == ["SERVICE", "PID"], err
    assert "would send" not in out
    code, out, err = invoke(["restart-backend", "--dry-run"], system)
    assert code == 0 and "would send SIGTERM to backend PID 100" in out, err
    assert system.sent == []


def test_main_writes_to_the_streams_it_is_given():
    out, err = io.StringIO(), io.StringIO()
    assert procclean.main(["--version"], stdout=out, stderr=err, environ={}) == 0
    assert out.getvalue().startswith("procclean ") and err.getvalue() == ""
    out, err = io.StringIO(), io.StringIO()
    assert procclean.main([], stdout=out, stderr=err, environ={}) == 2
    assert out.getvalue() == "" and err.getvalue().startswith("usage: ")
    assert err.getvalue().endswith("procclean: no command given (try --help)\n")


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


def test_a_general_setting_in_a_section_of_its_own_says_where_it_goes(in_tmp):
    """`[general]` (or `[settings]`) with `grace = 3`: a section of its own is a service's,
    and the error listed the service fields alone; it says where grace is set."""
    (in_tmp / "procclean.ini").write_text("[general]\ngrace = 3\n")
    code, out, err = invoke(["status"], FakeSystem([]))
    assert code == 2 and "[general] has no setting 'grace' (settings: pattern," in err, err
    assert "; grace is set under [procclean])" in err, err


def test_an_unknown_general_setting_names_the_general_settings(in_tmp):
    """`[procclean]` with a setting it has not: exit 2 and its settings, not an internal
    error (the message wanted a list of settings it was not given)."""
    (in_tmp / "procclean.ini").write_text("[procclean]\ngrase = 3\n")
    code, out, err = invoke(["status"], FakeSystem([]))
    assert code == 2, err
    assert "[procclean] has no setting 'grase' (settings: grace, lang," in err, err


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


# procclean.ini as init writes it and as people edit it, and what configparser makes of
# the rest: procclean must read every one of them as configparser does.
INI_TEXTS = [
    "[procclean]\nservices = backend worker\n\n# found: Procfile\n[worker]\n"
    "pattern = celery -A app worker\ncommand = celery -A app worker -l info\ncwd = api\n",
    "\ufeff[backend]\r\nport = 8001\r\ncommand = uv run uvicorn app.main:app --port {port}\r\n",
    "[backend]\nPORT: 8002\npattern = uvicorn app\\.main:app # not a comment\n; a comment\n",
    "[backend]\ncommand = python main.py\n    --port {port}\n\n",
    "[DEFAULT]\ncwd = api\n[backend]\nport = 8003\n",
    "[ backend ]\nport = 8004\n",
    "[backend]\nport = 8005\n[worker]\n\n\n[backend]\ncwd = api\n",
]


@pytest.mark.parametrize("text", INI_TEXTS)
def test_the_config_file_is_read_as_configparser_reads_it(tmp_path, text):
    import configparser
    path = tmp_path / "procclean.ini"
    path.write_bytes(text.encode("utf-8"))
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text.lstrip("\ufeff"), source=str(path))
    except configparser.Error as exc:
        with pytest.raises(procclean.ProcCleanError) as raised:
            procclean.read_config_file(str(path))
        assert str(raised.value) == "%s: %s" % (path, str(exc).splitlines()[0])
    else:
        want = [(name, dict(parser.items(name))) for name in parser.sections()]
        assert procclean.read_config_file(str(path)) == want


def test_the_config_file_init_writes_is_read_without_configparser_or_re(tmp_path):
    # configparser imports re and enum: 4-5 ms of every command in an adopted repo.
    (tmp_path / "procclean.ini").write_text(INI_TEXTS[0])
    probe = ("import sys, procclean; c = procclean.load_config(environ={}); "
             "print(c.services['worker'].cwd, 'configparser' in sys.modules, "
             "'re' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(procclean.__file__)))
    out = subprocess.check_output([sys.executable, "-S", "-c", probe], cwd=str(tmp_path),
                                  env=env, universal_newlines=True)
    assert out.split() == ["api", "False", "False"]


@pytest.mark.parametrize("name", ["bad name", "-x", "wörker", "a/b"])
def test_an_invalid_service_name_in_the_config_file_is_a_usage_error(in_tmp, name):
    (in_tmp / "procclean.ini").write_text("[%s]\npattern = x\n" % name)
    code, _, err = invoke(["status"], FakeSystem([]))
    assert code == 2 and "invalid service name %r" % name in err, err


def test_a_context_refuses_an_option_it_does_not_have():
    # A misspelt option would otherwise be ignored and its default used without a word.
    with pytest.raises(TypeError) as raised:
        procclean.Context(FakeSystem([]), procclean.load_config(environ={}),
                          procclean.Reporter(stdout=io.StringIO()), grcae=5.0)
    assert "grcae" in str(raised.value)


@pytest.mark.parametrize("grace", ["-1", "abc", "nan"])
def test_invalid_grace_is_a_usage_error(grace):
    code, _, err = invoke(["stop", "--grace", grace], FakeSystem([]))
    assert code == 2 and "invalid --grace %r" % grace in err


@pytest.mark.parametrize("argv,option", [
    (["start", "--timeout", "-5"], "--timeout"),
    (["start", "--timeout", "x", "--max-restarts", "y", "--lines", "z"], "--timeout"),
    (["status", "--watch=-5"], "--watch"),
    (["status", "--health-timeout", "soon"], "--health-timeout"),
])
def test_an_invalid_number_of_seconds_names_its_option(argv, option):
    code, _, err = invoke(argv, FakeSystem([]))
    assert code == 2 and err.startswith("procclean: invalid %s " % option), err
    assert "grace" not in err


def test_an_invalid_grace_in_the_config_file_names_the_setting(in_tmp):
    (in_tmp / "procclean.ini").write_text("[procclean]\ngrace = long\n")
    code, _, err = invoke(["stop"], FakeSystem([]))
    assert code == 2 and "invalid grace 'long'" in err, err


def test_chinese_messages_with_lang_and_with_environment():
    system = FakeSystem([FakeProc(100, 1, "python main.py")])
    code, out, _ = invoke(["--lang", "zh", "stop-backend"], system)
    assert "后端进程已停止 (PID: 100)" in out
    system = FakeSystem([FakeProc(100, 1, "python main.py")])
    _, out, _ = invoke(["force-clean-backend"], system, environ={"PROCCLEAN_LANG": "zh"})
    assert "强制清理所有后端进程" in out
    _, out, _ = invoke(["stop-frontend"], FakeSystem([]), environ={"LANG": "zh_CN.UTF-8"})
    assert "前端: 没有运行中的进程" in out


def test_errors_in_chinese_with_lang_environment_and_config_file(in_tmp):
    """The one line of an error that ends a command is in the user's language too: from
    --lang, from the locale, and from procclean.ini once the command has read it; the
    --json document carries the same text."""
    code, out, err = invoke(["--lang", "zh", "stop", "--bogus"], FakeSystem([]))
    assert (code, out) == (2, "")
    assert err == "procclean: 无法识别的选项 '--bogus'\n"
    code, _, err = invoke(["explode"], FakeSystem([]), environ={"LANG": "zh_CN.UTF-8"})
    assert code == 2 and err.startswith("procclean: 未知的命令 'explode' (可用的命令: "), err
    code, _, err = invoke(["start", "--set", "backend.port=99999"], FakeSystem([]),
                          environ={"PROCCLEAN_LANG": "zh"})
    assert code == 2
    assert err == "procclean: backend: 无效的端口 '99999': 应为 1 到 65535 之间的数字\n"
    (in_tmp / "procclean.ini").write_text("[procclean]\nlang = zh\n")
    code, out, err = invoke(["stop", "nosuch", "--json"], FakeSystem([]))
    assert code == 2 and err.startswith("procclean: 未知的服务 'nosuch' (已知的服务: "), err
    assert json.loads(out)["error"] == err[len("procclean: "):].rstrip("\n")
    code, _, err = invoke(["stop", "nosuch"], FakeSystem([]), environ={"LANG": "C.UTF-8"})
    assert "未知的服务 'nosuch'" in err, "procclean.ini's lang"
    code, _, err = invoke(["--lang", "en", "stop", "nosuch"], FakeSystem([]))
    assert err.startswith("procclean: unknown service 'nosuch' (known: "), err


def test_doctor_names_a_bad_setting_in_chinese(in_tmp):
    (in_tmp / "procclean.ini").write_text("[backend]\nsupervise = maybe\n")
    code, out, _ = invoke(["--lang", "zh", "doctor", "backend"], FakeSystem([]))
    assert "backend: supervise 应为 yes 或 no, 而不是 'maybe'" in out, out
    (in_tmp / "procclean.ini").write_text("[backend]\ncommand = python 'main.py\n")
    code, out, _ = invoke(["--lang", "zh", "doctor", "backend"], FakeSystem([]))
    assert "backend: 无法解析启动命令 \"python 'main.py\"" in out, out


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
    system = FakeSystem([FakeProc(555, 1, "java -jar other.jar", cwd="/srv/other")],
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
    assert "port 8000 is taken by PID 555 (python3 -m http.server 8000, in " in err


def test_a_port_holder_procclean_cannot_see_is_named_by_its_owner(in_tmp):
    """A root docker-proxy (or another user's server) on a service's port: its process's
    fds are not ours to read, but the kernel's socket tables (sock_diag, /proc/net/tcp)
    give its uid. kill-port, start, status, status --check and stop name that user."""
    import json
    owner = procclean.System().user_name(0)
    unseen = [procclean.Listener(8000, "0.0.0.0", "ipv4", None, None, 0)]
    theirs = "a process of user %s that procclean cannot see" % owner
    code, _, err = invoke(["kill-port", "8000"], FakeSystem([], listeners=unseen))
    assert code == 1 and "port 8000: held by %s (run as its owner or root)" % theirs in err
    code, _, err = invoke(["kill-port", "8000", "--lang", "zh"],
                          FakeSystem([], listeners=unseen))
    assert "端口 8000: 被用户 %s 的无法查看的进程占用" % owner in err
    code, out, _ = invoke(["kill-port", "8000", "--json"], FakeSystem([], listeners=unseen))
    assert json.loads(out)["events"][0]["user"] == owner
    code, _, err = invoke(["start-backend"], FakeSystem([], listeners=unseen))
    assert code == 1 and "port 8000 is taken by %s" % theirs in err
    code, out, _ = invoke(["status", "backend"], FakeSystem([], listeners=unseen))
    assert "port 8000: taken by %s" % theirs in out
    code, out, _ = invoke(["status", "backend", "--json"], FakeSystem([], listeners=unseen))
    assert json.loads(out)["services"][0]["listeners"][0]["user"] == owner
    running = FakeSystem([FakeProc(100, 1, "uvicorn main:app")], listeners=unseen)
    code, _, err = invoke(["status", "backend", "--check"], running)
    assert code == 3 and "runs, but port 8000 is held by %s" % theirs in err
    code, _, err = invoke(["stop", "backend"], FakeSystem([], listeners=unseen))
    assert "port 8000 is still held by %s" % theirs in err


def test_start_when_already_running_says_so():
    code, out, _ = invoke(["start-backend"], FakeSystem([FakeProc(100, 1, "python main.py")]))
    assert code == 0 and "already running (PID 100)" in out


def test_command_argv():
    assert procclean.command_argv("npm run dev") == ["npm", "run", "dev"]
    assert procclean.command_argv("{python} main.py")[1:] == ["main.py"]
    assert procclean.command_argv("cd app && exec node x.js") == [
        "/bin/sh", "-c", "cd app && exec node x.js"]
    # quoted, parentheses and spaces are a word's, not the shell's: no /bin/sh between
    assert procclean.command_argv('gunicorn -w 3 "app:create_app()" \'a b\'') == [
        "gunicorn", "-w", "3", "app:create_app()", "a b"]
    assert procclean.command_argv('echo "$HOME" \'x\'')[:2] == ["/bin/sh", "-c"]
    assert procclean.command_argv('echo "a" | cat')[:2] == ["/bin/sh", "-c"]


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
    """`procclean stop | head -0`: the first failed write is the last one tried on stdout;
    warnings still reach stderr."""
    class Closed(io.StringIO):
        tries = 0

        def write(self, text):
            Closed.tries += 1
            raise BrokenPipeError(32, "Broken pipe")

    err = io.StringIO()
    reporter = procclean.Reporter(stdout=Closed(), stderr=err, environ={})
    reporter.say("removed", path="x")
    reporter.say("removed", path="y")
    reporter.warn("pidfile_untrusted", path="z")
    assert Closed.tries == 1
    assert err.getvalue() == reporter.text("pidfile_untrusted", err=True, path="z") + "\n"


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


@pytest.mark.parametrize("variable", ["PROCCLEAN_PS", "PROCCLEAN_PORTS"])
def test_unknown_table_sources_are_usage_errors(variable):
    """No system given: main builds the real one, and refuses a source it does not know
    before it reads anything."""
    out, err = io.StringIO(), io.StringIO()
    code = procclean.main(["status"], stdout=out, stderr=err,
                          environ={variable: "bogus", "LANG": "C.UTF-8"})
    assert code == 2 and err.getvalue().startswith("procclean: %s=bogus: " % variable)
    assert out.getvalue() == ""


def test_watch_followed_by_a_service_name_watches_that_service():
    system = FakeSystem([FakeProc(100, 1, "python main.py"), FakeProc(200, 1, "npm run dev")],
                        listeners=[procclean.Listener(8000, "127.0.0.1", "ipv4", 100)])
    system.health_answers = {"http://127.0.0.1:8000/health": (200, 0.01, None)}
    code, out, err = invoke(["status", "--watch", "backend", "--count", "1"], system)
    assert code == 0, err
    assert "backend: running" in out and "frontend" not in out


def test_logs_with_zero_lines_prints_none(in_tmp):
    (in_tmp / "backend.log").write_text("one\ntwo\n")
    code, out, _ = invoke(["logs", "backend", "-n", "0"], FakeSystem([]))
    assert code == 0 and out == ""
    code, out, _ = invoke(["logs", "backend", "-n", "1"], FakeSystem([]))
    assert out == "two\n"


def test_logs_shows_the_end_of_a_last_line_longer_than_the_tail_it_reads(in_tmp):
    # A log that ends in one line of more than 64 KiB (a JSON payload, a traceback in one
    # line): logs -n (and the log tail start prints after a failure) shows that line's end,
    # not nothing.
    (in_tmp / "backend.log").write_text("early\n" + "x" * 70000 + "END\n")
    code, out, _ = invoke(["logs", "backend", "-n", "1"], FakeSystem([]))
    assert code == 0 and out.endswith("xxxxEND\n") and "early" not in out


def test_doctor_findings_print_even_with_quiet(in_tmp):
    (in_tmp / "backend.pid").write_text("4242\n")
    code, out, _ = invoke(["doctor", "backend", "--quiet"], FakeSystem([]))
    assert code == 1
    assert "backend.pid: names PID 4242, which is not running" in out
    # procclean.py is outside this folder here: named by its real path
    assert "fix: python3 %s clean backend" % procclean.__file__ in out


def test_doctor_findings_in_chinese_use_the_seeds_words(in_tmp):
    (in_tmp / "backend.pid").write_text("4242\n")
    code, out, _ = invoke(["--lang", "zh", "doctor", "backend"], FakeSystem([]))
    assert code == 1
    assert "backend.pid: PID 文件指向不存在的进程 (PID: 4242)" in out
    assert "解决: python3 %s clean backend" % procclean.__file__ in out
    assert "1 个问题需要处理" in out and "names PID" not in out and "process table" not in out


def test_a_corrupt_supervisor_state_file_cannot_crash_status(in_tmp):
    (in_tmp / "backend.pid.state").write_text('{"state": "gave-up", "restarts": "x", '
                                              '"last_exit": "boom"}')
    code, out, err = invoke(["status", "backend", "--json"], FakeSystem([]))
    assert code == 0, err
    code, out, err = invoke(["status", "backend"], FakeSystem([]))
    assert code == 0 and "gave up" in out


def test_unbalanced_quotes_in_a_start_command_are_a_config_error():
    code, _, err = invoke(["start", "backend", "--set", "backend.command=python 'main.py"],
                          FakeSystem([]))
    assert code == 2 and "cannot read start command" in err


def test_warnings_on_stderr_carry_no_colour_when_only_stdout_is_a_terminal():
    class Tty(io.StringIO):
        encoding = "utf-8"

        def isatty(self):
            return True

    err = io.StringIO()
    reporter = procclean.Reporter(stdout=Tty(), stderr=err, environ={"TERM": "xterm"})
    reporter.warn("pidfile_untrusted", path="backend.pid")
    assert "\033[" not in err.getvalue()


def test_closed_standard_streams_are_not_an_error():
    """Started with `>&-` or `2>&-` (Python then has None for the stream): what goes to the
    closed one is dropped, the other still gets its lines."""
    out, err = io.StringIO(), io.StringIO()
    reporter = procclean.Reporter(stdout=out, stderr=err, environ={})
    reporter.stdout = None
    reporter.say("removed", path="x")
    reporter.warn("pidfile_untrusted", path="y")
    warning = reporter.text("pidfile_untrusted", err=True, path="y") + "\n"
    assert out.getvalue() == "" and err.getvalue() == warning
    reporter.stdout, reporter.stderr = out, None
    reporter.warn("pidfile_untrusted", path="z")
    reporter.say("removed", path="w")
    assert out.getvalue() == reporter.text("removed", path="w") + "\n"
    assert err.getvalue() == warning


def test_an_unexpected_error_is_one_line_not_a_traceback(monkeypatch, capsys):
    def broken(*args, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(procclean, "run", broken)
    monkeypatch.delenv("PROCCLEAN_DEBUG", raising=False)
    assert procclean.main(["status"]) == 1
    err = capsys.readouterr().err
    assert err == ("procclean: internal error: RuntimeError: boom (PROCCLEAN_DEBUG=1 shows "
                   "where; please report it)\n")
    monkeypatch.setenv("PROCCLEAN_LANG", "zh")
    assert procclean.main(["status"]) == 1
    assert capsys.readouterr().err.startswith("procclean: 内部错误: RuntimeError: boom (")
    monkeypatch.delenv("PROCCLEAN_LANG")
    monkeypatch.setenv("PROCCLEAN_DEBUG", "1")
    with pytest.raises(RuntimeError):
        procclean.main(["status"])


@pytest.mark.parametrize("argv,expected", [
    (["logs", "backend", "-n5"], {"lines": "5"}),
    (["logs", "backend", "-n=5"], {"lines": "5"}),
    (["-qf", "logs", "backend"], {"quiet": True, "follow": True}),
    (["--dry", "stop"], {"dry_run": True}),
    (["--max-r", "3", "supervise", "worker"], {"max_restarts": "3"}),
    (["--watch", "status"], {"watch": "2.0", "command": "status"}),
    (["status", "--watch", "1", "backend"], {"watch": "1", "names": ["backend"]}),
    (["--set=backend.command=-x", "start"], {"set": ["backend.command=-x"]}),
    (["--lang=zh", "stop"], {"lang": "zh"}),
    (["stop", "--grace", "-1"], {"grace": "-1"}),
    (["--", "stop", "--odd-name"], {"command": "stop", "names": ["--odd-name"]}),
])
def test_option_forms(argv, expected):
    args, extra = procclean.build_parser().parse_known_args(argv)
    assert extra == []
    for name, value in expected.items():
        assert getattr(args, name) == value, (name, getattr(args, name))


def test_an_ambiguous_abbreviation_is_a_usage_error():
    with pytest.raises(procclean.ProcCleanError) as error:
        procclean.build_parser().parse_known_args(["--ma", "status"])
    assert "ambiguous option --ma" in str(error.value)


def test_lang_without_a_value_names_the_choices():
    with pytest.raises(procclean.ProcCleanError) as error:
        procclean.build_parser().parse_known_args(["status", "--lang"])
    assert str(error.value) == "--lang needs a value ({en,zh})"


def test_a_bad_command_stops_start_before_anything_starts(in_tmp):
    system = FakeSystem([])
    code, out, err = invoke(["start", "backend", "worker", "--set",
                             'worker.command=zzz "unclosed'], system)
    assert code == 2 and "cannot read start command" in err
    assert not (in_tmp / "backend.pid").exists() and "started" not in out


def _placeholders(template):
    import string
    texts = template if isinstance(template, tuple) else (template,)
    return sorted(name for text in texts for _, name, _, _ in string.Formatter().parse(text)
                  if name is not None)


def test_every_error_raised_is_given_the_values_its_message_asks_for():
    """Each `ProcCleanError("key", ..., name=value)` in procclean.py names a message and
    passes every value it asks for: one left out ended the command in an internal error
    (KeyError) instead of the one line of its error, found only when it happened."""
    import ast
    with open(SCRIPT, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    errors = {"ProcCleanError": 0, "_FieldError": 1}     # where the key is
    checked = 0
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in errors and len(node.args) > errors[node.func.id]):
            continue
        key = node.args[errors[node.func.id]]
        # a key chosen by a condition (`"a" if x else "b"`): each must have its values
        keys = [key.body, key.orelse] if isinstance(key, ast.IfExp) else [key]
        keys = [k.value for k in keys if isinstance(k, ast.Constant)
                and isinstance(k.value, str) and k.value in procclean.MESSAGES["en"]]
        given = set(k.arg for k in node.keywords)
        assert not keys or None not in given, "line %d: **values" % node.lineno
        for lang, name in [(lang, name) for lang in ("en", "zh") for name in keys]:
            wanted = set(_placeholders(procclean.MESSAGES[lang][name]))
            assert wanted <= given, "line %d: %s lacks %s" % (node.lineno, name,
                                                             sorted(wanted - given))
        checked += len(keys)
    assert checked > 40


def test_every_message_exists_in_both_languages():
    """Same keys; and the Chinese asks only for values the English is given (another
    would be a KeyError when it is printed)."""
    en, zh = procclean.MESSAGES["en"], procclean.MESSAGES["zh"]
    assert sorted(set(en) - set(zh)) == [], "no Chinese for these"
    assert sorted(set(zh) - set(en)) == [], "no English for these"
    for key in en:
        assert type(zh[key]) is type(en[key]), key
        if isinstance(en[key], tuple):
            assert len(zh[key]) == len(en[key]), key
        assert set(_placeholders(zh[key])) <= set(_placeholders(en[key])), key


def test_every_message_key_is_used_in_procclean():
    """A key is used when procclean.py names it outside the MESSAGES table itself."""
    import ast
    with open(SCRIPT, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    table = [node for node in tree.body if isinstance(node, ast.Assign)
             and any(getattr(t, "id", None) == "MESSAGES" for t in node.targets)]
    assert len(table) == 1
    inside = set(id(node) for node in ast.walk(table[0]))
    named = set()
    for node in ast.walk(tree):
        if id(node) in inside:
            continue
        value = getattr(node, "value", None) if type(node).__name__ == "Constant" \
            else getattr(node, "s", None) if type(node).__name__ == "Str" else None
        if isinstance(value, str):
            named.add(value)
    assert sorted(set(procclean.MESSAGES["en"]) - named) == []


def _cells(text):
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def test_show_processes_in_chinese_names_services_as_status_does_and_aligns_columns():
    procs = [FakeProc(100, 1, "uvicorn main:app", user="开发者"),
             FakeProc(200, 1, "npm run dev", user="dev")]
    code, out, _ = invoke(["--lang", "zh", "show-processes"], FakeSystem(procs))
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["服务", "后端", "前端"]
    # every column starts at the same terminal cell on every line (CJK: two cells)
    for column in ("PID", "PPID", "用户", "命令"):
        starts = [_cells(lines[0][:lines[0].index(column)])]
        for line, proc in zip(lines[1:], procs):
            cell = {"PID": " %d " % proc.pid, "PPID": " %d " % proc.ppid,
                    "用户": " %s " % proc.user, "命令": proc.command}[column]
            starts.append(_cells(line[:line.index(cell) + (cell[0] == " ")]))
        assert len(set(starts)) == 1, (column, starts, out)
    _, out, _ = invoke(["--lang", "zh", "status", "backend"], FakeSystem(
        procs, listeners=[procclean.Listener(8000, "127.0.0.1", "ipv4", 100)]))
    assert "后端: 运行中" in out


LOG_WITH_STARTS = (
    "[procclean 2026-12-06 10:00:00.000] start: backend PID 5: python main.py (in .)\n"
    "INFO:     Started server process [5]\n"
    "[procclean 2026-12-06 11:00:00.000] start: backend PID 6: python main.py (in .)\n"
    "INFO:     Application startup complete.\n"
    "ERROR:    Exception in ASGI application\n")


def _log(in_tmp, text, mtime="2026-12-06 11:05:00"):
    path = in_tmp / "backend.log"
    path.write_text(text)
    when = procclean.parse_since(mtime, 0)
    os.utime(str(path), (when, when))


def test_logs_since_shows_the_lines_written_since_then(in_tmp):
    """A line without a time of its own counts from the next time the log shows (here the
    second start), so the start-up line of the first run stays out, the rest comes."""
    _log(in_tmp, LOG_WITH_STARTS)
    code, out, _ = invoke(["logs", "backend", "--since", "2026-12-06 10:30"], FakeSystem([]))
    assert code == 0
    assert out.splitlines() == [
        "INFO:     Started server process [5]",
        "[procclean 2026-12-06 11:00:00.000] start: backend PID 6: python main.py (in .)",
        "INFO:     Application startup complete.",
        "ERROR:    Exception in ASGI application"]
    code, out, _ = invoke(["logs", "backend", "--since", "2026-12-06 11:06"], FakeSystem([]))
    assert code == 0 and out == ""


def test_logs_since_a_duration_counts_back_from_now(in_tmp):
    _log(in_tmp, LOG_WITH_STARTS)
    system = FakeSystem([])
    system.now = procclean.parse_since("2026-12-06 11:10", 0) - system.wall_time()
    code, out, _ = invoke(["logs", "backend", "--since", "30m"], system)
    assert code == 0 and len(out.splitlines()) == 4 and "PID 5:" not in out, out
    code, out, _ = invoke(["logs", "backend", "--since", "2h"], system)
    assert len(out.splitlines()) == 5, out


def test_logs_since_reaches_into_the_previous_log(in_tmp):
    _log(in_tmp, "[procclean 2026-12-06 09:00:00.000] start\nold run's line\n",
         mtime="2026-12-06 09:30")
    os.rename(str(in_tmp / "backend.log"), str(in_tmp / "backend.log.1"))
    _log(in_tmp, LOG_WITH_STARTS)
    code, out, _ = invoke(["logs", "backend", "--since", "2026-12-06 08:00"], FakeSystem([]))
    assert out.splitlines()[:2] == ["[procclean 2026-12-06 09:00:00.000] start",
                                    "old run's line"], out
    assert len(out.splitlines()) == 7


def test_logs_grep_searches_the_whole_log_not_only_the_tail(in_tmp):
    _log(in_tmp, "ERROR: first\n" + "ok\n" * 100 + "ERROR: second\n")
    code, out, _ = invoke(["logs", "backend", "--grep", "^ERROR"], FakeSystem([]))
    assert code == 0 and out.splitlines() == ["ERROR: first", "ERROR: second"]
    code, out, _ = invoke(["logs", "backend", "--grep", "^ERROR", "-n", "1"], FakeSystem([]))
    assert out.splitlines() == ["ERROR: second"]


def test_logs_grep_and_since_in_json(in_tmp):
    _log(in_tmp, LOG_WITH_STARTS)
    code, out, _ = invoke(["logs", "backend", "--grep", "ERROR", "--since", "2026-12-06 10:30",
                           "--json"], FakeSystem([]))
    assert code == 0
    assert json.loads(out)["lines"] == [{"service": "backend",
                                         "line": "ERROR:    Exception in ASGI application"}]


@pytest.mark.parametrize("option,value", [("--since", "yesterday"), ("--since", "10x"),
                                          ("--grep", "(unclosed")])
def test_logs_bad_since_or_grep_is_a_usage_error(in_tmp, option, value):
    _log(in_tmp, LOG_WITH_STARTS)
    code, out, err = invoke(["logs", "backend", option, value], FakeSystem([]))
    assert code == 2 and out == "" and err.count("\n") == 1 and option in err, err


def test_vite_time_of_day_lines_take_the_date_of_the_stamps_around_them():
    lines = ["[procclean 2026-12-06 14:00:00.000] dev: started frontend",
             "2:05:01 PM [vite] hmr update /src/App.tsx", "  plain line"]
    times = procclean.log_line_times(lines, procclean.parse_since("2026-12-06 15:00", 0))
    at = lambda text: procclean.parse_since(text, 0)
    assert times == [at("2026-12-06 14:00"), at("2026-12-06 14:05:01"), at("2026-12-06 15:00")]


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("90", 90), ("10m", 600),
                                          ("1h30m", 5400), ("2d", 172800)])
def test_since_durations(text, seconds):
    assert procclean.parse_since(text, 10 ** 6) == 10 ** 6 - seconds


def test_since_with_a_zone_is_that_zone():
    assert procclean.parse_since("2026-12-06T10:00:00Z", 0) == \
        procclean.parse_since("2026-12-06T12:00:00+02:00", 0)


# The end of the process: exit_as leaves out Python's own teardown when nothing needs it
# (issue 23), and keeps it for whoever does. Only exit_as runs here, no command.
END_PROBE = ("import sys; sys.path.insert(0, %r); import procclean\n"
             "print('out'); sys.stderr.write('err\\n')\n%s\nprocclean.exit_as(3)\n")


@pytest.mark.parametrize("flags, setup, tail", [
    (["-S"], "", ""),                                   # -S: nothing registered, os._exit
    ([], "", ""),                                       # site may register callbacks
    (["-S"], "import atexit; atexit.register(print, 'atexit ran')", "atexit ran\n"),
    (["-S"], "import threading, time; threading.Thread(target=lambda: (time.sleep(0.2), "
             "print('thread ended'))).start()", "thread ended\n"),
])
def test_the_exit_code_and_output_with_or_without_pythons_teardown(flags, setup, tail):
    r = subprocess.run([sys.executable] + flags + ["-c", END_PROBE % (REPO, setup)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 3, r
    assert r.stdout.decode() == "out\n" + tail and r.stderr.decode() == "err\n", r


def test_nothing_at_exit_is_false_under_a_tracer():
    previous = sys.gettrace()
    sys.settrace(lambda *a: None)
    try:
        assert not procclean._nothing_at_exit()
    finally:
        sys.settrace(previous)
