# The seed guide's "Connecting with Python" sample (Flask + Flask-OIDC), nearly verbatim, with the
# placeholders taken from the environment (started as a child process by flask_oidc_flow.py):
#   SERVER_URL, REALM, CLIENT_ID, CLIENT_SECRET, APP_PORT (default 5000)
#
# The seed was written for flask-oidc 1.x; the pinned flask-oidc 2.4.0 (an Authlib rewrite) is
# configured differently. What had to change, and only that:
#   * OIDC_CLIENT_SECRETS["web"] needs an "issuer": 2.x discovers every endpoint from
#     {issuer}/.well-known/openid-configuration (flask_oidc/__init__.py: init_app reads
#     client_secrets["issuer"] and builds OIDC_SERVER_METADATA_URL). Without it init_app raises
#     KeyError('issuer'). auth_uri / token_uri / userinfo_uri / redirect_uris are kept as in the seed
#     but 2.x ignores them.
#   * app.run(...) gets host/port from the environment and use_reloader=False: debug=True would
#     otherwise start werkzeug's reloader, which re-executes the app in a second process that the
#     test driver could not stop by pid.
# Left as in the seed although 2.x deprecates them (they still work, with DeprecationWarnings):
#   * OIDC_SCOPES as a list (2.x joins it into "openid email profile");
#   * OIDC_CALLBACK_ROUTE '/oidc/callback': 2.x still sends redirect_uri={root}/oidc/callback and
#     that legacy route forwards the code to the new /authorize view (flask_oidc/views.py
#     legacy_oidc_callback), so the client needs http://localhost:PORT/* as redirect URI;
#   * OIDC_COOKIE_SECURE (ignored by 2.x);
#   * oidc.user_getinfo([...]) (2.x returns the userinfo profile fetched once at login and kept in
#     session["oidc_auth_profile"]);
#   * the /logout view: 2.x registers its own /logout (blueprint oidc_auth, before the seed's route,
#     so it wins) which clears the local session and redirects to the app root, which is what the
#     seed's view meant to do (in 2.x oidc.logout() only *returns* a redirect).
import os

from flask import Flask, redirect, url_for, jsonify
from flask_oidc import OpenIDConnect

SERVER_URL = os.environ["SERVER_URL"].rstrip("/")
REALM = os.environ["REALM"]
APP_PORT = int(os.environ.get("APP_PORT") or 5000)

app = Flask(__name__)

# Keycloak OIDC configuration (no JSON file required)
app.config.update({
    'SECRET_KEY': 'your-random-secret',
    'OIDC_CLIENT_SECRETS': {
        "web": {
            "client_id": os.environ["CLIENT_ID"],
            "client_secret": os.environ["CLIENT_SECRET"],
            # flask-oidc 2.x: the only URL it uses (OpenID discovery), see the header comment.
            "issuer": f"{SERVER_URL}/realms/{REALM}",
            "auth_uri": f"{SERVER_URL}/realms/{REALM}/protocol/openid-connect/auth",
            "token_uri": f"{SERVER_URL}/realms/{REALM}/protocol/openid-connect/token",
            "userinfo_uri": f"{SERVER_URL}/realms/{REALM}/protocol/openid-connect/userinfo",
            "redirect_uris": [f"http://localhost:{APP_PORT}/oidc/callback"]
        }
    },
    'OIDC_SCOPES': ['openid', 'email', 'profile'],
    'OIDC_CALLBACK_ROUTE': '/oidc/callback',
    'OIDC_COOKIE_SECURE': False
})

oidc = OpenIDConnect(app)

@app.route('/')
def index():
    return 'Welcome to the public route.'

@app.route('/protected')
@oidc.require_login
def protected():
    user_info = oidc.user_getinfo(['email', 'sub', 'name'])
    return jsonify({
        "message": "You are authenticated",
        "user": user_info
    })

@app.route('/logout')
def logout():
    oidc.logout()
    return redirect(url_for('index'))

if __name__ == '__main__':
    app.run(host=os.environ.get("APP_HOST", "127.0.0.1"), port=APP_PORT, debug=True, use_reloader=False)
