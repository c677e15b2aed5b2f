"""make is the interface (issue 21 items 6 and 9), inside a throw-away PID + network namespace:
the targets init writes include `logs`, options reach procclean through `ARGS` (`make logs
ARGS="--grep ..."`, `make stop ARGS=--dry-run`), and `make status` says nothing of what was
not asked (no health line)."""
import os
import shutil
import sys

from integ_helpers import no_traceback
from nslib import REPO, wait_until

MAIN_PY = """\
import os, socket, sys, time
print("INFO: starting on", os.environ["PORT"], flush=True)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen(5)
print("ERROR: a line the grep finds", flush=True)
while True:
    time.sleep(1)
"""


def test_make_passes_args_and_status_is_quiet(ns, tmp_path):
    root = tmp_path / "shop"
    (root / "backend").mkdir(parents=True)
    (root / "backend" / "main.py").write_text(MAIN_PY)
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    env = {"NO_COLOR": "1", "PYTHON": sys.executable}
    r = ns.procclean("init", "--makefile", cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    assert r.rc == 0 and "added to Makefile:" in r.stdout, r
    assert "logs" in r.stdout.split("added to Makefile:")[1], r

    r = ns.run(["make", "start-backend"], cwd=str(root), env=env, timeout=60)
    assert r.rc == 0, r
    log = root / "backend.log"
    assert wait_until(lambda: log.exists() and "ERROR: a line" in log.read_text(), 30), r

    r = ns.run(["make", "logs", "ARGS=backend --grep ^ERROR"], cwd=str(root), env=env)
    assert r.rc == 0, r
    assert r.stdout.splitlines() == ["ERROR: a line the grep finds"], r

    r = ns.run(["make", "status"], cwd=str(root), env=env)
    assert r.rc == 0 and "backend: running" in r.stdout, r
    assert "health" not in r.stdout, r          # not asked: not mentioned

    r = ns.run(["make", "stop", "ARGS=--dry-run"], cwd=str(root), env=env)
    assert r.rc == 0 and "would" in r.stdout, r
    assert (root / "backend.pid").exists(), r   # --dry-run reached procclean: nothing done

    r = ns.run(["make", "stop"], cwd=str(root), env=env)
    assert r.rc == 0 and not (root / "backend.pid").exists(), r
