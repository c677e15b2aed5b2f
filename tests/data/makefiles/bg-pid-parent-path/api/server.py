from fastapi import FastAPI

app = FastAPI()


@app.get("/entries")
def entries():
    return []
