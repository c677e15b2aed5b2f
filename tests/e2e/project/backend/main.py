"""Fixture backend for procclean's end-to-end tests: a minimal FastAPI app.

Runs three ways, all from this folder:
    python main.py                       (uvicorn.run inside; port from $PORT, default 8000)
    uvicorn main:app --reload            (reloader parent + a spawned worker child)
    uvicorn main:app --workers 2         (supervisor parent + two spawned workers)

Set FAIL_STARTUP=1 to make its start-up fail.
Set IGNORE_SIGTERM=1 to make the server process(es) ignore SIGTERM (the "stubborn backend"
case: procclean must escalate to SIGKILL after its grace).
Set SHUTDOWN_MARKER=PATH to have the lifespan's shutdown write PATH (proof that the app was
stopped gracefully, not killed).
"""
import contextlib
import os
import signal

from fastapi import FastAPI

IGNORE_SIGTERM = os.environ.get("IGNORE_SIGTERM") == "1"
if IGNORE_SIGTERM:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextlib.asynccontextmanager
async def lifespan(_app):
    if os.environ.get("FAIL_STARTUP") == "1":
        # The app's start-up fails: uvicorn says "Application startup failed"; under
        # --reload the worker exits and the reloader waits for a change.
        raise RuntimeError("startup failed on purpose (FAIL_STARTUP=1)")
    if IGNORE_SIGTERM:
        # uvicorn installs its own SIGTERM handler when the server starts: ignore it again.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    yield
    if os.environ.get("SHUTDOWN_MARKER"):
        with open(os.environ["SHUTDOWN_MARKER"], "a") as f:
            f.write("lifespan shutdown in PID %d\n" % os.getpid())


app = FastAPI(lifespan=lifespan)


@app.get("/health")
def health():
    return {"status": "ok"}


@app.get("/api/whoami")
def whoami():
    # Which checkout's backend answered (the side-by-side test reaches it through Vite's proxy).
    return {"cwd": os.getcwd(), "pid": os.getpid(), "port": os.environ.get("PORT")}


@app.get("/")
def root():
    return {"app": "procclean e2e fixture", "pid": os.getpid()}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
