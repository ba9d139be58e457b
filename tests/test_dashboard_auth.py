"""The central station's login: nothing but the login page without it, no way around it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from monitor.broker import free_port, wait_for_port
from monitor.dashboard import auth
from monitor.dashboard.__main__ import main
from monitor.dashboard.app import create_app
from monitor.dashboard.auth import Credentials
from monitor.dashboard.central import SWEEP_ROUTE
from monitor.dashboard.store import CentralStation
from monitor.errors import InputError

REPO = Path(__file__).resolve().parents[1]
NURSE = Credentials("nurse", "correct horse")


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(auth, "FAILED_LOGIN_DELAY_S", 0.0)
    return create_app(CentralStation("127.0.0.1:9"), credentials=NURSE).server.test_client()


def _login(client, user: str = "nurse", password: str = "correct horse", next_: str = "/"):
    return client.post("/login", data={"user": user, "password": password, "next": next_})


def test_without_a_login_only_the_login_page_answers(client) -> None:
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["Location"].startswith("/login?next=/")
    assert client.get("/login").status_code == 200
    # Dash callbacks (acknowledge, audio pause) and the sweep endpoint are refused outright.
    assert client.post("/_dash-update-component", json={}).status_code == 401
    assert client.post(SWEEP_ROUTE, json={"cursors": {}}).status_code == 401
    assert client.get("/_dash-layout").status_code == 401


def test_a_wrong_password_is_refused_and_a_right_one_lets_the_user_in(client) -> None:
    assert _login(client, password="wrong").status_code == 403
    assert _login(client, user="doctor").status_code == 403
    assert client.post(SWEEP_ROUTE, json={"cursors": {}}).status_code == 401
    done = _login(client, next_="/history")
    assert done.status_code == 302 and done.headers["Location"] == "/history"
    assert client.post(SWEEP_ROUTE, json={"cursors": {}}).status_code == 200
    assert client.get("/_dash-layout").status_code == 200
    client.get("/logout")
    assert client.post(SWEEP_ROUTE, json={"cursors": {}}).status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "evil"])
def test_a_login_never_redirects_to_another_site(client, target) -> None:
    done = _login(client, next_=target)
    assert done.status_code == 302 and done.headers["Location"] == "/"


def test_credentials_come_from_the_environment_or_a_secret_file(tmp_path) -> None:
    assert Credentials.from_env({}) is None
    assert Credentials.from_env({"ECG_DASHBOARD_PASSWORD": "long enough"}) == Credentials(
        "nurse", "long enough")
    secret = tmp_path / "pw"
    secret.write_text("from a secret\n")
    got = Credentials.from_env({"ECG_DASHBOARD_PASSWORD_FILE": str(secret),
                                "ECG_DASHBOARD_USER": "ward7"})
    assert got == Credentials("ward7", "from a secret")
    with pytest.raises(InputError, match="at least 8"):
        Credentials.from_env({"ECG_DASHBOARD_PASSWORD": "short"})


def test_the_development_server_refuses_to_serve_others_without_a_login(monkeypatch, capsys):
    monkeypatch.delenv("ECG_DASHBOARD_PASSWORD", raising=False)
    monkeypatch.delenv("ECG_DASHBOARD_PASSWORD_FILE", raising=False)
    from monitor.errors import run_cli

    assert run_cli(main, ["--host", "0.0.0.0", "--bootstrap", "127.0.0.1:9"]) == 2
    assert "set $ECG_DASHBOARD_PASSWORD" in capsys.readouterr().err


def test_gunicorn_serves_the_page_behind_the_login() -> None:
    """The production entry point, in a real gunicorn, with no broker behind it."""
    port = free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
           "ECG_DASHBOARD_PASSWORD": "correct horse"}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [str(gunicorn), "--workers", "1", "--threads", "4", "--bind", f"127.0.0.1:{port}",
         "monitor.dashboard.wsgi:server"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_port("127.0.0.1", port, 30)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:  # the worker imports the app after the port opens
            try:
                page = requests.get(base + "/", allow_redirects=False, timeout=5,
                                    headers={"Accept": "text/html"})
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert page.status_code == 302 and "/login" in page.headers["Location"]
        with requests.Session() as s:
            s.post(base + "/login", data={"user": "nurse", "password": "correct horse"},
                   timeout=5)
            assert s.get(base + "/_dash-layout", timeout=5).status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err, err


def test_the_production_entry_point_needs_a_password() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECG_DASHBOARD_")}
    env["KAFKA_BOOTSTRAP_SERVERS"] = "127.0.0.1:9"
    done = subprocess.run([sys.executable, "-c", "import monitor.dashboard.wsgi"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "ECG_DASHBOARD_PASSWORD" in done.stderr
