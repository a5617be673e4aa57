import psutil
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return {"cpu_percent": psutil.cpu_percent(interval=None)}
