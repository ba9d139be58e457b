"""Who may use the central station: one login in front of every page, callback and endpoint.

The page shows live ECG and lets its user acknowledge alarms and pause audio, so anyone who can
reach it must log in first. Credentials come from the environment or from Docker secrets:

    ECG_DASHBOARD_USER        user name (default "nurse")
    ECG_DASHBOARD_PASSWORD    or ECG_DASHBOARD_PASSWORD_FILE (a secret file)
    ECG_DASHBOARD_SECRET      key that signs the session cookie (default: random per process,
                              so a restart logs everyone out)

Without a password the dashboard runs without login, which `python -m monitor.dashboard` allows
only on a loopback address (the demo, a developer's machine).
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, redirect, request, session

from monitor.errors import InputError

ENV_USER = "ECG_DASHBOARD_USER"
ENV_PASSWORD = "ECG_DASHBOARD_PASSWORD"
ENV_PASSWORD_FILE = "ECG_DASHBOARD_PASSWORD_FILE"
ENV_SECRET = "ECG_DASHBOARD_SECRET"
DEFAULT_USER = "nurse"
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
#: Seconds a failed login waits before it answers: guessing a password gets slow.
FAILED_LOGIN_DELAY_S = 1.0
#: Hours a session lasts without a new login.
SESSION_HOURS = 12


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Credentials | None:
        """The configured login, or None when no password is set."""
        env = dict(os.environ if env is None else env)
        password = env.get(ENV_PASSWORD) or ""
        if not password and env.get(ENV_PASSWORD_FILE):
            path = Path(env[ENV_PASSWORD_FILE])
            if not path.is_file():
                raise InputError(f"${ENV_PASSWORD_FILE}: no file {path}")
            password = path.read_text().strip()
        if not password:
            return None
        if len(password) < 8:
            raise InputError(f"${ENV_PASSWORD} must have at least 8 characters")
        return cls(env.get(ENV_USER) or DEFAULT_USER, password)

    def check(self, user: str, password: str) -> bool:
        # Both compared in constant time, so the answer time does not tell which one was wrong.
        ok_user = hmac.compare_digest(user.encode(), self.user.encode())
        ok_password = hmac.compare_digest(password.encode(), self.password.encode())
        return ok_user and ok_password


def protect(server: Flask, credentials: Credentials, secret: str | None = None) -> None:
    """Require a login for every request to `server` except the login page itself."""
    server.secret_key = secret or os.environ.get(ENV_SECRET) or secrets.token_hex(32)
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=SESSION_HOURS * 3600,
    )

    @server.before_request
    def require_login():
        if request.path in (LOGIN_PATH, LOGOUT_PATH) or session.get("user"):
            return None
        if request.method == "GET" and request.accept_mimetypes.accept_html:
            return redirect(f"{LOGIN_PATH}?next={_local(request.full_path)}")
        return ("login required", 401)

    @server.route(LOGIN_PATH, methods=["GET", "POST"])
    def login():
        target = _local(request.values.get("next", "/"))
        if request.method == "POST":
            user = request.form.get("user", "")
            if credentials.check(user, request.form.get("password", "")):
                session.clear()
                session.permanent = True
                session["user"] = user
                return redirect(target)
            time.sleep(FAILED_LOGIN_DELAY_S)
            return _login_page(target, "Wrong user name or password."), 403
        return _login_page(target, "")

    @server.route(LOGOUT_PATH)
    def logout():
        session.clear()
        return redirect(LOGIN_PATH)


def _local(target: str) -> str:
    """Only a path on this site may follow a login (no open redirect to another host)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return "/"
    return target.rstrip("?") or "/"


def _login_page(target: str, message: str) -> str:
    note = f'<p class="error">{escape(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ECG central station: log in</title>
<style>body{{background:#0b0f14;color:#ddd;font-family:sans-serif;display:flex;
justify-content:center;margin-top:12vh}}form{{display:flex;flex-direction:column;gap:.6em;
width:18em}}input,button{{font-size:1.1em;padding:.4em}}.error{{color:#ff6b6b}}</style></head>
<body><form method="post" action="{LOGIN_PATH}"><h2>ECG central station</h2>{note}
<input type="hidden" name="next" value="{escape(target)}">
<label>User <input name="user" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"
required></label><button type="submit">Log in</button></form></body></html>"""
