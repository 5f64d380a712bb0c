#!/usr/bin/env node
// Headless Chromium (playwright-core) through "Sign in with ..." as a user sees it: the
// account page of realm APP sends the browser to its login page, which offers the provider's
// button; the button leads to the provider's own login page (realm UP of the same server),
// whose sign-in comes back, creates the user and lands on the account page, where the
// linked account is listed. Screenshots at phone and desktop widths for review.
//
// Environment:
//   SERVER_URL       e.g. http://127.0.0.1:PORT
//   APP, ALIAS       the realm that brokers and the provider's alias
//   UP_USERNAME, UP_PASSWORD   an account at the provider
//   SCREENSHOT_DIR   where the PNGs go
//   CHROMIUM         optional, default /usr/bin/chromium
//
// Output: one JSON object on stdout; exit 0 only when every step passed.

import { env, assert, step, shoot as shootInto, launch, run } from './chromium_steps.mjs'

const server = env('SERVER_URL')
const app = env('APP')
const alias = env('ALIAS')
const username = env('UP_USERNAME')
const password = env('UP_PASSWORD')
const shots = env('SCREENSHOT_DIR')
const shoot = (page, name) => shootInto(page, shots, name)

await run(60000, async (setBrowser) => {
  const browser = await launch()
  setBrowser(browser)
  const page = await browser.newPage()

  await step('login page offers the provider', async (rec) => {
    await page.goto(`${server}/realms/${app}/account/`)
    const button = page.locator(`#social-${alias}`)
    await button.waitFor({ timeout: 10000 })
    rec.label = await button.textContent()
    assert(rec.label.trim().length > 0, 'the button has a label')
    rec.ariaLabel = await button.getAttribute('aria-label')
    await shoot(page, 'broker-login')
  })

  await step('the provider asks for its own login', async (rec) => {
    await Promise.all([page.waitForLoadState('load'), page.locator(`#social-${alias}`).click()])
    rec.url = page.url()
    assert(rec.url.includes('/realms/') && !rec.url.includes(`/realms/${app}/`), `at the provider: ${rec.url}`)
    await page.locator('input[name="username"]').fill(username)
    await page.locator('input[name="password"]').fill(password)
    await shoot(page, 'broker-provider-login')
  })

  await step('back, signed in, the link listed', async (rec) => {
    await Promise.all([page.waitForURL(`${server}/realms/${app}/account/**`, { timeout: 15000 }), page.locator('#kc-login').click()])
    rec.url = page.url()
    const linked = page.locator('#account-linked-list')
    await linked.waitFor({ timeout: 10000 })
    rec.linked = (await linked.textContent()).replace(/\s+/g, ' ').trim()
    assert(rec.linked.includes(username), `the account page lists the link: ${rec.linked}`)
    const body = await page.textContent('body')
    assert(body.includes(username), 'the account page shows the user')
    await shoot(page, 'broker-account')
  })
})
