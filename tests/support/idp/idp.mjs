// gigmcp's test OAuth/OIDC provider (oidc-provider). Tests only: dev keys, in-memory state, any login.
//
// env: PORT (required), CLIENT_ID, CLIENT_SECRET, REDIRECT_URI (the gateway's /oauth/callback),
//      ACCESS_TTL (seconds, default 3), REFRESH_TTL (seconds, default 86400),
//      DASHBOARD_CLIENT_ID, DASHBOARD_CLIENT_SECRET, DASHBOARD_REDIRECT_URI (/auth/callback),
//      DASHBOARD_POST_LOGOUT (where RP-initiated logout returns): the dashboard's OIDC login client
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

const clients = [{
  client_id: process.env.CLIENT_ID || 'gigmcp',
  client_secret: process.env.CLIENT_SECRET || 'test-client-secret',
  redirect_uris: [process.env.REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
}];
// The dashboard's OIDC login (DASHBOARD_*): a second confidential client with RP-initiated logout.
if (process.env.DASHBOARD_CLIENT_ID) {
  clients.push({
    client_id: process.env.DASHBOARD_CLIENT_ID,
    client_secret: process.env.DASHBOARD_CLIENT_SECRET,
    redirect_uris: [process.env.DASHBOARD_REDIRECT_URI],
    post_logout_redirect_uris: process.env.DASHBOARD_POST_LOGOUT ? [process.env.DASHBOARD_POST_LOGOUT] : [],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
}

// Any login works; a login starting with "admin" is in the admin group (both claim shapes, as
// `groups` and as Zitadel's project roles map), every login is in "staff".
const accountClaims = (id) => {
  const roles = id.startsWith('admin') ? ['gig-admin', 'staff'] : ['staff'];
  return {
    sub: id,
    name: `Test ${id}`,
    preferred_username: id,
    email: `${id}@example.test`,
    email_verified: true,
    groups: roles,
    'urn:zitadel:iam:org:project:roles': Object.fromEntries(roles.map((r) => [r, { '1234': 'example.test' }])),
  };
};

const provider = new Provider(ISSUER, {
  clients,
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', 'api', 'read_user', 'profile', 'email', 'groups', 'roles'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
    roles: ['urn:zitadel:iam:org:project:roles'],
  },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => accountClaims(id) }),
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
