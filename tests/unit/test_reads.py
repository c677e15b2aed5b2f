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

    def recording(path, dir_fd=None, owner=False):
        parts = path.replace("/proc/", "").split("/")
        if len(parts) == 2 and parts[0].isdigit():
            seen.append((int(parts[0]), parts[1]))
        return real(path, dir_fd, owner)

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


def test_the_table_reads_no_environment_and_no_kernel_threads_command_line(reads):
    table = procclean.System().process_table()
    assert os.getpid() in table
    assert [r for r in reads if r[1] == "environ"] == []
    cmdlines = set(pid for pid, name in reads if name == "cmdline")
    assert os.getpid() in cmdlines
    unread = [pid for pid in table if pid not in cmdlines]
    for pid in unread:          # a kernel thread, shown as ps shows it: [comm]
        assert table[pid].command.startswith("[") and table[pid].command.endswith("]")
        assert kernel_thread(pid) in (True, None), table[pid]     # None: gone since


def test_tags_read_only_the_environments_that_can_hold_one(reads):
    system = procclean.System()
    table = system.process_table()
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


def test_the_tag_is_found_in_an_environment_read_after_the_table(reads, monkeypatch,
                                                                 tmp_path):
    import subprocess
    env = dict(os.environ, PROCCLEAN_PROJECT=str(tmp_path), PROCCLEAN_SERVICE="worker")
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE, env=env)
    try:
        system = procclean.System()
        table = system.process_table()
        assert child.pid in table
        assert system.process_tags(table).get(child.pid) == (str(tmp_path), "worker")
    finally:
        child.stdin.close()
        child.wait()
