#!/usr/bin/env node
// End-to-end OIDC flow against a Keycloak-compatible realm, driven by the real openid-client
// (v6, panva) library. The browser's part (login form, cookies, redirects) is done here by hand
// with fetch + a small RFC 6265 cookie jar, without a browser.
//
// Environment:
//   ISSUER                  realm issuer, e.g. http://127.0.0.1:PORT/realms/test (no trailing slash)
//   CLIENT_ID, CLIENT_SECRET confidential client with the standard (code) flow enabled
//   REDIRECT_URI            a redirect URI registered on that client (nothing needs to listen on it)
//   USERNAME, PASSWORD      a user of the realm
//   SERVICE_CLIENT_ID, SERVICE_CLIENT_SECRET   optional: client with service accounts enabled
//   POST_LOGOUT_REDIRECT_URI optional, defaults to REDIRECT_URI
//   SCOPE                   optional, defaults to "openid profile email"
//   CLIENT_AUTH             optional: client_secret_basic (default) or client_secret_post
//   INSECURE_TLS=1          accept self-signed certificates (sets NODE_TLS_REJECT_UNAUTHORIZED=0)
//   HTTP_TIMEOUT_MS         optional per-request timeout for the browser part (default 30000)
//
// Output: one JSON object on stdout, {"steps": {...}, "ok": true|false, ...}. Exit 0 on success,
// 1 on any failure (the failing step, the error and the browser's request log are in the JSON).

if (process.env.INSECURE_TLS === '1') {
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'
}

const out = { steps: {}, ok: false }
const httpLog = []
let currentStep = 'init'

function fail (message, detail) {
  const err = new Error(message)
  if (detail !== undefined) err.detail = detail
  throw err
}

function assert (cond, message, detail) {
  if (!cond) fail(message, detail)
}

function env (name, { required = true, def } = {}) {
  const v = process.env[name]
  if (v === undefined || v === '') {
    if (required && def === undefined) fail(`missing required environment variable ${name}`)
    return def
  }
  return v
}

async function step (name, fn) {
  currentStep = name
  const rec = {}
  out.steps[name] = rec
  try {
    const value = await fn(rec)
    rec.ok = true
    return value
  } catch (err) {
    rec.ok = false
    rec.error = describeError(err)
    throw err
  }
}

function describeError (err) {
  if (!err || typeof err !== 'object') return { message: String(err) }
  const d = { name: err.name, message: err.message }
  if (err.code) d.code = err.code
  if (err.error) d.error = err.error // oauth ResponseBodyError
  if (err.error_description) d.error_description = err.error_description
  if (err.status) d.status = err.status
  if (err.detail !== undefined) d.detail = err.detail
  const cause = err.cause
  if (cause !== undefined) {
    if (cause instanceof Response) {
      d.cause = { status: cause.status, url: cause.url, content_type: cause.headers.get('content-type') }
    } else if (cause instanceof URLSearchParams) {
      d.cause = Object.fromEntries(cause.entries())
    } else if (cause instanceof Error) {
      d.cause = { name: cause.name, message: cause.message, code: cause.code }
    } else {
      try {
        d.cause = JSON.parse(JSON.stringify(cause, (k, v) => (v instanceof Response ? { status: v.status, url: v.url } : v)))
      } catch {
        d.cause = String(cause)
      }
    }
  }
  return d
}

// --------------------------------------------------------------------------------------------
// Cookie jar (RFC 6265 subset: Domain, Path, Max-Age, Expires, Secure; host-only cookies).
// Secure cookies are sent over http only to loopback hosts, as browsers do for localhost.

function isLoopback (host) {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\./.test(host)
}

function defaultPath (pathname) {
  if (!pathname.startsWith('/')) return '/'
  const i = pathname.lastIndexOf('/')
  return i <= 0 ? '/' : pathname.slice(0, i)
}

function pathMatches (requestPath, cookiePath) {
  if (requestPath === cookiePath) return true
  if (requestPath.startsWith(cookiePath)) {
    return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/'
  }
  return false
}

class CookieJar {
  constructor () {
    this.cookies = []
  }

  store (url, setCookieHeaders) {
    for (const h of setCookieHeaders) this.#parse(url, h)
  }

  #parse (url, header) {
    const [nameValue, ...attrs] = header.split(';')
    const eq = nameValue.indexOf('=')
    if (eq < 0) return
    const name = nameValue.slice(0, eq).trim()
    const value = nameValue.slice(eq + 1).trim()
    if (!name) return
    let domain = null
    let path = null
    let secure = false
    let httpOnly = false
    let expires = null
    let maxAge = null
    let sameSite = null
    for (const a of attrs) {
      const i = a.indexOf('=')
      const k = (i < 0 ? a : a.slice(0, i)).trim().toLowerCase()
      const v = i < 0 ? '' : a.slice(i + 1).trim()
      if (k === 'domain' && v) domain = v.replace(/^\./, '').toLowerCase()
      else if (k === 'path') path = v.startsWith('/') ? v : null
      else if (k === 'secure') secure = true
      else if (k === 'httponly') httpOnly = true
      else if (k === 'expires') {
        const t = Date.parse(v)
        if (!Number.isNaN(t)) expires = t
      } else if (k === 'max-age') {
        if (/^-?\d+$/.test(v)) maxAge = parseInt(v, 10)
      } else if (k === 'samesite') sameSite = v
    }
    const host = url.hostname.toLowerCase()
    let hostOnly = true
    if (domain) {
      if (!(host === domain || host.endsWith('.' + domain))) return // not allowed to set it
      hostOnly = false
    } else {
      domain = host
    }
    if (!path) path = defaultPath(url.pathname)
    let exp = null
    if (maxAge !== null) exp = maxAge <= 0 ? 0 : Date.now() + maxAge * 1000
    else if (expires !== null) exp = expires
    this.cookies = this.cookies.filter((c) => !(c.name === name && c.domain === domain && c.path === path))
    if (exp !== null && exp <= Date.now()) return // a deletion
    this.cookies.push({ name, value, domain, hostOnly, path, secure, httpOnly, expires: exp, sameSite })
  }

  header (url) {
    const now = Date.now()
    const host = url.hostname.toLowerCase()
    this.cookies = this.cookies.filter((c) => c.expires === null || c.expires > now)
    const list = this.cookies.filter((c) =>
      (c.hostOnly ? host === c.domain : host === c.domain || host.endsWith('.' + c.domain)) &&
      pathMatches(url.pathname || '/', c.path) &&
      (!c.secure || url.protocol === 'https:' || isLoopback(host)))
    list.sort((a, b) => b.path.length - a.path.length)
    return list.map((c) => `${c.name}=${c.value}`).join('; ')
  }

  summary () {
    return this.cookies.map((c) => ({ name: c.name, path: c.path, domain: c.domain, secure: c.secure, httpOnly: c.httpOnly, sameSite: c.sameSite }))
  }
}

// --------------------------------------------------------------------------------------------
// Minimal HTML form handling.

function decodeEntities (s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos|nbsp);/gi, (m, e) => {
    const l = e.toLowerCase()
    if (l === 'amp') return '&'
    if (l === 'lt') return '<'
    if (l === 'gt') return '>'
    if (l === 'quot') return '"'
    if (l === 'apos') return "'"
    if (l === 'nbsp') return '\u00a0'
    const code = l.startsWith('#x') ? parseInt(l.slice(2), 16) : parseInt(l.slice(1), 10)
    return Number.isFinite(code) ? String.fromCodePoint(code) : m
  })
}

// A tag with quoted attribute values that may contain '>'.
const TAG = (name) => new RegExp(`<${name}\\b(?:[^>"']|"[^"]*"|'[^']*')*>`, 'gi')

function parseAttrs (tag) {
  const attrs = {}
  const body = tag.replace(/^<[a-zA-Z0-9]+/, '').replace(/\/?>$/, '')
  const re = /([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g
  let m
  while ((m = re.exec(body)) !== null) {
    const name = m[1].toLowerCase()
    if (name in attrs) continue
    const raw = m[2] ?? m[3] ?? m[4]
    attrs[name] = raw === undefined ? '' : decodeEntities(raw)
  }
  return attrs
}

function findForm (html, id) {
  const re = TAG('form')
  let m
  while ((m = re.exec(html)) !== null) {
    const attrs = parseAttrs(m[0])
    if (attrs.id !== id) continue
    const start = m.index + m[0].length
    const endIdx = html.slice(start).search(/<\/form\s*>/i)
    const inner = endIdx < 0 ? html.slice(start) : html.slice(start, start + endIdx)
    const controls = []
    const ctlRe = /<(input|button)\b(?:[^>"']|"[^"]*"|'[^']*')*>/gi
    let c
    while ((c = ctlRe.exec(inner)) !== null) {
      const a = parseAttrs(c[0])
      a.__tag = c[1].toLowerCase()
      controls.push(a)
    }
    const taRe = /<textarea\b((?:[^>"']|"[^"]*"|'[^']*')*)>([\s\S]*?)<\/textarea\s*>/gi
    while ((c = taRe.exec(inner)) !== null) {
      const a = parseAttrs(`<textarea${c[1]}>`)
      a.__tag = 'textarea'
      a.value = decodeEntities(c[2])
      controls.push(a)
    }
    return { attrs, controls }
  }
  return null
}

// What a browser submits when the user fills `overrides` and clicks the first submit button.
function formFields (form, overrides) {
  const fields = []
  let clicked = false
  for (const a of form.controls) {
    const name = a.name
    if (!name || 'disabled' in a) continue
    const type = (a.type || (a.__tag === 'button' ? 'submit' : 'text')).toLowerCase()
    if (a.__tag === 'button' || type === 'submit' || type === 'image' || type === 'reset' || type === 'button') {
      if (!clicked && (type === 'submit') && !(name in overrides)) {
        fields.push([name, a.value ?? ''])
        clicked = true
      }
      continue
    }
    if ((type === 'checkbox' || type === 'radio') && !('checked' in a)) continue
    if (type === 'file') continue
    const v = type === 'checkbox' || type === 'radio' ? (a.value ?? 'on') : (a.value ?? '')
    fields.push([name, v])
  }
  for (const [k, v] of Object.entries(overrides)) {
    const i = fields.findIndex(([n]) => n === k)
    if (i >= 0) fields[i] = [k, v]
    else fields.push([k, v])
  }
  return fields
}

function pageError (html) {
  const pick = [
    /id="input-error[^"]*"[^>]*>([\s\S]*?)<\/span>/i,
    /class="[^"]*kc-feedback-text[^"]*"[^>]*>([\s\S]*?)<\/span>/i,
    /id="kc-error-message"[^>]*>([\s\S]*?)<\/div>/i,
    /<title>([\s\S]*?)<\/title>/i
  ]
  for (const re of pick) {
    const m = html.match(re)
    if (m) return decodeEntities(m[1].replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim()
  }
  return html.slice(0, 300)
}

// --------------------------------------------------------------------------------------------
// The browser: requests with the cookie jar, manual redirects, stop at a given URL prefix.

const TIMEOUT_MS = parseInt(process.env.HTTP_TIMEOUT_MS || '30000', 10)

function redactUrl (u) {
  const url = new URL(u)
  for (const k of ['code', 'id_token_hint', 'session_code', 'execution', 'tab_id', 'client_data']) {
    if (url.searchParams.has(k)) url.searchParams.set(k, '…')
  }
  return url.href
}

async function browserRequest (jar, method, url, body) {
  const headers = {
    'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) portcullis-e2e openid_client_flow',
    accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'
  }
  const cookie = jar.header(url)
  if (cookie) headers.cookie = cookie
  if (body !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    headers.origin = url.origin
  }
  const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) })
  jar.store(url, res.headers.getSetCookie())
  const text = await res.text()
  httpLog.push({
    step: currentStep,
    method,
    url: redactUrl(url),
    status: res.status,
    location: res.headers.get('location') ? redactUrl(new URL(res.headers.get('location'), url)) : undefined,
    set_cookie: res.headers.getSetCookie().map((c) => c.split('=')[0])
  })
  return { status: res.status, headers: res.headers, text, url }
}

function startsWithUrl (url, prefix) {
  const s = url.href
  if (!s.startsWith(prefix)) return false
  const rest = s.slice(prefix.length)
  return rest === '' || rest[0] === '?' || rest[0] === '#' || prefix.endsWith('/') || prefix.endsWith('?')
}

// Follows redirects until a Location starts with `stopPrefix` (returned without fetching it)
// or a non-redirect response arrives.
async function navigate (jar, method, url, body, stopPrefix) {
  let current = url instanceof URL ? url : new URL(url)
  let m = method
  let b = body
  if (startsWithUrl(current, stopPrefix)) return { kind: 'stop', url: current, hops: 0 }
  for (let hop = 1; hop <= 25; hop++) {
    const r = await browserRequest(jar, m, current, b)
    if ([301, 302, 303, 307, 308].includes(r.status)) {
      const loc = r.headers.get('location')
      assert(loc, `HTTP ${r.status} without a Location header from ${current.origin}${current.pathname}`)
      const next = new URL(loc, current)
      if (startsWithUrl(next, stopPrefix)) return { kind: 'stop', url: next, hops: hop }
      if (r.status !== 307 && r.status !== 308) {
        m = 'GET'
        b = undefined
      }
      current = next
      continue
    }
    return { kind: 'page', url: current, status: r.status, html: r.text, contentType: r.headers.get('content-type'), hops: hop }
  }
  fail(`more than 25 redirects starting at ${url}`)
}

async function submitForm (jar, page, form, overrides, stopPrefix) {
  const method = (form.attrs.method || 'GET').toUpperCase()
  const action = new URL(form.attrs.action ? form.attrs.action : page.url.href, page.url)
  const fields = formFields(form, overrides)
  const encoded = new URLSearchParams(fields).toString()
  let res
  if (method === 'POST') {
    res = await navigate(jar, 'POST', action, encoded, stopPrefix)
  } else {
    action.search = encoded
    res = await navigate(jar, 'GET', action, undefined, stopPrefix)
  }
  return { res, fieldNames: fields.map(([n]) => n), action: `${action.origin}${action.pathname}`, method }
}

// Drives the authorization request in the "browser" until the redirect to REDIRECT_URI.
// Returns the callback URL and what happened on the way.
async function browserLogin (jar, authUrl, redirectUri, username, password) {
  const first = await navigate(jar, 'GET', authUrl, undefined, redirectUri)
  if (first.kind === 'stop') return { callbackUrl: first.url, loginFormShown: false, hops: first.hops }
  assert(first.status === 200, `authorization endpoint answered HTTP ${first.status} instead of the login page`, { page: pageError(first.html) })
  assert((first.contentType || '').includes('text/html'), `login page content-type is ${first.contentType}, expected text/html`)
  const form = findForm(first.html, 'kc-form-login')
  assert(form, 'the login page has no <form id="kc-form-login">', { page: pageError(first.html) })
  const submitted = await submitForm(jar, first, form, { username, password }, redirectUri)
  const res = submitted.res
  if (res.kind !== 'stop') {
    fail(`login form POST did not end in a redirect to REDIRECT_URI (final HTTP ${res.status} at ${res.url.pathname})`, { page: pageError(res.html) })
  }
  return {
    callbackUrl: res.url,
    loginFormShown: true,
    loginPage: `${first.url.origin}${first.url.pathname}`,
    formAction: submitted.action,
    formMethod: submitted.method,
    formFields: submitted.fieldNames,
    hops: first.hops + res.hops
  }
}

// --------------------------------------------------------------------------------------------
// JWT helpers (signature verification of access tokens with the realm's JWKS via node:crypto).

function b64uJson (part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
}

function decodeJwt (jwt) {
  const parts = jwt.split('.')
  assert(parts.length === 3, 'token is not a compact JWS (3 parts)')
  return { header: b64uJson(parts[0]), payload: b64uJson(parts[1]), parts }
}

let jwksCache = null
async function getJwks (config, force = false) {
  if (jwksCache && !force) return jwksCache
  const uri = config.serverMetadata().jwks_uri
  const res = await fetch(uri, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(TIMEOUT_MS) })
  assert(res.status === 200, `GET jwks_uri answered HTTP ${res.status}`)
  const body = await res.json()
  assert(Array.isArray(body.keys), 'JWKS has no "keys" array')
  jwksCache = body
  return body
}

async function verifyJwt (config, jwt) {
  const crypto = await import('node:crypto')
  const { header, payload, parts } = decodeJwt(jwt)
  let jwks = await getJwks(config)
  const pick = (set) => set.keys.filter((k) => (header.kid === undefined || k.kid === header.kid) && (k.use === undefined || k.use === 'sig'))
  let candidates = pick(jwks)
  if (candidates.length === 0) {
    jwks = await getJwks(config, true)
    candidates = pick(jwks)
  }
  assert(candidates.length > 0, `no JWKS key matches kid=${header.kid}`)
  const jwk = candidates[0]
  const keyInput = {}
  for (const k of ['kty', 'n', 'e', 'crv', 'x', 'y']) if (jwk[k] !== undefined) keyInput[k] = jwk[k]
  const key = crypto.createPublicKey({ key: keyInput, format: 'jwk' })
  const data = Buffer.from(`${parts[0]}.${parts[1]}`)
  const sig = Buffer.from(parts[2], 'base64url')
  const alg = header.alg
  let ok
  if (/^RS(256|384|512)$/.test(alg)) ok = crypto.verify(`sha${alg.slice(2)}`, data, key, sig)
  else if (/^PS(256|384|512)$/.test(alg)) {
    ok = crypto.verify(`sha${alg.slice(2)}`, data, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: parseInt(alg.slice(2), 10) / 8 }, sig)
  } else if (/^ES(256|384|512)$/.test(alg)) ok = crypto.verify(`sha${alg.slice(2)}`, data, { key, dsaEncoding: 'ieee-p1363' }, sig)
  else if (alg === 'EdDSA' || alg === 'Ed25519') ok = crypto.verify(null, data, key, sig)
  else fail(`unsupported JWS alg ${alg}`)
  assert(ok, `signature of the ${payload.typ || 'JWT'} token does not verify with JWKS key kid=${jwk.kid}`)
  const now = Math.floor(Date.now() / 1000)
  if (typeof payload.exp === 'number') assert(payload.exp > now - 30, 'token already expired', { exp: payload.exp, now })
  return { header, payload }
}

function pick (obj, keys) {
  const r = {}
  for (const k of keys) if (obj && obj[k] !== undefined) r[k] = obj[k]
  return r
}

// --------------------------------------------------------------------------------------------

async function main () {
  const client = await import('openid-client')

  const issuer = env('ISSUER').replace(/\/+$/, '')
  const clientId = env('CLIENT_ID')
  const clientSecret = env('CLIENT_SECRET')
  const redirectUri = new URL(env('REDIRECT_URI')).href
  const username = env('USERNAME')
  const password = env('PASSWORD')
  const serviceClientId = env('SERVICE_CLIENT_ID', { required: false })
  const serviceClientSecret = env('SERVICE_CLIENT_SECRET', { required: false })
  const postLogoutRedirectUri = new URL(env('POST_LOGOUT_REDIRECT_URI', { def: redirectUri })).href
  const scope = env('SCOPE', { def: 'openid profile email' })
  const clientAuthName = env('CLIENT_AUTH', { def: 'client_secret_basic' })

  const issuerUrl = new URL(issuer)
  const execute = issuerUrl.protocol === 'http:' ? [client.allowInsecureRequests] : []
  const authFor = (secret) => {
    if (clientAuthName === 'client_secret_post') return client.ClientSecretPost(secret)
    if (clientAuthName === 'client_secret_basic') return client.ClientSecretBasic(secret)
    fail(`CLIENT_AUTH must be client_secret_basic or client_secret_post, not ${clientAuthName}`)
  }
  out.config = { issuer, client_id: clientId, redirect_uri: redirectUri, scope, client_auth: clientAuthName, openid_client: 'v6' }

  const jar = new CookieJar()

  // a. discovery
  const config = await step('discovery', async (rec) => {
    const cfg = await client.discovery(issuerUrl, clientId, { client_secret: clientSecret }, authFor(clientSecret), { execute })
    // openid-client v6 verifies ID token signatures only with non-repudiation checks enabled.
    client.enableNonRepudiationChecks(cfg)
    const md = cfg.serverMetadata()
    rec.issuer = md.issuer
    const base = `${issuer}/protocol/openid-connect`
    const expected = {
      authorization_endpoint: `${base}/auth`,
      token_endpoint: `${base}/token`,
      userinfo_endpoint: `${base}/userinfo`,
      end_session_endpoint: `${base}/logout`,
      jwks_uri: `${base}/certs`,
      introspection_endpoint: `${base}/token/introspect`,
      revocation_endpoint: `${base}/revoke`
    }
    rec.endpoints = {}
    for (const [k, v] of Object.entries(expected)) {
      rec.endpoints[k] = md[k]
      assert(md[k] === v, `discovery ${k} is ${JSON.stringify(md[k])}, expected ${v} (Keycloak layout)`)
    }
    rec.code_challenge_methods_supported = md.code_challenge_methods_supported
    rec.supports_pkce_s256 = cfg.serverMetadata().supportsPKCE('S256')
    rec.authorization_response_iss_parameter_supported = md.authorization_response_iss_parameter_supported
    rec.id_token_signing_alg_values_supported = md.id_token_signing_alg_values_supported
    assert(rec.supports_pkce_s256, 'code_challenge_methods_supported does not list S256')
    return cfg
  })

  const newAuthRequest = async () => {
    const codeVerifier = client.randomPKCECodeVerifier()
    const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier)
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope,
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
      state,
      nonce
    })
    return { url, codeVerifier, state, nonce }
  }

  const exchange = (req, callbackUrl) => client.authorizationCodeGrant(config, callbackUrl, {
    pkceCodeVerifier: req.codeVerifier,
    expectedState: req.state,
    expectedNonce: req.nonce,
    idTokenExpected: true
  })

  // b. authorization code + PKCE S256 + state + nonce
  const tokens = await step('authorization_code', async (rec) => {
    const req = await newAuthRequest()
    rec.authorization_url = redactUrl(req.url)
    const login = await browserLogin(jar, req.url, redirectUri, username, password)
    assert(login.loginFormShown, 'the authorization endpoint redirected back without showing the login form (unexpected SSO session)')
    rec.login_page = login.loginPage
    rec.form_action = login.formAction
    rec.form_method = login.formMethod
    rec.form_fields = login.formFields
    rec.redirect_hops = login.hops
    rec.callback_params = [...login.callbackUrl.searchParams.keys()]
    rec.cookies = jar.summary()
    const t = await exchange(req, login.callbackUrl)
    const claims = t.claims()
    rec.token_type = t.token_type
    rec.expires_in = t.expires_in
    rec.scope = t.scope
    rec.has_refresh_token = typeof t.refresh_token === 'string'
    rec.id_token_claims = pick(claims, ['iss', 'sub', 'aud', 'azp', 'nonce', 'sid', 'preferred_username', 'email', 'auth_time', 'acr', 'typ', 'realm_access'])
    const at = await verifyJwt(config, t.access_token)
    rec.access_token_header = pick(at.header, ['alg', 'kid', 'typ'])
    rec.access_token_claims = pick(at.payload, ['iss', 'sub', 'aud', 'azp', 'typ', 'scope', 'sid', 'preferred_username', 'realm_access', 'resource_access', 'exp', 'iat'])
    rec.claims = {
      sub: claims.sub,
      preferred_username: claims.preferred_username ?? at.payload.preferred_username,
      realm_access: at.payload.realm_access ?? claims.realm_access,
      aud: claims.aud
    }
    assert(rec.has_refresh_token, 'token response has no refresh_token')
    assert(typeof claims.sub === 'string' && claims.sub.length > 0, 'ID token has no sub')
    assert(String(rec.claims.preferred_username).toLowerCase() === username.toLowerCase(),
      `preferred_username is ${JSON.stringify(rec.claims.preferred_username)}, expected ${username}`)
    assert(at.payload.sub === claims.sub, 'access token sub differs from ID token sub')
    return t
  })
  const sub = tokens.claims().sub

  // c. userinfo
  await step('userinfo', async (rec) => {
    const info = await client.fetchUserInfo(config, tokens.access_token, sub) // checks sub matches
    rec.claims = pick(info, ['sub', 'preferred_username', 'email', 'email_verified', 'name', 'given_name', 'family_name'])
    assert(String(info.preferred_username).toLowerCase() === username.toLowerCase(), 'userinfo preferred_username mismatch', rec.claims)
  })

  // d. refresh grant
  const refreshed = await step('refresh', async (rec) => {
    const r = await client.refreshTokenGrant(config, tokens.refresh_token)
    rec.has_refresh_token = typeof r.refresh_token === 'string'
    rec.has_id_token = typeof r.id_token === 'string'
    assert(rec.has_refresh_token, 'refresh response has no refresh_token')
    rec.refresh_token_rotated = r.refresh_token !== tokens.refresh_token
    assert(rec.refresh_token_rotated, 'refresh returned the same refresh token')
    rec.access_token_changed = r.access_token !== tokens.access_token
    assert(rec.access_token_changed, 'refresh returned the same access token')
    const at = await verifyJwt(config, r.access_token)
    assert(at.payload.sub === sub, 'refreshed access token has another sub')
    if (r.id_token) {
      rec.id_token_sub = r.claims().sub
      assert(rec.id_token_sub === sub, 'refreshed ID token has another sub')
    }
    return r
  })

  // e. introspection (client authenticates with its own credentials)
  await step('introspection', async (rec) => {
    const intro = await client.tokenIntrospection(config, refreshed.access_token)
    rec.response = pick(intro, ['active', 'sub', 'client_id', 'azp', 'username', 'token_type', 'scope', 'exp', 'iat', 'iss', 'aud', 'typ'])
    assert(intro.active === true, 'introspection says the access token is not active', rec.response)
    assert(intro.sub === undefined || intro.sub === sub, 'introspection sub mismatch', rec.response)
    const bogus = await client.tokenIntrospection(config, 'not-a-token')
    rec.invalid_token_response = bogus
    assert(bogus.active === false, 'introspection of garbage did not return active=false', bogus)
  })

  // f. client_credentials
  await step('client_credentials', async (rec) => {
    if (!serviceClientId) {
      rec.skipped = true
      return
    }
    assert(serviceClientSecret, 'SERVICE_CLIENT_ID is set but SERVICE_CLIENT_SECRET is not')
    const svc = await client.discovery(issuerUrl, serviceClientId, { client_secret: serviceClientSecret }, authFor(serviceClientSecret), { execute })
    const cc = await client.clientCredentialsGrant(svc)
    rec.token_type = cc.token_type
    rec.expires_in = cc.expires_in
    rec.has_refresh_token = typeof cc.refresh_token === 'string'
    const at = await verifyJwt(config, cc.access_token)
    rec.access_token_claims = pick(at.payload, ['iss', 'sub', 'azp', 'client_id', 'aud', 'typ', 'scope', 'preferred_username', 'realm_access'])
    const intro = await client.tokenIntrospection(svc, cc.access_token)
    rec.introspection_active = intro.active
    assert(intro.active === true, 'service token introspects as inactive')
  })

  // g. revocation of the refresh token, then refreshing with it must fail
  await step('revocation', async (rec) => {
    await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' })
    rec.revoked = true
    try {
      await client.refreshTokenGrant(config, refreshed.refresh_token)
    } catch (err) {
      rec.refresh_after_revoke_error = describeError(err)
      assert(err instanceof client.ResponseBodyError, 'refresh after revoke failed, but not with an OAuth error body', rec.refresh_after_revoke_error)
      assert(err.error === 'invalid_grant', `refresh after revoke failed with ${err.error}, expected invalid_grant`)
      return
    }
    fail('refresh with the revoked refresh token succeeded')
  })

  // h. RP-initiated logout with id_token_hint + post_logout_redirect_uri, then SSO must be gone
  await step('logout', async (rec) => {
    // Revoking a refresh token may end the SSO session (Keycloak removes the user session when its
    // last client session goes). Re-authenticate through the browser either way to get a fresh
    // ID token bound to the current SSO session.
    const req = await newAuthRequest()
    const login = await browserLogin(jar, req.url, redirectUri, username, password)
    rec.sso_session_survived_revocation = !login.loginFormShown
    const t = await exchange(req, login.callbackUrl)
    rec.sid = t.claims().sid

    const logoutState = client.randomState()
    const endSession = client.buildEndSessionUrl(config, {
      id_token_hint: t.id_token,
      post_logout_redirect_uri: postLogoutRedirectUri,
      state: logoutState
    })
    rec.end_session_url = redactUrl(endSession)
    let nav = await navigate(jar, 'GET', endSession, undefined, postLogoutRedirectUri)
    if (nav.kind === 'page') {
      const form = findForm(nav.html, 'kc-logout-form')
      assert(form, `logout answered HTTP ${nav.status} without redirecting to post_logout_redirect_uri and without a kc-logout-form`, { page: pageError(nav.html) })
      rec.confirmation_form = true
      const submitted = await submitForm(jar, nav, form, {}, postLogoutRedirectUri)
      rec.confirmation_fields = submitted.fieldNames
      nav = submitted.res
      assert(nav.kind === 'stop', `logout confirmation did not redirect to post_logout_redirect_uri (HTTP ${nav.status})`, nav.html ? { page: pageError(nav.html) } : undefined)
    } else {
      rec.confirmation_form = false
    }
    rec.post_logout_redirect = redactUrl(nav.url)
    assert(nav.url.searchParams.get('state') === logoutState, 'post-logout redirect does not carry back the state parameter', { url: nav.url.href })

    // The SSO session must be gone: the authorization endpoint shows the login form again.
    const again = await newAuthRequest()
    const after = await navigate(jar, 'GET', again.url, undefined, redirectUri)
    assert(after.kind === 'page', 'after logout the authorization endpoint still redirects back with a code (SSO session not ended)')
    assert(after.status === 200 && findForm(after.html, 'kc-form-login'), `after logout the authorization endpoint answered HTTP ${after.status} without the login form`, { page: pageError(after.html) })
    rec.login_form_shown_again = true

    // Tokens of the ended session must not refresh any more.
    try {
      await client.refreshTokenGrant(config, t.refresh_token)
      fail('refresh token of the logged-out session still works')
    } catch (err) {
      if (!(err instanceof client.ResponseBodyError)) throw err
      rec.refresh_after_logout_error = err.error
      assert(err.error === 'invalid_grant', `refresh after logout failed with ${err.error}, expected invalid_grant`)
    }
  })

  out.ok = true
}

try {
  await main()
} catch (err) {
  out.ok = false
  out.failed_step = currentStep
  out.error = describeError(err)
  out.http_log = httpLog
  process.stderr.write(`openid_client_flow: step ${currentStep} failed: ${err && err.stack ? err.stack : err}\n`)
}
process.stdout.write(JSON.stringify(out) + '\n')
process.exitCode = out.ok ? 0 : 1
