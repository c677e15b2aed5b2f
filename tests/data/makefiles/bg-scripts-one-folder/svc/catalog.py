from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "catalog"


if __name__ == "__main__":
    app.run(port=6101, debug=True)
