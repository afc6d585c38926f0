/**
 * Authentication against real docker-registry servers: htpasswd Basic auth, and Bearer token
 * auth (the registry verifies JWTs from the suite's token issuer). Credentials come from a
 * docker config.json and from a credential helper (fixtures/bin/docker-credential-test). A wrong
 * password is AuthError (exit 3) naming the registry, with no secret in it. Tokens are cached:
 * many operations cost one token request per scope.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AuthError, ExitCode } from '../../src/errors.ts';
import { DockerConfigCredentialStore, StaticCredentialStore, type CredentialStore } from '../../src/oci/auth/credentials.ts';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';
import { RegistryClient, type RequestEvent } from '../../src/oci/remote/index.ts';
import type { Repository } from '../../src/oci/target.ts';
import { TEST_CRED_HELPER, writeDockerConfig, type DockerConfigDir } from '../support/docker-config.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { requireTool, skipMessage } from '../support/tools.ts';
import { rejection } from '../support/rejection.ts';

const available = requireTool('docker-registry');

/** Pushes a blob and a tagged manifest, reads both back: what every auth path must allow. */
async function roundTrip(repo: Repository): Promise<void> {
  const data = new TextEncoder().encode(`payload ${randomBytes(8).toString('hex')}`);
  const layer: Descriptor = { mediaType: 'application/octet-stream', digest: digestOf(data), size: data.length };
  await repo.push({ mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: 2 }, EMPTY_JSON_BYTES);
  await repo.push(layer, data);
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ImageManifest,
      config: { mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: 2 },
      layers: [layer],
    }),
  );
  const desc: Descriptor = { mediaType: MediaType.ImageManifest, digest: digestOf(manifest), size: manifest.length };
  await repo.pushManifest(desc, manifest, 'v1');
  assert.equal((await repo.resolve('v1')).digest, desc.digest);
  const chunks: Buffer[] = [];
  for await (const c of await repo.fetch(layer)) chunks.push(c as Buffer);
  assert.deepEqual(Buffer.concat(chunks), Buffer.from(data));
}

function secretFree(err: unknown, ...secrets: string[]): void {
  const e = err as Error;
  const everything = JSON.stringify({ ...e, message: e.message, stack: e.stack, cause: String((e as { cause?: unknown }).cause) });
  for (const s of secrets) {
    assert.ok(!everything.includes(s), 'a secret appears in the error');
    assert.ok(!everything.includes(Buffer.from(s).toString('base64')), 'a base64 secret appears in the error');
  }
}

async function expectAuthError(p: Promise<unknown>, host: string, ...secrets: string[]): Promise<void> {
  const err = await rejection(p, 'expected AuthError');
  assert.ok(err instanceof AuthError, `got ${String(err)}`);
  assert.equal(err.exitCode, ExitCode.AUTH);
  assert.ok(err.message.includes(host), `the message names the registry: ${err.message}`);
  secretFree(err, ...secrets);
}

if (!available) {
  it('registry auth', (t) => t.skip(skipMessage('docker-registry')));
} else {
  for (const mode of ['basic', 'token'] as const) {
    describe(`${mode} auth on docker-registry`, () => {
      let server: RegistryServer;
      let helperConfig: DockerConfigDir;
      let fileConfig: DockerConfigDir;
      const clients: RegistryClient[] = [];
      const open = (credentials: CredentialStore | undefined, onRequest?: (e: RequestEvent) => void): RegistryClient => {
        const c = new RegistryClient({ plainHttp: true, ...(credentials ? { credentials } : {}), ...(onRequest ? { onRequest } : {}) });
        clients.push(c);
        return c;
      };

      before(async () => {
        server = await startRegistry({ mode });
        const user = server.username as string;
        const password = server.password as string;
        fileConfig = await writeDockerConfig({ auths: { [server.host]: { username: user, password } } });
        helperConfig = await writeDockerConfig({
          credHelpers: { [server.host]: TEST_CRED_HELPER },
          helperCredentials: { [server.host]: { Username: user, Secret: password } },
        });
      });
      after(async () => {
        for (const c of clients) await c.close();
        await server.stop();
        await fileConfig.cleanup();
        await helperConfig.cleanup();
      });

      it('succeeds with credentials from config.json', async () => {
        const store = new DockerConfigCredentialStore({ configDir: fileConfig.dir, env: fileConfig.env });
        await roundTrip(open(store).repository(`${server.host}/auth/config-json`));
      });

      it('succeeds with credentials from a credential helper, asked once per client', async () => {
        const store = new DockerConfigCredentialStore({ configDir: helperConfig.dir, env: helperConfig.env });
        await roundTrip(open(store).repository(`${server.host}/auth/helper`));
        assert.deepEqual(helperConfig.helperCalls(), [{ action: 'get', server: server.host }]);
      });

      it('a wrong password is AuthError (exit 3) naming the registry, with no secret in it', async () => {
        const wrong = `wrong-${randomBytes(9).toString('hex')}`;
        const store = new StaticCredentialStore({ [server.host]: { username: server.username as string, password: wrong } });
        const repo = open(store).repository(`${server.host}/auth/denied`);
        await expectAuthError(repo.fetchManifest('v1'), server.host, wrong);
        await expectAuthError(
          repo.push({ mediaType: 'application/octet-stream', digest: digestOf('x'), size: 1 }, new TextEncoder().encode('x')),
          server.host,
          wrong,
        );
      });

      it('no credentials at all is AuthError (exit 3) too', async () => {
        await expectAuthError(open(undefined).repository(`${server.host}/auth/anonymous`).fetchManifest('v1'), server.host);
      });

      if (mode === 'token') {
        it('an identity token (refresh token) is exchanged at the realm', async () => {
          const issuer = server.issuer!;
          const refresh = issuer.refreshTokenFor(server.username as string);
          const store = new StaticCredentialStore({ [server.host]: { identityToken: refresh } });
          issuer.resetRequests();
          await roundTrip(open(store).repository(`${server.host}/auth/identity`));
          assert.ok(issuer.requests.length > 0);
          assert.ok(issuer.requests.every((r) => r.grantType === 'refresh_token' && r.status === 200));
        });

        it('caches tokens: many operations cost one token request per scope', async () => {
          const issuer = server.issuer!;
          const store = new StaticCredentialStore({ [server.host]: { username: server.username as string, password: server.password as string } });
          const events: RequestEvent[] = [];
          const client = open(store, (e) => events.push(e));
          const repo = client.repository(`${server.host}/auth/cache`);
          await roundTrip(repo); // push, then pull
          issuer.resetRequests();
          // A fresh client has an empty cache; 20 pulls on it need one token.
          const fresh = open(store).repository(`${server.host}/auth/cache`);
          await Promise.all(Array.from({ length: 10 }, () => fresh.resolve('v1')));
          for (let i = 0; i < 10; i++) await fresh.fetchManifest('v1');
          assert.equal(issuer.requests.length, 1, `token requests: ${JSON.stringify(issuer.requests.map((r) => r.scopes))}`);
          // The first client pushed and pulled: its token requests were one per distinct scope set.
          const tokenCalls = events.filter((e) => e.url.startsWith(issuer.realm));
          const scopes = tokenCalls.map((e) => new URL(e.url).searchParams.getAll('scope').join(' '));
          assert.equal(new Set(scopes).size, scopes.length, `a scope was fetched twice: ${scopes.join(' | ')}`);
        });
      }
    });
  }
}
