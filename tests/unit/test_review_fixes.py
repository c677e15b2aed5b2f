"""Edge cases found in review: pidfiles that are links, FIFOs or huge; bad source names;
optional values that swallowed a service name; zero values; what clean and doctor keep."""
import io
import os
import stat

import pytest

from fakes import FakeProc, FakeSystem, invoke
import procclean


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_symlinked_pidfile_is_not_followed(in_tmp):
    (in_tmp / "elsewhere.pid").write_text("100\n")
    os.symlink("elsewhere.pid", str(in_tmp / "backend.pid"))
    info = procclean.System().read_pidfile("backend.pid")
    assert info.exists and info.pid is None and info.problem == "invalid"
    assert b"link" in info.raw


def test_a_fifo_pidfile_is_refused_without_hanging(in_tmp):
    os.mkfifo(str(in_tmp / "backend.pid"))
    info = procclean.System().read_pidfile("backend.pid")
    assert info.problem == "invalid" and b"not a regular file" in info.raw


def test_a_pidfile_padded_past_4096_bytes_is_invalid(in_tmp):
    (in_tmp / "backend.pid").write_bytes(b" " * 4094 + b"3999")
    assert procclean.System().read_pidfile("backend.pid").pid is None


def test_pidfile_written_atomically_leaves_no_temp_file(in_tmp):
    procclean.System().write_pidfile("backend.pid", 4242)
    assert (in_tmp / "backend.pid").read_text() == "4242\n"
    assert sorted(os.listdir(str(in_tmp))) == ["backend.pid"]
    mode = stat.S_IMODE(os.stat(str(in_tmp / "backend.pid")).st_mode)
    assert not mode & 0o022


@pytest.mark.parametrize("variable", ["PROCCLEAN_PS", "PROCCLEAN_PORTS"])
def test_unknown_table_sources_are_usage_errors(variable):
    parser = procclean.build_parser()
    args, extra = parser.parse_known_args(["status"])
    with pytest.raises(procclean.ProcCleanError) as error:
        procclean.run(args, [], environ={variable: "bogus", "LANG": "C.UTF-8"},
                      out=procclean.Reporter(stdout=io.StringIO(), stderr=io.StringIO()))
    assert error.value.code == 2 and variable in str(error.value)


def test_watch_followed_by_a_service_name_watches_that_service():
    system = FakeSystem([FakeProc(100, 1, "python main.py"), FakeProc(200, 1, "npm run dev")])
    code, out, err = invoke(["status", "--watch", "backend", "--count", "1"], system)
    assert code == 0, err
    assert "backend: running" in out and "frontend" not in out


def test_logs_with_zero_lines_prints_none(in_tmp):
    (in_tmp / "backend.log").write_text("one\ntwo\n")
    code, out, _ = invoke(["logs", "backend", "-n", "0"], FakeSystem([]))
    assert code == 0 and out == ""
    code, out, _ = invoke(["logs", "backend", "-n", "1"], FakeSystem([]))
    assert out == "two\n"


def test_clean_removes_the_previous_log_too(in_tmp):
    for name in ("backend.log", "backend.log.1"):
        (in_tmp / name).write_text("x")
    code, out, _ = invoke(["clean", "backend"], FakeSystem([]))
    assert code == 0
    assert not (in_tmp / "backend.log").exists() and not (in_tmp / "backend.log.1").exists()


def test_doctor_findings_print_even_with_quiet(in_tmp):
    (in_tmp / "backend.pid").write_text("4242\n")
    code, out, _ = invoke(["doctor", "backend", "--quiet"], FakeSystem([]))
    assert code == 1
    assert "backend.pid: names PID 4242, which is not running" in out
    # procclean.py is outside this folder here: named by its real path
    assert "fix: python3 %s clean backend" % procclean.__file__ in out


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
    reporter = procclean.Reporter(environ={})
    reporter.stdout = reporter.stderr = None
    reporter.say("removed", path="x")
    reporter.warn("pidfile_untrusted", path="x")


def test_an_unexpected_error_is_one_line_not_a_traceback(monkeypatch, capsys):
    def broken(*args, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(procclean, "run", broken)
    monkeypatch.delenv("PROCCLEAN_DEBUG", raising=False)
    assert procclean.main(["status"]) == 1
    err = capsys.readouterr().err
    assert err == ("procclean: internal error: RuntimeError: boom (PROCCLEAN_DEBUG=1 shows "
                   "where; please report it)\n")
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


def test_kill_port_leaves_a_holder_that_started_after_the_listing():
    late = FakeProc(700, 1, "python3 -m http.server 8000", start=999999.0)
    system = FakeSystem([late], listeners=[procclean.Listener(8000, "0.0.0.0", "ipv4", 700)])
    code, _, err = invoke(["kill-port", "8000"], system)
    assert code == 1 and system.sent == []
    assert "cannot see" in err
