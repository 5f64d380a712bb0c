#!/usr/bin/env node
// The comparison point of the load harness (benches/load.rs): npm's oidc-provider, one
// process, issuing JWT access tokens for client_credentials with the same algorithm as
// Portcullis (ALG, default ES256), with introspection on. Listens on 127.0.0.1:PORT and
// prints "ready" once it does.
//
// Environment: PORT (required), ALG (ES256 | RS256), CLIENT_SECRET (default "bench-secret").

import crypto from 'node:crypto'
import Provider from 'oidc-provider'

const port = Number(process.env.PORT)
const alg = process.env.ALG || 'ES256'
const secret = process.env.CLIENT_SECRET || 'bench-secret'
if (!port) throw new Error('PORT is required')

function jwk (alg) {
  const { privateKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: `bench-${alg}` }
}

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'svc',
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_post',
    id_token_signed_response_alg: alg
  }],
  jwks: { keys: [jwk(alg)] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:bench:api',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api',
        audience: 'urn:bench:api',
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg } }
      })
    }
  }
})
provider.proxy = false
provider.listen(port, '127.0.0.1', () => console.log('ready'))
