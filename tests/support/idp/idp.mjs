// gigmcp's test OAuth/OIDC provider (oidc-provider). Tests only: dev keys, in-memory state, any login.
//
// env: PORT (required), CLIENT_ID, CLIENT_SECRET, REDIRECT_URI (the gateway's /oauth/callback),
//      ACCESS_TTL (seconds, default 3), REFRESH_TTL (seconds, default 86400)
//
// One confidential client (client_secret_basic, PKCE required). Plain OAuth 2.0 scopes (`api`,
// `read_user`) as GitLab has them, refresh tokens for every code grant, rotated on every use; reusing a
// rotated refresh token revokes the whole grant (oidc-provider's default), so a double refresh shows.
// GET /_test/stats counts token requests per grant type and result, and revocations: never a token.
import { Provider } from 'oidc-provider';

const PORT = Number(process.env.PORT);
const ISSUER = `http://127.0.0.1:${PORT}`;
const ACCESS_TTL = Number(process.env.ACCESS_TTL || 3);
const REFRESH_TTL = Number(process.env.REFRESH_TTL || 86400);

const stats = { token: {}, revocation: 0, introspection: 0 };
const count = (grantType, outcome) => {
  const slot = (stats.token[grantType] ||= { ok: 0, error: 0 });
  slot[outcome] += 1;
};

const provider = new Provider(ISSUER, {
  clients: [{
    client_id: process.env.CLIENT_ID || 'gigmcp',
    client_secret: process.env.CLIENT_SECRET || 'test-client-secret',
    redirect_uris: [process.env.REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', 'api', 'read_user'],
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  cookies: { keys: ['gigmcp-test-idp-cookie-key'] },
  ttl: {
    AccessToken: ACCESS_TTL,
    RefreshToken: REFRESH_TTL,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 86400,
    Grant: 86400,
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
});

provider.use(async (ctx, next) => {
  if (ctx.path === '/_test/stats') {
    ctx.body = stats;
    return;
  }
  await next();
  if (ctx.method !== 'POST') return;
  if (ctx.path === '/token') {
    const grantType = ctx.oidc?.params?.grant_type || 'unknown';
    const outcome = ctx.status === 200 ? 'ok' : 'error';
    count(grantType, outcome);
    console.log(JSON.stringify({ event: 'token', grant_type: grantType, status: ctx.status, at: Date.now() / 1000 }));
  } else if (ctx.path === '/token/revocation' && ctx.status === 200) {
    stats.revocation += 1;
  } else if (ctx.path === '/token/introspection') {
    stats.introspection += 1;
  }
});

provider.listen(PORT, '127.0.0.1', () => console.log(JSON.stringify({ event: 'ready', issuer: ISSUER })));
