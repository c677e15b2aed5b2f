"""The source of `rename(title)`, for stand-ins that rename themselves as setproctitle does
(gunicorn's and celery's processes, Ruby's `$0 =`, nginx, redis): no exec, their argument
memory rewritten with the title and their environment's with NULs, so /proc/PID/environ no
longer shows their tag.  Where the kernel refuses, the tests that use it skip."""

RENAME_FUNCTION = r'''
import os

def rename(title):
    """False where the kernel refuses (a hardened /proc/PID/mem): the caller says so."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    arg_start, arg_end, env_start, env_end = (int(x) for x in fields[45:49])
    try:
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(arg_start)
            mem.write(title.ljust(arg_end - arg_start, b"\0"))
            mem.seek(env_start)
            mem.write(b"\0" * (env_end - env_start))
    except OSError:
        return False
    return True
'''
