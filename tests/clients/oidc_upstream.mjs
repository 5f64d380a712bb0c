#!/usr/bin/env node
// An upstream OpenID provider for the brokering tests: npm's oidc-provider on
// 127.0.0.1:PORT with its development login and consent pages (any login, any password),
// one confidential client (`portcullis`, client_secret_basic, PKCE required) whose redirect
// URI is REDIRECT_URI, and accounts whose claims include a `groups` list. Prints "ready".
import Provider from 'oidc-provider'

const port = Number(process.env.PORT)
const redirect = process.env.REDIRECT_URI
if (!port || !redirect) throw new Error('PORT and REDIRECT_URI are required')

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'portcullis',
    client_secret: 'upstream-secret-1',
    redirect_uris: [redirect],
    token_endpoint_auth_method: 'client_secret_basic'
  }],
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
  features: { devInteractions: { enabled: true } }
})
provider.listen(port, '127.0.0.1', () => { console.log('ready') })
