#!/usr/bin/env node
// Drives the seed guide's Node.js sample (express_sample.cjs: express + express-session +
// keycloak-connect, started here as a child process with `node`) through a real login, as a
// browser-less user with a cookie jar:
//   GET /            -> public page
//   GET /protected   -> keycloak.protect() redirects to {SERVER_URL}/realms/{REALM}/.../auth
//   login form POST  -> server redirects to /protected?auth_callback=1&code=...; the adapter
//                       exchanges the code (POST .../token), validates the tokens against the
//                       realm's JWKS and redirects to /protected
//   GET /protected   -> "You have accessed a protected route."
//   GET /logout      -> keycloak-connect's logout middleware -> server end-session -> back to /
//   GET /protected   -> login page again (the server session is gone)
//
// Environment:
//   SERVER_URL            e.g. http://127.0.0.1:18080 (the sample's AUTH_SERVER_URL)
//   REALM                 realm name
//   CLIENT_ID, CLIENT_SECRET   confidential client with redirect URI http://localhost:APP_PORT/*
//   USERNAME, PASSWORD    a user of the realm
//   APP_PORT              optional, port of the sample app (default 3000)
//   HTTP_TIMEOUT_MS       optional per-request timeout (default 15000)
//   TOTAL_TIMEOUT_MS      optional hard limit for the whole run (default 45000)
//
// Output: one JSON object on stdout, {"steps": {...}, "ok": true|false, ...}; on failure it also
// carries the request log and the sample app's own output (keycloak-connect logs the reason a
// code exchange / token validation failed there, e.g. "Could not obtain grant code: ...").
// Exit 0 only when every step passed.

import { spawn } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))

const out = { steps: {}, ok: false }
const httpLog = []
const appOutput = []
let currentStep = 'init'

function fail (message, detail) {
  const err = new Error(message)
  if (detail !== undefined) err.detail = detail
  throw err
}

function assert (cond, message, detail) {
  if (!cond) fail(message, detail)
}

function env (name, def) {
  const v = process.env[name]
  if (v === undefined || v === '') {
    if (def === undefined) fail(`missing required environment variable ${name}`)
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
    rec.error = { name: err?.name, message: String(err?.message ?? err) }
    if (err?.code) rec.error.code = err.code
    if (err?.detail !== undefined) rec.error.detail = err.detail
    if (err?.cause) rec.error.cause = String(err.cause?.message ?? err.cause)
    throw err
  }
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
// The browser: requests with the cookie jar, manual redirects.

const TIMEOUT_MS = parseInt(process.env.HTTP_TIMEOUT_MS || '15000', 10)

function redactUrl (u) {
  const url = new URL(u)
  for (const k of ['code', 'id_token_hint', 'session_code', 'execution', 'tab_id', 'client_data', 'state']) {
    if (url.searchParams.has(k)) url.searchParams.set(k, '…')
  }
  return url.href
}

async function browserRequest (jar, method, url, body) {
  const headers = {
    'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) portcullis-e2e express_keycloak_connect',
    accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'
  }
  const cookie = jar.header(url)
  if (cookie) headers.cookie = cookie
  if (body !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    headers.origin = url.origin
  }
  const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) })
    .catch((e) => fail(`${method} ${redactUrl(url)} failed: ${e.cause?.message ?? e.message}`))
  jar.store(url, res.headers.getSetCookie())
  const text = await res.text()
  const entry = {
    step: currentStep,
    method,
    url: redactUrl(url),
    status: res.status,
    location: res.headers.get('location') ? redactUrl(new URL(res.headers.get('location'), url)) : undefined,
    set_cookie: res.headers.getSetCookie().map((c) => c.split('=')[0])
  }
  if (res.status >= 400) entry.body = text.slice(0, 300)
  httpLog.push(entry)
  return { status: res.status, headers: res.headers, text, url }
}

// Follows redirects until a non-redirect response; returns it with the chain of URLs visited.
async function navigate (jar, method, url, body) {
  let current = url instanceof URL ? url : new URL(url)
  let m = method
  let b = body
  const chain = []
  for (let hop = 1; hop <= 25; hop++) {
    const r = await browserRequest(jar, m, current, b)
    chain.push({ method: m, url: current, status: r.status })
    if ([301, 302, 303, 307, 308].includes(r.status)) {
      const loc = r.headers.get('location')
      assert(loc, `HTTP ${r.status} without a Location header from ${m} ${current.origin}${current.pathname}`)
      const next = new URL(loc, current)
      if (r.status !== 307 && r.status !== 308) {
        m = 'GET'
        b = undefined
      }
      current = next
      continue
    }
    return { url: current, status: r.status, html: r.text, contentType: r.headers.get('content-type'), chain }
  }
  fail(`more than 25 redirects starting at ${url}`)
}

function chainSummary (chain) {
  return chain.map((c) => `${c.method} ${redactUrl(c.url)} -> ${c.status}`)
}

// --------------------------------------------------------------------------------------------
// The sample app as a child process.

let child = null

function portFree (port) {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.once('error', () => resolve(false))
    s.listen(port, () => s.close(() => resolve(true)))
  })
}

function startApp (port, envVars) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [path.join(here, 'express_sample.cjs')], {
      cwd: here,
      env: { ...process.env, ...envVars, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    child = proc
    let settled = false
    const timer = setTimeout(() => {
      if (!settled) { settled = true; reject(new Error(`sample app did not print "Server running at" within 10 s`)) }
    }, 10000)
    const onData = (stream) => (chunk) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue
        appOutput.push(`${stream}: ${line}`.slice(0, 2000))
        console.error(`[express_sample ${stream}] ${line}`)
        if (!settled && /Server running at/.test(line)) {
          settled = true
          clearTimeout(timer)
          resolve(proc)
        }
      }
    }
    proc.stdout.on('data', onData('stdout'))
    proc.stderr.on('data', onData('stderr'))
    proc.once('exit', (code, sig) => {
      appOutput.push(`exited code=${code} signal=${sig}`)
      if (child === proc) child = null
      if (!settled) { settled = true; clearTimeout(timer); reject(new Error(`sample app exited early (code ${code}, signal ${sig})`)) }
    })
  })
}

async function stopApp () {
  const proc = child
  if (!proc) return
  child = null
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise((resolve) => proc.once('exit', resolve))
  proc.kill('SIGTERM')
  const t = setTimeout(() => { try { proc.kill('SIGKILL') } catch {} }, 3000)
  await exited
  clearTimeout(t)
}

// --------------------------------------------------------------------------------------------

const PROTECTED_BODY = 'You have accessed a protected route.'
const PUBLIC_BODY = 'Welcome to the public route.'

async function main () {
  const totalTimeout = parseInt(env('TOTAL_TIMEOUT_MS', '45000'), 10)
  const hardStop = setTimeout(async () => {
    out.error = { message: `hard timeout: run exceeded ${totalTimeout} ms (during step ${currentStep})` }
    await stopApp().catch(() => {})
    finish(1)
  }, totalTimeout)
  hardStop.unref()

  const serverUrl = env('SERVER_URL').replace(/\/+$/, '')
  const realm = env('REALM')
  const clientId = env('CLIENT_ID')
  const clientSecret = env('CLIENT_SECRET')
  const username = env('USERNAME')
  const password = env('PASSWORD')
  const port = parseInt(env('APP_PORT', '3000'), 10)
  const app = `http://localhost:${port}`
  const realmBase = `${serverUrl}/realms/${realm}`
  out.app = app

  await step('start_app', async (rec) => {
    assert(await portFree(port), `port ${port} is already in use (APP_PORT must be free: the client's redirect URI is tied to it)`)
    await startApp(port, { REALM: realm, AUTH_SERVER_URL: serverUrl, CLIENT_ID: clientId, CLIENT_SECRET: clientSecret })
    rec.url = app
  })

  const jar = new CookieJar()

  await step('public_route', async (rec) => {
    const r = await navigate(jar, 'GET', new URL(app + '/'))
    rec.status = r.status
    assert(r.status === 200, `GET / answered HTTP ${r.status}`, { chain: chainSummary(r.chain) })
    assert(r.html === PUBLIC_BODY, `GET / body is ${JSON.stringify(r.html.slice(0, 200))}`)
  })

  const loginPage = await step('protected_redirects_to_login', async (rec) => {
    const r = await navigate(jar, 'GET', new URL(app + '/protected'))
    rec.chain = chainSummary(r.chain)
    const first = r.chain[0]
    assert(first.status === 302, `GET /protected answered HTTP ${first.status}, expected 302 to the login page`)
    const auth = r.chain[1]?.url
    assert(auth && auth.href.startsWith(`${realmBase}/protocol/openid-connect/auth?`), `GET /protected redirected to ${auth?.href}, expected ${realmBase}/protocol/openid-connect/auth`)
    rec.auth_request = Object.fromEntries([...auth.searchParams].filter(([k]) => k !== 'state'))
    assert(r.status === 200, `the authorization endpoint ended in HTTP ${r.status} at ${r.url.pathname} instead of the login page`, { page: pageError(r.html) })
    const form = findForm(r.html, 'kc-form-login')
    assert(form, 'the login page has no <form id="kc-form-login">', { page: pageError(r.html) })
    rec.login_page = `${r.url.origin}${r.url.pathname}`
    return { page: r, form }
  })

  await step('login_back_to_protected', async (rec) => {
    const { page, form } = loginPage
    const method = (form.attrs.method || 'GET').toUpperCase()
    assert(method === 'POST', `login form method is ${method}, expected POST`)
    const action = new URL(form.attrs.action || page.url.href, page.url)
    const fields = formFields(form, { username, password })
    rec.form_fields = fields.map(([n]) => n)
    const r = await navigate(jar, 'POST', action, new URLSearchParams(fields).toString())
    rec.chain = chainSummary(r.chain)
    // Expected: POST login -> 302 {app}/protected?auth_callback=1&state&session_state&code[&iss]
    //           -> 302 /protected (the adapter got a valid grant) -> 200 protected body.
    const cb = r.chain.find((c) => c.url.origin === new URL(app).origin && c.url.searchParams.has('auth_callback'))
    if (!cb) {
      fail(`the login POST never redirected back to ${app}/protected?auth_callback=1 (ended HTTP ${r.status} at ${r.url.href.split('?')[0]})`,
        { page: pageError(r.html) })
    }
    rec.callback_params = [...cb.url.searchParams.keys()]
    assert(cb.url.searchParams.has('code'), `callback has no code: ${redactUrl(cb.url)}`,
      { error: cb.url.searchParams.get('error'), error_description: cb.url.searchParams.get('error_description') })
    if (cb.status === 403) {
      // keycloak-connect's post-auth middleware answers 403 "Access denied" when the code
      // exchange or the validation of the returned tokens fails; the reason is on its stderr.
      fail('keycloak-connect rejected the callback (403 Access denied): code exchange or token validation failed',
        { app_output: appOutput.filter((l) => /grant|token|invalid|error|fail/i.test(l)).slice(-10) })
    }
    assert(cb.status === 302, `callback ${redactUrl(cb.url)} answered HTTP ${cb.status}, expected 302 to the clean URL`)
    assert(r.status === 200, `final response HTTP ${r.status} at ${r.url.pathname}`, { body: r.html.slice(0, 200) })
    // post-auth.js strips code/auth_callback/state/session_state from the callback URL but not
    // the RFC 9207 `iss` parameter, which Keycloak (like Portcullis) also sends: real Keycloak
    // lands on /protected?iss=... as well, so only the path is checked.
    assert(`${r.url.origin}${r.url.pathname}` === `${app}/protected`, `ended at ${redactUrl(r.url)}, expected ${app}/protected`)
    assert([...r.url.searchParams.keys()].every((k) => k === 'iss'), `clean URL still has callback parameters: ${redactUrl(r.url)}`)
    assert(r.html === PROTECTED_BODY, `protected body is ${JSON.stringify(r.html.slice(0, 200))}`)
    rec.body = r.html
  })

  await step('protected_again_from_session', async (rec) => {
    // The grant is now in the express session: no trip to the server, the adapter re-validates
    // the stored access token (signature with the cached JWKS, exp, iss).
    const r = await navigate(jar, 'GET', new URL(app + '/protected'))
    rec.chain = chainSummary(r.chain)
    assert(r.chain.length === 1 && r.status === 200, `second GET /protected did not answer 200 directly`)
    assert(r.html === PROTECTED_BODY, `protected body is ${JSON.stringify(r.html.slice(0, 200))}`)
  })

  await step('logout', async (rec) => {
    // keycloak-connect's logout middleware handles /logout before the sample's own route: it
    // redirects to {realm}/protocol/openid-connect/logout?id_token_hint&post_logout_redirect_uri={app}/
    const r = await navigate(jar, 'GET', new URL(app + '/logout'))
    rec.chain = chainSummary(r.chain)
    const second = r.chain[1]?.url
    assert(r.chain[0].status === 302 && second && second.href.startsWith(`${realmBase}/protocol/openid-connect/logout?`),
      `GET /logout did not redirect to the end-session endpoint`)
    assert(second.searchParams.has('id_token_hint') && second.searchParams.get('post_logout_redirect_uri') === `${app}/`,
      'adapter logout URL lacks id_token_hint / post_logout_redirect_uri')
    const logoutHop = r.chain[1]
    assert(logoutHop.status === 302, `GET ${realmBase}/protocol/openid-connect/logout?id_token_hint=…&post_logout_redirect_uri=${app}/ answered HTTP ${logoutHop.status}, expected 302 to ${app}/`,
      { page: r.chain.length === 2 ? pageError(r.html) : undefined })
    assert(r.url.href === `${app}/` && r.status === 200 && r.html === PUBLIC_BODY, `logout ended at ${redactUrl(r.url)} HTTP ${r.status}, expected ${app}/ with the public page`)
  })

  await step('protected_after_logout_needs_login', async (rec) => {
    const r = await navigate(jar, 'GET', new URL(app + '/protected'))
    rec.chain = chainSummary(r.chain)
    assert(r.chain[0].status === 302, `GET /protected after logout answered HTTP ${r.chain[0].status}, expected 302 to the login page`)
    assert(r.status === 200 && findForm(r.html, 'kc-form-login'),
      'after logout the server did not show the login form again (SSO session still alive?)', { ended_at: redactUrl(r.url), status: r.status })
  })

  out.ok = Object.values(out.steps).every((s) => s.ok)
}

function finish (code) {
  if (!out.ok) {
    out.http_log = httpLog
    out.app_output = appOutput.slice(-40)
  }
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(code)
}

main()
  .catch((err) => {
    if (!out.error) out.error = { step: currentStep, message: String(err?.message ?? err) }
    console.error('express_keycloak_connect:', err?.stack ?? err)
  })
  .finally(async () => {
    await stopApp().catch(() => {})
    finish(out.ok ? 0 : 1)
  })
