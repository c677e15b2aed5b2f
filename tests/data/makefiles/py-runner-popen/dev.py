#!/usr/bin/env python3
"""The API and the site together; Ctrl-C ends both."""
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = Path(__file__).resolve().parent
API = [sys.executable, "-m", "uvicorn", "ledger.server:app", "--host", "0.0.0.0",
       "--port", "5102", "--reload"]


def main():
    children = [subprocess.Popen(API, cwd=os.path.join(HERE, "api")),
                subprocess.Popen(["npm", "run", "dev"], cwd=str(ROOT / "web"))]
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            child.terminate()


if __name__ == "__main__":
    main()
