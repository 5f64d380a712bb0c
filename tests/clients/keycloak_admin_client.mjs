#!/usr/bin/env node
// Drive the Keycloak-compatible admin REST API with the unchanged npm @keycloak/keycloak-admin-client
// (26.x). Logs into the master realm with admin-cli (password grant), creates a realm, a user with a
// password, a realm role and a client role (both mapped to the user), a confidential client with
// direct access grants, a group (user added), runs the admin client's look-ups, then logs in as the
// new user on the new client with a plain fetch to the token endpoint and checks that both roles are
// in the access token (realm_access.roles, resource_access.<clientId>.roles). Finally deletes the
// user, the client and the realm.
//
// Environment:
//   SERVER_URL                      server base URL, e.g. http://127.0.0.1:PORT
//   ADMIN_USERNAME, ADMIN_PASSWORD  a master-realm administrator
//   REALM_NAME                      name of the (fresh) realm to create
//   ADMIN_REALM                     optional, realm the admin logs into (default master)
//   ADMIN_CLIENT_ID                 optional (default admin-cli)
//   KEEP_REALM=1                    optional: skip the final deletes (for debugging)
//   INSECURE_TLS=1                  accept self-signed certificates
//
// Output: one JSON object on stdout, {"steps": {...}, "ok": true|false, ...}. Exit 0 on success, 1 on
// any failure (failed_step, the error with the server's response status/body are in the JSON).
// Diagnostics go to stderr.

if (process.env.INSECURE_TLS === '1') {
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'
}

const out = { steps: {}, ok: false }
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
  if (err.detail !== undefined) d.detail = err.detail
  // NetworkError of the admin client: the failed Response and its parsed body.
  if (err.response && typeof err.response.status === 'number') {
    d.status = err.response.status
    d.url = err.response.url
  }
  if (err.responseData !== undefined) d.response = err.responseData
  if (err.cause instanceof Error) d.cause = { name: err.cause.name, message: err.cause.message, code: err.cause.code }
  return d
}

function decodeJwtPayload (jwt) {
  assert(typeof jwt === 'string' && jwt.split('.').length === 3, 'access token is not a compact JWS', { token: String(jwt).slice(0, 40) })
  const part = jwt.split('.')[1]
  return JSON.parse(Buffer.from(part.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8'))
}

async function main () {
  const serverUrl = env('SERVER_URL').replace(/\/+$/, '')
  const adminUser = env('ADMIN_USERNAME')
  const adminPassword = env('ADMIN_PASSWORD')
  const realm = env('REALM_NAME')
  const adminRealm = env('ADMIN_REALM', { def: 'master' })
  const adminClientId = env('ADMIN_CLIENT_ID', { def: 'admin-cli' })
  const keep = process.env.KEEP_REALM === '1'

  const { default: KcAdminClient } = await import('@keycloak/keycloak-admin-client')
  const kc = new KcAdminClient({ baseUrl: serverUrl, realmName: adminRealm })

  const suffix = Math.random().toString(36).slice(2, 8)
  const username = `kac-user-${suffix}`
  const userPassword = `Kac-Pw-${suffix}-9x!`
  const realmRole = `kac-realm-role-${suffix}`
  const clientId = `kac-client-${suffix}`
  const clientRole = `kac-client-role-${suffix}`
  const groupName = `kac-group-${suffix}`
  out.realm = realm

  await step('auth', async (rec) => {
    await kc.auth({ username: adminUser, password: adminPassword, grantType: 'password', clientId: adminClientId })
    assert(typeof kc.accessToken === 'string' && kc.accessToken.length > 0, 'auth() left no access token')
    rec.has_refresh_token = typeof kc.refreshToken === 'string' && kc.refreshToken.length > 0
  })

  await step('realms.create', async (rec) => {
    const res = await kc.realms.create({ realm, enabled: true })
    rec.result = res
    assert(res && res.realmName === realm, `realms.create returned ${JSON.stringify(res)}, expected {realmName: "${realm}"} (Location header's last segment)`)
  })

  const user = await step('users.create', async (rec) => {
    const res = await kc.users.create({
      realm,
      username,
      enabled: true,
      email: `${username}@example.com`,
      emailVerified: true,
      firstName: 'Kac',
      lastName: 'User'
    })
    rec.result = res
    assert(res && typeof res.id === 'string' && res.id.length > 0, 'users.create returned no id')
    return res
  })

  await step('users.resetPassword', async (rec) => {
    const res = await kc.users.resetPassword({
      realm,
      id: user.id,
      credential: { temporary: false, type: 'password', value: userPassword }
    })
    rec.result = res
  })

  const role = await step('roles.create', async (rec) => {
    const res = await kc.roles.create({ realm, name: realmRole, description: 'created by keycloak_admin_client.mjs' })
    rec.result = res
    assert(res && res.roleName === realmRole, `roles.create returned ${JSON.stringify(res)}, expected {roleName: "${realmRole}"}`)
    const full = await kc.roles.findOneByName({ realm, name: realmRole })
    assert(full && typeof full.id === 'string', 'roles.findOneByName did not return the new role', full)
    rec.role_id = full.id
    return full
  })

  await step('users.addRealmRoleMappings', async (rec) => {
    rec.result = await kc.users.addRealmRoleMappings({ realm, id: user.id, roles: [{ id: role.id, name: role.name }] })
  })

  const client = await step('clients.create', async (rec) => {
    const res = await kc.clients.create({
      realm,
      clientId,
      enabled: true,
      protocol: 'openid-connect',
      publicClient: false,
      directAccessGrantsEnabled: true,
      standardFlowEnabled: true,
      redirectUris: ['http://localhost:3000/*']
    })
    rec.result = res
    assert(res && typeof res.id === 'string' && res.id.length > 0, 'clients.create returned no id')
    return res
  })

  const secret = await step('clients.getClientSecret', async (rec) => {
    const res = await kc.clients.getClientSecret({ realm, id: client.id })
    rec.type = res && res.type
    assert(res && typeof res.value === 'string' && res.value.length > 0, 'clients.getClientSecret returned no value', res)
    return res.value
  })

  const cRole = await step('clients.createRole', async (rec) => {
    const res = await kc.clients.createRole({ realm, id: client.id, name: clientRole, description: 'client role' })
    rec.result = res
    assert(res && res.roleName === clientRole, `clients.createRole returned ${JSON.stringify(res)}, expected {roleName: "${clientRole}"}`)
    const full = await kc.clients.findRole({ realm, id: client.id, roleName: clientRole })
    assert(full && typeof full.id === 'string', 'clients.findRole did not return the new role', full)
    rec.role_id = full.id
    return full
  })

  await step('users.addClientRoleMappings', async (rec) => {
    rec.result = await kc.users.addClientRoleMappings({
      realm,
      id: user.id,
      clientUniqueId: client.id,
      roles: [{ id: cRole.id, name: cRole.name }]
    })
  })

  const group = await step('groups.create', async (rec) => {
    const res = await kc.groups.create({ realm, name: groupName })
    rec.result = res
    assert(res && typeof res.id === 'string' && res.id.length > 0, 'groups.create returned no id')
    return res
  })

  await step('users.addToGroup', async (rec) => {
    rec.result = await kc.users.addToGroup({ realm, id: user.id, groupId: group.id })
  })

  await step('users.find', async (rec) => {
    const res = await kc.users.find({ realm, username })
    assert(Array.isArray(res), 'users.find did not return an array', res)
    rec.count = res.length
    const u = res.find((x) => x.username === username)
    assert(u, `users.find({username}) did not return ${username}`, res)
    assert(u.id === user.id, `users.find returned id ${u.id}, users.create said ${user.id}`)
    assert(u.enabled === true, 'found user is not enabled', u)
  })

  await step('users.count', async (rec) => {
    const res = await kc.users.count({ realm })
    rec.result = res
    assert(typeof res === 'number', `users.count returned ${JSON.stringify(res)} (${typeof res}), expected a bare number`)
    assert(res >= 1, `users.count returned ${res}, expected >= 1`)
  })

  await step('groups.find', async (rec) => {
    const res = await kc.groups.find({ realm })
    assert(Array.isArray(res), 'groups.find did not return an array', res)
    rec.count = res.length
    const g = res.find((x) => x.name === groupName)
    assert(g, `groups.find did not return ${groupName}`, res)
    assert(g.id === group.id, `groups.find returned id ${g.id}, groups.create said ${group.id}`)
  })

  await step('roles.find', async (rec) => {
    const res = await kc.roles.find({ realm })
    assert(Array.isArray(res), 'roles.find did not return an array', res)
    rec.names = res.map((r) => r.name)
    assert(rec.names.includes(realmRole), `roles.find did not return ${realmRole}`)
  })

  await step('users.listRealmRoleMappings', async (rec) => {
    const res = await kc.users.listRealmRoleMappings({ realm, id: user.id })
    assert(Array.isArray(res), 'users.listRealmRoleMappings did not return an array', res)
    rec.names = res.map((r) => r.name)
    assert(rec.names.includes(realmRole), `users.listRealmRoleMappings did not return ${realmRole}`)
  })

  await step('users.listGroups', async (rec) => {
    const res = await kc.users.listGroups({ realm, id: user.id })
    assert(Array.isArray(res), 'users.listGroups did not return an array', res)
    rec.names = res.map((g) => g.name)
    assert(res.some((g) => g.id === group.id && g.name === groupName), `users.listGroups did not return ${groupName}`, res)
  })

  await step('user_login', async (rec) => {
    const url = `${serverUrl}/realms/${encodeURIComponent(realm)}/protocol/openid-connect/token`
    const body = new URLSearchParams({
      grant_type: 'password',
      client_id: clientId,
      client_secret: secret,
      username,
      password: userPassword,
      scope: 'openid'
    })
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body
    })
    const text = await res.text()
    let json
    try { json = JSON.parse(text) } catch { json = undefined }
    rec.status = res.status
    assert(res.status === 200, `token endpoint answered HTTP ${res.status}`, { body: json ?? text.slice(0, 500) })
    assert(json && typeof json.access_token === 'string', 'token response has no access_token', json)
    const claims = decodeJwtPayload(json.access_token)
    rec.preferred_username = claims.preferred_username
    rec.realm_roles = claims.realm_access && claims.realm_access.roles
    rec.client_roles = claims.resource_access && claims.resource_access[clientId] && claims.resource_access[clientId].roles
    assert(Array.isArray(rec.realm_roles) && rec.realm_roles.includes(realmRole),
      `realm role ${realmRole} not in realm_access.roles of the access token`, { realm_access: claims.realm_access })
    assert(Array.isArray(rec.client_roles) && rec.client_roles.includes(clientRole),
      `client role ${clientRole} not in resource_access.${clientId}.roles of the access token`, { resource_access: claims.resource_access })
    assert(claims.sub === user.id, `access token sub ${claims.sub} is not the user id ${user.id}`)
  })

  // Resources added for Keycloak parity (issue 13), through the library's own calls.
  await step('serverInfo.find', async (rec) => {
    const info = await kc.serverInfo.find()
    rec.version = info && info.systemInfo && info.systemInfo.version
    assert(typeof rec.version === 'string', 'serverInfo has no systemInfo.version', info)
    assert(Array.isArray(info.passwordPolicies) && info.passwordPolicies.length > 0, 'serverInfo lists no password policies', info)
  })

  await step('whoAmI.find', async (rec) => {
    const me = await kc.whoAmI.find({ currentRealm: realm })
    rec.realms = me && Object.keys(me.realm_access || {})
    assert(me && me.createRealm === true, 'whoAmI: the admin may not create realms?', me)
    assert(rec.realms.length === 1 && rec.realms[0] === realm, `whoAmI: realm_access is not just ${realm}`, me)
  })

  await step('users.listSessions', async (rec) => {
    const sessions = await kc.users.listSessions({ realm, id: user.id })
    rec.count = sessions.length
    assert(sessions.length === 1 && Object.values(sessions[0].clients).includes(clientId),
      `users.listSessions: one session of ${clientId} expected`, sessions)
    const perClient = await kc.clients.listSessions({ realm, id: client.id })
    assert(perClient.length === 1 && perClient[0].id === sessions[0].id, 'clients.listSessions disagrees', perClient)
  })

  await step('users.countGroups', async (rec) => {
    const res = await kc.users.countGroups({ realm, id: user.id })
    rec.result = res
    assert(res && res.count === 1, 'users.countGroups: one group expected', res)
  })

  await step('realms.addDefaultGroup', async (rec) => {
    await kc.realms.addDefaultGroup({ realm, id: group.id })
    const defaults = await kc.realms.getDefaultGroups({ realm })
    rec.paths = defaults.map((g) => g.path)
    assert(defaults.some((g) => g.id === group.id), 'the default group is not listed', defaults)
  })

  await step('realms.addLocalization', async (rec) => {
    await kc.realms.addLocalization({ realm, selectedLocale: 'en', key: 'loginTitle' }, 'Welcome, kac')
    const texts = await kc.realms.getRealmLocalizationTexts({ realm, selectedLocale: 'en' })
    rec.texts = texts
    assert(texts && texts.loginTitle === 'Welcome, kac', 'the realm text was not stored', texts)
  })

  await step('authenticationManagement.updateRequiredAction', async (rec) => {
    const actions = await kc.authenticationManagement.getRequiredActions({ realm })
    rec.aliases = actions.map((a) => a.alias)
    const totp = actions.find((a) => a.alias === 'CONFIGURE_TOTP')
    assert(totp && totp.enabled === true, 'CONFIGURE_TOTP is not listed as enabled', actions)
    await kc.authenticationManagement.updateRequiredAction({ realm, alias: 'CONFIGURE_TOTP' }, { ...totp, enabled: false })
    const after = await kc.authenticationManagement.getRequiredActionForAlias({ realm, alias: 'CONFIGURE_TOTP' })
    assert(after && after.enabled === false, 'CONFIGURE_TOTP is still enabled', after)
  })

  await step('clients.evaluateGenerateAccessToken', async (rec) => {
    const claims = await kc.clients.evaluateGenerateAccessToken({ realm, id: client.id, userId: user.id, scope: 'openid' })
    rec.sub = claims && claims.sub
    assert(claims && claims.sub === user.id && claims.azp === clientId, 'the example token is not the user\'s', claims)
  })

  // Client scopes: one with a mapper, optional on the client, asked for by a login.
  const scopeName = `kac-scope-${suffix}`
  const scope = await step('clientScopes.create', async (rec) => {
    await kc.clientScopes.create({
      realm,
      name: scopeName,
      protocol: 'openid-connect',
      attributes: { 'include.in.token.scope': 'true' }
    })
    const found = await kc.clientScopes.findOneByName({ realm, name: scopeName })
    rec.id = found && found.id
    assert(found && found.name === scopeName, 'clientScopes.findOneByName did not find the new scope', found)
    const all = await kc.clientScopes.find({ realm })
    rec.builtin = all.map((s) => s.name).filter((n) => ['profile', 'email', 'roles', 'offline_access'].includes(n))
    assert(rec.builtin.length === 4, 'the built-in scopes are not all listed', all.map((s) => s.name))
    return found
  })

  await step('clientScopes.addProtocolMapper', async (rec) => {
    await kc.clientScopes.addProtocolMapper({ realm, id: scope.id }, {
      name: 'tier',
      protocol: 'openid-connect',
      protocolMapper: 'oidc-hardcoded-claim-mapper',
      config: { 'claim.name': 'tier', 'claim.value': 'gold', 'access.token.claim': 'true', 'jsonType.label': 'String' }
    })
    const mappers = await kc.clientScopes.listProtocolMappers({ realm, id: scope.id })
    rec.names = mappers.map((m) => m.name)
    assert(rec.names.includes('tier'), 'the scope mapper is not listed', mappers)
  })

  await step('clientScopes.addRealmScopeMappings', async (rec) => {
    const role = await kc.roles.findOneByName({ realm, name: realmRole })
    await kc.clientScopes.addRealmScopeMappings({ realm, id: scope.id }, [{ id: role.id, name: role.name }])
    const mapped = await kc.clientScopes.listRealmScopeMappings({ realm, id: scope.id })
    rec.names = mapped.map((r) => r.name)
    assert(rec.names.includes(realmRole), 'the scope mapping is not listed', mapped)
  })

  await step('identityProviders', async (rec) => {
    // What the admin console and terraform call: create, read (secret masked), mapper
    // types, a mapper, a user's federated identity, delete.
    await kc.identityProviders.create({
      realm,
      alias: 'github',
      providerId: 'github',
      enabled: true,
      config: { clientId: 'GITHUB_CLIENT_ID', clientSecret: 'GITHUB_CLIENT_SECRET' }
    })
    const idp = await kc.identityProviders.findOne({ realm, alias: 'github' })
    rec.idp = { alias: idp.alias, providerId: idp.providerId, secret: idp.config.clientSecret }
    assert(idp.config.clientSecret === '**********', 'the secret is not masked', idp.config)
    const types = await kc.identityProviders.findMapperTypes({ realm, alias: 'github' })
    assert(types['hardcoded-attribute-idp-mapper'], 'no mapper types', types)
    await kc.identityProviders.createMapper({
      realm,
      alias: 'github',
      identityProviderMapper: {
        name: 'team',
        identityProviderAlias: 'github',
        identityProviderMapper: 'hardcoded-attribute-idp-mapper',
        config: { attribute: 'team', 'attribute.value': 'octo' }
      }
    })
    const mappers = await kc.identityProviders.findMappers({ realm, alias: 'github' })
    rec.mappers = mappers.map((m) => m.name)
    assert(rec.mappers.length === 1 && rec.mappers[0] === 'team', 'the mapper is not listed', mappers)
    await kc.users.addToFederatedIdentity({
      realm,
      id: user.id,
      federatedIdentityId: 'github',
      federatedIdentity: { identityProvider: 'github', userId: '583231', userName: 'octocat' }
    })
    const links = await kc.users.listFederatedIdentities({ realm, id: user.id })
    rec.links = links
    assert(links.length === 1 && links[0].userName === 'octocat', 'the link is not listed', links)
    await kc.users.delFromFederatedIdentity({ realm, id: user.id, federatedIdentityId: 'github' })
    await kc.identityProviders.del({ realm, alias: 'github' })
    const after = await kc.identityProviders.find({ realm })
    assert(!after.some((i) => i.alias === 'github'), 'the provider is still listed', after)
  })

  await step('clients.addOptionalClientScope', async (rec) => {
    await kc.clients.addOptionalClientScope({ realm, id: client.id, clientScopeId: scope.id })
    const optional = await kc.clients.listOptionalClientScopes({ realm, id: client.id })
    rec.optional = optional.map((s) => s.name)
    assert(rec.optional.includes(scopeName), 'the client does not list the optional scope', optional)
    const defaults = await kc.clients.listDefaultClientScopes({ realm, id: client.id })
    rec.defaults = defaults.map((s) => s.name)
    assert(rec.defaults.includes('profile') && rec.defaults.includes('email'), 'the client lacks the realm default scopes', defaults)
    const realmDefaults = await kc.clientScopes.listDefaultClientScopes({ realm })
    assert(realmDefaults.some((s) => s.name === 'roles'), 'the realm default scopes lack roles', realmDefaults)
  })

  await step('scope_login', async (rec) => {
    const url = `${serverUrl}/realms/${encodeURIComponent(realm)}/protocol/openid-connect/token`
    const login = async (scopeParam) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'password', client_id: clientId, client_secret: secret, username, password: userPassword, scope: scopeParam })
      })
      const json = await res.json()
      assert(res.status === 200, `token endpoint answered ${res.status}`, json)
      return { scope: json.scope, claims: decodeJwtPayload(json.access_token) }
    }
    const plain = await login('openid')
    const asked = await login(`openid ${scopeName}`)
    rec.scope = asked.scope
    assert(plain.claims.tier === undefined, 'the optional scope applied without being asked for', plain.claims)
    assert(asked.claims.tier === 'gold', 'the optional scope\'s mapper did not apply', asked.claims)
    assert(asked.scope.split(' ').includes(scopeName), 'the token response scope lacks the optional scope', asked.scope)
  })

  await step('clientScopes.delByName', async (rec) => {
    await kc.clientScopes.delByName({ realm, name: scopeName })
    const after = await kc.clientScopes.findOneByName({ realm, name: scopeName })
    rec.gone = after === undefined || after === null
    assert(rec.gone, 'the scope is still found', after)
    const optional = await kc.clients.listOptionalClientScopes({ realm, id: client.id })
    assert(!optional.some((s) => s.name === scopeName), 'the deleted scope is still on the client', optional)
  })

  // Authentication flows, as the console's Authentication tab drives them.
  const flowName = `kac-browser-${suffix}`
  await step('authenticationManagement.copyFlow', async (rec) => {
    const flows = await kc.authenticationManagement.getFlows({ realm })
    rec.builtin = flows.filter((f) => f.builtIn).map((f) => f.alias)
    assert(rec.builtin.includes('browser') && rec.builtin.includes('direct grant'), 'the built-in flows are not listed', rec.builtin)
    await kc.authenticationManagement.copyFlow({ realm, flow: 'browser', newName: flowName })
    const executions = await kc.authenticationManagement.getExecutions({ realm, flow: flowName })
    rec.names = executions.map((e) => e.displayName)
    assert(executions.some((e) => e.providerId === 'auth-otp-form'), 'the copy has no OTP Form', executions)
  })

  await step('authenticationManagement.updateExecution', async (rec) => {
    const executions = await kc.authenticationManagement.getExecutions({ realm, flow: flowName })
    const sub = executions.find((e) => e.authenticationFlow && e.displayName.endsWith('Browser - Conditional OTP'))
    assert(sub, 'no conditional OTP sub-flow in the copy', executions)
    await kc.authenticationManagement.updateExecution({ realm, flow: flowName }, { ...sub, requirement: 'REQUIRED' })
    const after = await kc.authenticationManagement.getExecutions({ realm, flow: flowName })
    rec.requirement = after.find((e) => e.id === sub.id).requirement
    assert(rec.requirement === 'REQUIRED', 'the requirement did not change', after)
  })

  await step('authenticationManagement.addExecutionToFlow', async (rec) => {
    const forms = `${flowName} forms`
    await kc.authenticationManagement.addExecutionToFlow({ realm, flow: forms, provider: 'conditional-user-role' })
    await kc.authenticationManagement.addFlowToFlow({ realm, flow: forms, alias: `${flowName} extra`, type: 'basic-flow', provider: 'registration-page-form', description: 'extra' })
    let executions = await kc.authenticationManagement.getExecutions({ realm, flow: forms })
    const added = executions.find((e) => e.providerId === 'conditional-user-role')
    assert(added && added.requirement === 'DISABLED', 'the new execution is not DISABLED', executions)
    await kc.authenticationManagement.raisePriorityExecution({ realm, id: added.id })
    await kc.authenticationManagement.lowerPriorityExecution({ realm, id: added.id })
    const config = await kc.authenticationManagement.createConfig({ realm, id: added.id, alias: `${flowName}-role`, config: { condUserRole: realmRole } })
    rec.config = config && config.id
    assert(rec.config, 'createConfig returned no id', config)
    const got = await kc.authenticationManagement.getConfig({ realm, id: config.id })
    assert(got.config.condUserRole === realmRole, 'the config did not round-trip', got)
    await kc.authenticationManagement.delConfig({ realm, id: config.id })
    await kc.authenticationManagement.delExecution({ realm, id: added.id })
    executions = await kc.authenticationManagement.getExecutions({ realm, flow: forms })
    assert(!executions.some((e) => e.id === added.id), 'the execution is still there', executions)
  })

  await step('realms.update.browserFlow', async (rec) => {
    await kc.realms.update({ realm }, { browserFlow: flowName })
    const r = await kc.realms.findOne({ realm })
    rec.browserFlow = r.browserFlow
    assert(r.browserFlow === flowName, 'the browser flow is not bound', r.browserFlow)
    await kc.realms.update({ realm }, { browserFlow: 'browser' })
    const flows = await kc.authenticationManagement.getFlows({ realm })
    const mine = flows.find((f) => f.alias === flowName)
    await kc.authenticationManagement.deleteFlow({ realm, flowId: mine.id })
    const after = await kc.authenticationManagement.getFlows({ realm })
    assert(!after.some((f) => f.alias === flowName), 'the flow is still listed')
  })

  if (keep) {
    out.kept = true
  } else {
    await step('users.del', async () => {
      await kc.users.del({ realm, id: user.id })
      const after = await kc.users.find({ realm, username })
      assert(Array.isArray(after) && !after.some((x) => x.id === user.id), 'user still listed after users.del', after)
    })
    await step('clients.del', async () => {
      await kc.clients.del({ realm, id: client.id })
      const after = await kc.clients.find({ realm, clientId })
      assert(Array.isArray(after) && !after.some((x) => x.id === client.id), 'client still listed after clients.del', after)
    })
    await step('realms.del', async () => {
      await kc.realms.del({ realm })
      const after = await kc.realms.findOne({ realm })
      assert(after === null, 'realm still found after realms.del', after)
    })
  }

  out.ok = true
}

try {
  await main()
} catch (err) {
  out.ok = false
  out.failed_step = currentStep
  out.error = describeError(err)
  process.stderr.write(`keycloak_admin_client: step ${currentStep} failed: ${err && err.stack ? err.stack : err}\n`)
  if (err && err.responseData !== undefined) process.stderr.write(`  response: ${JSON.stringify(err.responseData)}\n`)
}
process.stdout.write(JSON.stringify(out) + '\n')
process.exitCode = out.ok ? 0 : 1
