"""The API, run as a script."""

from fastapi import FastAPI

app = FastAPI()


if __name__ == "__main__":
    import uvicorn

    uvicorn.run("app:app", host="0.0.0.0", port=8057, reload=True)
