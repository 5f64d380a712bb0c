// Lists every operation of @keycloak/keycloak-admin-client (the version in package.json) as
// {resource, op, method, path}: each operation is called once against a fetch that only
// records the request, with every URL parameter set to `:name`. The list is committed as
// admin-client-operations.json; `cargo test admin_client_coverage` reads it and counts
// which operations the admin API's route tables answer.
//
//   node tests/clients/admin_client_operations.mjs > tests/clients/admin-client-operations.json
const { default: KcAdminClient } = await import('@keycloak/keycloak-admin-client')

const calls = []
globalThis.fetch = async (url, init) => {
  calls.push({ method: (init && init.method) || 'GET', url: String(url) })
  return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } })
}
// Every URL parameter name the library uses, as placeholders.
const names = ['id', 'clientUniqueId', 'roleName', 'name', 'groupId', 'alias', 'mapperId',
  'credentialId', 'newPreviousCredentialId', 'flow', 'flowAlias', 'executionId', 'locale', 'key',
  'componentId', 'clientScopeId', 'scopeId', 'userId', 'sessionId', 'providerId', 'parentId',
  'orgId', 'type', 'client', 'clientId', 'roleId', 'policyId', 'resourceId', 'permissionId',
  'action', 'realmName', 'targetRealm', 'path', 'attributeName', 'node', 'groupName',
  'identityProviderAlias', 'kid', 'workflowId', 'mapperType', 'providerType', 'section',
  'selectedLocale', 'session', 'clientScopeName', 'executionAlias', 'requiredActionAlias',
  'protocol', 'flowId', 'roleContainer', 'attr', 'federatedIdentityId']
const kc = new KcAdminClient({ baseUrl: 'http://h', realmName: 'r' })
kc.accessToken = 't'
const ops = []
for (const [resource, res] of Object.entries(kc)) {
  if (!res || typeof res !== 'object') continue
  for (const [op, fn] of Object.entries(res)) {
    if (typeof fn !== 'function') continue
    const before = calls.length
    const payload = Object.fromEntries(names.map((n) => [n, `:${n}`]))
    payload.realm = 'r'
    try { await fn(payload, {}) } catch (e) { /* only the request matters */ }
    const call = calls[before]
    if (call) {
      ops.push({ resource, op, method: call.method, path: decodeURIComponent(new URL(call.url).pathname) })
    }
  }
}
process.stdout.write(JSON.stringify(ops, null, 1) + '\n')
