from fastapi import FastAPI

app = FastAPI(title="Log Viewer API")


@app.get("/")
def read_root():
    return {"status": "ok"}
