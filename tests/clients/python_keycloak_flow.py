#!/usr/bin/env python3
"""Drive a Keycloak-compatible realm with python-keycloak's KeycloakOpenID.

Environment:
  SERVER_URL     server base URL, e.g. http://127.0.0.1:PORT  (a trailing "/" is added: the
                 library builds URLs with urljoin(server_url, "realms/..."), so a base with a path
                 but no trailing slash would lose its last segment)
  REALM          realm name
  CLIENT_ID      client with direct access grants (password grant) enabled
  CLIENT_SECRET  optional; confidential clients only. Enables the introspection step.
  USERNAME, PASSWORD
  INSECURE_TLS=1 do not verify TLS certificates
  SKIP_LOGOUT=1  skip the final logout step
  OTP_USERNAME, OTP_PASSWORD, OTP_SECRET  optional: a user with a TOTP credential (the raw
                 HMAC secret); checks the password grant with python-keycloak's `totp`

Prints one JSON object {"steps": {...}, "ok": true|false} on stdout; exit 0 on success, 1 on failure.
Run with tests/clients/.venv/bin/python (scripts/setup-clients.sh creates it).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

OUT: dict = {"steps": {}, "ok": False}
CURRENT = {"step": "init"}


class Failure(Exception):
    def __init__(self, message: str, detail=None):
        super().__init__(message)
        self.detail = detail


def env(name: str, required: bool = True, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value == "":
        if required and default is None:
            raise Failure(f"missing required environment variable {name}")
        return default
    return value


def check(cond, message: str, detail=None) -> None:
    if not cond:
        raise Failure(message, detail)


def describe(err: BaseException) -> dict:
    d = {"type": type(err).__name__, "message": str(err)}
    for attr in ("response_code", "error_message"):
        v = getattr(err, attr, None)
        if v is not None:
            d[attr] = v if isinstance(v, (int, str)) else repr(v)
    body = getattr(err, "response_body", None)
    if body is not None:
        d["response_body"] = body.decode("utf-8", "replace")[:500] if isinstance(body, bytes) else str(body)[:500]
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


def pick(d: dict, keys) -> dict:
    return {k: d[k] for k in keys if isinstance(d, dict) and k in d}


def totp_code(secret: bytes, when: int, digits: int = 6, period: int = 30) -> str:
    """RFC 6238 with HMAC-SHA1, as an authenticator app computes it."""
    import hashlib
    import hmac
    import struct

    mac = hmac.new(secret, struct.pack(">Q", when // period), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def main() -> None:
    from jwcrypto import jwk  # python-keycloak's JWT dependency
    from keycloak import KeycloakOpenID, __version__
    from keycloak.exceptions import KeycloakError

    server_url = env("SERVER_URL")
    if not server_url.endswith("/"):
        server_url += "/"
    realm = env("REALM")
    client_id = env("CLIENT_ID")
    client_secret = env("CLIENT_SECRET", required=False)
    username = env("USERNAME")
    password = env("PASSWORD")
    verify = os.environ.get("INSECURE_TLS") != "1"
    expected_issuer = f"{server_url}realms/{realm}"

    OUT["config"] = {
        "server_url": server_url,
        "realm": realm,
        "client_id": client_id,
        "confidential": bool(client_secret),
        "python_keycloak": __version__,
    }

    kc = KeycloakOpenID(
        server_url=server_url,
        realm_name=realm,
        client_id=client_id,
        client_secret_key=client_secret or None,
        verify=verify,
        timeout=30,
    )

    with Step("well_known") as rec:
        wk = kc.well_known()
        rec["issuer"] = wk.get("issuer")
        check(wk.get("issuer") == expected_issuer, f"issuer is {wk.get('issuer')!r}, expected {expected_issuer!r}")
        base = f"{expected_issuer}/protocol/openid-connect"
        for key, path in (
            ("authorization_endpoint", "/auth"),
            ("token_endpoint", "/token"),
            ("userinfo_endpoint", "/userinfo"),
            ("end_session_endpoint", "/logout"),
            ("jwks_uri", "/certs"),
            ("introspection_endpoint", "/token/introspect"),
        ):
            check(wk.get(key) == base + path, f"{key} is {wk.get(key)!r}, expected {base + path!r}")
        rec["grant_types_supported"] = wk.get("grant_types_supported")

    with Step("password_grant") as rec:
        tok = kc.token(username, password)
        rec["keys"] = sorted(tok.keys())
        for key in ("access_token", "refresh_token", "expires_in", "token_type"):
            check(key in tok, f"token response lacks {key}", rec["keys"])
        check(str(tok["token_type"]).lower() == "bearer", f"token_type is {tok['token_type']!r}")
        rec["has_id_token"] = "id_token" in tok  # scope=openid is sent by default
        check(rec["has_id_token"], "token response lacks id_token although scope=openid was requested")
        rec["expires_in"] = tok["expires_in"]
        rec["refresh_expires_in"] = tok.get("refresh_expires_in")
        rec["scope"] = tok.get("scope")

    with Step("userinfo") as rec:
        info = kc.userinfo(tok["access_token"])
        check(isinstance(info, dict), "userinfo did not return a JSON object", repr(info)[:200])
        rec["claims"] = pick(info, ["sub", "preferred_username", "email", "name"])
        check(str(info.get("preferred_username", "")).lower() == username.lower(), "userinfo preferred_username mismatch", rec["claims"])

    with Step("refresh_token") as rec:
        tok2 = kc.refresh_token(tok["refresh_token"])
        check("access_token" in tok2 and "refresh_token" in tok2, "refresh response lacks tokens", sorted(tok2.keys()))
        rec["refresh_token_rotated"] = tok2["refresh_token"] != tok["refresh_token"]
        rec["access_token_changed"] = tok2["access_token"] != tok["access_token"]
        check(rec["access_token_changed"], "refresh returned the same access token")

    with Step("introspect") as rec:
        if not client_secret:
            rec["skipped"] = "no CLIENT_SECRET (public client)"
        else:
            intro = kc.introspect(tok2["access_token"])
            rec["response"] = pick(intro, ["active", "sub", "client_id", "username", "token_type", "scope", "exp"])
            check(intro.get("active") is True, "introspection says the token is not active", rec["response"])

    with Step("decode_public_key") as rec:
        # As python-keycloak's docs show: the realm's "public_key" (GET /realms/{realm}) as PEM.
        public_key = kc.public_key()
        rec["public_key_chars"] = len(public_key)
        pem = "-----BEGIN PUBLIC KEY-----\n" + public_key + "\n-----END PUBLIC KEY-----"
        key = jwk.JWK.from_pem(pem.encode("utf-8"))
        claims = kc.decode_token(tok2["access_token"], key=key)
        rec["claims"] = pick(claims, ["iss", "sub", "typ", "azp", "preferred_username", "realm_access", "aud", "exp"])
        check(claims.get("iss") == expected_issuer, "access token iss mismatch", claims.get("iss"))
        check(str(claims.get("preferred_username", "")).lower() == username.lower(), "access token preferred_username mismatch")

    with Step("decode_certs") as rec:
        certs = kc.certs()
        rec["keys"] = [pick(k, ["kid", "kty", "alg", "use"]) for k in certs.get("keys", [])]
        # No key given: decode_token builds a JWKSet from certs() and verifies the signature.
        claims = kc.decode_token(tok2["access_token"])
        rec["sub"] = claims.get("sub")
        # Explicit claim checks through jwcrypto's check_claims (exp with leeway, iss exact).
        claims = kc.decode_token(tok2["access_token"], check_claims={"iss": expected_issuer, "exp": None, "sub": None})
        id_claims = kc.decode_token(tok2.get("id_token") or tok["id_token"])
        rec["id_token_claims"] = pick(id_claims, ["iss", "sub", "aud", "azp", "typ", "preferred_username"])
        aud = id_claims.get("aud")
        check(client_id == aud or (isinstance(aud, list) and client_id in aud), "ID token aud does not contain CLIENT_ID", aud)
        unverified = kc.decode_token(tok2["access_token"], validate=False)
        check(unverified.get("sub") == claims.get("sub"), "unverified decode differs")

    with Step("password_grant_with_totp") as rec:
        # A user with an authenticator: the password alone is refused, python-keycloak's
        # `totp` argument (an int, as its docs type it) completes the grant.
        otp_user = os.environ.get("OTP_USERNAME")
        if not otp_user:
            rec["skipped"] = "no OTP_USERNAME"
        else:
            otp_password = env("OTP_PASSWORD")
            secret = env("OTP_SECRET").encode("utf-8")
            try:
                kc.token(otp_user, otp_password)
                raise Failure("password grant without the one-time code succeeded")
            except KeycloakError as err:
                rec["without_code"] = err.response_code
                check(err.response_code == 401, "expected 401 without the code", err.response_code)
            # The next time step (inside the realm's look-ahead window): unused so far.
            code = totp_code(secret, int(time.time()) + 30)
            tok_otp = kc.token(otp_user, otp_password, totp=int(code))
            check("access_token" in tok_otp, "no access token with the one-time code")
            try:
                kc.token(otp_user, otp_password, totp=int(code))
                raise Failure("a one-time code was accepted twice")
            except KeycloakError as err:
                rec["replayed"] = err.response_code
                check(err.response_code == 401, "expected 401 for a replayed code", err.response_code)

    with Step("logout") as rec:
        if os.environ.get("SKIP_LOGOUT") == "1":
            rec["skipped"] = True
        else:
            kc.logout(tok2["refresh_token"])  # expects HTTP 204
            try:
                kc.refresh_token(tok2["refresh_token"])
            except KeycloakError as err:
                rec["refresh_after_logout"] = describe(err)
                check(err.response_code == 400, f"refresh after logout failed with HTTP {err.response_code}, expected 400")
            else:
                raise Failure("refresh token still works after logout")

    OUT["ok"] = True


if __name__ == "__main__":
    started = time.time()
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - report everything as JSON
        OUT["ok"] = False
        OUT["failed_step"] = CURRENT["step"]
        OUT["error"] = describe(exc)
        traceback.print_exc(file=sys.stderr)
    OUT["elapsed_s"] = round(time.time() - started, 3)
    print(json.dumps(OUT, default=str))
    sys.exit(0 if OUT["ok"] else 1)
