#!/usr/bin/env node
// End-to-end login of a single-page app through the real keycloak-js adapter (26.x), in a real
// headless Chromium driven by playwright-core.
//
// The script serves a tiny SPA with node's http module on http://localhost:APP_PORT that imports
// keycloak-js (the package's ESM export, lib/keycloak.js) and runs
//   new Keycloak({ url: SERVER_URL, realm: REALM, clientId: CLIENT_ID }).init({ onLoad: 'login-required' })
// with every other option left at its default (standard flow, response_mode=fragment, PKCE S256,
// checkLoginIframe on, so the 3p-cookies and login-status iframes are exercised too).
// Chromium opens the SPA, is sent to the login page, submits username/password, comes back,
// and the script checks keycloak.authenticated, tokenParsed.preferred_username and realm_access,
// then updateToken(-1) (forced refresh: a new access token) and loadUserInfo().
//
// Environment:
//   SERVER_URL           e.g. http://127.0.0.1:18080 (keycloak-js `url`)
//   REALM                realm name
//   CLIENT_ID            a PUBLIC client with redirect URI http://localhost:APP_PORT/* and
//                        web origin "+" (or http://localhost:APP_PORT)
//   USERNAME, PASSWORD   a user of the realm
//   APP_PORT             optional, port of the SPA on localhost (default 5173)
//   CHROMIUM             optional, browser binary (default /usr/bin/chromium)
//   TOTAL_TIMEOUT_MS     optional, hard limit for the whole run (default 30000)
//   HEADFUL=1            optional, show the browser (debugging)
//
// Output: one JSON object on stdout, {"steps": {...}, "ok": true|false, ...}; on failure it also
// carries the page's console errors, page errors, failed requests and HTTP >= 400 responses.
// Exit 0 only when every step passed.

import http from 'node:http'
import fs from 'node:fs/promises'
import path from 'node:path'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'


const out = { steps: {}, ok: false }
const consoleErrors = []
const consoleAll = []
const pageErrors = []
const failedRequests = []
const badResponses = []
const navigations = []

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
  const rec = {}
  out.steps[name] = rec
  const t0 = Date.now()
  try {
    const value = await fn(rec)
    rec.ok = true
    return value
  } catch (err) {
    rec.ok = false
    rec.error = { name: err?.name, message: String(err?.message ?? err).split('\n').slice(0, 12).join('\n') }
    if (err?.detail !== undefined) rec.error.detail = err.detail
    throw err
  } finally {
    rec.ms = Date.now() - t0
  }
}

function redactUrl (u) {
  try {
    const url = new URL(u)
    for (const k of ['code', 'session_code', 'execution', 'tab_id', 'client_data', 'id_token_hint', 'state', 'nonce', 'code_challenge']) {
      if (url.searchParams.has(k)) url.searchParams.set(k, '…')
    }
    if (url.hash) url.hash = url.hash.replace(/(code|state|session_state)=[^&]*/g, '$1=…')
    return url.href
  } catch {
    return String(u)
  }
}

// --------------------------------------------------------------------------------------------
// The SPA.

function keycloakJsFile () {
  // What the package exports for `import Keycloak from 'keycloak-js'` (lib/keycloak.js in 26.x,
  // an ES module without imports of its own), resolved the way node resolves it.
  const file = fileURLToPath(import.meta.resolve('keycloak-js'))
  let dir = path.dirname(file)
  let version
  for (let i = 0; i < 4 && !version; i++, dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'))
      if (pkg.name === 'keycloak-js') version = pkg.version
    } catch {}
  }
  return { file, version }
}

function spaHtml (cfg) {
  return `<!doctype html>
<html>
<head><meta charset="utf-8"><title>keycloak-js test SPA</title></head>
<body>
<pre id="status">loading</pre>
<script type="module">
import Keycloak from '/keycloak.js'
const cfg = ${JSON.stringify(cfg).replace(/</g, '\\u003c')}
const keycloak = new Keycloak({ url: cfg.url, realm: cfg.realm, clientId: cfg.clientId })
window.keycloak = keycloak
window.__events = []
window.__iframeMessages = []
window.addEventListener('message', (e) => {
  if (e.origin === new URL(cfg.url).origin) window.__iframeMessages.push(typeof e.data === 'string' ? e.data : JSON.stringify(e.data))
})
for (const ev of ['onReady', 'onAuthSuccess', 'onAuthError', 'onAuthRefreshSuccess', 'onAuthRefreshError', 'onAuthLogout', 'onTokenExpired']) {
  keycloak[ev] = (arg) => { window.__events.push({ ev, arg: arg === undefined ? null : (typeof arg === 'object' ? JSON.stringify(arg) : String(arg)), at: Date.now() }) }
}
try {
  const authenticated = await keycloak.init({ onLoad: 'login-required' })
  window.__initResult = { ok: true, authenticated }
  document.getElementById('status').textContent = 'authenticated=' + authenticated
} catch (e) {
  window.__initResult = { ok: false, error: (e && (e.message || e.error)) ? String(e.message || e.error) : JSON.stringify(e) }
  document.getElementById('status').textContent = 'init failed: ' + window.__initResult.error
}
</script>
</body>
</html>
`
}

function startSpa (port, cfg, kcjs) {
  const requests = []
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, `http://localhost:${port}`)
    requests.push(`${req.method} ${url.pathname}`)
    try {
      if (req.method === 'GET' && (url.pathname === '/keycloak.js' || url.pathname === '/keycloak.mjs')) {
        const body = await fs.readFile(kcjs)
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' })
        res.end(body)
        return
      }
      if (req.method === 'GET' && url.pathname === '/favicon.ico') {
        res.writeHead(204)
        res.end()
        return
      }
      if (req.method === 'GET') {
        // Any other path is the SPA (history fallback), like a dev server.
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
        res.end(spaHtml(cfg))
        return
      }
      res.writeHead(405)
      res.end()
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.end(String(e))
    }
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve({ server, requests }))
  })
}

// --------------------------------------------------------------------------------------------

let browser = null
let spa = null

async function cleanup () {
  if (browser) {
    const b = browser
    browser = null
    await Promise.race([b.close().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5000))])
  }
  if (spa) {
    const s = spa.server
    spa = null
    s.closeAllConnections?.()
    await new Promise((resolve) => s.close(() => resolve()))
  }
}

function finish (code) {
  if (!out.ok) {
    out.console_errors = consoleErrors.slice(0, 40)
    out.page_errors = pageErrors.slice(0, 20)
    out.failed_requests = failedRequests.slice(0, 40)
    out.http_errors = badResponses.slice(0, 40)
    out.navigations = navigations.slice(0, 40)
    if (!consoleErrors.length) out.console = consoleAll.slice(-30)
  }
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(code)
}

async function main () {
  const totalTimeout = parseInt(env('TOTAL_TIMEOUT_MS', '30000'), 10)
  const hardStop = setTimeout(async () => {
    out.error = { message: `hard timeout: run exceeded ${totalTimeout} ms` }
    console.error(`keycloak_js_flow: hard timeout after ${totalTimeout} ms`)
    await cleanup().catch(() => {})
    finish(1)
  }, totalTimeout)
  hardStop.unref()

  const serverUrl = env('SERVER_URL').replace(/\/+$/, '')
  const realm = env('REALM')
  const clientId = env('CLIENT_ID')
  const username = env('USERNAME')
  const password = env('PASSWORD')
  const appPort = parseInt(env('APP_PORT', '5173'), 10)
  const chromiumPath = env('CHROMIUM', '/usr/bin/chromium')
  const appOrigin = `http://localhost:${appPort}`
  const stepTimeout = Math.max(5000, Math.min(15000, totalTimeout - 5000))

  const { file: kcjs, version } = keycloakJsFile()
  out.keycloak_js = version
  out.app = appOrigin

  spa = await step('start_spa', async (rec) => {
    const s = await startSpa(appPort, { url: serverUrl, realm, clientId }, kcjs)
    rec.url = appOrigin
    return s
  })

  const { chromium } = await import('playwright-core')
  browser = await step('launch_browser', async (rec) => {
    const b = await chromium.launch({
      executablePath: chromiumPath,
      headless: process.env.HEADFUL !== '1',
      timeout: 15000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'].filter((a) => a !== '--headless' || process.env.HEADFUL !== '1')
    })
    rec.version = b.version()
    return b
  })

  const context = await browser.newContext()
  const page = await context.newPage()
  page.setDefaultTimeout(stepTimeout)
  page.setDefaultNavigationTimeout(stepTimeout)
  const frameName = (f) => (f === page.mainFrame() ? 'main' : `iframe ${redactUrl(f.url())}`)
  page.on('console', (msg) => {
    const loc = msg.location()
    const e = { type: msg.type(), text: msg.text().slice(0, 500), url: loc?.url ? redactUrl(loc.url) : undefined }
    consoleAll.push(e)
    if (msg.type() === 'error') consoleErrors.push(e)
  })
  page.on('pageerror', (err) => pageErrors.push({ message: String(err?.message ?? err).slice(0, 500) }))
  page.on('requestfailed', (req) => {
    const f = { method: req.method(), url: redactUrl(req.url()), error: req.failure()?.errorText }
    // keycloak-js removes its hidden 3p-cookies iframes as soon as they post their answer, which
    // aborts whatever they were still loading: expected, not a failure.
    const subframe = req.frame() !== page.mainFrame() || req.resourceType() !== 'document'
    f.benign = subframe && /ERR_ABORTED/.test(f.error ?? '') && /\/3p-cookies\//.test(req.url())
    failedRequests.push(f)
  })
  page.on('response', (res) => {
    if (res.status() >= 400) badResponses.push({ method: res.request().method(), url: redactUrl(res.url()), status: res.status() })
  })
  page.on('framenavigated', (f) => navigations.push(`${frameName(f)} -> ${redactUrl(f.url())}`))

  const loginUrl = await step('open_spa_redirected_to_login', async (rec) => {
    await page.goto(appOrigin + '/', { waitUntil: 'commit' })
    await page.waitForURL((u) => u.href.startsWith(`${serverUrl}/realms/${realm}/`), { waitUntil: 'domcontentloaded' })
      .catch(async (e) => {
        const r = await page.evaluate(() => window.__initResult).catch(() => undefined)
        fail(`the SPA did not redirect to the login page: ${e.message.split('\n')[0]}`, { current_url: redactUrl(page.url()), init_result: r })
      })
    const u = new URL(page.url())
    rec.login_page = `${u.origin}${u.pathname}`
    const q = u.searchParams
    rec.auth_request = {
      client_id: q.get('client_id'),
      response_type: q.get('response_type'),
      response_mode: q.get('response_mode'),
      scope: q.get('scope'),
      code_challenge_method: q.get('code_challenge_method'),
      redirect_uri: q.get('redirect_uri')
    }
    return u
  })

  await step('submit_login_form', async (rec) => {
    const form = page.locator('form#kc-form-login')
    await form.waitFor({ state: 'attached', timeout: 5000 }).catch(async () => {
      const title = await page.title().catch(() => '')
      const text = (await page.locator('body').innerText().catch(() => '')).slice(0, 300)
      fail('the login page has no <form id="kc-form-login">', { url: redactUrl(page.url()), title, text })
    })
    await form.locator('input[name="username"]').fill(username)
    await form.locator('input[name="password"]').fill(password)
    rec.fields = await form.locator('input[name]').evaluateAll((els) => els.map((e) => e.name))
    const submit = form.locator('input[type="submit"], button[type="submit"], button:not([type])')
    if (await submit.count()) {
      await Promise.all([page.waitForEvent('framenavigated', { timeout: stepTimeout }), submit.first().click()])
    } else {
      await Promise.all([page.waitForEvent('framenavigated', { timeout: stepTimeout }), form.evaluate((f) => f.submit())])
    }
    // Back at the SPA, or (e.g. wrong password) the server rendered a page again: fail fast then.
    const back = (u) => u.href.startsWith(appOrigin + '/')
    if (!back(new URL(page.url()))) {
      await page.waitForLoadState('domcontentloaded').catch(() => {})
      if (!back(new URL(page.url())) && await page.locator('form#kc-form-login, #kc-error-message, .alert-error').count().catch(() => 0)) {
        await page.waitForURL(back, { waitUntil: 'commit', timeout: 2000 }).catch(async () => {
          const text = (await page.locator('body').innerText().catch(() => '')).slice(0, 400)
          fail('after submitting the login form the server answered with a page instead of redirecting back to the SPA',
            { current_url: redactUrl(page.url()), page_text: text })
        })
      }
    }
    await page.waitForURL(back, { waitUntil: 'commit' }).catch(async (e) => {
      const text = (await page.locator('body').innerText().catch(() => '')).slice(0, 400)
      fail(`after submitting the login form the browser did not come back to the SPA: ${e.message.split('\n')[0]}`,
        { current_url: redactUrl(page.url()), page_text: text })
    })
    rec.callback = redactUrl(page.url())
    const h = new URL(page.url())
    const cb = new URLSearchParams(h.hash.replace(/^#/, '') || h.search)
    rec.callback_params = [...cb.keys()]
    assert(cb.has('code') || h.hash === '', 'callback to the SPA carries no code', { callback: rec.callback })
    assert(!cb.has('error'), `authorization error in callback: ${cb.get('error')} ${cb.get('error_description') ?? ''}`)
    // login-required + default response_mode=fragment: the code comes back in the fragment.
    assert(loginUrl.searchParams.get('response_mode') !== 'fragment' || new URLSearchParams(h.hash.slice(1)).has('code'),
      'response_mode=fragment was requested but the code is not in the fragment', { callback: rec.callback })
  })

  const init = await step('init_resolves', async (rec) => {
    await page.waitForFunction(() => window.__initResult !== undefined, null, { timeout: stepTimeout }).catch(async (e) => {
      const events = await page.evaluate(() => window.__events).catch(() => undefined)
      fail(`keycloak.init() did not settle: ${e.message.split('\n')[0]}`, { events, url: redactUrl(page.url()) })
    })
    const r = await page.evaluate(() => window.__initResult)
    rec.result = r
    rec.events = await page.evaluate(() => window.__events.map((e) => e.ev + (e.arg && e.ev !== 'onReady' ? ':' + e.arg : '')))
    assert(r.ok, `keycloak.init() rejected: ${r.error}`, { events: rec.events })
    assert(r.authenticated === true, `keycloak.init() resolved authenticated=${r.authenticated}`, { events: rec.events })
    return r
  })
  void init

  await step('tokens', async (rec) => {
    const s = await page.evaluate(() => {
      const k = window.keycloak
      return {
        authenticated: k.authenticated,
        hasToken: typeof k.token === 'string' && k.token.split('.').length === 3,
        hasIdToken: typeof k.idToken === 'string',
        hasRefreshToken: typeof k.refreshToken === 'string',
        subject: k.subject,
        preferred_username: k.tokenParsed?.preferred_username,
        realm_access: k.tokenParsed?.realm_access ?? null,
        resource_access: k.tokenParsed?.resource_access ?? null,
        azp: k.tokenParsed?.azp,
        iss: k.tokenParsed?.iss,
        typ: k.tokenParsed?.typ,
        session_state: k.sessionId ?? k.tokenParsed?.sid ?? null,
        id_nonce_ok: k.idTokenParsed ? typeof k.idTokenParsed.nonce === 'string' : null,
        realmRoles: k.realmAccess?.roles ?? null,
        timeSkew: k.timeSkew
      }
    })
    Object.assign(rec, s)
    assert(s.authenticated === true, 'keycloak.authenticated is not true')
    assert(s.hasToken, 'keycloak.token is not a JWT')
    assert(s.hasIdToken, 'keycloak.idToken missing')
    assert(s.hasRefreshToken, 'keycloak.refreshToken missing')
    assert(s.preferred_username === username, `tokenParsed.preferred_username is ${JSON.stringify(s.preferred_username)}, expected ${JSON.stringify(username)}`)
    assert(s.realm_access && Array.isArray(s.realm_access.roles), 'tokenParsed.realm_access.roles missing', { realm_access: s.realm_access })
    assert(s.iss === `${serverUrl}/realms/${realm}`, `tokenParsed.iss is ${s.iss}, expected ${serverUrl}/realms/${realm}`)
    assert(s.azp === clientId, `tokenParsed.azp is ${s.azp}, expected ${clientId}`)
  })

  await step('update_token_forced', async (rec) => {
    const r = await page.evaluate(async () => {
      const k = window.keycloak
      const before = k.token
      const beforeRefresh = k.refreshToken
      try {
        const refreshed = await k.updateToken(-1)
        return { ok: true, refreshed, changed: k.token !== before, refreshChanged: k.refreshToken !== beforeRefresh, preferred_username: k.tokenParsed?.preferred_username, authenticated: k.authenticated }
      } catch (e) {
        return { ok: false, error: e && (e.message || e.error) ? String(e.message || e.error) : JSON.stringify(e) }
      }
    })
    Object.assign(rec, r)
    assert(r.ok, `keycloak.updateToken(-1) rejected: ${r.error}`)
    assert(r.refreshed === true, `keycloak.updateToken(-1) resolved ${r.refreshed}, expected true`)
    assert(r.changed, 'keycloak.updateToken(-1) did not produce a new access token')
    assert(r.preferred_username === username, 'refreshed token has a different preferred_username')
  })

  await step('load_user_info', async (rec) => {
    const r = await page.evaluate(async () => {
      const k = window.keycloak
      try {
        const info = await k.loadUserInfo()
        return { ok: true, info, subject: k.subject }
      } catch (e) {
        return { ok: false, error: e && (e.message || e.error) ? String(e.message || e.error) : JSON.stringify(e) }
      }
    })
    assert(r.ok, `keycloak.loadUserInfo() rejected: ${r.error}`)
    rec.claims = Object.keys(r.info || {})
    assert(r.info && r.info.sub === r.subject, `userinfo sub ${r.info?.sub} != token subject ${r.subject}`)
    assert(r.info.preferred_username === username, `userinfo preferred_username is ${JSON.stringify(r.info.preferred_username)}`)
  })

  await step('session_iframes', async (rec) => {
    // 3p-cookies/step1.html -> step2.html posts "supported"/"unsupported"; only when supported does
    // keycloak-js (checkLoginIframe default true) load login-status-iframe.html, call its /init and
    // ask it "clientId sessionState" before every updateToken().
    const msgs = await page.evaluate(() => window.__iframeMessages.slice())
    rec.messages = msgs
    rec.third_party_cookies = msgs.includes('supported') ? 'supported' : msgs.includes('unsupported') ? 'unsupported' : 'no answer'
    rec.login_iframe_loaded = navigations.some((n) => n.includes('/login-status-iframe.html'))
    assert(rec.third_party_cookies !== 'no answer', '3p-cookies/step2.html never posted "supported" or "unsupported" to the SPA')
    if (rec.third_party_cookies === 'supported') {
      assert(rec.login_iframe_loaded, '3p cookies supported, yet login-status-iframe.html was not loaded')
      rec.login_iframe_answers = msgs.filter((m) => m !== 'supported' && m !== 'unsupported')
      assert(rec.login_iframe_answers.length > 0, 'the login-status iframe never answered a session check')
      assert(rec.login_iframe_answers.every((m) => m === 'unchanged'),
        `the login-status iframe answered ${JSON.stringify(rec.login_iframe_answers)}; expected only "unchanged" for a live session`)
    } else {
      rec.note = 'browser blocks third-party cookies for this SPA/server pair (cross-site), so keycloak-js disabled the login-status iframe; use SERVER_URL on the same site (e.g. http://localhost:PORT) to exercise it'
    }
  })

  await step('no_page_errors', async (rec) => {
    // The login-status iframe has had time to run its first check during the steps above.
    rec.console_errors = consoleErrors.length
    rec.page_errors = pageErrors.length
    assert(pageErrors.length === 0, 'uncaught exceptions in the page', { page_errors: pageErrors.slice(0, 10) })
    assert(consoleErrors.length === 0, 'console errors in the page', { console_errors: consoleErrors.slice(0, 10) })
    const realFailures = failedRequests.filter((f) => !f.benign)
    assert(realFailures.length === 0, 'failed requests in the page', { failed_requests: realFailures.slice(0, 10) })
  })

  out.spa_requests = spa.requests.length
  out.ok = Object.values(out.steps).every((s) => s.ok)
}

main()
  .catch((err) => {
    if (!out.error) out.error = { message: String(err?.message ?? err).split('\n')[0] }
    console.error('keycloak_js_flow:', err?.stack ?? err)
  })
  .finally(async () => {
    await cleanup().catch(() => {})
    finish(out.ok ? 0 : 1)
  })
