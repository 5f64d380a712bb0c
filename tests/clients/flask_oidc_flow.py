#!/usr/bin/env python3
"""Drive the seed guide's Flask-OIDC sample (flask_sample.py) through a real login.

Starts flask_sample.py (Flask + flask-oidc 2.x, i.e. Authlib) with the venv's python on
http://localhost:APP_PORT, then acts as a browser with requests.Session (cookies), following every
redirect by hand so each hop is logged:

  GET /            public page
  GET /protected   -> /login?next=... -> {SERVER_URL}/realms/{REALM}/protocol/openid-connect/auth
                   (discovery, state, nonce) -> login page
  POST login form  -> /oidc/callback?code=... -> /authorize (Authlib: token request with
                   client_secret_post, ID token validation against the JWKS, userinfo) -> /protected
  GET /protected   JSON {"message": "You are authenticated", "user": {...userinfo...}}
  GET /logout      flask-oidc clears its session -> /
  GET /protected   SSO: the server session is still alive, so the server redirects straight back
                   without showing the login form

Environment:
  SERVER_URL               e.g. http://127.0.0.1:18080
  REALM                    realm name
  CLIENT_ID, CLIENT_SECRET confidential client with redirect URI http://localhost:APP_PORT/*
  USERNAME, PASSWORD       a user of the realm
  APP_PORT                 optional, port of the sample app (default 5000)
  HTTP_TIMEOUT_S           optional per-request timeout (default 15)

Prints one JSON object {"steps": {...}, "ok": true|false} on stdout (plus the request log and the
app's output on failure); exit 0 on success, 1 on failure. Run with tests/clients/.venv/bin/python
(scripts/setup-clients.sh creates it); it starts the sample with the same interpreter if that is
the venv's, else with tests/clients/.venv/bin/python.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

HERE = os.path.dirname(os.path.abspath(__file__))
OUT: dict = {"steps": {}, "ok": False}
CURRENT = {"step": "init"}
HTTP_LOG: list = []
APP_OUTPUT: list = []
PROTECTED_MESSAGE = "You are authenticated"
PUBLIC_BODY = "Welcome to the public route."


class Failure(Exception):
    def __init__(self, message: str, detail=None):
        super().__init__(message)
        self.detail = detail


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise Failure(f"missing required environment variable {name}")
        return default
    return value


def check(cond, message: str, detail=None) -> None:
    if not cond:
        raise Failure(message, detail)


def describe(err: BaseException) -> dict:
    d = {"type": type(err).__name__, "message": str(err)}
    detail = getattr(err, "detail", None)
    if detail is not None:
        d["detail"] = detail
    return d


class Step:
    def __init__(self, name: str):
        self.name = name
        self.rec: dict = {}

    def __enter__(self) -> dict:
        CURRENT["step"] = self.name
        OUT["steps"][self.name] = self.rec
        return self.rec

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            self.rec["ok"] = True
        else:
            self.rec["ok"] = False
            self.rec["error"] = describe(exc)
        return False


# ------------------------------------------------------------------------------------------------
# Login form parsing.


class FormParser(HTMLParser):
    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.in_form = False
        self.form: dict | None = None
        self.controls: list = []
        self.title = ""
        self._in_title = False
        self.errors: list = []
        self._err_depth = 0

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "title":
            self._in_title = True
        if tag == "form" and a.get("id") == self.form_id:
            self.in_form = True
            self.form = a
        elif self.in_form and tag in ("input", "button"):
            a["__tag"] = tag
            self.controls.append(a)
        if "input-error" in a.get("id", "") or "kc-feedback-text" in a.get("class", ""):
            self._err_depth = 1

    def handle_endtag(self, tag):
        if tag == "form" and self.in_form:
            self.in_form = False
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._err_depth and data.strip():
            self.errors.append(data.strip())
            self._err_depth = 0


def parse_login(html: str) -> FormParser:
    p = FormParser("kc-form-login")
    p.feed(html)
    return p


def form_fields(p: FormParser, overrides: dict) -> list:
    fields = []
    clicked = False
    for a in p.controls:
        name = a.get("name")
        if not name or "disabled" in a:
            continue
        typ = (a.get("type") or ("submit" if a["__tag"] == "button" else "text")).lower()
        if typ in ("submit", "image", "reset", "button"):
            if not clicked and typ == "submit" and name not in overrides:
                fields.append((name, a.get("value", "")))
                clicked = True
            continue
        if typ in ("checkbox", "radio") and "checked" not in a:
            continue
        fields.append((name, a.get("value", "on" if typ in ("checkbox", "radio") else "")))
    for k, v in overrides.items():
        for i, (n, _) in enumerate(fields):
            if n == k:
                fields[i] = (k, v)
                break
        else:
            fields.append((k, v))
    return fields


def page_summary(html: str) -> str:
    p = parse_login(html)
    if p.errors:
        return " ".join(p.errors)[:300]
    if p.title.strip():
        return p.title.strip()[:300]
    return html[:300]


# ------------------------------------------------------------------------------------------------
# The browser: requests.Session with manual redirects.

REDACT = ("code", "state", "nonce", "session_code", "execution", "tab_id", "client_data", "id_token_hint")


def redact(url: str) -> str:
    parts = urlsplit(url)
    q = [(k, "…" if k in REDACT else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(q), parts.fragment))


class Browser:
    def __init__(self, timeout: float):
        import requests

        self.s = requests.Session()
        self.s.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) portcullis-e2e flask_oidc_flow"
        self.s.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        self.timeout = timeout

    def request(self, method: str, url: str, data=None):
        headers = {}
        if data is not None:
            parts = urlsplit(url)
            headers["Origin"] = f"{parts.scheme}://{parts.netloc}"
        try:
            r = self.s.request(method, url, data=data, headers=headers, allow_redirects=False, timeout=self.timeout)
        except Exception as e:  # noqa: BLE001
            raise Failure(f"{method} {redact(url)} failed: {type(e).__name__}: {e}")
        entry = {"step": CURRENT["step"], "method": method, "url": redact(url), "status": r.status_code}
        if r.headers.get("location"):
            entry["location"] = redact(urljoin(url, r.headers["location"]))
        if r.status_code >= 400:
            entry["body"] = r.text[:400]
        HTTP_LOG.append(entry)
        return r

    def navigate(self, method: str, url: str, data=None):
        chain = []
        for _ in range(25):
            r = self.request(method, url, data)
            chain.append((method, url, r.status_code))
            if r.status_code in (301, 302, 303, 307, 308):
                loc = r.headers.get("location")
                check(loc, f"HTTP {r.status_code} without Location from {method} {redact(url)}")
                url = urljoin(url, loc)
                if r.status_code not in (307, 308):
                    method, data = "GET", None
                continue
            return r, url, chain
        raise Failure(f"more than 25 redirects, last {redact(url)}")


def chain_summary(chain) -> list:
    return [f"{m} {redact(u)} -> {s}" for m, u, s in chain]


# ------------------------------------------------------------------------------------------------
# The sample app as a child process.

APP = {"proc": None}


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def venv_python() -> str:
    venv = os.path.join(HERE, ".venv")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return sys.executable
    return os.path.join(venv, "bin", "python")


def start_app(port: int, extra_env: dict) -> None:
    e = dict(os.environ)
    e.update(extra_env)
    e["APP_PORT"] = str(port)
    e["PYTHONUNBUFFERED"] = "1"
    e.pop("FLASK_RUN_PORT", None)
    proc = subprocess.Popen(
        [venv_python(), os.path.join(HERE, "flask_sample.py")],
        cwd=HERE,
        env=e,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    APP["proc"] = proc

    def pump():
        for raw in proc.stdout:
            line = re.sub(r"\x1b\[[0-9;]*m", "", raw.decode("utf-8", "replace")).rstrip()
            if line:
                APP_OUTPUT.append(line[:2000])
                print(f"[flask_sample] {line}", file=sys.stderr)

    threading.Thread(target=pump, daemon=True).start()

    import requests

    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            raise Failure(f"flask_sample.py exited early with code {proc.returncode}", {"app_output": APP_OUTPUT[-20:]})
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise Failure("flask_sample.py did not answer within 15 s", {"app_output": APP_OUTPUT[-20:]})


def stop_app() -> None:
    proc = APP["proc"]
    APP["proc"] = None
    if proc is None or proc.poll() is not None:
        return
    # The app runs in its own session/process group (start_new_session) that only it belongs to.
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


# ------------------------------------------------------------------------------------------------


def main() -> None:
    server_url = env("SERVER_URL").rstrip("/")
    realm = env("REALM")
    client_id = env("CLIENT_ID")
    client_secret = env("CLIENT_SECRET")
    username = env("USERNAME")
    password = env("PASSWORD")
    port = int(env("APP_PORT", "5000"))
    timeout = float(env("HTTP_TIMEOUT_S", "15"))
    app = f"http://localhost:{port}"
    realm_base = f"{server_url}/realms/{realm}"
    auth_endpoint = f"{realm_base}/protocol/openid-connect/auth"
    OUT["app"] = app

    import flask_oidc  # noqa: F401 - fail early with a clear message when the venv is missing
    from importlib.metadata import version

    OUT["versions"] = {"flask_oidc": version("flask-oidc"), "authlib": version("authlib"), "flask": version("flask")}

    with Step("start_app") as rec:
        check(port_free(port), f"port {port} is already in use (APP_PORT must be free: the client's redirect URI is tied to it)")
        start_app(port, {"SERVER_URL": server_url, "REALM": realm, "CLIENT_ID": client_id, "CLIENT_SECRET": client_secret})
        rec["url"] = app

    b = Browser(timeout)

    with Step("public_route") as rec:
        r, url, chain = b.navigate("GET", f"{app}/")
        rec["status"] = r.status_code
        check(r.status_code == 200 and r.text == PUBLIC_BODY, f"GET / answered HTTP {r.status_code} {r.text[:200]!r}")

    with Step("protected_redirects_to_login") as rec:
        r, url, chain = b.navigate("GET", f"{app}/protected")
        rec["chain"] = chain_summary(chain)
        auth_hop = next((u for _, u, _ in chain if u.startswith(auth_endpoint + "?")), None)
        if auth_hop is None:
            # flask-oidc fetches {issuer}/.well-known/openid-configuration inside /login: a 500
            # there means discovery failed (see app_output for Authlib's exception).
            raise Failure(f"GET /protected never reached {auth_endpoint} (ended HTTP {r.status_code} at {redact(url)})",
                          {"body": r.text[:300], "app_output": APP_OUTPUT[-15:]})
        q = dict(parse_qsl(urlsplit(auth_hop).query))
        rec["auth_request"] = {k: v for k, v in q.items() if k not in ("state", "nonce")}
        check(q.get("redirect_uri") == f"{app}/oidc/callback", f"redirect_uri is {q.get('redirect_uri')}, expected {app}/oidc/callback")
        check(r.status_code == 200, f"the authorization endpoint ended in HTTP {r.status_code} at {redact(url)} instead of the login page",
              {"page": page_summary(r.text)})
        form = parse_login(r.text)
        check(form.form is not None, 'the login page has no <form id="kc-form-login">', {"page": page_summary(r.text)})
        login_page = (r, url, form)
        rec["login_page"] = urlsplit(url)._replace(query="").geturl()

    with Step("login_back_to_protected") as rec:
        r0, page_url, form = login_page
        method = (form.form.get("method") or "GET").upper()
        check(method == "POST", f"login form method is {method}, expected POST")
        action = urljoin(page_url, form.form.get("action") or page_url)
        fields = form_fields(form, {"username": username, "password": password})
        rec["form_fields"] = [n for n, _ in fields]
        r, url, chain = b.navigate("POST", action, data=fields)
        rec["chain"] = chain_summary(chain)
        cb = next(((m, u, s) for m, u, s in chain if u.startswith(f"{app}/oidc/callback")), None)
        if cb is None:
            raise Failure(f"the login POST never redirected to {app}/oidc/callback (ended HTTP {r.status_code} at {redact(url)})",
                          {"page": page_summary(r.text)})
        cbq = dict(parse_qsl(urlsplit(cb[1]).query))
        rec["callback_params"] = sorted(cbq)
        check("code" in cbq, f"callback has no code: {redact(cb[1])}", {k: cbq.get(k) for k in ("error", "error_description")})
        authz = next(((m, u, s) for m, u, s in chain if u.startswith(f"{app}/authorize")), None)
        check(authz is not None, "/oidc/callback did not forward to /authorize")
        if authz[2] != 302:
            # views.py authorize_view: abort(401, str(OAuthError)) when the token request or the
            # ID token validation fails; 500 for other exceptions (traceback in app_output).
            raise Failure(f"flask-oidc /authorize (code exchange + ID token validation + userinfo) answered HTTP {authz[2]}",
                          {"body": r.text[:500], "app_output": [l for l in APP_OUTPUT if "Warning" not in l][-25:]})
        check(r.status_code == 200, f"ended HTTP {r.status_code} at {redact(url)}", {"body": r.text[:300]})
        check(url == f"{app}/protected", f"ended at {redact(url)}, expected {app}/protected")
        try:
            body = r.json()
        except ValueError:
            raise Failure("protected route did not return JSON", {"body": r.text[:300]})
        check(body.get("message") == PROTECTED_MESSAGE, f"protected message is {body.get('message')!r}")
        user = body.get("user") or {}
        rec["user_claims"] = sorted(user)
        check(user.get("preferred_username") == username, f"userinfo preferred_username is {user.get('preferred_username')!r}, expected {username!r}")
        check(isinstance(user.get("sub"), str) and user["sub"], "userinfo has no sub")
        rec["message"] = body["message"]

    with Step("protected_again_from_session") as rec:
        r, url, chain = b.navigate("GET", f"{app}/protected")
        rec["chain"] = chain_summary(chain)
        check(len(chain) == 1 and r.status_code == 200, "second GET /protected did not answer 200 directly")
        check(r.json().get("message") == PROTECTED_MESSAGE, "protected body changed")

    with Step("logout_local") as rec:
        r, url, chain = b.navigate("GET", f"{app}/logout")
        rec["chain"] = chain_summary(chain)
        check(r.status_code == 200 and url == f"{app}/" and r.text == PUBLIC_BODY, f"GET /logout ended HTTP {r.status_code} at {redact(url)}")

    with Step("sso_relogin_without_form") as rec:
        # flask-oidc's logout only drops its own session; the server's SSO session (cookies on the
        # server's origin) is still valid, so the authorization request must come straight back.
        r, url, chain = b.navigate("GET", f"{app}/protected")
        rec["chain"] = chain_summary(chain)
        check(not any(s == 200 and u.startswith(auth_endpoint) for _, u, s in chain),
              "the server showed the login form again although its SSO session is alive", {"page": page_summary(r.text)})
        check(r.status_code == 200 and url == f"{app}/protected", f"ended HTTP {r.status_code} at {redact(url)}", {"body": r.text[:300]})
        check(r.json().get("message") == PROTECTED_MESSAGE, "protected body changed")

    OUT["ok"] = all(s.get("ok") for s in OUT["steps"].values())


if __name__ == "__main__":
    started = time.time()
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - report everything as JSON
        OUT["ok"] = False
        OUT["failed_step"] = CURRENT["step"]
        OUT["error"] = describe(exc)
        traceback.print_exc(file=sys.stderr)
    finally:
        try:
            stop_app()
        except Exception:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
    if not OUT["ok"]:
        OUT["http_log"] = HTTP_LOG
        OUT["app_output"] = APP_OUTPUT[-40:]
    OUT["elapsed_s"] = round(time.time() - started, 3)
    print(json.dumps(OUT, default=str))
    sys.exit(0 if OUT["ok"] else 1)
