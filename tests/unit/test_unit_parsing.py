"""Pure parsers fed recorded output: ps of each platform, /proc, lsof, ss, /proc/net/tcp."""
import glob
import json
import os
import sys

import pytest

import procclean

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")


def rows(processes):
    return [(p.pid, p.ppid, p.user, p.command) for p in processes]


def test_procps_ps_ef():
    text = (
        "UID          PID    PPID  C STIME TTY          TIME CMD\n"
        "root           1       0  0 09:11 ?        00:00:03 /sbin/init\n"
        "root           2       0  0 09:11 ?        00:00:00 [kthreadd]\n"
        "verylon+    4242       1  2 Nov27 pts/0    1-02:03:04 uvicorn main:app  --reload\n"
        "dev         4243    4242  0 09:12 ?        00:00:00 [python3] <defunct>\n")
    procs, has_ppid = procclean.parse_ps_ef(text)
    assert has_ppid
    assert rows(procs) == [
        (1, 0, "root", "/sbin/init"), (2, 0, "root", "[kthreadd]"),
        (4242, 1, "verylon+", "uvicorn main:app  --reload"),
        (4243, 4242, "dev", "[python3] <defunct>")]
    assert [p.zombie for p in procs] == [False, False, False, True]
    assert procs[2].cpu_seconds == 86400 + 2 * 3600 + 3 * 60 + 4
    assert procs[2].line.startswith("verylon+    4242")


def test_macos_ps_ef_numeric_uid_and_stimes():
    text = (
        "  UID   PID  PPID   C STIME   TTY           TIME CMD\n"
        "    0     1     0   0  9:02AM ??         2:13.63 /sbin/launchd\n"
        "  501   812     1   0 Mon09AM ??         0:21.23 /usr/local/bin/Python main.py\n"
        "  501   901   812   0 27Nov25 ttys001    0:00.02 node /Users/me/frontend/node_modules/.bin/vite\n")
    procs, has_ppid = procclean.parse_ps_ef(text)
    assert has_ppid
    assert rows(procs) == [(1, 0, "0", "/sbin/launchd"),
                           (812, 1, "501", "/usr/local/bin/Python main.py"),
                           (901, 812, "501", "node /Users/me/frontend/node_modules/.bin/vite")]
    assert procs[1].cpu_seconds == pytest.approx(21.23)


def test_stime_with_a_space_cygwin_and_solaris():
    cygwin = ("      UID     PID    PPID  TTY        STIME COMMAND\n"
              "     dev    1234       1 pty0       Jul 13 /usr/bin/python3 main.py\n"
              "     dev    1240    1234 pty0     13:45:02 /usr/bin/node vite\n")
    procs, _ = procclean.parse_ps_ef(cygwin)
    assert rows(procs) == [(1234, 1, "dev", "/usr/bin/python3 main.py"),
                           (1240, 1234, "dev", "/usr/bin/node vite")]
    solaris = ("     UID   PID  PPID   C    STIME TTY         TIME CMD\n"
               "    root     1     0   0   May 05 ?           0:12 /sbin/init\n"
               "     dev  2211     1   0 10:01:02 pts/2       0:01 python main.py\n")
    procs, _ = procclean.parse_ps_ef(solaris)
    assert rows(procs) == [(1, 0, "root", "/sbin/init"), (2211, 1, "dev", "python main.py")]


def test_locale_stime_with_spaces_is_read_by_the_time_column():
    text = ("UID          PID    PPID  C STIME TTY          TIME CMD\n"
            "dev         4242       1  0 thg 11 28 ?    00:00:01 uvicorn main:app\n")
    procs, _ = procclean.parse_ps_ef(text)
    assert rows(procs) == [(4242, 1, "dev", "uvicorn main:app")]


def test_busybox_ps_has_no_ppid():
    text = ("PID   USER     TIME  COMMAND\n"
            "    1 root      0:00 sh\n"
            "   12 root      0:00 {uvicorn} python3 /usr/bin/uvicorn main:app\n")
    procs, has_ppid = procclean.parse_ps_ef(text)
    assert not has_ppid
    assert rows(procs) == [(1, None, "root", "sh"),
                           (12, None, "root", "{uvicorn} python3 /usr/bin/uvicorn main:app")]


def test_unexpected_header_is_a_clear_error():
    with pytest.raises(procclean.ProcCleanError):
        procclean.parse_ps_ef("hello world\n1 2 3\n")


def test_non_utf8_command_bytes_survive_and_print_escaped():
    text = (b"UID          PID    PPID  C STIME TTY          TIME CMD\n"
            b"dev           10       1  0 09:11 ?        00:00:00 python main.py caf\xe9\n")
    procs, _ = procclean.parse_ps_ef(text)
    assert procs[0].command.endswith("caf\udce9")
    assert procclean.printable(procs[0].command) == "python main.py caf\\xe9"


def test_ps_o_form():
    text = (b"dev      812     1 Ss   01:02:03  0:21.23  40960 /usr/local/bin/Python main.py\n"
            b"dev      813   812 Z       00:05  0:00.00      0 <defunct>\n")
    procs = procclean.parse_ps_o(text, now=10000.0)
    assert rows(procs) == [(812, 1, "dev", "/usr/local/bin/Python main.py"),
                           (813, 812, "dev", "<defunct>")]
    assert procs[0].elapsed == 3723 and procs[0].start == 10000.0 - 3723
    assert procs[0].rss_kb == 40960 and procs[1].zombie


@pytest.mark.parametrize("text,seconds", [
    ("00:00:05", 5), ("1-02:03:04", 93784), ("0:21.23", 21.23), ("05:07", 307),
    ("2-00:00", 172800), ("bad", None)])
def test_parse_duration(text, seconds):
    assert procclean.parse_duration(text) == (pytest.approx(seconds) if seconds else None)


def test_proc_stat_with_spaces_and_parentheses_in_comm():
    data = (b"4242 (my (weird) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
            b"150 50 0 0 20 0 1 0 12345 1000000 321 18446744073709551615")
    f = procclean.parse_proc_stat(data)
    assert (f.pid, f.comm, f.state, f.ppid, f.pgid, f.sid, f.cpu_ticks, f.start_ticks,
            f.rss_pages) == (4242, "my (weird) prog", "S", 1, 4242, 4242, 200, 12345, 321)


def test_proc_command_like_procps():
    assert procclean.proc_command(b"uvicorn\0main:app\0", "uvicorn", "S") == "uvicorn main:app"
    assert procclean.proc_command(b"", "kthreadd", "S") == "[kthreadd]"
    assert procclean.proc_command(b"", "python3", "Z") == "[python3] <defunct>"


@pytest.mark.parametrize("data,pid", [
    (b"1234\n", 1234), (b"  42  ", 42), (b"2", 2), (b"1", None), (b"0", None),
    (b"-1", None), (b"", None), (b"abc", None), (b"123abc", None), (b"1 2", None),
    (b"99999999999", None), (b"\xff\x00", None), (b"\xd9\xa3", None), (b"\xd9\xa3".decode("utf-8").encode("utf-8"), None)])
def test_parse_pidfile(data, pid):
    assert procclean.parse_pidfile(data) == pid


def test_parse_pidfile_rejects_non_ascii_digits():
    # Arabic-Indic digits pass str.isdigit(): a pidfile is ASCII decimal only.
    assert procclean.parse_pidfile("\u0661\u0662".encode("utf-8")) is None


def listeners(found):
    return sorted((l.port, l.address, l.family, l.pid) for l in found)


def test_lsof_wildcards_and_mapped_addresses_take_the_family_from_type():
    text = "p7\ncpython3\nf3\ntIPv6\nn*:8000\nf4\ntIPv6\nn127.0.0.1:9001\nf5\ntIPv4\nn*:8001\n"
    assert listeners(procclean.parse_lsof_fields(text)) == [
        (8000, "::", "ipv6", 7), (8001, "0.0.0.0", "ipv4", 7), (9001, "::ffff:127.0.0.1", "ipv6", 7)]


def test_ss_star_is_a_dual_stack_ipv6_socket():
    text = 'LISTEN 0 128 *:9000 *:* users:(("python3",pid=5,fd=3))\n'
    assert listeners(procclean.parse_ss(text)) == [(9000, "::", "ipv6", 5)]


@pytest.mark.parametrize("text", ["0", "70000", "abc", "+8000", "8_000", "-1", "", "80.0"])
def test_parse_port_rejects(text):
    with pytest.raises(procclean.ProcCleanError):
        procclean.parse_port(text)


def test_busybox_lsof_is_detected_as_unusable():
    text = "1\t/bin/busybox\t/dev/null\n1\t/bin/busybox\tsocket:[1234]\n"
    assert procclean.parse_lsof_fields(text) is None


def test_lsof_field_output():
    text = "p12\ncpython3\nf3\nn127.0.0.1:8000\np20\ncnode\nf21\nn[::1]:3000\n"
    assert listeners(procclean.parse_lsof_fields(text)) == [
        (3000, "::1", "ipv6", 20), (8000, "127.0.0.1", "ipv4", 12)]


def test_ss_listeners_with_shared_socket():
    text = ('LISTEN 0      128        127.0.0.1:8000      0.0.0.0:*    '
            'users:(("python3",pid=13,fd=3),("python3",pid=12,fd=3))\n'
            'LISTEN 0      511            [::1]:3000         [::]:*    users:(("node",pid=20,fd=21))\n'
            'ESTAB  0      0          127.0.0.1:41000   127.0.0.1:8000 users:(("curl",pid=30,fd=5))\n'
            'LISTEN 0      4096   [::ffff:127.0.0.1]:9000       *:*\n')
    assert listeners(procclean.parse_ss(text)) == [
        (3000, "::1", "ipv6", 20), (8000, "127.0.0.1", "ipv4", 12),
        (8000, "127.0.0.1", "ipv4", 13), (9000, "::ffff:127.0.0.1", "ipv6", None)]


def test_proc_net_tcp_and_tcp6():
    tcp = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
           "   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 36011 1 0 100 0 0 10 0\n"
           "   1: 0100007F:A028 0100007F:1F40 01 00000000:00000000 00:00000000 00000000     0        0 36030 1 0 20 4 30 10 -1\n")
    assert procclean.parse_proc_net_tcp(tcp) == [(8000, "127.0.0.1", 36011, 0)]
    tcp6 = ("  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
            "   0: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 36020 1 0 100 0 0 10 0\n"
            "   1: 0000000000000000FFFF00000100007F:2328 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 36040 1 0 100 0 0 10 0\n"
            "   2: 00000000000000000000000000000000:1F41 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 36050 1 0 100 0 0 10 0\n")
    assert procclean.parse_proc_net_tcp(tcp6, "ipv6") == [
        (3000, "::1", 36020, 0), (9000, "::ffff:127.0.0.1", 36040, 0),
        (8001, "::", 36050, 1000)]


def test_sock_diag_replies_recorded_on_linux():
    """Replies of the kernel's NETLINK_SOCK_DIAG (as `ss` gets them), recorded in a namespace
    with a listener on 127.0.0.1:8000 (and a connected client), one on [::1]:3000 and an
    IPv4-mapped one on [::ffff:127.0.0.1]:9001. Host byte order: recorded on x86-64."""
    import socket
    if sys.byteorder != "little":
        pytest.skip("recorded on a little-endian machine")
    with open(os.path.join(DATA, "ports", "linux-sock-diag-inet.bin"), "rb") as f:
        inet = procclean.parse_inet_diag(f.read(), socket.inet_ntop)
    with open(os.path.join(DATA, "ports", "linux-sock-diag-inet6.bin"), "rb") as f:
        inet6 = procclean.parse_inet_diag(f.read(), socket.inet_ntop)
    assert [s[:3] for s in inet[0]] == [(8000, "127.0.0.1", "ipv4")] and inet[1]
    assert [s[:3] for s in inet6[0]] == [(3000, "::1", "ipv6"),
                                         (9001, "::ffff:127.0.0.1", "ipv6")] and inet6[1]
    assert set(s[4] for s in inet[0] + inet6[0]) == {0}     # the socket's uid: root's


def test_sock_diag_error_reply_is_an_oserror():
    import errno as errno_module
    import socket
    error = ((36).to_bytes(4, sys.byteorder) + (2).to_bytes(2, sys.byteorder) + b"\0" * 10
             + (-errno_module.EPERM).to_bytes(4, sys.byteorder, signed=True) + b"\0" * 16)
    with pytest.raises(OSError):
        procclean.parse_inet_diag(error, socket.inet_ntop)


def test_sock_diag_request_asks_for_listening_tcp_of_one_family():
    request = procclean.inet_diag_request(10, seq=7)
    assert len(request) == int.from_bytes(request[:4], sys.byteorder) == 72
    assert request[16:18] == bytes([10, 6])           # AF_INET6, IPPROTO_TCP
    assert int.from_bytes(request[20:24], sys.byteorder) == 1 << 10   # TCP_LISTEN only


# Recordings made on real systems (tests/data/README.md says how), with hand-written
# expectations beside them.

def _cases(folder, keep):
    return sorted(p for p in glob.glob(os.path.join(DATA, folder, "*.json"))
                  if keep(os.path.basename(p)))


# `busybox ps -o ...,comm,args` is kept as the reason procclean asks BusyBox for args alone:
# a comm with spaces ("npm run dev") cannot be told apart from the args beside it.
PS_CASES = (_cases("ps", lambda name: name != "busybox-ps-o-comm.json")
            + _cases("ports", lambda name: "-ps-ef" in name))
# Forms procclean does not read are checked against one it reads, in tests of their own below.
LSOF_TABLES = _cases("ports", lambda name: "-lsof" in name and "-lsof-F" not in name
                     and not name.startswith("busybox"))
NETSTATS = _cases("ports", lambda name: "netstat" in name)
PORT_CASES = [p for p in _cases("ports", lambda name: "-ps-ef" not in name)
              if p not in LSOF_TABLES + NETSTATS]


def test_recordings_are_present():
    assert PS_CASES and PORT_CASES


# The headers of the recorded `ps -o LIST` forms: procclean itself asks `ps -o f=` (no header).
PS_O_HEADERS = {"PID": "pid", "PPID": "ppid", "USER": "user", "UID": "user", "STAT": "stat",
                "S": "stat", "ELAPSED": "etime", "ETIME": "etime", "TIME": "time", "RSS": "rss",
                "%CPU": "pcpu", "COMMAND": "args", "ARGS": "args", "CMD": "args"}


def parse_ps_o_with_header(raw):
    lines = raw.splitlines()
    if not lines:
        return []
    fields = [PS_O_HEADERS.get(name.upper(), name.lower()) for name in lines[0].decode().split()]
    return procclean.parse_ps_o(b"\n".join(lines[1:]), fields)


def _recording(path):
    with open(path) as f:
        expected = json.load(f)
    with open(path[:-len(".json")] + ".txt", "rb") as f:
        return expected, f.read()


@pytest.mark.parametrize("path", PS_CASES, ids=os.path.basename)
def test_recorded_ps(path):
    expected, raw = _recording(path)
    command = expected.get("command_used", "")
    if expected.get("rows") is None:
        # An error instead of a table (BusyBox refusing an -o field): no rows at all.
        assert parse_ps_o_with_header(raw) == []
        return
    if " -o " in command:
        procs = parse_ps_o_with_header(raw)
        has_ppid = "ppid" in command
    else:
        procs, has_ppid = procclean.parse_ps_ef(raw)
    assert has_ppid == expected["has_ppid"]
    # BusyBox shows a zombie as plain [comm], without <defunct> or a state column:
    # there procclean reads /proc instead, so the flag is not asked of this text.
    zombie_shown = ("stat" in command) if " -o " in command else has_ppid
    got = [(p.pid, p.ppid, p.user, procclean.printable(p.command),
            p.zombie if zombie_shown else None) for p in procs]
    want = [(r["pid"], r["ppid"], r["user"], r["command"],
             r.get("zombie", False) if zombie_shown else None) for r in expected["rows"]]
    assert got == want


@pytest.mark.parametrize("path", PORT_CASES, ids=os.path.basename)
def test_recorded_listeners(path):
    expected, raw = _recording(path)
    name = os.path.basename(path)
    if "lsof" in name:
        found = procclean.parse_lsof_fields(raw)
    elif "ss" in name:
        found = procclean.parse_ss(raw)
    elif "tcp" in name:
        family = "ipv6" if "tcp6" in name else "ipv4"
        found = [procclean.Listener(port, addr, family)
                 for port, addr, _, _ in procclean.parse_proc_net_tcp(raw, family)]
    elif "sockstat" in name:
        found = procclean.parse_sockstat(raw)
    else:
        pytest.fail("no parser for %s" % name)
    if expected.get("listeners") is None:
        assert found is None
        return
    want = sorted((l["port"], l["pid"]) for l in expected["listeners"])
    got = sorted((l.port, l.pid) for l in found)
    if "tcp" in name and "lsof" not in name and "ss" not in name:
        want = sorted((l["port"], None) for l in expected["listeners"])
    assert got == want


@pytest.mark.parametrize("path", LSOF_TABLES, ids=os.path.basename)
def test_lsof_tables_show_what_procclean_reads_from_the_field_form(path):
    """lsof's table form is for people; procclean runs `lsof -F` on the same sockets
    (linux-lsof-F, macos-lsof-F): it finds every (port, PID) the table shows."""
    expected, _ = _recording(path)
    name = os.path.basename(path)
    _, fields = _recording(os.path.join(DATA, "ports", name.split("-lsof")[0] + "-lsof-F.json"))
    ports = {l["port"] for l in expected["listeners"]}
    found = [l for l in procclean.parse_lsof_fields(fields) if l.port in ports]
    assert sorted((l.port, l.pid) for l in found) == \
        sorted((l["port"], l["pid"]) for l in expected["listeners"])


@pytest.mark.parametrize("path", NETSTATS, ids=os.path.basename)
def test_netstat_shows_what_procclean_reads_from_proc_net_tcp(path):
    """procclean never runs netstat: BusyBox's (recorded in the same namespace) is a second
    witness that /proc/net/tcp and tcp6 read as procclean reads them hold every listener."""
    expected, _ = _recording(path)
    found = []
    for family, name in (("ipv4", "linux-proc-net-tcp"), ("ipv6", "linux-proc-net-tcp6")):
        _, raw = _recording(os.path.join(DATA, "ports", name + ".json"))
        found += [(port, address, family)
                  for port, address, _, _ in procclean.parse_proc_net_tcp(raw, family)]
    assert sorted(found) == sorted((l["port"], l["address"], l["family"])
                                   for l in expected["listeners"])


def test_sockstat_addresses_and_families():
    with open(os.path.join(DATA, "ports", "freebsd-sockstat.txt"), "rb") as f:
        found = procclean.parse_sockstat(f.read())
    assert listeners(found) == [
        (22, "0.0.0.0", "ipv4", 812), (22, "::", "ipv6", 812), (3000, "::1", "ipv6", 1302),
        (5432, "::", "ipv6", 905), (8000, "127.0.0.1", "ipv4", 1290),
        (8000, "127.0.0.1", "ipv4", 1291)]
    assert found[0].command == "python3.11"


def test_without_any_listener_tool_a_bind_probe_tells_a_taken_port():
    """No lsof, sockstat, ss or /proc (a BSD without lsof): a port that cannot be bound is
    reported as held by a process procclean cannot name."""
    import socket
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    taken = server.getsockname()[1]
    try:
        system = procclean.System()
        found = system._listeners_from([], {taken})
        assert [(l.port, l.pid) for l in found] == [(taken, None)]
        assert "bind probe" in system.ports_note
    finally:
        server.close()
    assert system._listeners_from([], {taken}) == []


def _recorded(name):
    with open(os.path.join(DATA, "ports", name), "rb") as f:
        return f.read()


def _sources_that_answer(monkeypatch, answers):
    """A System whose listener sources answer as `answers` says (a source left out has
    no answer); the sources it asked, in order."""
    asked = []
    system = procclean.System()

    def netlink(wanted):
        asked.append("netlink")
        return answers.get("netlink")

    def proc(wanted):
        asked.append("proc")
        return answers.get("proc")

    def run(argv, table=False):
        asked.append(argv[0])
        return answers.get(argv[0])

    monkeypatch.setattr(system, "_netlink_sockets", netlink)
    monkeypatch.setattr(system, "_proc_net_sockets", proc)
    monkeypatch.setattr(system, "_run", run)
    monkeypatch.setattr(system, "_proc_listeners",
                        lambda sockets: [procclean.Listener(s[0], s[1], s[2], 42) for s in sockets])
    monkeypatch.setattr(procclean, "_which", lambda program: "/usr/bin/" + program)
    return system, asked


def test_a_listener_source_without_an_answer_passes_to_the_next(monkeypatch):
    """Linux's order, netlink, /proc, lsof, ss, is the order asked: netlink refused and
    /proc/net/tcp unreadable, lsof failing, ss answers."""
    system, asked = _sources_that_answer(monkeypatch, {"ss": _recorded("linux-ss.txt")})
    found = system._listeners_from(["netlink", "proc", "lsof", "ss"], {8000})
    assert asked == ["netlink", "proc", "lsof", "ss"]
    assert system.ports_note == "ss"
    assert [(l.port, l.pid) for l in found if l.port == 8000] == [(8000, 3101)]

    system, asked = _sources_that_answer(monkeypatch, {"lsof": _recorded("linux-lsof-F.txt")})
    found = system._listeners_from(["netlink", "proc", "lsof", "ss"], {8000})
    assert asked == ["netlink", "proc", "lsof"] and system.ports_note == "lsof"
    assert [(l.port, l.pid) for l in found if l.port == 8000] == [(8000, 3101)]


def test_the_first_listener_source_that_answers_is_the_one_used(monkeypatch):
    """An empty answer is an answer (nothing listens), not a reason to ask the next."""
    system, asked = _sources_that_answer(monkeypatch, {"proc": [], "lsof": b"p1\nn*:8000\n"})
    assert system._listeners_from(["netlink", "proc", "lsof", "ss"], {8000}) == []
    assert asked == ["netlink", "proc"] and system.ports_note == "/proc/net/tcp"
    system, asked = _sources_that_answer(monkeypatch,
                                         {"netlink": [(8000, "127.0.0.1", "ipv4", 7)]})
    found = system._listeners_from(["netlink", "proc", "lsof", "ss"], {8000})
    assert asked == ["netlink"] and [(l.port, l.pid) for l in found] == [(8000, 42)]


def test_unreadable_proc_net_tcp_is_no_answer(monkeypatch):
    import builtins

    def refuse(path, *args, **kw):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(builtins, "open", refuse)
    assert procclean.System()._proc_net_sockets({8000}) is None


# /proc/PID/stat of Linux 6 (52 fields), the same with the addresses hidden (another
# user's process: proc(5) shows 0), and of Linux 3.2 (44 fields: no addresses).
STAT_6 = (b"12826 (cat) R 12824 12824 31666 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 2049351 "
          b"3133440 416 18446744073709551615 94474615447552 94474615467433 140725193549792 "
          b"0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94474615483440 94474615485056 94475667570688 "
          b"140725193550562 140725193550582 140725193550582 140725193551851 0\n")


def test_environ_mark_is_the_pid_start_and_the_argument_and_environment_addresses():
    assert procclean.environ_mark(STAT_6, cmdline_size=4) == \
        b"12826:2049351:140725193550562:140725193550582:140725193550582:140725193551851:4:cat"
    hidden = STAT_6.replace(b"140725193550562 140725193550582 140725193550582 "
                            b"140725193551851", b"0 0 0 0")
    assert procclean.environ_mark(hidden) is None
    fixed = STAT_6.replace(b" 4194304 ", b" 0 ")     # flags: no PF_RANDOMIZE (setarch -R)
    assert procclean.environ_mark(fixed) is None
    old = b" ".join(STAT_6.split()[:44]) + b"\n"
    assert procclean.environ_mark(old) is None
    odd = STAT_6.replace(b"(cat)", b"(a) b\n(c)")     # comm with spaces, parentheses, a newline
    assert procclean.environ_mark(odd, cmdline_size=4) == \
        procclean.environ_mark(STAT_6, cmdline_size=4)[:-3] + b"a) b?(c"
    assert procclean.environ_mark(STAT_6, cmdline_size=5) != \
        procclean.environ_mark(STAT_6, cmdline_size=4)


def test_ps_o_table_keeps_a_process_identity_from_one_read_to_the_next(monkeypatch):
    """Without /proc (macOS, the BSDs: PROCCLEAN_PS=pso) a start is now - etime, and now
    moved between two reads: stop's second look took every target still listed (one that
    ignores SIGTERM, a zombie) for a new one, and SIGKILLed and reported it again on each
    look: "killed backend PID 44" seven times, "6 of them appeared while stopping"."""
    system = procclean.System("pso")
    reads = iter([(b"dev  44  1 S    00:05  0:00.01  4096 python main.py\n", 1000.2),
                  (b"dev  44  1 S    00:06  0:00.01  4096 python main.py\n", 1000.9),
                  (b"dev  44  1 S    00:05  0:00.01  4096 python main.py\n", 1003.9)])
    now = [0.0]

    def run(argv, table=False):
        out, now[0] = next(reads)
        return out
    monkeypatch.setattr(system, "_run", run)
    monkeypatch.setattr(system, "wall_time", lambda: now[0])
    first = system.process_table()
    second = system.process_table(previous=first)
    assert second[44].identity == first[44].identity
    reused = system.process_table(previous=second)     # PID 44 again, 3 s younger
    assert reused[44].identity != first[44].identity
