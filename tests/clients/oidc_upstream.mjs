#!/usr/bin/env node
// An upstream OpenID provider for the brokering tests: npm's oidc-provider on
// 127.0.0.1:PORT with its development login and consent pages (any login, any password),
// one confidential client (`portcullis`, client_secret_basic, PKCE required) whose redirect
// URI is REDIRECT_URI, and accounts whose claims include a `groups` list. With JWT_REDIRECT_URI
// also a client authenticating by `client_secret_jwt`, with PK_REDIRECT_URI and JWKS_URI one
// by `private_key_jwt` (its keys read from JWKS_URI: the broker realm's). Prints "ready".
import Provider from 'oidc-provider'

const port = Number(process.env.PORT)
const redirect = process.env.REDIRECT_URI
if (!port || !redirect) throw new Error('PORT and REDIRECT_URI are required')

const clients = [{
  client_id: 'portcullis',
  client_secret: 'upstream-secret-1',
  redirect_uris: [redirect],
  token_endpoint_auth_method: 'client_secret_basic'
}]
if (process.env.JWT_REDIRECT_URI) {
  clients.push({
    client_id: 'portcullis-jwt',
    client_secret: 'upstream-jwt-secret-0123456789abcdef0123456789',
    redirect_uris: [process.env.JWT_REDIRECT_URI],
    token_endpoint_auth_method: 'client_secret_jwt',
    token_endpoint_auth_signing_alg: 'HS256'
  })
}
if (process.env.PK_REDIRECT_URI && process.env.JWKS_URI) {
  clients.push({
    client_id: 'portcullis-pk',
    redirect_uris: [process.env.PK_REDIRECT_URI],
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'RS256',
    jwks_uri: process.env.JWKS_URI
  })
}

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients,
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({
      sub: id,
      email: `${id}@corp.example`,
      email_verified: true,
      given_name: 'Gina',
      family_name: 'Corp',
      preferred_username: id,
      groups: id === 'gina' ? ['admins', 'staff'] : ['staff']
    })
  }),
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['given_name', 'family_name', 'preferred_username'],
    groups: ['groups']
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  // The ID token carries the claims too (mappers read them there).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  // Its SSRF guard refuses loopback addresses, and the broker's JWKS (for
  // private_key_jwt) is on loopback here: fetch without that guard.
  fetch: (url, options) => {
    delete options.dispatcher
    return fetch(url, options)
  },
  features: { devInteractions: { enabled: true } }
})
// Why a client was refused, for the test's output (oidc-provider's answer says only
// "client authentication failed").
for (const event of ['grant.error', 'server_error']) {
  provider.on(event, (ctx, err) => {
    console.log(`oidc-provider ${event}: ${err.message} ${err.error_description || ''} ${err.cause ? (err.cause.error_description || err.cause.message) : ''} ${err.cause && err.cause.cause ? err.cause.cause.message : ''}`)
  })
}
provider.listen(port, '127.0.0.1', () => { console.log('ready') })
