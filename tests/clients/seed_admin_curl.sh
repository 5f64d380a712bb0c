#!/usr/bin/env bash
# Run every admin-REST / token `curl` command of the seed guides (/work/shared/seeds/keycloak-guides.txt,
# lines 1209-2214), in the seed's order, against a Keycloak-compatible server. Each command is copied
# as written (method, headers, JSON body, form fields); only these are substituted:
#   https://<keycloak-domain>  -> $SERVER_URL
#   <realm>                    -> the realm created by the seed's own create-realm command (line 1220)
#   <access_token>             -> access_token of the most recent seed token command
#   <user-id>                  -> id from the Location header of the seed's create-user command (1371)
#   <client-id>                -> id from the Location header of the seed's create-client command (1537)
#   <username>                 -> johndoe (the user the seed creates at 1371)
#   username=admin / password=admin-password -> $ADMIN_USERNAME / $ADMIN_PASSWORD
# The user passwords of the seed (StrongPassword123!, SecurePassword123!) are used as they are.
#
# Each command's HTTP status is compared with what Keycloak answers (200 for tokens and reads, 201 for
# creates, 204 for updates); creates must also carry a Location header ending in the new id, token
# responses an access_token, and the look-ups must return the objects created earlier (the GET after
# the PUT of requiredActions must show CONFIGURE_TOTP with the other fields untouched, since Keycloak's
# PUT /users/{id} is a partial update). A failed command is recorded with its request and response and
# the script goes on with the next one; nothing is skipped or faked (a command whose id could not be
# obtained is recorded as failed without being sent).
#
# Not run (no Keycloak CLI here): the kcadm.sh variants of the same guides, seed lines 1407-1414
# (config credentials, create users, set-password), 1559-1563 (create clients), 1728-1737 (create roles,
# create clients/<client-id>/roles), 1922-1926 (create identity-provider/instances), 2087-2091 (update
# users/<user-id> requiredActions), 2225-2229 (set-password), 2337-2338 (get realms/<realm-name>),
# 2400-2450 (create users, set-password, update users, create clients, identity-provider/instances,
# user-storage). Nor the docker / kc.sh import commands.
#
# Environment:
#   SERVER_URL        server base URL, e.g. http://127.0.0.1:PORT (no trailing slash needed)
#   ADMIN_PASSWORD    password of the master-realm administrator (replaces the seed's admin-password)
#   ADMIN_USERNAME    optional, default admin (the seed's username=admin)
#   REALM_NAME        optional, realm the seed's create-realm command creates (default newrealm, as in
#                     the seed); it must not exist yet
#   KEEP_REALM=1      optional: do not delete the realm at the end (the delete is not a seed command; it
#                     is reported under "cleanup")
#   INSECURE_TLS=1    optional: curl -k
# Like the seed, form fields are sent with curl -d (not url-encoded): the admin password must not
# contain '&', '+' or '%'.
#
# Output: one JSON line {"steps": {"<seed line>_<what>": {...}, ...}, "cleanup": {...}, "ok": true|false}
# on stdout; diagnostics on stderr. Exit 0 only when every command got the expected answer.

set -u

SERVER_URL=${SERVER_URL:-}
ADMIN_PASSWORD=${ADMIN_PASSWORD:-}
ADMIN_USERNAME=${ADMIN_USERNAME:-admin}
REALM=${REALM_NAME:-newrealm}
if [ -z "$SERVER_URL" ] || [ -z "$ADMIN_PASSWORD" ]; then
  echo '{"steps":{},"ok":false,"error":"SERVER_URL and ADMIN_PASSWORD are required"}'
  echo "seed_admin_curl: SERVER_URL and ADMIN_PASSWORD are required" >&2
  exit 1
fi
SERVER_URL=${SERVER_URL%/}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STEPS=$WORK/steps.jsonl
: > "$STEPS"

CURL_OPTS=(-s -S --max-time 30)
[ "${INSECURE_TLS:-}" = 1 ] && CURL_OPTS+=(-k)

TOKEN=""
USER_ID=""
CLIENT_ID=""

# The checker: parses one response, prints an extracted value, exits 1 with a message on stderr when the
# response is not what Keycloak would give.
cat > "$WORK/check.py" <<'PY'
import json, sys

def load(path):
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        return json.loads(raw)
    except Exception:
        sys.exit(f"response body is not JSON: {raw[:200]!r}")

def location(hdrs):
    loc = None
    with open(hdrs, 'r', errors='replace') as f:
        for line in f:
            if ':' in line and line.split(':', 1)[0].strip().lower() == 'location':
                loc = line.split(':', 1)[1].strip()
    return loc

kind, body, hdrs, *args = sys.argv[1:]
if kind == 'token':
    j = load(body)
    if not isinstance(j, dict) or not isinstance(j.get('access_token'), str) or not j['access_token']:
        sys.exit(f"no access_token in token response: {json.dumps(j)[:300]}")
    if str(j.get('token_type', '')).lower() != 'bearer':
        sys.exit(f"token_type is {j.get('token_type')!r}, expected Bearer")
    print(j['access_token'])
elif kind == 'location':
    # args: expected path suffix before the id ('' = any), expected id ('' = any)
    suffix, want_id = args
    loc = location(hdrs)
    if not loc:
        sys.exit("no Location header in the 201 response")
    base, _, last = loc.rstrip('/').rpartition('/')
    if not last:
        sys.exit(f"Location header {loc!r} has no id segment")
    if suffix and not base.endswith(suffix):
        sys.exit(f"Location header {loc!r} does not point under {suffix!r}")
    if want_id and last != want_id:
        sys.exit(f"Location header {loc!r} ends in {last!r}, expected {want_id!r}")
    print(last)
elif kind == 'find-user':
    # args: username, expected id, extra checks ('' or 'required-totp')
    username, want_id, extra = args
    j = load(body)
    if not isinstance(j, list):
        sys.exit(f"expected a JSON array of users, got {json.dumps(j)[:300]}")
    users = [u for u in j if isinstance(u, dict) and u.get('username') == username]
    if len(users) != 1:
        sys.exit(f"expected exactly one user {username!r}, got {len(users)}: {json.dumps(j)[:300]}")
    u = users[0]
    if want_id and u.get('id') != want_id:
        sys.exit(f"user id is {u.get('id')!r}, the create's Location said {want_id!r}")
    expect = {'email': 'johndoe@example.com', 'firstName': 'John', 'lastName': 'Doe',
              'enabled': True, 'emailVerified': True}
    wrong = {k: u.get(k) for k, v in expect.items() if u.get(k) != v}
    if wrong:
        sys.exit(f"user fields differ from the create request (partial PUT must keep them): {wrong}")
    if extra == 'required-totp' and 'CONFIGURE_TOTP' not in (u.get('requiredActions') or []):
        sys.exit(f"requiredActions is {u.get('requiredActions')!r}, expected to contain CONFIGURE_TOTP")
    print(u.get('id', ''))
elif kind == 'find-client':
    client_id, want_id = args
    j = load(body)
    if not isinstance(j, list):
        sys.exit(f"expected a JSON array of clients, got {json.dumps(j)[:300]}")
    cs = [c for c in j if isinstance(c, dict) and c.get('clientId') == client_id]
    if len(cs) != 1:
        sys.exit(f"expected exactly one client {client_id!r}, got {len(cs)}: {[c.get('clientId') for c in j if isinstance(c, dict)]}")
    c = cs[0]
    if want_id and c.get('id') != want_id:
        sys.exit(f"client id is {c.get('id')!r}, the create's Location said {want_id!r}")
    if c.get('publicClient') is not False:
        sys.exit(f"publicClient is {c.get('publicClient')!r}, the seed created a confidential client")
    if c.get('redirectUris') != ['http://localhost:3000/*']:
        sys.exit(f"redirectUris is {c.get('redirectUris')!r}")
    print(c.get('id', ''))
elif kind == 'none':
    pass
else:
    sys.exit(f"unknown check {kind}")
PY

# Appends one step record to $STEPS.
cat > "$WORK/record.py" <<'PY'
import json, sys, re
out, name, seed_line, desc, method, url, data, expected, status, ok, err, body, hdrs = sys.argv[1:14]
rec = {'seed_line': int(seed_line), 'what': desc, 'request': f"{method} {url}",
       'expected': int(expected), 'status': int(status) if status.isdigit() else status, 'ok': ok == '1'}
if ok != '1':
    # Secrets out of the report: form passwords and bearer tokens.
    data = re.sub(r'(password=)[^&\n]*', r'\1***', data)
    if data:
        rec['request_body'] = data
    if err:
        rec['error'] = err
    try:
        raw = open(body, 'rb').read()
        try:
            rec['response'] = json.loads(raw)
        except Exception:
            rec['response'] = raw[:2000].decode('utf-8', 'replace')
    except OSError:
        pass
    try:
        h = [l.rstrip('\r\n') for l in open(hdrs, errors='replace') if ':' in l]
        keep = [l for l in h if l.split(':', 1)[0].strip().lower() in ('location', 'content-type', 'www-authenticate', 'allow')]
        if keep:
            rec['response_headers'] = keep
    except OSError:
        pass
with open(out, 'a') as f:
    f.write(json.dumps({name: rec}) + '\n')
PY

# seed <line> <name> <expected status> <check> <check args...> -- curl <seed's curl arguments...>
# Sends the command, records the step; the check's printed value is left in $VALUE.
seed() {
  local line=$1 name=$2 expected=$3 check=$4
  shift 4
  local cargs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do cargs+=("$1"); shift; done
  shift              # --
  [ "${1:-}" = curl ] && shift
  local step="${line}_${name}"
  local body=$WORK/$step.body hdrs=$WORK/$step.hdrs
  : > "$body"; : > "$hdrs"
  # Method, URL and request body, for the report.
  local method="" url="" data="" prev=""
  for a in "$@"; do
    case "$prev" in
      -X) method=$a ;;
      -d) data="${data:+$data&}$a" ;;
    esac
    case "$a" in http://*|https://*) url=$a ;; esac
    prev=$a
  done
  [ -z "$method" ] && { [ -n "$data" ] && method=POST || method=GET; }

  local status err="" ok=0
  VALUE=""
  if [[ "$*" == *"<MISSING>"* ]]; then
    status=not-sent
    err="not sent: an id it needs was not returned by an earlier command"
  else
    status=$(curl "${CURL_OPTS[@]}" -o "$body" -D "$hdrs" -w '%{http_code}' "$@" 2> "$WORK/curl.err")
    [ -s "$WORK/curl.err" ] && err="curl: $(tr '\n' ' ' < "$WORK/curl.err")"
    if [ "$status" = "$expected" ]; then
      if VALUE=$(python3 "$WORK/check.py" "$check" "$body" "$hdrs" "${cargs[@]}" 2> "$WORK/check.err"); then
        ok=1
      else
        err=$(tr '\n' ' ' < "$WORK/check.err")
        VALUE=""
      fi
    else
      err="HTTP $status, Keycloak answers $expected${err:+; $err}"
    fi
  fi
  python3 "$WORK/record.py" "$STEPS" "$step" "$line" "$name" "$method" "$url" "$data" "$expected" "$status" "$ok" "$err" "$body" "$hdrs"
  if [ $ok = 1 ]; then
    echo "seed_admin_curl: $step: HTTP $status ok" >&2
  else
    echo "seed_admin_curl: $step: FAILED ($err) $(head -c 400 "$body" 2>/dev/null)" >&2
  fi
  return 0
}

# Ids as substituted into later commands; <MISSING> marks one that could not be obtained.
id_or_missing() { [ -n "$1" ] && printf '%s' "$1" || printf '<MISSING>'; }
# A token command replaces the bearer token only when it succeeded (later commands keep the last good one).
take_token() { [ -n "$VALUE" ] && TOKEN=$VALUE; }

U="$SERVER_URL"

# ---------------------------------------------------------------- Creating a Realm via REST API
# seed 1209: Get Access Token
seed 1209 token_admin_cli 200 token -- \
curl -X POST "$U/realms/master/protocol/openid-connect/token" \
  -H "Content-Type: application/x-www-form-urlencoded" \
  -d "username=$ADMIN_USERNAME" \
  -d "password=$ADMIN_PASSWORD" \
  -d "grant_type=password" \
  -d "client_id=admin-cli"
take_token

# seed 1220: Create the Realm
seed 1220 create_realm 201 location /admin/realms "$REALM" -- \
curl -X POST "$U/admin/realms" \
  -H "Content-Type: application/json" \
  -H "Authorization: Bearer $TOKEN" \
  -d '{
    "realm": "'"$REALM"'",
    "enabled": true,
    "displayName": "New Realm"
  }'

# ---------------------------------------------------------------- Creating Users via REST API
# seed 1360: Get Access Token
seed 1360 token_admin_cli 200 token -- \
curl -X POST "$U/realms/master/protocol/openid-connect/token" \
  -H "Content-Type: application/x-www-form-urlencoded" \
  -d "username=$ADMIN_USERNAME" \
  -d "password=$ADMIN_PASSWORD" \
  -d "grant_type=password" \
  -d "client_id=admin-cli"
take_token

# seed 1371: Create User
seed 1371 create_user 201 location "/admin/realms/$REALM/users" "" -- \
curl -X POST "$U/admin/realms/$REALM/users" \
  -H "Content-Type: application/json" \
  -H "Authorization: Bearer $TOKEN" \
  -d '{
    "username": "johndoe",
    "email": "johndoe@example.com",
    "enabled": true,
    "emailVerified": true,
    "firstName": "John",
    "lastName": "Doe"
  }'
USER_ID=$VALUE

# seed 1385: Set Password
seed 1385 reset_password 204 none -- \
curl -X PUT "$U/admin/realms/$REALM/users/$(id_or_missing "$USER_ID")/reset-password" \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "type": "password",
    "value": "StrongPassword123!",
    "temporary": false
  }'

# seed 1396: To get <user-id>
seed 1396 get_user_by_username 200 find-user johndoe "$USER_ID" "" -- \
curl -H "Authorization: Bearer $TOKEN" \
  "$U/admin/realms/$REALM/users?username=johndoe"

# ---------------------------------------------------------------- Creating Clients via REST API
# seed 1526: Get Access Token
seed 1526 token_admin_cli 200 token -- \
curl -X POST "$U/realms/master/protocol/openid-connect/token" \
  -H "Content-Type: application/x-www-form-urlencoded" \
  -d "username=$ADMIN_USERNAME" \
  -d "password=$ADMIN_PASSWORD" \
  -d "grant_type=password" \
  -d "client_id=admin-cli"
take_token

# seed 1537: Create a Client
seed 1537 create_client 201 location "/admin/realms/$REALM/clients" "" -- \
curl -X POST "$U/admin/realms/$REALM/clients" \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "clientId": "my-app",
    "enabled": true,
    "publicClient": false,
    "redirectUris": ["http://localhost:3000/*"],
    "webOrigins": ["http://localhost:3000"],
    "protocol": "openid-connect"
  }'
CLIENT_ID=$VALUE

# ---------------------------------------------------------------- Creating Roles via REST API
# seed 1686: Get Access Token
seed 1686 token_admin_cli 200 token -- \
curl -X POST "$U/realms/master/protocol/openid-connect/token" \
  -H "Content-Type: application/x-www-form-urlencoded" \
  -d "username=$ADMIN_USERNAME" \
  -d "password=$ADMIN_PASSWORD" \
  -d "grant_type=password" \
  -d "client_id=admin-cli"
take_token

# seed 1697: Create Realm Role
seed 1697 create_realm_role 201 location "/admin/realms/$REALM/roles" viewer -- \
curl -X POST "$U/admin/realms/$REALM/roles" \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "name": "viewer",
    "description": "Read-only access"
  }'

# seed 1707: Create Client Role
seed 1707 create_client_role 201 location "/admin/realms/$REALM/clients/$CLIENT_ID/roles" api-user -- \
curl -X POST "$U/admin/realms/$REALM/clients/$(id_or_missing "$CLIENT_ID")/roles" \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "name": "api-user",
    "description": "API access for clients"
  }'

# seed 1717: To get the client ID
seed 1717 get_clients 200 find-client my-app "$CLIENT_ID" -- \
curl -H "Authorization: Bearer $TOKEN" \
  "$U/admin/realms/$REALM/clients"

# ---------------------------------------------------------------- Adding Identity Providers via REST API
# seed 1886: Get Access Token
seed 1886 token_admin_cli 200 token -- \
curl -X POST "$U/realms/master/protocol/openid-connect/token" \
  -H "Content-Type: application/x-www-form-urlencoded" \
  -d "username=$ADMIN_USERNAME" \
  -d "password=$ADMIN_PASSWORD" \
  -d "grant_type=password" \
  -d "client_id=admin-cli"
take_token

# seed 1897: Add OIDC Identity Provider
seed 1897 create_identity_provider 201 location "/admin/realms/$REALM/identity-provider/instances" google -- \
curl -X POST "$U/admin/realms/$REALM/identity-provider/instances" \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "alias": "google",
    "providerId": "google",
    "enabled": true,
    "trustEmail": true,
    "storeToken": false,
    "addReadTokenRoleOnCreate": false,
    "firstBrokerLoginFlowAlias": "first broker login",
    "config": {
      "clientId": "GOOGLE_CLIENT_ID",
      "clientSecret": "GOOGLE_CLIENT_SECRET"
    }
  }'

# ---------------------------------------------------------------- Enabling 2FA via REST API
# seed 2062: Get Admin Access Token
seed 2062 token_admin_cli 200 token -- \
curl -X POST "$U/realms/master/protocol/openid-connect/token" \
  -H "Content-Type: application/x-www-form-urlencoded" \
  -d "username=$ADMIN_USERNAME" \
  -d "password=$ADMIN_PASSWORD" \
  -d "grant_type=password" \
  -d "client_id=admin-cli"
take_token

# seed 2071: Assign "Configure OTP" Required Action to a User
seed 2071 update_user_required_actions 204 none -- \
curl -X PUT "$U/admin/realms/$REALM/users/$(id_or_missing "$USER_ID")" \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d '{"requiredActions": ["CONFIGURE_TOTP"]}'

# seed 2078: To get the user ID
seed 2078 get_user_by_username 200 find-user johndoe "$USER_ID" required-totp -- \
curl -H "Authorization: Bearer $TOKEN" \
  "$U/admin/realms/$REALM/users?username=johndoe"

# ---------------------------------------------------------------- Resetting Password via REST API
# seed 2194: Get Admin Access Token
seed 2194 token_admin_cli 200 token -- \
curl -X POST "$U/realms/master/protocol/openid-connect/token" \
  -H "Content-Type: application/x-www-form-urlencoded" \
  -d "username=$ADMIN_USERNAME" \
  -d "password=$ADMIN_PASSWORD" \
  -d "grant_type=password" \
  -d "client_id=admin-cli"
take_token

# seed 2203: Set New Password for a User
seed 2203 reset_password 204 none -- \
curl -X PUT "$U/admin/realms/$REALM/users/$(id_or_missing "$USER_ID")/reset-password" \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "type": "password",
    "value": "SecurePassword123!",
    "temporary": false
  }'

# seed 2214: To get <user-id>
seed 2214 get_user_by_username 200 find-user johndoe "$USER_ID" required-totp -- \
curl -H "Authorization: Bearer $TOKEN" \
  "$U/admin/realms/$REALM/users?username=johndoe"

# ---------------------------------------------------------------- cleanup (not a seed command)
CLEANUP_STATUS=skipped
if [ "${KEEP_REALM:-}" != 1 ]; then
  CLEANUP_STATUS=$(curl "${CURL_OPTS[@]}" -o "$WORK/cleanup.body" -w '%{http_code}' -X DELETE \
    -H "Authorization: Bearer $TOKEN" "$U/admin/realms/$REALM" 2>/dev/null)
  echo "seed_admin_curl: cleanup DELETE /admin/realms/$REALM: HTTP $CLEANUP_STATUS" >&2
fi

python3 - "$STEPS" "$REALM" "$CLEANUP_STATUS" <<'PY'
import json, sys
steps_file, realm, cleanup = sys.argv[1:4]
steps = {}
for line in open(steps_file):
    steps.update(json.loads(line))
failed = [k for k, v in steps.items() if not v['ok']]
cleanup_ok = cleanup in ('204', 'skipped')
out = {'steps': steps, 'realm': realm,
       'cleanup': {'request': f'DELETE /admin/realms/{realm}', 'status': cleanup, 'ok': cleanup_ok},
       'failed': failed, 'ok': not failed and cleanup_ok and len(steps) == 20}
print(json.dumps(out))
sys.exit(0 if out['ok'] else 1)
PY
