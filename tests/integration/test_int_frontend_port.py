"""A Vite frontend moves with the port setting: init writes `npm run dev -- --port {port}
--strictPort` (Vite ignores PORT), and `PROCCLEAN_FRONTEND_PORT=5199 start-frontend --wait`
starts it listening on 5199, inside a throw-away PID + network namespace.

The stand-in for vite is node_modules/.bin/vite, a shell script that serves HTTP on the
port its `--port` names (5173, vite's default, without one) and refuses to start without
--strictPort; npm runs it as `npm run dev` does vite (npm is the real one).
"""
import os
import shutil
import stat
import sys

import pytest

from integ_helpers import no_traceback
from nslib import REPO

VITE = """#!/bin/sh
port=5173
strict=
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift ;;
    --strictPort) strict=1 ;;
  esac
  shift
done
[ -n "$strict" ] || { echo "no --strictPort: vite would move off a taken port"; exit 3; }
echo "  VITE stand-in  ready: http://127.0.0.1:$port/"
%s -m http.server "$port" --bind 127.0.0.1
"""
GET = r"""
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=5) as r:
    print(r.status)
"""


@pytest.fixture
def repo(ns, tmp_path):
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    root = tmp_path / "acme"
    bin_dir = root / "frontend" / "node_modules" / ".bin"
    bin_dir.mkdir(parents=True)
    (root / "frontend" / "package.json").write_text(
        '{"name": "web", "private": true, "scripts": {"dev": "vite"},'
        ' "devDependencies": {"vite": "7.3.8"}}')
    vite = bin_dir / "vite"
    vite.write_text(VITE % sys.executable)
    vite.chmod(vite.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    shutil.copyfile(os.path.join(REPO, "procclean.py"), str(root / "procclean.py"))
    ns.procclean_file = str(root / "procclean.py")
    return root


def run(ns, root, *args, **env):
    env.update({"NO_COLOR": "1", "npm_config_update_notifier": "false"})
    r = ns.procclean(*args, cwd=str(root), env=env, timeout=120)
    no_traceback(r)
    return r


def test_init_then_a_port_setting_moves_the_vite_frontend(ns, repo):
    r = run(ns, repo, "init")
    assert r.rc == 0, r
    ini = (repo / "procclean.ini").read_text()
    assert "command = npm run dev -- --port {port} --strictPort" in ini, ini
    r = run(ns, repo, "start-frontend", "--wait", PROCCLEAN_FRONTEND_PORT="5199")
    log = repo / "frontend.log"
    assert r.rc == 0, (r, log.read_text() if log.exists() else None)
    got = ns.run([sys.executable, "-c", GET, "5199"])
    assert got.rc == 0 and got.stdout.strip() == "200", (got, log.read_text())
    r = run(ns, repo, "stop-frontend", PROCCLEAN_FRONTEND_PORT="5199")
    assert r.rc == 0, r
    table = ns.run(["ps", "-eo", "pid,args"]).stdout
    assert "http.server" not in table and "npm run dev" not in table, table
