#!/usr/bin/env node
// A real browser (headless Chromium via playwright-core) in front of a route that requires a
// login: it opens APP_URL on a host that knows nothing about login, is sent to the realm's
// login page, signs in, and lands back on the exact URL it asked for, where the upstream (an
// echo app) shows the identity headers the gateway injected. Then the session cookie is
// checked (HttpOnly: invisible to scripts), the user signs out through the gateway and the
// next visit asks for a login again.
//
// Environment:
//   APP_URL             e.g. http://app.test:PORT/private/page?x=1 (app.test is mapped to
//                       127.0.0.1 with Chromium's host resolver rules)
//   USERNAME, PASSWORD  a user of the route's realm
//   CHROMIUM            optional, browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR      optional, where to save screenshots of the login page (phone, desktop)
//
// Output: one JSON object on stdout, {"steps": {...}, "ok": true|false}; exit 0 only when
// every step passed.

import { env, assert, step, shoot, launch, run } from './chromium_steps.mjs'

const appUrl = new URL(env('APP_URL'))
const username = env('USERNAME')
const password = env('PASSWORD')
const screenshots = process.env.SCREENSHOT_DIR

await run(45000, async (setBrowser) => {
  const browser = await step('launch_browser', () =>
    launch([`--host-resolver-rules=MAP ${appUrl.hostname} 127.0.0.1`]))
  setBrowser(browser)
  const context = await browser.newContext()
  const page = await context.newPage()

  await step('redirected_to_login', async (rec) => {
    await page.goto(appUrl.href)
    const here = new URL(page.url())
    rec.url = here.origin + here.pathname
    assert(here.pathname.includes('/protocol/openid-connect/auth'), `expected the login page, at ${page.url()}`)
    assert(await page.locator('input[name="username"]').count() === 1, 'no username field')
    await shoot(page, screenshots, 'gateway-login')
  })

  const echo = await step('signed_in_and_back', async (rec) => {
    await page.locator('input[name="username"]').fill(username)
    await page.locator('input[name="password"]').fill(password)
    await Promise.all([
      page.waitForURL((u) => u.pathname === appUrl.pathname, { timeout: 15000 }),
      page.locator('input[type="submit"], button[type="submit"]').first().click()
    ])
    rec.url = page.url()
    assert(page.url() === appUrl.href, `came back to ${page.url()}, wanted ${appUrl.href}`)
    const text = await page.locator('body').innerText()
    return JSON.parse(text)
  })

  await step('identity_headers', async (rec) => {
    const h = echo.headers
    rec.user = h['x-forwarded-preferred-username']
    assert(h['x-forwarded-preferred-username'] === username, `preferred username ${h['x-forwarded-preferred-username']}`)
    assert(typeof h['x-forwarded-user'] === 'string' && h['x-forwarded-user'].length > 0, 'no X-Forwarded-User')
    assert(typeof h['x-portcullis-jwt-assertion'] === 'string', 'no assertion')
    assert(!(h.cookie || '').includes('portcullis'), 'the gateway cookie reached the upstream')
  })

  await step('cookie_is_httponly', async (rec) => {
    const cookies = await context.cookies(appUrl.origin)
    const session = cookies.find((c) => c.name === 'portcullis' || c.name === '__Host-portcullis')
    assert(session, 'no session cookie')
    rec.httpOnly = session.httpOnly
    rec.sameSite = session.sameSite
    assert(session.httpOnly && session.sameSite === 'Lax', 'cookie flags')
    const visible = await page.evaluate(() => document.cookie)
    assert(!visible.includes('portcullis'), 'scripts can read the session cookie')
  })

  await step('sign_out', async () => {
    await page.goto(`${appUrl.origin}/_portcullis/sign_out`)
    // Over plain HTTP to a non-local host the browser sends no Sec-Fetch-Site, so the
    // gateway asks before it signs out (logout CSRF): confirm as a user would.
    const confirm = page.getByRole('button', { name: 'Sign out' })
    if (await confirm.count()) await confirm.click()
    assert((await page.locator('body').innerText()).includes('signed out'), 'no sign-out page')
    await page.goto(appUrl.href)
    assert(new URL(page.url()).pathname.includes('/protocol/openid-connect/auth'), `still signed in at ${page.url()}`)
  })
})
