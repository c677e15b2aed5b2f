from flask import Flask

app = Flask(__name__)


@app.route("/api/ping")
def ping():
    return "pong"


if __name__ == "__main__":
    app.run(debug=True, host="0.0.0.0", port=5100)
