"""End-to-end (issue 21 item 2): two checkouts of the fixture project (real uvicorn through
procclean's default `{python} main.py`, real Vite) run `dev` at the same time in one PID +
network namespace with `port_offset = auto`; each Vite proxy reaches its own backend through
PROCCLEAN_BACKEND_PORT (the README's recipe). Prerequisites and namespaces as in
test_e2e_stacks.py, whose fixtures this file uses."""
import json
import os
import time

from nslib import Namespace, wait_until
from test_e2e_stacks import (PY, Stack, _project, describe, e2e_env,  # noqa: F401 (fixtures)
                             frontend_modules)

# The README's Vite recipe: its own port from PORT, /api to the backend procclean names.
VITE_CONFIG = """import { defineConfig } from 'vite'

export default defineConfig({
  server: {
    port: Number(process.env.PORT) || 5173,
    strictPort: true,
    host: '127.0.0.1',
    proxy: { '/api': 'http://127.0.0.1:' + (process.env.PROCCLEAN_BACKEND_PORT || 8000) },
  },
})
"""


def checkout(tmp_path, name, modules, git):
    root = _project(tmp_path / name, modules)
    with open(os.path.join(root, "frontend", "vite.config.js"), "w") as f:
        f.write(VITE_CONFIG)
    with open(os.path.join(root, "procclean.ini"), "w") as f:
        f.write("[procclean]\nport_offset = auto\n")
    if git == "main":
        os.mkdir(os.path.join(root, ".git"))
    else:
        with open(os.path.join(root, ".git"), "w") as f:
            f.write("gitdir: %s/.git/worktrees/%s\n" % (git, name))
    return root


def test_two_checkouts_run_dev_side_by_side_with_vite_proxy(tmp_path, e2e_env,
                                                            frontend_modules):
    main = checkout(tmp_path, "main", frontend_modules, "main")
    tree = checkout(tmp_path, "tree", frontend_modules, main)
    with Namespace(cwd=main, env=e2e_env) as ns:
        stacks = [Stack(ns, root, e2e_env) for root in (main, tree)]
        jobs = [ns.start(["/bin/sh", "-c", 'exec "$@" >dev.out 2>dev.err', "sh", PY,
                          "procclean.py", "dev"], cwd=st.root, env=e2e_env, session=True)
                for st in stacks]
        try:
            for st in stacks:
                assert wait_until(lambda: (st.read(".procclean-offset") or "").strip(), 60), \
                    describe("dev", {"stdout": st.read("dev.out") or "",
                                     "stderr": st.read("dev.err") or ""}, st)
                offset = int(st.read(".procclean-offset"))
                url = "http://127.0.0.1:%d/api/whoami" % (3000 + offset)
                got = st.wait_http(url)
                assert got["status"] == 200, (got, describe("dev", {
                    "stdout": st.read("dev.out") or "", "stderr": st.read("dev.err") or ""},
                    st))
                answer = json.loads(got["body"])
                assert answer["cwd"] == os.path.join(st.root, "backend"), answer
                assert answer["port"] == str(8000 + offset), answer
                status = st.status()
                assert status["backend"]["port"] == 8000 + offset, status
                assert status["frontend"]["port"] == 3000 + offset, status
                assert status["backend"]["state"] == "running", status
                assert status["frontend"]["state"] == "running", status
            assert stacks[0].read(".procclean-offset").strip() == "0"
            assert stacks[1].read(".procclean-offset").strip() != "0"
        finally:
            for job in jobs:
                job.signal(15)
            results = [job.wait(120) for job in jobs]
        assert [r.timed_out for r in results] == [False, False], results
        deadline = time.monotonic() + 10
        while stacks[0].procs() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not stacks[0].procs(), stacks[0].procs()
        for st in stacks:
            assert "Traceback" not in (st.read("dev.out") or "") + (st.read("dev.err") or "")


def test_a_port_setting_moves_uvicorn_and_vite_and_status_and_stop_follow(tmp_path, e2e_env,
                                                                         frontend_modules):
    """`PROCCLEAN_BACKEND_PORT=8001 PROCCLEAN_FRONTEND_PORT=3001 make start`: the real
    uvicorn and Vite listen there; `make status` and `make stop` in another terminal,
    without the variables, follow them there; whatever holds 8000 and 3000 is left alone."""
    root = _project(tmp_path / "proj", frontend_modules)
    with open(os.path.join(root, "frontend", "vite.config.js"), "w") as f:
        f.write(VITE_CONFIG)
    ports = {"PROCCLEAN_BACKEND_PORT": "8001", "PROCCLEAN_FRONTEND_PORT": "3001"}
    with Namespace(cwd=root, env=e2e_env) as ns:
        st = Stack(ns, root, e2e_env)
        strangers = [st.by_hand([PY, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                                "/") for port in (8000, 3000)]
        # (a bound, not a pace: two http.servers starting on a CI machine at load 17 took
        # over 30 s; the poll ends as soon as both listen.  It connects: a probe that bound
        # the port took it from a stranger binding at that moment, which then exited)
        assert wait_until(lambda: all(st.listens(p) for p in (8000, 3000)), 120)
        st.ok("start", "--wait", env=ports)
        answer = json.loads(st.wait_http("http://127.0.0.1:3001/api/whoami")["body"])
        assert answer["port"] == "8001", answer
        status = st.status()
        for name, port in (("backend", 8001), ("frontend", 3001)):
            assert status[name]["state"] == "running", status
            assert status[name]["port"] == port, status
        res = st.ok("stop")
        left = [p for p in st.wait_gone() if p[0] not in strangers]
        assert not left, describe("stop", res, st)
        assert all(st.can_bind(p)["ok"] for p in (8001, 3001)), describe("stop", res, st)
        assert ns.alive(strangers) == strangers, describe("stop", res, st)
