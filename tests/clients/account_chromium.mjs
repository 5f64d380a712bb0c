#!/usr/bin/env node
// Headless Chromium (playwright-core) through the account pages, taking screenshots at phone
// and desktop widths for review: the login page, "Forgot password?", the account page, the
// authenticator set-up, and the one-time-code step. The flow: open the account page (sent
// to the login), sign in, set up an authenticator (the key is read from the page and the
// code computed here, RFC 6238 HMAC-SHA1), sign out, then sign in with password and code
// and land on the account page again.
//
// Environment:
//   SERVER_URL          e.g. http://127.0.0.1:PORT
//   REALM, USERNAME, PASSWORD
//   SCREENSHOT_DIR      where the PNGs go
//   CHROMIUM            optional, default /usr/bin/chromium
//
// Output: one JSON object on stdout; exit 0 only when every step passed.

import crypto from 'node:crypto'

import { env, assert, step, shoot as shootInto, launch, run } from './chromium_steps.mjs'

function base32Decode (text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const c of text.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(c)
    if (v < 0) throw new Error(`bad base32 ${c}`)
    bits += v.toString(2).padStart(5, '0')
  }
  const bytes = []
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2))
  return Buffer.from(bytes)
}

function totp (key, offsetSeconds = 0) {
  const counter = Math.floor((Date.now() / 1000 + offsetSeconds) / 30)
  const msg = Buffer.alloc(8)
  msg.writeBigUInt64BE(BigInt(counter))
  const h = crypto.createHmac('sha1', key).update(msg).digest()
  const o = h[h.length - 1] & 0xf
  const n = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3]
  return String(n % 1000000).padStart(6, '0')
}

const server = env('SERVER_URL')
const realm = env('REALM')
const username = env('USERNAME')
const password = env('PASSWORD')
const shots = env('SCREENSHOT_DIR')
const accountUrl = `${server}/realms/${realm}/account/`
const shoot = (page, name) => shootInto(page, shots, name)

async function signIn (page) {
  await page.locator('input[name="username"]').fill(username)
  await page.locator('input[name="password"]').fill(password)
  await Promise.all([page.waitForLoadState('load'), page.locator('#kc-login, button[type="submit"]').first().click()])
}

await run(60000, async (setBrowser) => {
  const browser = await launch()
  setBrowser(browser)
  const context = await browser.newContext()
  const page = await context.newPage()

  await step('login_page', async () => {
    await page.goto(accountUrl)
    assert(page.url().includes('/protocol/openid-connect/auth'), `not at the login: ${page.url()}`)
    await shoot(page, 'login')
  })

  await step('reset_page', async () => {
    const link = page.locator('a[href*="reset-credentials"]')
    assert(await link.count() === 1, 'no "Forgot password?" link')
    await Promise.all([page.waitForLoadState('load'), link.click()])
    assert(await page.locator('#kc-reset-password-form').count() === 1, 'no reset form')
    await shoot(page, 'reset-password')
    await Promise.all([page.waitForLoadState('load'), page.locator('#kc-back-to-login').click()])
  })

  await step('account_page', async () => {
    await signIn(page)
    await page.waitForURL((u) => u.pathname.endsWith('/account/'), { timeout: 15000 })
    assert((await page.locator('#account-username').innerText()).trim() === username, 'wrong user')
    await shoot(page, 'account')
  })

  const key = await step('configure_totp', async () => {
    await Promise.all([page.waitForLoadState('load'), page.locator('#account-totp-setup-form button').click()])
    await signIn(page)
    const text = await page.locator('#kc-totp-secret-key').innerText()
    await shoot(page, 'configure-totp')
    const key = base32Decode(text)
    await page.locator('input[name="totp"]').fill(totp(key))
    await page.locator('input[name="userLabel"]').fill('phone')
    await Promise.all([page.waitForURL((u) => u.pathname.endsWith('/account/'), { timeout: 15000 }), page.locator('#kc-totp-settings-form button[type="submit"], #kc-totp-settings-form input[type="submit"]').first().click()])
    assert((await page.locator('#account-otp-list').innerText()).includes('phone'), 'authenticator not listed')
    return key
  })

  await step('password_then_code', async () => {
    // Sign this browser out, then sign in again: password, then the code.
    await Promise.all([page.waitForLoadState('load'), page.locator('#account-session-signout-1 button').click()])
    assert(page.url().includes('/protocol/openid-connect/auth'), `still signed in: ${page.url()}`)
    await signIn(page)
    assert(await page.locator('input[name="otp"]').count() === 1, 'no one-time-code step')
    await shoot(page, 'otp')
    // The set-up used the current step's code; the next one is unused and accepted.
    await page.locator('input[name="otp"]').fill(totp(key, 30))
    await Promise.all([page.waitForURL((u) => u.pathname.endsWith('/account/'), { timeout: 15000 }), page.locator('#kc-login').click()])
    assert((await page.locator('#account-username').innerText()).trim() === username, 'not back on the account page')
  })
})
