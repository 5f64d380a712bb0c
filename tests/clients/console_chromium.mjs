#!/usr/bin/env node
// Headless Chromium (playwright-core) through the admin console as the seed's guides walk
// it, by the labels a person reads: sign in at /admin/, "Create realm" from the realm
// selector, "Add user", set a temporary password, "Create role" and map it, "Create client"
// with client authentication and copy its secret, "Configure OTP" as a required action, a
// GitHub identity provider, an LDAP provider with "Test connection" and a sync. Each effect
// is checked as a user or an app sees it: the first login asks for a new password, the role
// is in the token, the secret works for client_credentials, the next login sets up an
// authenticator, the login page shows the GitHub button, LDAP users are listed. Every screen
// is photographed at 390 px and 1280 px and checked with axe-core (no serious or critical
// violation).
//
// Environment:
//   SERVER_URL          e.g. http://127.0.0.1:PORT
//   ADMIN, ADMIN_PASSWORD   a master-realm administrator
//   GITHUB_URL          the fake GitHub's base URL
//   LDAP_URL, LDAP_BIND_DN, LDAP_BIND_PASSWORD, LDAP_USERS_DN, LDAP_USER   the directory
//   SCREENSHOT_DIR      where the PNGs go
//   CHROMIUM            optional, default /usr/bin/chromium
//
// Output: one JSON object on stdout (with `secret`, `violations`); exit 0 only when every
// step passed.

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

import { env, assert, step, shoot as shootInto, launch, run, out } from './chromium_steps.mjs'

const server = env('SERVER_URL')
const admin = env('ADMIN')
const adminPassword = env('ADMIN_PASSWORD')
const github = env('GITHUB_URL')
const ldap = {
  url: env('LDAP_URL'),
  bindDn: env('LDAP_BIND_DN'),
  password: env('LDAP_BIND_PASSWORD'),
  usersDn: env('LDAP_USERS_DN'),
  user: env('LDAP_USER')
}
const shots = env('SCREENSHOT_DIR')
const realm = 'shop'
// Echoed back on every page of the realm: must show as text, never run.
const displayName = '<img src=x onerror="window.__xss=1">Shop & Co'
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')
out.violations = []

/// Screenshots at both widths and an axe-core check of the page as it is.
async function screen (page, name) {
  await shootInto(page, shots, `console-${name}`)
  await page.evaluate(axeSource)
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }))
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') {
      out.violations.push({ screen: name, id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.html) })
    }
  }
  assert(await page.evaluate(() => window.__xss === undefined), `script ran on ${name}`)
}

async function click (page, role, name) {
  await Promise.all([page.waitForLoadState('load'), page.getByRole(role, { name, exact: true }).first().click()])
}

async function notice (page, text) {
  const status = page.locator('[role=status]')
  await status.waitFor({ timeout: 5000 })
  const shown = (await status.textContent()).trim()
  assert(shown.includes(text), `notice "${text}", got "${shown}"`)
  return shown
}

/// A link of the side navigation.
async function nav (page, label) {
  await Promise.all([page.waitForLoadState('load'), page.locator('nav.side').getByRole('link', { name: label, exact: true }).click()])
}

/// A tab of the screen.
async function tab (page, label) {
  await Promise.all([page.waitForLoadState('load'), page.locator('.tabs').getByRole('link', { name: label, exact: true }).click()])
}

async function signIn (page, username, password) {
  await page.locator('input[name="username"]').fill(username)
  await page.locator('input[name="password"]').fill(password)
  await Promise.all([page.waitForLoadState('load'), page.locator('#kc-login, button[type="submit"]').first().click()])
}

function claims (jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())
}

await run(240000, async (setBrowser) => {
  const browser = await launch()
  setBrowser(browser)
  const page = await browser.newPage()

  await step('welcome page links to the console', async () => {
    await page.goto(`${server}/`)
    await screen(page, 'welcome')
    await click(page, 'link', 'Administration Console')
    assert(page.url().includes('/realms/master/protocol/openid-connect/auth'), `at the login: ${page.url()}`)
    assert(page.url().includes('code_challenge_method=S256'), 'PKCE')
  })

  await step('sign in to the console', async () => {
    await signIn(page, admin, adminPassword)
    assert(page.url().startsWith(`${server}/admin/master/console/master/`), page.url())
    await screen(page, 'home')
  })

  await step('Create realm from the realm selector', async () => {
    await page.locator('.realm-selector summary').click()
    await click(page, 'link', 'Create realm')
    await screen(page, 'create-realm')
    await page.getByLabel('Realm name').fill(realm)
    await page.getByLabel('Display name').fill(displayName)
    await click(page, 'button', 'Create')
    assert(page.url().endsWith(`/admin/master/console/${realm}/`), page.url())
    await notice(page, 'Realm created')
    const heading = await page.locator('h1').textContent()
    assert(heading.includes(displayName), `the display name as text: ${heading}`)
  })

  await step('realm settings tabs', async () => {
    await nav(page, 'Realm settings')
    await screen(page, 'realm-settings')
    for (const name of ['Login', 'Email', 'Themes', 'Keys', 'Events', 'Sessions', 'Tokens', 'Security defenses']) {
      await tab(page, name)
      await screen(page, `realm-settings-${name.toLowerCase().replace(/ /g, '-')}`)
    }
    await tab(page, 'Login')
    await page.getByRole('switch', { name: 'Forgot password' }).check()
    await click(page, 'button', 'Save')
    await notice(page, 'Realm successfully updated')
    assert(await page.getByRole('switch', { name: 'Forgot password' }).isChecked(), 'saved')
    await tab(page, 'Events')
    await page.getByRole('switch', { name: 'Save admin events' }).check()
    await click(page, 'button', 'Save')
    await notice(page, 'Realm successfully updated')
  })

  await step('Add user and set a temporary password', async () => {
    await nav(page, 'Users')
    await screen(page, 'users')
    await click(page, 'link', 'Add user')
    await screen(page, 'add-user')
    await page.getByLabel('Username').fill('alice')
    await page.getByLabel('Email', { exact: true }).fill('alice@example.com')
    await page.getByLabel('First name').fill('Alice')
    await page.getByLabel('Last name').fill('Liddell')
    await click(page, 'button', 'Create')
    await notice(page, 'The user has been created')
    await screen(page, 'user-details')
    await tab(page, 'Credentials')
    await page.getByLabel('Password', { exact: true }).fill('First-pass-1')
    await page.getByLabel('Password confirmation').fill('First-pass-1')
    assert(await page.getByRole('switch', { name: 'Temporary' }).isChecked(), 'temporary by default')
    await click(page, 'button', 'Save')
    await notice(page, 'The password has been set')
    await screen(page, 'user-credentials')
    await tab(page, 'Attributes')
    await page.getByLabel('Attributes').fill('department = <b>sales</b>')
    await click(page, 'button', 'Save')
    await notice(page, 'The user has been saved')
    assert((await page.getByLabel('Attributes').inputValue()).includes('<b>sales</b>'), 'the attribute as text')
  })

  await step('Create role and map it', async () => {
    await nav(page, 'Realm roles')
    await screen(page, 'realm-roles')
    await click(page, 'link', 'Create role')
    await page.getByLabel('Role name').fill('editor')
    await page.getByLabel('Description').fill('Edits the catalogue')
    await click(page, 'button', 'Save')
    await notice(page, 'Role created')
    await nav(page, 'Users')
    await page.getByRole('searchbox').last().fill('alice')
    await click(page, 'button', 'Search')
    await click(page, 'link', 'alice')
    await tab(page, 'Role mapping')
    await page.getByRole('checkbox', { name: /^editor/ }).check()
    await click(page, 'button', 'Save')
    await notice(page, 'Role mapping updated')
    await screen(page, 'user-role-mapping')
  })

  await step('Create client with client authentication and copy its secret', async (rec) => {
    await nav(page, 'Clients')
    await screen(page, 'clients')
    await click(page, 'link', 'Create client')
    await screen(page, 'create-client')
    await page.getByLabel('Client ID').fill('backend')
    await page.getByRole('switch', { name: 'Client authentication' }).check()
    await page.getByRole('switch', { name: 'Service accounts roles' }).check()
    await page.getByLabel('Root URL').fill('http://localhost:3000')
    await page.getByLabel('Valid redirect URIs').fill('http://localhost:3000/*')
    await click(page, 'button', 'Save')
    await notice(page, 'Client created')
    await tab(page, 'Credentials')
    await screen(page, 'client-credentials')
    rec.secret = (await page.locator('#client-secret').textContent()).trim()
    assert(rec.secret.length >= 16, 'a secret')
    out.secret = rec.secret
    const token = await fetch(`${server}/realms/${realm}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'backend', client_secret: rec.secret })
    })
    assert(token.status === 200, `client_credentials: ${token.status}`)
    await tab(page, 'Mappers')
    await page.getByLabel('Name', { exact: true }).fill('department')
    await page.getByLabel('Mapper type').selectOption({ label: 'User Attribute' })
    await page.getByLabel('User Attribute', { exact: true }).fill('department')
    await page.getByLabel('Token Claim Name').fill('department')
    await click(page, 'button', 'Add')
    await notice(page, 'Mapping successfully created')
    await screen(page, 'client-mappers')
    for (const name of ['Roles', 'Client scopes', 'Sessions', 'Service account roles']) {
      await tab(page, name)
      await screen(page, `client-${name.toLowerCase().replace(/ /g, '-')}`)
    }
  })

  await step('the first login asks for a new password; the role is in the token', async (rec) => {
    const context = await browser.newContext()
    const user = await context.newPage()
    await user.goto(`${server}/realms/${realm}/account/`)
    await signIn(user, 'alice', 'First-pass-1')
    await user.locator('input[name="password-new"]').waitFor({ timeout: 5000 })
    await user.locator('input[name="password-new"]').fill('Second-pass-2')
    await user.locator('input[name="password-confirm"]').fill('Second-pass-2')
    await Promise.all([user.waitForLoadState('load'), user.locator('button[type="submit"], input[type="submit"]').first().click()])
    assert(user.url().includes(`/realms/${realm}/account`), `on the account page: ${user.url()}`)
    await context.close()
    const token = await fetch(`${server}/realms/${realm}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', client_id: 'admin-cli', username: 'alice', password: 'Second-pass-2' })
    })
    const body = await token.json()
    assert(token.status === 200, `password grant: ${JSON.stringify(body)}`)
    rec.roles = claims(body.access_token).realm_access?.roles ?? []
    assert(rec.roles.includes('editor'), `editor in the token: ${rec.roles}`)
  })

  await step('Configure OTP as a required action', async () => {
    await nav(page, 'Users')
    await click(page, 'link', 'alice')
    await page.getByRole('checkbox', { name: 'Configure OTP' }).check()
    await click(page, 'button', 'Save')
    await notice(page, 'The user has been saved')
    const context = await browser.newContext()
    const user = await context.newPage()
    await user.goto(`${server}/realms/${realm}/account/`)
    await signIn(user, 'alice', 'Second-pass-2')
    const body = await user.textContent('body')
    assert(/authenticator/i.test(body) && await user.locator('input[name="totp"]').count() === 1, 'the authenticator set-up')
    await context.close()
  })

  await step('authentication screens', async () => {
    await nav(page, 'Authentication')
    await screen(page, 'authentication')
    await click(page, 'link', 'browser')
    await screen(page, 'authentication-browser')
    // The seed: copy the browser flow, set its OTP Form to REQUIRED, bind it.
    await page.getByLabel('Name', { exact: true }).fill('my browser')
    await click(page, 'button', 'Duplicate')
    await notice(page, 'Flow successfully duplicated')
    assert(page.url().endsWith('/authentication/flows/my%20browser'), page.url())
    await page.getByLabel('Requirement OTP Form').selectOption('REQUIRED')
    await click(page, 'button', 'Save')
    await notice(page, 'Flow successfully updated')
    await page.getByLabel('Choose binding type').selectOption('browserFlow')
    await click(page, 'button', 'Bind flow')
    await notice(page, 'Flow successfully updated')
    await tab(page, 'Policies')
    await screen(page, 'authentication-policies')
    await page.getByLabel('Number of digits').selectOption('8')
    await click(page, 'button', 'Save')
    await notice(page, 'Updated policies')
    await tab(page, 'Required actions')
    await screen(page, 'authentication-required-actions')
  })

  await step('a GitHub identity provider shows on the login page', async () => {
    await nav(page, 'Identity providers')
    await screen(page, 'identity-providers')
    await click(page, 'link', 'GitHub')
    await screen(page, 'add-github')
    await page.getByLabel('Client ID').fill('gh-client')
    await page.getByLabel('Client Secret').fill('gh-secret')
    await page.getByLabel('Base URL').fill(github)
    await page.getByLabel('API URL').fill(github)
    await click(page, 'button', 'Add')
    await notice(page, 'Identity provider successfully created')
    await tab(page, 'Mappers')
    await page.getByLabel('Name', { exact: true }).fill('editors')
    await page.getByLabel('Mapper type').selectOption({ label: 'Hardcoded Role' })
    await page.getByLabel('Role', { exact: true }).fill('editor')
    await click(page, 'button', 'Add')
    await notice(page, 'Mapping successfully created')
    await screen(page, 'identity-provider-mappers')
    const context = await browser.newContext()
    const user = await context.newPage()
    await user.goto(`${server}/realms/${realm}/account/`)
    await user.locator('#social-github').waitFor({ timeout: 5000 })
    await context.close()
  })

  await step('LDAP: Test connection, sync, users listed', async (rec) => {
    await nav(page, 'User federation')
    await screen(page, 'user-federation')
    await click(page, 'link', 'Add Ldap providers')
    await screen(page, 'add-ldap')
    await page.getByLabel('Connection URL').fill(ldap.url)
    await page.getByLabel('Bind DN').fill(ldap.bindDn)
    await page.getByLabel('Bind credentials').fill(ldap.password)
    await page.getByLabel('Users DN').fill(ldap.usersDn)
    await click(page, 'button', 'Save')
    await notice(page, 'Provider successfully updated')
    await click(page, 'button', 'Test connection')
    rec.test = await notice(page, 'Successfully connected to LDAP')
    await click(page, 'button', 'Test authentication')
    await notice(page, 'Successfully connected to LDAP')
    await click(page, 'button', 'Sync all users')
    rec.sync = await notice(page, 'Sync of users finished')
    await nav(page, 'Users')
    await page.getByRole('searchbox').last().fill(ldap.user)
    await click(page, 'button', 'Search')
    assert(await page.getByRole('link', { name: ldap.user, exact: true }).count() === 1, `${ldap.user} listed`)
  })

  await step('groups: create, a child group, role mapping', async () => {
    await nav(page, 'Groups')
    await page.getByLabel('Name', { exact: true }).fill('staff')
    await click(page, 'button', 'Create')
    await notice(page, 'Group created')
    await click(page, 'link', 'staff')
    await tab(page, 'Child groups')
    await page.getByLabel('Name', { exact: true }).fill('interns')
    await click(page, 'button', 'Create')
    await notice(page, 'Group created')
    await screen(page, 'group-children')
    await tab(page, 'Role mapping')
    await page.getByRole('checkbox', { name: /^editor/ }).check()
    await click(page, 'button', 'Save')
    await notice(page, 'Role mapping updated')
    await screen(page, 'group-role-mapping')
  })

  await step('localization: a realm text', async () => {
    await nav(page, 'Realm settings')
    await tab(page, 'Localization')
    await page.getByLabel('Key').fill('loginTitle')
    await page.getByLabel('Value').fill('Sign in to the shop')
    await click(page, 'button', 'Add')
    await notice(page, 'The translation has been added')
    await screen(page, 'realm-settings-localization')
  })

  await step('the remaining screens', async () => {
    for (const label of ['Client scopes', 'Groups', 'Sessions', 'Events']) {
      await nav(page, label)
      await screen(page, label.toLowerCase().replace(/ /g, '-'))
    }
    await page.goto(`${server}/admin/master/console/${realm}/partial-import`)
    await screen(page, 'partial-import')
    await page.goto(`${server}/admin/master/console/${realm}/partial-export`)
    await screen(page, 'partial-export')
  })

  await step('sign out ends the SSO session', async () => {
    await page.locator('header details').last().locator('summary').click()
    await click(page, 'button', 'Sign out')
    assert(page.url().includes('/realms/master/protocol/openid-connect/auth'), `signed out: ${page.url()}`)
    assert(await page.locator('input[name="password"]').count() === 1, 'the password is asked again')
  })

  assert(out.violations.length === 0, `accessibility: ${JSON.stringify(out.violations).slice(0, 1500)}`)
})
