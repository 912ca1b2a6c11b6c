// A real OpenID provider (npm oidc-provider, OpenID Certified) on loopback
// HTTPS for kubegate's end-to-end tests. kubegate sees only what any
// provider serves: discovery, JWKS, and the device / code flows.
//
//   node idp.mjs --cert C --key K --port-file F --private-jwks-out P
//
// The test drives it through a control path under /__test/ that no real
// provider has and kubegate never calls:
//   GET  /__test/mint?sub=alice&email=...&groups=a,b   an ID token the provider signs
//   POST /__test/rotate                                 new signing key; the old one is dropped
//   POST /__test/approve-device?user_code=X&sub=alice   the person approves a device sign-in
//   POST /__test/down, /__test/up                       discovery and JWKS answer 503 / again
//   GET  /__test/stats                                  {"jwks_served": N}
// --private-jwks-out writes the current private signing keys (JWKS) so
// the tests can sign negative-case tokens with python3-jwt; it is rewritten
// on rotation.
import https from 'node:https';
import fs from 'node:fs';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);

let generation = 0;
function newKey(alg) {
  generation += 1;
  const { privateKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: `${alg.toLowerCase()}-${generation}`, alg, use: 'sig' };
}

const accounts = new Map();
let down = false;
let jwksServed = 0;
let provider;
let keys;

async function findAccount(ctx, sub) {
  const a = accounts.get(sub) || { email: `${sub}@example.com`, groups: [] };
  return { accountId: sub, claims: () => ({ sub, email: a.email, email_verified: true, groups: a.groups }) };
}

function makeProvider(issuer) {
  const p = new Provider(issuer, {
    jwks: { keys },
    clients: [{
      client_id: 'kubegate',
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      id_token_signed_response_alg: args.alg || 'RS256',
    }],
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256'] },
    features: { deviceFlow: { enabled: true }, devInteractions: { enabled: true } },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
    pkce: { required: () => true },
    // ID tokens carry the scoped claims (email, groups) themselves: that is
    // what kubegate, like kube-apiserver, reads.
    conformIdTokenClaims: false,
    findAccount,
  });
  p.proxy = false;
  return p;
}

function writePrivate() {
  if (args['private-jwks-out']) fs.writeFileSync(args['private-jwks-out'], JSON.stringify({ keys }), { mode: 0o600 });
}

const server = https.createServer({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) });
server.on('request', async (req, res) => {
  const url = new URL(req.url, provider.issuer);
  try {
    if (url.pathname === '/__test/mint') {
      const sub = url.searchParams.get('sub') || 'alice';
      accounts.set(sub, {
        email: url.searchParams.get('email') || `${sub}@example.com`,
        groups: (url.searchParams.get('groups') || '').split(',').filter(Boolean),
      });
      const client = await provider.Client.find('kubegate');
      const account = await findAccount(undefined, sub);
      const token = new provider.IdToken({ ...(await account.claims()) }, { client });
      token.scope = 'openid email groups';
      const jwt = await token.issue({ use: 'idtoken' });
      res.writeHead(200, { 'content-type': 'text/plain' }).end(jwt);
      return;
    }
    if (url.pathname === '/__test/approve-device' && req.method === 'POST') {
      // The person's consent for a device code, as the provider's device
      // page records it after they sign in and confirm: the code gets their
      // account and a grant of the scopes the device asked for.
      const userCode = (url.searchParams.get('user_code') || '').toUpperCase().replace(/\W/g, '');
      const sub = url.searchParams.get('sub') || 'alice';
      accounts.set(sub, {
        email: url.searchParams.get('email') || `${sub}@example.com`,
        groups: (url.searchParams.get('groups') || '').split(',').filter(Boolean),
      });
      const code = await provider.DeviceCode.findByUserCode(userCode);
      if (!code) {
        res.writeHead(404).end('no such user code');
        return;
      }
      const scope = code.params.scope || 'openid';
      const grant = new provider.Grant({ accountId: sub, clientId: code.clientId });
      grant.addOIDCScope(scope);
      code.accountId = sub;
      code.grantId = await grant.save();
      code.scope = scope;
      code.authTime = Math.floor(Date.now() / 1000);
      await code.save();
      res.writeHead(200).end('approved');
      return;
    }
    if (url.pathname === '/__test/rotate' && req.method === 'POST') {
      keys = [newKey(args.alg || 'RS256')];
      writePrivate();
      provider = makeProvider(provider.issuer);
      res.writeHead(200).end(keys[0].kid);
      return;
    }
    if (url.pathname === '/__test/down' || url.pathname === '/__test/up') {
      down = url.pathname === '/__test/down';
      res.writeHead(200).end('ok');
      return;
    }
    if (url.pathname === '/__test/stats') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jwks_served: jwksServed }));
      return;
    }
    if (down) {
      res.writeHead(503).end('down');
      return;
    }
    if (url.pathname === '/jwks') jwksServed += 1;
    provider.callback()(req, res);
  } catch (e) {
    res.writeHead(500).end(String(e && e.stack));
  }
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  keys = [newKey(args.alg || 'RS256')];
  writePrivate();
  provider = makeProvider(`https://127.0.0.1:${port}`);
  if (args['port-file']) fs.writeFileSync(args['port-file'], String(port));
  console.log(`idp listening on https://127.0.0.1:${port}`);
});
