/**
 * `comms login` / `comms logout` write docker's config.json as docker and oras do: against a real
 * docker-registry with Basic auth, what comms writes is read back by comms and by skopeo; a
 * credential store (credsStore) or per-registry helper (credHelpers) receives the secret instead
 * of the file; other fields of the file survive; the secret is never printed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { writeDockerConfig, TEST_CRED_HELPER } from '../support/docker-config.ts';
import { runComms } from '../support/cli.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { skopeoListTags } from '../support/skopeo.ts';
import { requireTools, skipMessage } from '../support/tools.ts';

if (!requireTools('docker-registry', 'skopeo')) {
  it('comms login', (t) => t.skip(skipMessage('docker-registry', 'skopeo')));
} else {
  describe('comms login / logout', () => {
    let registry: RegistryServer;
    let tokenRegistry: RegistryServer;
    before(async () => {
      [registry, tokenRegistry] = await Promise.all([startRegistry({ mode: 'basic' }), startRegistry({ mode: 'token' })]);
    });
    after(async () => {
      await Promise.all([registry?.stop(), tokenRegistry?.stop()]);
    });

    const send = (env: NodeJS.ProcessEnv, box: string) =>
      runComms(['send', '-m', 'hi', '--to', 'bob', '--repo', `${registry.host}/${box}`, '--no-sign', '--quiet'], { env });

    it('writes auths[host].auth (mode 0600) that comms and skopeo then use, keeps other fields, and logout removes it', async () => {
      await using cfg = await writeDockerConfig({
        auths: { 'other.example': { username: 'x', password: 'y' } },
        extra: { proxies: { default: { httpProxy: '' } } },
      });
      const env = { DOCKER_CONFIG: cfg.dir };
      const login = await runComms(['login', registry.host, '-u', registry.username!, '--password-stdin'], { stdin: `${registry.password}\n`, env });
      assert.equal(login.code, 0, login.stderr);
      assert.match(login.stdout, new RegExp(`logged in to ${registry.host.replace('.', '\\.')} as ${registry.username}`));
      assert.ok(!login.stdout.includes(registry.password!) && !login.stderr.includes(registry.password!), 'the secret is never printed');
      const config = JSON.parse(await readFile(cfg.configFile, 'utf8')) as { auths: Record<string, { auth: string }>; proxies: unknown };
      assert.equal(Buffer.from(config.auths[registry.host]!.auth, 'base64').toString(), `${registry.username}:${registry.password}`);
      assert.ok(config.auths['other.example'], 'other logins are kept');
      assert.deepEqual(config.proxies, { default: { httpProxy: '' } });
      assert.equal((await stat(cfg.configFile)).mode & 0o777, 0o600);

      const sent = await send(env, 'login/a');
      assert.equal(sent.code, 0, sent.stderr);
      assert.ok((await skopeoListTags(`${registry.host}/login/a`, { authFile: cfg.configFile })).length > 0, 'skopeo reads the login comms wrote');

      const logout = await runComms(['logout', registry.host], { env });
      assert.equal(logout.code, 0, logout.stderr);
      const after = JSON.parse(await readFile(cfg.configFile, 'utf8')) as { auths: Record<string, unknown> };
      assert.equal(after.auths[registry.host], undefined);
      assert.ok(after.auths['other.example']);
      const refused = await send(env, 'login/b');
      assert.equal(refused.code, 3, refused.stderr);
    });

    it('with credsStore, the helper stores the secret and config.json records only the login', async () => {
      await using cfg = await writeDockerConfig({ credsStore: TEST_CRED_HELPER });
      const login = await runComms(['login', registry.host, '-u', registry.username!, '--password-stdin', '--json'], {
        stdin: registry.password!,
        env: cfg.vars,
      });
      assert.equal(login.code, 0, login.stderr);
      assert.equal(login.json[0]!['credentialHelper'], TEST_CRED_HELPER);
      const text = await readFile(cfg.configFile, 'utf8');
      assert.ok(!text.includes(Buffer.from(`${registry.username}:${registry.password}`).toString('base64')) && !text.includes(registry.password!));
      assert.deepEqual((JSON.parse(text) as { auths: unknown }).auths, { [registry.host]: {} });
      const stored = JSON.parse(await readFile(cfg.credFile, 'utf8')) as Record<string, { Username: string; Secret: string }>;
      assert.deepEqual(stored[registry.host], { Username: registry.username, Secret: registry.password });
      assert.equal((await send(cfg.vars, 'login/c')).code, 0);

      const logout = await runComms(['logout', registry.host], { env: cfg.vars });
      assert.equal(logout.code, 0, logout.stderr);
      assert.deepEqual(JSON.parse(await readFile(cfg.credFile, 'utf8')), {});
      assert.deepEqual(
        cfg.helperCalls().filter((c) => c.action !== 'get'),
        [
          { action: 'store', server: registry.host },
          { action: 'erase', server: registry.host },
        ],
      );
    });

    it('with credHelpers for this registry, that helper gets the secret; a plaintext entry left from before is removed', async () => {
      await using cfg = await writeDockerConfig({
        credHelpers: { [registry.host]: TEST_CRED_HELPER },
        auths: { [registry.host]: { username: 'old', password: 'stale' } },
      });
      const login = await runComms(['login', registry.host, '-u', registry.username!, '--password-stdin'], { stdin: registry.password!, env: cfg.vars });
      assert.equal(login.code, 0, login.stderr);
      const config = JSON.parse(await readFile(cfg.configFile, 'utf8')) as { auths: Record<string, unknown>; credHelpers: Record<string, string> };
      assert.equal(config.auths[registry.host], undefined);
      assert.deepEqual(config.credHelpers, { [registry.host]: TEST_CRED_HELPER });
      assert.equal((await send(cfg.vars, 'login/d')).code, 0);
    });

    it('tries the credentials first, as docker login does: a wrong password is refused (exit 3) and nothing is stored', async () => {
      await using cfg = await writeDockerConfig({ auths: { 'other.example': { username: 'x', password: 'y' } } });
      const before = await readFile(cfg.configFile, 'utf8');
      const wrong = await runComms(['login', registry.host, '-u', registry.username!, '--password-stdin', '--json'], {
        stdin: 'not-the-password',
        env: { DOCKER_CONFIG: cfg.dir },
      });
      assert.equal(wrong.code, 3, wrong.stderr);
      assert.match(wrong.stderr, /"code":"LOGIN_REFUSED"/);
      assert.ok(!wrong.stderr.includes('not-the-password'));
      assert.equal(await readFile(cfg.configFile, 'utf8'), before);
      // A registry with Bearer token auth: the check gets a token from its realm.
      const ok = await runComms(['login', tokenRegistry.host, '-u', tokenRegistry.username!, '--password-stdin'], {
        stdin: tokenRegistry.password!,
        env: { DOCKER_CONFIG: cfg.dir },
      });
      assert.equal(ok.code, 0, ok.stderr);
      const bad = await runComms(['login', tokenRegistry.host, '-u', tokenRegistry.username!, '--password-stdin'], {
        stdin: 'wrong',
        env: { DOCKER_CONFIG: cfg.dir },
      });
      assert.equal(bad.code, 3, bad.stderr);
      // --no-check stores them untried.
      const untried = await runComms(['login', registry.host, '-u', 'someone', '--password-stdin', '--no-check'], {
        stdin: 'anything',
        env: { DOCKER_CONFIG: cfg.dir },
      });
      assert.equal(untried.code, 0, untried.stderr);
    });

    it('refuses without --password-stdin or with nothing on stdin, and a malformed config.json is left untouched', async () => {
      await using cfg = await writeDockerConfig();
      const noFlag = await runComms(['login', registry.host, '-u', 'u'], { env: { DOCKER_CONFIG: cfg.dir } });
      assert.equal(noFlag.code, 4);
      assert.match(noFlag.stderr, /--password-stdin/);
      const empty = await runComms(['login', registry.host, '-u', 'u', '--password-stdin'], { stdin: '', env: { DOCKER_CONFIG: cfg.dir } });
      assert.equal(empty.code, 4);
      await writeFile(cfg.configFile, '{"auths": {"x": ');
      const broken = await runComms(['login', registry.host, '-u', 'u', '--password-stdin'], { stdin: 'pw', env: { DOCKER_CONFIG: cfg.dir } });
      assert.equal(broken.code, 4, broken.stderr);
      assert.equal(await readFile(cfg.configFile, 'utf8'), '{"auths": {"x": ');
    });
  });
}
