"""A Makefile's own start and stop, swapped by init --makefile --replace, do for real what
they did (issue 20 items 1-2), inside a throw-away PID + network namespace: `make start`
starts the recipe's command with its pidfile and log, `make stop` stops it and removes the
pidfile; the targets init kept run as before.
"""
import os
import shutil
import sys

from integ_helpers import no_traceback
from nslib import REPO, wait_until

MAKEFILE = """\
PY = {python}
PORT = 8123
PID = run/web.pid

serve:
\t$(PY) -m http.server $(PORT)

start:
\tnohup $(PY) -m http.server $(PORT) --bind 127.0.0.1 > web.log 2>&1 & echo $$! > $(PID)

stop:
\t-kill $$(cat $(PID))
\trm -f $(PID)

build: clean
\t@echo building
"""
PROBE = r"""
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:8123/", timeout=5) as r:
    print(r.status)
"""


def test_replaced_start_and_stop_do_what_the_recipes_did(ns, tmp_path):
    root = tmp_path / "acme"
    (root / "run").mkdir(parents=True)
    (root / "Makefile").write_text(MAKEFILE.format(python=sys.executable))
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    env = {"NO_COLOR": "1", "PYTHON": sys.executable}
    before = ns.run(["make", "-n", "serve", "build"], cwd=str(root), env=env)
    r = ns.procclean("init", "--makefile", "--replace", cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    assert r.rc == 0, r
    assert "replaced start (line 8" in r.stdout and "replaced stop (line 11" in r.stdout, r
    assert "\nclean:" not in (root / "Makefile").read_text()     # build's prerequisite
    after = ns.run(["make", "-n", "serve", "build"], cwd=str(root), env=env)
    assert (after.rc, after.stdout) == (before.rc, before.stdout), (before, after)

    r = ns.run(["make", "start"], cwd=str(root), env=env, timeout=60)
    assert r.rc == 0, r

    def up():
        return ns.run([sys.executable, "-c", PROBE]).rc == 0
    assert wait_until(up, 20), (root / "web.log").read_text()
    pid = int((root / "run" / "web.pid").read_text())
    assert "http.server 8123" in " ".join(ns.run(["ps", "-o", "args=", "-p", str(pid)])
                                          .stdout.split()), pid
    assert (root / "web.log").exists()
    r = ns.run(["make", "stop"], cwd=str(root), env=env, timeout=60)
    assert r.rc == 0, r
    assert wait_until(lambda: not up() and ns.alive([pid]) == [], 20), r
    assert not (root / "run" / "web.pid").exists()
