from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "orders"


if __name__ == "__main__":
    app.run(port=6102, debug=True)
