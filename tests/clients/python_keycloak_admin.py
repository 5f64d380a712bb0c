#!/usr/bin/env python3
"""Drive the Keycloak-compatible admin REST API with python-keycloak's KeycloakAdmin.

Connects to the master realm with the admin-cli client (password grant, as
KeycloakOpenIDConnection does), creates a realm, a user with a password, a realm role (assigned to
the user), a confidential client with direct access grants, a group (user added to it), then logs
in as the new user on the new client with KeycloakOpenID and checks that the realm role is in
realm_access.roles of the signature-verified access token.

Environment:
  SERVER_URL                    server base URL, e.g. http://127.0.0.1:PORT ("/" is appended)
  ADMIN_USERNAME, ADMIN_PASSWORD  a master-realm administrator
  ADMIN_REALM                   optional, realm the admin logs into (default master)
  ADMIN_CLIENT_ID               optional (default admin-cli)
  PK_REALM                      optional name of the realm to create (default pk-realm)
  DELETE_REALM=1                delete the realm again at the end
  INSECURE_TLS=1                do not verify TLS certificates

Prints one JSON object {"steps": {...}, "ok": true|false} on stdout; exit 0 on success, 1 on failure.
Run with tests/clients/.venv/bin/python (scripts/setup-clients.sh creates it).
"""

from __future__ import annotations

import json
import os
import secrets
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
    code = getattr(err, "response_code", None)
    if code is not None:
        d["response_code"] = code
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


def main() -> None:
    from keycloak import KeycloakAdmin, KeycloakOpenID, KeycloakOpenIDConnection, __version__

    server_url = env("SERVER_URL")
    if not server_url.endswith("/"):
        server_url += "/"
    admin_user = env("ADMIN_USERNAME")
    admin_password = env("ADMIN_PASSWORD")
    admin_realm = env("ADMIN_REALM", default="master")
    admin_client = env("ADMIN_CLIENT_ID", default="admin-cli")
    realm = env("PK_REALM", default="pk-realm")
    verify = os.environ.get("INSECURE_TLS") != "1"

    user_name = "pk-user"
    user_password = "Pk-" + secrets.token_urlsafe(12)
    user_password2 = "Pk2-" + secrets.token_urlsafe(12)
    role_name = "pk-role"
    client_id = "pk-client"
    group_name = "pk-group"

    OUT["config"] = {"server_url": server_url, "realm": realm, "python_keycloak": __version__}

    with Step("connect") as rec:
        # user_realm_name pins the token realm: the connection's realm_name is switched to the new
        # realm below, and the admin token must still come from (and be refreshed in) master.
        conn = KeycloakOpenIDConnection(
            server_url=server_url,
            username=admin_user,
            password=admin_password,
            realm_name=admin_realm,
            user_realm_name=admin_realm,
            client_id=admin_client,
            verify=verify,
            timeout=30,
        )
        admin = KeycloakAdmin(connection=conn)
        realms = admin.get_realms()  # first call: password grant on master, then GET /admin/realms
        rec["realms"] = [r.get("realm") for r in realms]
        rec["grant_type"] = conn.grant_type
        check(conn.token and "access_token" in conn.token, "no admin token obtained")
        check(admin_realm in rec["realms"], f"GET /admin/realms does not list {admin_realm}", rec["realms"])

    with Step("create_realm") as rec:
        res = admin.create_realm({"realm": realm, "enabled": True, "displayName": "python-keycloak test realm"})
        rec["response"] = res.decode("utf-8", "replace") if isinstance(res, bytes) else res
        got = admin.get_realm(realm)
        rec["realm"] = {k: got.get(k) for k in ("id", "realm", "enabled")}
        check(got.get("realm") == realm and got.get("enabled") is True, "GET /admin/realms/{realm} mismatch", rec["realm"])
        admin.change_current_realm(realm)

    with Step("create_user") as rec:
        user_id = admin.create_user({
            "username": user_name,
            "email": "pk-user@example.com",
            "firstName": "Pk",
            "lastName": "User",
            "enabled": True,
            "emailVerified": True,
            "credentials": [{"type": "password", "value": user_password, "temporary": False}],
        })
        rec["user_id"] = user_id
        check(user_id, "create_user returned no id (Location header)")
        check(admin.get_user_id(user_name) == user_id, "get_user_id (GET users?username=&exact=true) does not find the user")
        got = admin.get_user(user_id)
        rec["user"] = {k: got.get(k) for k in ("id", "username", "email", "enabled")}
        check(got.get("username") == user_name, "GET user mismatch", rec["user"])
        # Change the password through reset-password too; the login below uses this one.
        admin.set_user_password(user_id, user_password2, temporary=False)
        rec["password_reset"] = True

    with Step("realm_role") as rec:
        created = admin.create_realm_role({"name": role_name, "description": "python-keycloak test role"})
        rec["created"] = created
        role = admin.get_realm_role(role_name)
        rec["role"] = {k: role.get(k) for k in ("id", "name", "composite", "clientRole")}
        check(role.get("name") == role_name and role.get("id"), "GET role mismatch", rec["role"])
        admin.assign_realm_roles(user_id, [role])
        names = [r.get("name") for r in admin.get_realm_roles_of_user(user_id)]
        rec["user_realm_roles"] = names
        check(role_name in names, "role not in the user's realm role mappings", names)

    with Step("create_client") as rec:
        internal_id = admin.create_client({
            "clientId": client_id,
            "name": "python-keycloak test client",
            "enabled": True,
            "protocol": "openid-connect",
            "publicClient": False,
            "clientAuthenticatorType": "client-secret",
            "standardFlowEnabled": True,
            "directAccessGrantsEnabled": True,
            "serviceAccountsEnabled": False,
            "redirectUris": ["http://127.0.0.1/*"],
            "webOrigins": ["+"],
        })
        rec["id"] = internal_id
        check(internal_id, "create_client returned no id (Location header)")
        check(admin.get_client_id(client_id) == internal_id, "get_client_id (GET clients?clientId=) mismatch")
        secret = admin.get_client_secrets(internal_id)
        rec["secret_type"] = secret.get("type")
        check(isinstance(secret.get("value"), str) and secret["value"], "client-secret has no value", {k: v for k, v in secret.items() if k != "value"})
        client_secret = secret["value"]

    with Step("group") as rec:
        group_id = admin.create_group({"name": group_name})
        rec["group_id"] = group_id
        check(group_id, "create_group returned no id (Location header)")
        admin.group_user_add(user_id, group_id)
        groups = admin.get_user_groups(user_id)
        rec["user_groups"] = [g.get("name") for g in groups]
        check(group_name in rec["user_groups"], "user is not in the group", rec["user_groups"])

    with Step("client_scope") as rec:
        scope_id = admin.create_client_scope({
            "name": "pk-scope",
            "protocol": "openid-connect",
            "attributes": {"include.in.token.scope": "true", "display.on.consent.screen": "false"},
        })
        rec["id"] = scope_id
        check(scope_id, "create_client_scope returned no id (Location header)")
        check(admin.create_client_scope({"name": "pk-scope", "protocol": "openid-connect"}, skip_exists=True) == scope_id,
              "create_client_scope(skip_exists) did not find the existing scope")
        admin.add_mapper_to_client_scope(scope_id, {
            "name": "pk-dept",
            "protocol": "openid-connect",
            "protocolMapper": "oidc-hardcoded-claim-mapper",
            "config": {"claim.name": "dept", "claim.value": "pk", "access.token.claim": "true",
                       "id.token.claim": "true", "userinfo.token.claim": "true", "jsonType.label": "String"},
        })
        mappers = admin.get_mappers_from_client_scope(scope_id)
        rec["mappers"] = [m.get("name") for m in mappers]
        check("pk-dept" in rec["mappers"], "the scope's mapper is not listed", rec["mappers"])
        check(admin.get_client_scope_by_name("pk-scope")["id"] == scope_id, "get_client_scope_by_name mismatch")
        admin.update_client_scope(scope_id, {"name": "pk-scope", "description": "python-keycloak scope"})
        check(admin.get_client_scope(scope_id).get("description") == "python-keycloak scope", "update_client_scope did not stick")
        admin.add_client_optional_client_scope(internal_id, scope_id, {})
        optional = [s.get("name") for s in admin.get_client_optional_client_scopes(internal_id)]
        rec["client_optional"] = optional
        check("pk-scope" in optional, "the client does not list the optional scope", optional)
        defaults = [s.get("name") for s in admin.get_client_default_client_scopes(internal_id)]
        check({"profile", "email", "roles"} <= set(defaults), "the client lacks the realm's default scopes", defaults)
        realm_defaults = [s.get("name") for s in admin.get_default_default_client_scopes()]
        check("profile" in realm_defaults, "the realm's default scopes lack profile", realm_defaults)
        check(admin.get_all_roles_of_client_scope(scope_id).get("realmMappings", []) == [],
              "a new scope has scope mappings")

    with Step("authentication_flows") as rec:
        aliases = [f.get("alias") for f in admin.get_authentication_flows()]
        rec["builtin"] = [a for a in aliases if a in ("browser", "direct grant", "registration", "reset credentials")]
        check(len(rec["builtin"]) == 4, "the built-in flows are not listed", aliases)
        admin.create_authentication_flow({"alias": "pk-flow", "providerId": "basic-flow", "description": "pk", "topLevel": True})
        admin.create_authentication_flow({"alias": "pk-flow", "providerId": "basic-flow"}, skip_exists=True)
        admin.create_authentication_flow_execution({"provider": "auth-cookie"}, "pk-flow")
        admin.create_authentication_flow_subflow({"alias": "pk-forms", "type": "basic-flow", "provider": "registration-page-form", "description": "forms"}, "pk-flow")
        admin.create_authentication_flow_execution({"provider": "auth-username-password-form"}, "pk-forms")
        admin.create_authentication_flow_execution({"provider": "auth-otp-form"}, "pk-forms")
        executions = admin.get_authentication_flow_executions("pk-flow")
        rec["executions"] = [(e.get("displayName"), e.get("level"), e.get("requirement")) for e in executions]
        names = [e.get("providerId") for e in executions]
        check(names == ["auth-cookie", None, "auth-username-password-form", "auth-otp-form"],
              "the executions are not listed in order", rec["executions"])
        forms = next(e for e in executions if e.get("displayName") == "pk-forms")
        admin.update_authentication_flow_executions({"id": forms["id"], "requirement": "ALTERNATIVE"}, "pk-flow")
        otp = next(e for e in executions if e.get("providerId") == "auth-otp-form")
        admin.update_authentication_flow_executions({"id": otp["id"], "requirement": "REQUIRED"}, "pk-flow")
        cookie = next(e for e in executions if e.get("providerId") == "auth-cookie")
        admin.update_authentication_flow_executions({"id": cookie["id"], "requirement": "ALTERNATIVE"}, "pk-flow")
        admin.change_execution_priority(otp["id"], 1)
        admin.change_execution_priority(otp["id"], -1)
        check(admin.get_authentication_flow_execution(otp["id"]).get("requirement") == "REQUIRED",
              "the OTP execution is not REQUIRED")
        admin.update_realm(realm, {"browserFlow": "pk-flow"})
        check(admin.get_realm(realm).get("browserFlow") == "pk-flow", "the realm does not use pk-flow")
        admin.update_realm(realm, {"browserFlow": "browser"})
        flow_id = next(f["id"] for f in admin.get_authentication_flows() if f.get("alias") == "pk-flow")
        admin.delete_authentication_flow(flow_id)
        check("pk-flow" not in [f.get("alias") for f in admin.get_authentication_flows()], "pk-flow still listed")

    with Step("client_registration") as rec:
        # Seconds, as Keycloak reads it (python-keycloak's default of 1 would expire within a second).
        iat = admin.create_initial_access_token(count=1, expiration=600)
        rec["remaining"] = iat.get("remainingCount")
        check(isinstance(iat.get("token"), str) and iat["token"], "no initial access token", iat)
        registrar = KeycloakOpenID(server_url=server_url, realm_name=realm, client_id="unused", verify=verify, timeout=30)
        registered = registrar.register_client(iat["token"], {
            "clientId": "pk-registered",
            "redirectUris": ["http://127.0.0.1/cb"],
            "publicClient": False,
        })
        rec["client_id"] = registered.get("clientId")
        check(registered.get("clientId") == "pk-registered", "register_client returned another client", registered.get("clientId"))
        rat = registered.get("registrationAccessToken")
        check(isinstance(rat, str) and rat, "no registration access token", list(registered))
        updated = registrar.update_client(rat, "pk-registered", {"clientId": "pk-registered", "name": "Registered by python-keycloak"})
        check(updated.get("name") == "Registered by python-keycloak", "update_client did not update", updated.get("name"))
        check(admin.get_client_id("pk-registered"), "the registered client is not in the admin API")

    with Step("login_new_user") as rec:
        kc = KeycloakOpenID(
            server_url=server_url,
            realm_name=realm,
            client_id=client_id,
            client_secret_key=client_secret,
            verify=verify,
            timeout=30,
        )
        tok = kc.token(user_name, user_password2)
        claims = kc.decode_token(tok["access_token"])  # signature checked against certs()
        roles = (claims.get("realm_access") or {}).get("roles", [])
        rec["claims"] = {k: claims.get(k) for k in ("iss", "sub", "azp", "preferred_username", "realm_access")}
        check(claims.get("sub") == user_id, "access token sub is not the created user's id", claims.get("sub"))
        check(role_name in roles, f"{role_name} not in realm_access.roles", roles)
        check(claims.get("dept") is None, "the optional scope applied without being asked for", claims.get("dept"))
        scoped = kc.token(user_name, user_password2, scope="openid pk-scope")
        check("pk-scope" in scoped.get("scope", "").split(), "the token response scope lacks pk-scope", scoped.get("scope"))
        scoped_claims = kc.decode_token(scoped["access_token"])
        rec["scoped_dept"] = scoped_claims.get("dept")
        check(scoped_claims.get("dept") == "pk", "the scope's mapper did not shape the token", scoped_claims)
        info = kc.userinfo(scoped["access_token"])
        check(info.get("dept") == "pk" and info.get("preferred_username") == user_name, "userinfo lacks the scope's claims", info)
        try:
            kc.token(user_name, user_password)
        except Exception as err:  # noqa: BLE001
            rec["old_password_rejected"] = describe(err).get("response_code")
        else:
            raise Failure("the password set at creation still works after set_user_password")

    with Step("identity_providers") as rec:
        # The seed's GitHub provider, a mapper, a user's link: python-keycloak's calls.
        admin.create_idp({
            "alias": "github", "providerId": "github", "enabled": True,
            "config": {"clientId": "GITHUB_CLIENT_ID", "clientSecret": "GITHUB_CLIENT_SECRET"},
        })
        idp = admin.get_idp("github")
        rec["idp"] = {k: idp.get(k) for k in ("alias", "providerId", "enabled")}
        check(idp.get("config", {}).get("clientSecret") == "**********", "the secret is not masked", idp.get("config"))
        check(any(i.get("alias") == "github" for i in admin.get_idps()), "get_idps lacks github")
        admin.add_mapper_to_idp("github", {
            "name": "pk-role-mapper", "identityProviderAlias": "github",
            "identityProviderMapper": "hardcoded-role-idp-mapper", "config": {"role": role_name},
        })
        mappers = admin.get_idp_mappers("github")
        rec["mappers"] = [m.get("name") for m in mappers]
        check([m.get("name") for m in mappers] == ["pk-role-mapper"], "the mapper is not listed", mappers)
        admin.add_user_social_login(user_id, "github", "583231", "octocat")
        links = admin.get_user_social_logins(user_id)
        rec["links"] = links
        check(links == [{"identityProvider": "github", "userId": "583231", "userName": "octocat"}], "the link is not listed", links)
        admin.delete_user_social_login(user_id, "github")
        check(admin.get_user_social_logins(user_id) == [], "the link was not removed")
        admin.delete_idp("github")
        check(all(i.get("alias") != "github" for i in admin.get_idps()), "the provider was not deleted")

    if os.environ.get("DELETE_REALM") == "1":
        with Step("delete_realm") as rec:
            admin.change_current_realm(admin_realm)
            admin.delete_realm(realm)
            rec["deleted"] = realm

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
