"""What the process table reads from /proc, and when (issue 23: read only what can matter).

These read this machine's /proc (only read it: nothing is signalled, no procclean command
runs); they skip where there is none."""
import os
import sys

import pytest

import procclean

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat")
                                or not sys.platform.startswith("linux"),
                                reason="needs Linux /proc")


@pytest.fixture
def reads(monkeypatch):
    """The /proc files procclean reads, as (pid, file name)."""
    seen = []
    real = procclean._read_small

    def recording(path, dir_fd=None):
        parts = path.replace("/proc/", "").split("/")
        if len(parts) == 2 and parts[0].isdigit():
            seen.append((int(parts[0]), parts[1]))
        return real(path, dir_fd)

    monkeypatch.setattr(procclean, "_read_small", recording)
    return seen


def kernel_thread(pid):
    """Whether `pid` is a kernel thread; None when it is gone (processes come and go on
    the machine while a test reads /proc)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return bool(procclean.parse_proc_stat(f.read()).flags & procclean.PF_KTHREAD)
    except (OSError, ValueError, IndexError):
        return None


def test_a_kernel_threads_command_line_and_environment_are_never_read(reads):
    table = procclean.System().process_table()
    assert os.getpid() in table
    cmdlines = set(pid for pid, name in reads if name == "cmdline")
    environs = set(pid for pid, name in reads if name == "environ")
    assert os.getpid() in cmdlines and os.getpid() in environs
    assert environs <= cmdlines     # each right after its command line (a warm page)
    kthreads = set(pid for pid in table if kernel_thread(pid))
    assert not kthreads & (cmdlines | environs)
    for pid in kthreads:        # shown as ps shows it: [comm]
        assert table[pid].command.startswith("[") and table[pid].command.endswith("]")
    for pid in set(table) - cmdlines:
        assert kernel_thread(pid) in (True, None), table[pid]     # None: gone since


def test_without_tags_the_table_reads_no_environment_and_tags_read_only_what_can_hold_one(
        reads):
    """kill-port never acts on a tag: its table reads no environment.  Asked for tags
    later, procclean reads only the environments that can hold one, once."""
    system = procclean.System()
    system.read_tags = False
    table = system.process_table()
    assert [r for r in reads if r[1] == "environ"] == []
    del reads[:]
    tags = system.process_tags(table)
    read = set(pid for pid, name in reads if name == "environ")
    euid = os.geteuid()
    assert os.getpid() in read
    for pid in read:
        proc = table[pid]
        assert not proc.zombie and (euid == 0 or proc.uid == euid), proc
        assert kernel_thread(pid) in (False, None), proc          # None: gone since
    assert all(tag[0] for tag in tags.values())
    del reads[:]
    system.process_tags(table)      # asked again (a second look): nothing read again
    assert [r for r in reads if r[1] == "environ" and r[0] in table] == []


def test_kill_port_turns_the_tags_off_and_stop_keeps_them():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fakes import FakeProc, FakeSystem, invoke
    holder = FakeProc(100, 1, "python3 -m http.server 8000")
    listeners = [procclean.Listener(8000, "127.0.0.1", "ipv4", pid=100)]
    system = FakeSystem([holder], listeners=listeners)
    code, out, err = invoke(["kill-port", "8000"], system)
    assert code == 0 and [pid for _, pid, _ in system.sent] == [100], (out, err)
    assert system.read_tags is False
    system = FakeSystem([FakeProc(100, 1, "python3 main.py")])
    code, out, err = invoke(["stop"], system)
    assert code == 0 and system.read_tags is True, (out, err)


def test_the_tag_is_found_in_the_tables_pass_and_after_it(reads, monkeypatch, tmp_path):
    import subprocess
    env = dict(os.environ, PROCCLEAN_PROJECT=str(tmp_path), PROCCLEAN_SERVICE="worker")
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE, env=env)
    try:
        for read_tags in (True, False):
            system = procclean.System()
            system.read_tags = read_tags
            table = system.process_table()
            assert child.pid in table
            assert system.process_tags(table).get(child.pid) == (str(tmp_path), "worker")
    finally:
        child.stdin.close()
        child.wait()
