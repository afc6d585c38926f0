/**
 * Proves the integration harness itself: each registry mode starts a real docker-registry that
 * enforces what the mode promises (checked with plain undici requests, not the project's client),
 * a killed registry restarts on the same port and storage, and the credential-helper fixture,
 * DOCKER_CONFIG writer and skopeo wrappers work against it.
 */
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import type { Dispatcher } from 'undici';
import { startRegistry } from '../support/registry.ts';
import type { RegistryMode, RegistryServer } from '../support/registry.ts';
import { requireTools, skipMessage } from '../support/tools.ts';
import { FIXTURES_BIN, TEST_CRED_HELPER, writeDockerConfig } from '../support/docker-config.ts';
import { SkopeoError, skopeoInspectRaw, skopeoListTags } from '../support/skopeo.ts';

const started: RegistryServer[] = [];
after(async () => {
  await Promise.all(started.map((r) => r.stop()));
});

/** Starts a registry that the file-level after() stops; skips (or throws in CI) without the tool. */
async function registry(t: TestContext, mode: RegistryMode): Promise<RegistryServer | undefined> {
  if (!requireTools('docker-registry', 'openssl')) {
    t.skip(skipMessage('docker-registry', 'openssl'));
    return undefined;
  }
  const server = await startRegistry({ mode });
  started.push(server);
  return server;
}

function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** Monolithic-after-POST blob upload: POST /blobs/uploads/ then PUT <location>&digest=. */
async function pushBlob(
  base: string,
  repo: string,
  data: Buffer,
  headers: Record<string, string> = {},
  dispatcher?: Dispatcher,
): Promise<{ postStatus: number; putStatus: number; location: string | null }> {
  const post = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers, ...(dispatcher ? { dispatcher } : {}) });
  await post.arrayBuffer();
  const location = post.headers.get('location');
  if (post.status !== 202 || location === null) return { postStatus: post.status, putStatus: 0, location };
  const url = new URL(location, base);
  url.searchParams.set('digest', sha256(data));
  const put = await fetch(url, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
    body: data,
    ...(dispatcher ? { dispatcher } : {}),
  });
  await put.arrayBuffer();
  return { postStatus: post.status, putStatus: put.status, location: put.headers.get('location') };
}

/** Parses `Bearer realm="...",service="...",scope="..."` into its parameters. */
function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(' ');
  const params: Record<string, string> = {};
  for (const m of header.slice(space + 1).matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) params[m[1]!] = m[2]!;
  return { scheme: header.slice(0, space), params };
}

describe('registry harness', () => {
  test('plain mode serves the v2 API over HTTP without auth', async (t) => {
    const r = await registry(t, 'plain');
    if (!r) return;
    assert.match(r.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${r.url}/v2/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    assert.deepEqual(await res.json(), {});
  });

  test('tls mode is refused without the test CA and accepted with it (IP and DNS names)', async (t) => {
    const r = await registry(t, 'tls');
    if (!r) return;
    assert.match(r.url, /^https:\/\//);
    assert.ok(r.caFile);
    const untrusting = new Agent();
    const trusting = new Agent({ connect: { ca: readFileSync(r.caFile, 'utf8') } });
    t.after(() => Promise.all([untrusting.close(), trusting.close()]));

    await assert.rejects(fetch(`${r.url}/v2/`, { dispatcher: untrusting }), (err: Error & { cause?: { code?: string } }) => {
      assert.match(String(err.cause?.code), /CERT|SIGNATURE|ISSUER/);
      return true;
    });
    const ok = await fetch(`${r.url}/v2/`, { dispatcher: trusting });
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
    const byName = await fetch(`https://localhost:${r.port}/v2/`, { dispatcher: trusting });
    assert.equal(byName.status, 200);
    await byName.arrayBuffer();
  });

  test('basic mode answers 401 to anonymous and wrong passwords, 200 to the user', async (t) => {
    const r = await registry(t, 'basic');
    if (!r?.username || !r.password) return assert.ok(!r, 'basic mode must provide a user');
    const anon = await fetch(`${r.url}/v2/`);
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic realm="comms-test"/);
    await anon.arrayBuffer();

    const wrong = await fetch(`${r.url}/v2/`, { headers: { authorization: basic(r.username, `${r.password}x`) } });
    assert.equal(wrong.status, 401);
    await wrong.arrayBuffer();

    const ok = await fetch(`${r.url}/v2/`, { headers: { authorization: basic(r.username, r.password) } });
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
  });

  test('token mode challenges with Bearer, and an issued token with push scope uploads a blob', async (t) => {
    const r = await registry(t, 'token');
    if (!r?.issuer || !r.username || !r.password) return assert.ok(!r, 'token mode must provide an issuer and user');
    const issuer = r.issuer;

    const anon = await fetch(`${r.url}/v2/`);
    assert.equal(anon.status, 401);
    await anon.arrayBuffer();
    const challenge = parseChallenge(anon.headers.get('www-authenticate') ?? '');
    assert.equal(challenge.scheme, 'Bearer');
    assert.equal(challenge.params.realm, issuer.realm);
    assert.equal(challenge.params.service, issuer.service);

    const repo = 'harness/token';
    const scope = `repository:${repo}:pull,push`;
    const realmUrl = (s: string): string =>
      `${challenge.params.realm}?service=${encodeURIComponent(challenge.params.service ?? '')}&scope=${encodeURIComponent(s)}`;

    // Wrong password: the issuer refuses; no token at all.
    const refused = await fetch(realmUrl(scope), { headers: { authorization: basic(r.username, 'wrong') } });
    assert.equal(refused.status, 401);
    await refused.arrayBuffer();

    const before = issuer.requestCount;
    const tokenRes = await fetch(realmUrl(scope), { headers: { authorization: basic(r.username, r.password) } });
    assert.equal(tokenRes.status, 200);
    const body = (await tokenRes.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    assert.equal(body.token, body.access_token);
    assert.equal(body.expires_in, issuer.expiresIn);
    assert.equal(issuer.requestCount, before + 1);
    assert.deepEqual(issuer.requests.at(-1)?.scopes, [{ type: 'repository', name: repo, actions: ['pull', 'push'] }]);
    assert.equal(issuer.requests.at(-1)?.user, r.username);

    const bearer = { authorization: `Bearer ${body.token}` };
    const v2 = await fetch(`${r.url}/v2/`, { headers: bearer });
    assert.equal(v2.status, 200);
    await v2.arrayBuffer();

    const blob = Buffer.from('harness token-mode blob\n');
    const pushed = await pushBlob(r.url, repo, blob, bearer);
    assert.equal(pushed.postStatus, 202);
    assert.equal(pushed.putStatus, 201);
    const head = await fetch(`${r.url}/v2/${repo}/blobs/${sha256(blob)}`, { method: 'HEAD', headers: bearer });
    assert.equal(head.status, 200);

    // The same token does not reach another repository (scope is enforced by the registry).
    const other = await fetch(`${r.url}/v2/harness/other/blobs/uploads/`, { method: 'POST', headers: bearer });
    assert.equal(other.status, 401);
    assert.match(other.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    await other.arrayBuffer();

    // An anonymous token carries no actions: the registry refuses the push.
    const anonToken = (await (await fetch(realmUrl(scope))).json()) as { token: string };
    const anonPush = await pushBlob(r.url, repo, blob, { authorization: `Bearer ${anonToken.token}` });
    assert.equal(anonPush.postStatus, 401);

    // A token whose exp is past the registry's 60 s leeway is rejected as invalid.
    const expired = issuer.issueToken(r.username, [{ type: 'repository', name: repo, actions: ['pull'] }], { expiresIn: -120 });
    const late = await fetch(`${r.url}/v2/${repo}/blobs/${sha256(blob)}`, { method: 'HEAD', headers: { authorization: `Bearer ${expired}` } });
    assert.equal(late.status, 401);
    assert.match(late.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  test('token mode: the OAuth2 POST flow (password, then refresh_token) yields tokens the registry accepts', async (t) => {
    const r = await registry(t, 'token');
    if (!r?.issuer || !r.username || !r.password) return assert.ok(!r, 'token mode must provide an issuer and user');
    const issuer = r.issuer;
    const form = (fields: Record<string, string>) => fetch(issuer.realm, { method: 'POST', body: new URLSearchParams({ service: issuer.service, ...fields }) });
    const scope = 'repository:harness/oauth:pull,push';

    const badLogin = await form({ grant_type: 'password', username: r.username, password: 'nope', scope });
    assert.equal(badLogin.status, 401);
    await badLogin.arrayBuffer();

    const login = await form({ grant_type: 'password', username: r.username, password: r.password, scope });
    assert.equal(login.status, 200);
    const { refresh_token: refreshToken } = (await login.json()) as { refresh_token: string };
    assert.equal(refreshToken, issuer.refreshTokenFor(r.username));

    const refreshed = await form({ grant_type: 'refresh_token', refresh_token: refreshToken, scope });
    assert.equal(refreshed.status, 200);
    const { access_token: accessToken } = (await refreshed.json()) as { access_token: string };
    assert.equal((await pushBlob(r.url, 'harness/oauth', Buffer.from('via refresh token'), { authorization: `Bearer ${accessToken}` })).putStatus, 201);

    const unknown = await form({ grant_type: 'refresh_token', refresh_token: 'refresh-unknown', scope });
    assert.equal(unknown.status, 401);
    await unknown.arrayBuffer();
  });

  test('kill() then restart() serves the blob pushed before, on the same port and storage', async (t) => {
    const r = await registry(t, 'plain');
    if (!r) return;
    const repo = 'harness/restart';
    const blob = Buffer.from('survives a SIGKILL\n');
    assert.equal((await pushBlob(r.url, repo, blob)).putStatus, 201);
    const firstPid = r.pid;

    await r.kill();
    assert.equal(r.running, false);
    const fresh = new Agent();
    t.after(() => fresh.close());
    await assert.rejects(fetch(`${r.url}/v2/`, { dispatcher: fresh }), /fetch failed/);

    await r.restart();
    assert.equal(r.running, true);
    assert.notEqual(r.pid, firstPid);
    const res = await fetch(`${r.url}/v2/${repo}/blobs/${sha256(blob)}`);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), blob);
  });

  test('an upload begun before kill() resumes after restart(), and not once the secret changes', async (t) => {
    const r = await registry(t, 'plain');
    if (!r) return;
    const data = Buffer.alloc(64 * 1024, 7);
    const half = data.length / 2;
    const begin = async (): Promise<URL> => {
      const post = await fetch(`${r.url}/v2/harness/resume/blobs/uploads/`, { method: 'POST' });
      await post.arrayBuffer();
      const patch = await fetch(new URL(post.headers.get('location') ?? '', r.url), {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${half - 1}` },
        body: data.subarray(0, half),
      });
      await patch.arrayBuffer();
      assert.equal(patch.status, 202);
      const url = new URL(patch.headers.get('location') ?? '', r.url);
      url.searchParams.set('digest', sha256(data));
      return url;
    };
    const finish = async (url: URL): Promise<number> => {
      const put = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: data.subarray(half) });
      await put.arrayBuffer();
      return put.status;
    };

    const kept = await begin();
    await r.kill();
    await r.restart();
    assert.equal(await finish(kept), 201);

    const orphaned = await begin();
    await r.kill();
    await r.restart({ httpSecret: 'a-different-secret' });
    assert.equal(await finish(orphaned), 404);
  });
});

describe('tool checks', () => {
  test('a missing tool is false outside CI and an error naming it and the install script in CI', (t) => {
    const saved = process.env.CI;
    t.after(() => {
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
    });
    process.env.CI = '';
    assert.equal(requireTools('comms-no-such-tool-1'), false);
    assert.equal(requireTools(process.execPath), true);
    for (const value of ['true', '1']) {
      process.env.CI = value;
      assert.throws(() => requireTools(process.execPath, 'comms-no-such-tool-1'), /comms-no-such-tool-1.*scripts\/install-test-deps\.sh/);
    }
  });
});

describe('credential helper fixture', () => {
  function runHelper(env: NodeJS.ProcessEnv, action: string, input: string): Promise<{ code: number; stdout: string }> {
    return new Promise((resolve) => {
      const child = execFile(join(FIXTURES_BIN, `docker-credential-${TEST_CRED_HELPER}`), [action], { env }, (err, stdout) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout });
      });
      child.stdin?.end(input);
    });
  }

  test('get answers known servers with JSON and unknown ones with the not-found text', async (t) => {
    const cfg = await writeDockerConfig({
      credsStore: TEST_CRED_HELPER,
      auths: { 'basic.example:5000': { username: 'alice', password: 's3cret' } },
      helperCredentials: { '127.0.0.1:5000': { Username: 'bob', Secret: 'pw' } },
    });
    t.after(() => cfg.cleanup());

    const config = JSON.parse(readFileSync(cfg.configFile, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(config, {
      auths: { 'basic.example:5000': { auth: Buffer.from('alice:s3cret').toString('base64') } },
      credsStore: 'test',
    });
    assert.equal(cfg.vars.DOCKER_CONFIG, cfg.dir);
    assert.ok(cfg.vars.PATH?.startsWith(FIXTURES_BIN));

    const known = await runHelper(cfg.env, 'get', '127.0.0.1:5000\n');
    assert.equal(known.code, 0);
    assert.deepEqual(JSON.parse(known.stdout), { ServerURL: '127.0.0.1:5000', Username: 'bob', Secret: 'pw' });

    const unknown = await runHelper(cfg.env, 'get', 'elsewhere:1');
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stdout.trim(), 'credentials not found in native keychain');
    assert.deepEqual(cfg.helperCalls(), [
      { action: 'get', server: '127.0.0.1:5000' },
      { action: 'get', server: 'elsewhere:1' },
    ]);
  });
});

describe('skopeo wrappers', () => {
  test('skopeo reads a manifest pushed over token auth byte for byte, and fails clearly without creds', async (t) => {
    if (!requireTools('skopeo')) return t.skip(skipMessage('skopeo'));
    const r = await registry(t, 'token');
    if (!r?.issuer || !r.username || !r.password) return;
    const repo = 'harness/skopeo';
    const token = r.issuer.issueToken(r.username, [{ type: 'repository', name: repo, actions: ['pull', 'push'] }]);
    const auth = { authorization: `Bearer ${token}` };

    const config = Buffer.from('{}');
    assert.equal((await pushBlob(r.url, repo, config, auth)).putStatus, 201);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.comms.test',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(config), size: config.length }],
      }),
    );
    const put = await fetch(`${r.url}/v2/${repo}/manifests/v1`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    assert.equal(put.status, 201, await put.text());

    const creds = { creds: `${r.username}:${r.password}` };
    assert.deepEqual(await skopeoInspectRaw(`${r.host}/${repo}:v1`, creds), manifest);
    assert.deepEqual(await skopeoListTags(`${r.host}/${repo}`, creds), ['v1']);
    await assert.rejects(skopeoInspectRaw(`${r.host}/${repo}:v1`), (err: unknown) => {
      assert.ok(err instanceof SkopeoError);
      assert.match(err.stderr, /unauthorized|authentication required/i);
      return true;
    });
  });
});
