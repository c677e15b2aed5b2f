"""FastAPI application for Claude log viewer backend.

Trimmed for procclean's QA from H21465/claude-log-viewer @ b3423e8 backend/main.py:
the database, file watcher and most routers are left out; the app, its CORS setup,
its lifespan shape and its projects route are kept.
"""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from routers import projects


@asynccontextmanager
async def lifespan(app: FastAPI):  # noqa: ARG001, ANN201
    """Application lifespan manager."""
    print("lifespan: startup")
    yield
    print("lifespan: shutdown")


app = FastAPI(
    title="Claude Log Viewer API",
    description="API for viewing and searching Claude conversation logs",
    version="1.0.0",
    lifespan=lifespan,
)

app.add_middleware(
    CORSMiddleware,
    allow_origins=["http://localhost:5173", "http://localhost:5174"],
    allow_credentials=True,
    allow_methods=["*"],
    allow_headers=["*"],
)


@app.get("/")
def read_root() -> dict[str, str]:
    """Health check endpoint."""
    return {"status": "ok", "message": "Claude Log Viewer API"}


app.include_router(projects.router)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="0.0.0.0", port=8000)  # noqa: S104
