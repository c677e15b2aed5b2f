from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "ledger"


if __name__ == "__main__":
    app.run(port=6103, debug=True)
