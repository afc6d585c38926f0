import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { inspect } from 'node:util';
import { AbortError, AuthError, ProtocolError, UsageError } from '../../src/errors.ts';
import {
  ChainCredentialStore,
  DockerConfigCredentialStore,
  EnvCredentialStore,
  StaticCredentialStore,
  defaultCredentialStore,
  type Credential,
  type CredentialStore,
} from '../../src/oci/auth/credentials.ts';

const SECRET = 'hunter2-S3CRET-value';
const b64 = (s: string): string => Buffer.from(s).toString('base64');

let root: string;
let binDir: string;
let logDir: string;
let configCount = 0;

/** A `docker-credential-<name>` shell script in the test's own PATH directory. */
async function helper(name: string, body: string): Promise<void> {
  const file = join(binDir, `docker-credential-${name}`);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
}

/** The environment helpers run in: only our bin dir (plus the system's, for sh/cat) on PATH. */
function helperEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: `${binDir}${delimiter}/usr/bin${delimiter}/bin`, HELPER_LOG: logDir, ...extra };
}

/** A fresh DOCKER_CONFIG directory holding `config` (an object, or raw text). */
async function dockerConfig(config: unknown): Promise<string> {
  const dir = join(root, `config-${++configCount}`);
  await mkdir(dir);
  await writeFile(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

function store(configDir: string, extra: { helperTimeoutMs?: number } = {}): DockerConfigCredentialStore {
  return new DockerConfigCredentialStore({ configDir, env: helperEnv(), ...extra });
}

/** Every place a thrown error could carry text: message, stack, own properties, the cause chain. */
function assertNoSecret(err: unknown, secret: string = SECRET): void {
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 10; depth++) {
    assert.ok(!inspect(e, { depth: 10, showHidden: true }).includes(secret), `secret leaked via ${inspect(e)}`);
    if (typeof e === 'object') {
      for (const key of Object.getOwnPropertyNames(e)) {
        assert.ok(!String((e as Record<string, unknown>)[key]).includes(secret), `secret leaked in property ${key}`);
        try {
          assert.ok(!JSON.stringify((e as Record<string, unknown>)[key] ?? null).includes(secret), `secret leaked in property ${key}`);
        } catch {
          // cyclic values are covered by inspect above
        }
      }
    }
    e = (e as { cause?: unknown }).cause;
  }
}

async function rejectsWithout(p: Promise<unknown>, check: (err: unknown) => boolean, secret: string = SECRET): Promise<unknown> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    return check(err);
  });
  assertNoSecret(caught, secret);
  return caught;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'comms-cred-'));
  binDir = join(root, 'bin');
  logDir = join(root, 'log');
  await mkdir(binDir);
  await mkdir(logDir);
  // Records what it was asked (argv and stdin), answers with a username and password.
  await helper(
    'ok',
    `url=$(cat); printf '%s|%s' "$*" "$url" > "$HELPER_LOG/ok"; printf '{"ServerURL":"%s","Username":"helper-user","Secret":"${SECRET}"}' "$url"`,
  );
  await helper('tok', `cat >/dev/null; printf '{"Username":"<token>","Secret":"refresh-${SECRET}"}'`);
  await helper('empty', `cat >/dev/null; printf '{"Username":"","Secret":""}'`);
  await helper('none', `cat >/dev/null; echo "credentials not found in native keychain"; exit 1`);
  await helper('leaky', `cat >/dev/null; echo "oops ${SECRET}"; echo "stderr ${SECRET}" >&2; exit 3`);
  await helper('garbage', `cat >/dev/null; echo "user:${SECRET}"`);
  await helper('badtype', `cat >/dev/null; printf '{"Username":"u","Secret":12}'`);
  await helper('huge', `cat >/dev/null; head -c 2000000 /dev/zero | tr '\\0' 'x'`);
  await helper('hang', `exec sleep 30`);
  await helper('noread', `printf '{"Username":"u","Secret":"p"}'`);
  await writeFile(join(binDir, 'docker-credential-noexec'), '#!/bin/sh\necho x\n');
  await chmod(join(binDir, 'docker-credential-noexec'), 0o644);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('auths entries: base64 auth, username/password, identitytoken, registrytoken', async () => {
  const dir = await dockerConfig({
    auths: {
      'ghcr.io': { auth: b64(`alice:${SECRET}:with-colon`) },
      'quay.io': { username: 'bob', password: SECRET },
      'registry.example.com': { auth: b64('carol:x'), identitytoken: `refresh-${SECRET}` },
      'tokens.example.com': { registrytoken: `access-${SECRET}` },
      'empty.example.com': {},
    },
  });
  const s = store(dir);
  assert.deepEqual(await s.get('ghcr.io'), { username: 'alice', password: `${SECRET}:with-colon` });
  assert.deepEqual(await s.get('quay.io'), { username: 'bob', password: SECRET });
  assert.deepEqual(await s.get('registry.example.com'), { username: 'carol', password: 'x', identityToken: `refresh-${SECRET}` });
  assert.deepEqual(await s.get('tokens.example.com'), { registryToken: `access-${SECRET}` });
  assert.equal(await s.get('empty.example.com'), undefined);
  assert.equal(await s.get('other.example.com'), undefined);
});

test('auths keys may be URLs; Docker Hub is https://index.docker.io/v1/ under any of its names', async () => {
  const dir = await dockerConfig({
    auths: {
      'https://index.docker.io/v1/': { auth: b64('hub:hubpass') },
      'http://localhost:5000/v2/': { auth: b64('local:localpass') },
      'https://GHCR.io': { auth: b64('gh:ghpass') },
    },
  });
  const s = store(dir);
  for (const r of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
    assert.deepEqual(await s.get(r), { username: 'hub', password: 'hubpass' }, r);
  }
  assert.deepEqual(await s.get('localhost:5000'), { username: 'local', password: 'localpass' });
  assert.equal(await s.get('localhost:5001'), undefined);
  assert.deepEqual(await s.get('ghcr.io'), { username: 'gh', password: 'ghpass' });
});

test('an exact key wins over a URL form of the same host', async () => {
  const dir = await dockerConfig({ auths: { 'https://ghcr.io/': { auth: b64('url:1') }, 'ghcr.io': { auth: b64('exact:2') } } });
  assert.deepEqual(await store(dir).get('ghcr.io'), { username: 'exact', password: '2' });
});

test('DOCKER_CONFIG, then $HOME/.docker, locate config.json; a missing file means no credentials', async () => {
  const dir = await dockerConfig({ auths: { 'ghcr.io': { auth: b64('env:pass') } } });
  assert.deepEqual(await new DockerConfigCredentialStore({ env: { DOCKER_CONFIG: dir } }).get('ghcr.io'), { username: 'env', password: 'pass' });

  const home = join(root, 'home');
  await mkdir(join(home, '.docker'), { recursive: true });
  await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { 'ghcr.io': { auth: b64('home:pass') } } }));
  assert.deepEqual(await new DockerConfigCredentialStore({ env: { HOME: home } }).get('ghcr.io'), { username: 'home', password: 'pass' });

  assert.equal(await new DockerConfigCredentialStore({ configDir: join(root, 'does-not-exist') }).get('ghcr.io'), undefined);
  assert.equal(await new DockerConfigCredentialStore({ configDir: join(dir, 'config.json') }).get('ghcr.io'), undefined);
});

test('a malformed config.json is a ProtocolError naming the file, never its content', async () => {
  const cases: [unknown, RegExp][] = [
    [`{"auths": {"ghcr.io": {"auth": "${SECRET}"}} trailing ${SECRET}`, /not valid JSON/],
    [`${SECRET}`, /not valid JSON/],
    ['[1,2]', /top level is not a JSON object/],
    [{ auths: [SECRET] }, /"auths" is not an object/],
    [{ auths: { 'ghcr.io': SECRET } }, /auths\["ghcr.io"\] is not an object/],
    [{ auths: { 'ghcr.io': { auth: 12, password: SECRET } } }, /auths\["ghcr.io"\]\.auth is not a string/],
    [{ auths: { 'ghcr.io': { auth: SECRET } } }, /auths\["ghcr.io"\]\.auth is not base64/],
    [{ auths: { 'ghcr.io': { auth: b64(`no-colon-${SECRET}`) } } }, /auths\["ghcr.io"\]\.auth is not base64/],
    [{ credHelpers: { 'ghcr.io': 7 } }, /credHelpers\["ghcr.io"\] is not a string/],
    [{ credsStore: {} }, /"credsStore" is not a string/],
  ];
  for (const [config, why] of cases) {
    const dir = await dockerConfig(config);
    const err = await rejectsWithout(store(dir).get('ghcr.io'), (e) => e instanceof ProtocolError && e.exitCode === 4 && why.test(e.message));
    assert.ok((err as Error).message.includes(join(dir, 'config.json')), 'the message names the file');
  }
});

test('credHelpers[host] runs docker-credential-<name> get with the server URL on stdin', async () => {
  const dir = await dockerConfig({ credHelpers: { 'ghcr.io': 'ok' }, auths: { 'ghcr.io': { auth: b64('file:ignored') } } });
  assert.deepEqual(await store(dir).get('ghcr.io'), { username: 'helper-user', password: SECRET });
  assert.equal(await readFile(join(logDir, 'ok'), 'utf8'), 'get|ghcr.io');
});

test('Docker Hub lookups send https://index.docker.io/v1/ to the helper', async () => {
  const dir = await dockerConfig({ credHelpers: { 'https://index.docker.io/v1/': 'ok' } });
  assert.deepEqual(await store(dir).get('docker.io'), { username: 'helper-user', password: SECRET });
  assert.equal(await readFile(join(logDir, 'ok'), 'utf8'), 'get|https://index.docker.io/v1/');
});

test('credsStore serves registries without their own helper; a per-host helper takes precedence', async () => {
  const dir = await dockerConfig({ credsStore: 'tok', credHelpers: { 'ghcr.io': 'ok' } });
  const s = store(dir);
  assert.deepEqual(await s.get('quay.io'), { identityToken: `refresh-${SECRET}` });
  assert.deepEqual(await s.get('ghcr.io'), { username: 'helper-user', password: SECRET });
});

test('a helper with no credentials gives undefined, or the auths entry when there is one', async () => {
  for (const name of ['none', 'empty']) {
    const dir = await dockerConfig({ credsStore: name, auths: { 'ghcr.io': { auth: b64('file:pass') } } });
    assert.equal(await store(dir).get('quay.io'), undefined, name);
    assert.deepEqual(await store(dir).get('ghcr.io'), { username: 'file', password: 'pass' }, name);
  }
});

test('a helper that does not read stdin still answers', async () => {
  const dir = await dockerConfig({ credsStore: 'noread' });
  assert.deepEqual(await store(dir).get('ghcr.io'), { username: 'u', password: 'p' });
});

test('a failing helper that prints the secret on stdout and stderr: AuthError naming helper and registry only', async () => {
  const dir = await dockerConfig({ credHelpers: { 'ghcr.io': 'leaky' } });
  const err = await rejectsWithout(store(dir).get('ghcr.io'), (e) => e instanceof AuthError && e.exitCode === 3);
  assert.match((err as Error).message, /docker-credential-leaky failed with exit status 3 \(registry ghcr\.io\)/);
  assert.equal((err as AuthError).registry, 'ghcr.io');
  assert.equal((err as Error).cause, undefined);
});

test('helper answers that are not the protocol are AuthErrors without their content', async () => {
  for (const [name, why] of [
    ['garbage', /not JSON/],
    ['badtype', /not a string/],
    ['huge', /printed more than/],
  ] as const) {
    const dir = await dockerConfig({ credsStore: name });
    await rejectsWithout(store(dir).get('ghcr.io'), (e) => e instanceof AuthError && why.test((e as Error).message));
  }
});

test('a missing, non-executable or hanging helper fails with a typed error', async () => {
  const missing = await dockerConfig({ credsStore: 'absent' });
  await assert.rejects(
    store(missing).get('ghcr.io'),
    (e: unknown) => e instanceof AuthError && e.code === 'CREDENTIAL_HELPER_MISSING' && /docker-credential-absent/.test(e.message),
  );
  const noexec = await dockerConfig({ credsStore: 'noexec' });
  await assert.rejects(store(noexec).get('ghcr.io'), AuthError);
  const hang = await dockerConfig({ credsStore: 'hang' });
  await assert.rejects(store(hang, { helperTimeoutMs: 300 }).get('ghcr.io'), (e: unknown) => e instanceof AuthError && /did not answer/.test(e.message));
});

test('a helper name with a path in it is refused, not run', async () => {
  await writeFile(join(root, 'docker-credential-x'), `#!/bin/sh\necho '{"Username":"u","Secret":"p"}'\n`, { mode: 0o755 });
  const dir = await dockerConfig({ credsStore: `../${root.split('/').pop()}/x` });
  await assert.rejects(store(dir).get('ghcr.io'), (e: unknown) => e instanceof ProtocolError && e.code === 'CREDENTIAL_HELPER_INVALID');
});

test('an aborted signal stops a lookup and kills a running helper', async () => {
  const dir = await dockerConfig({ credsStore: 'hang' });
  await assert.rejects(store(dir).get('ghcr.io', { signal: AbortSignal.abort() }), AbortError);
  const ac = new AbortController();
  const pending = store(dir).get('ghcr.io', { signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(pending, AbortError);
});

test('EnvCredentialStore: username+password, token, and COMMS_REGISTRY_HOST restricting them', async () => {
  assert.deepEqual(await new EnvCredentialStore({ COMMS_REGISTRY_USERNAME: 'u', COMMS_REGISTRY_PASSWORD: SECRET }).get('any.example.com'), {
    username: 'u',
    password: SECRET,
  });
  assert.deepEqual(await new EnvCredentialStore({ COMMS_REGISTRY_TOKEN: SECRET }).get('ghcr.io'), { registryToken: SECRET });
  assert.equal(await new EnvCredentialStore({}).get('ghcr.io'), undefined);
  assert.equal(await new EnvCredentialStore({ COMMS_REGISTRY_USERNAME: '', COMMS_REGISTRY_PASSWORD: '' }).get('ghcr.io'), undefined);

  const only = new EnvCredentialStore({ COMMS_REGISTRY_HOST: 'ghcr.io', COMMS_REGISTRY_TOKEN: SECRET });
  assert.deepEqual(await only.get('ghcr.io'), { registryToken: SECRET });
  assert.deepEqual(await only.get('GHCR.IO'), { registryToken: SECRET });
  assert.equal(await only.get('quay.io'), undefined);
  const hub = new EnvCredentialStore({ COMMS_REGISTRY_HOST: 'index.docker.io', COMMS_REGISTRY_TOKEN: SECRET });
  assert.deepEqual(await hub.get('docker.io'), { registryToken: SECRET });
});

test('EnvCredentialStore: half a username/password pair is a UsageError that does not carry the password', async () => {
  await rejectsWithout(
    new EnvCredentialStore({ COMMS_REGISTRY_PASSWORD: SECRET }).get('ghcr.io'),
    (e) => e instanceof UsageError && /COMMS_REGISTRY_PASSWORD is set but COMMS_REGISTRY_USERNAME is not/.test((e as Error).message),
  );
  await assert.rejects(new EnvCredentialStore({ COMMS_REGISTRY_USERNAME: 'u' }).get('ghcr.io'), UsageError);
});

test('StaticCredentialStore matches registry names case-insensitively and Docker Hub by any alias', async () => {
  const s = new StaticCredentialStore({ 'GHCR.io': { username: 'a', password: 'b' }, 'index.docker.io': { registryToken: 't' } });
  assert.deepEqual(await s.get('ghcr.io'), { username: 'a', password: 'b' });
  assert.deepEqual(await s.get('docker.io'), { registryToken: 't' });
  assert.equal(await s.get('quay.io'), undefined);
  // Callers cannot change the stored credential through the returned object.
  const got = (await s.get('ghcr.io')) as Credential;
  got.password = 'changed';
  assert.deepEqual(await s.get('ghcr.io'), { username: 'a', password: 'b' });
});

test('ChainCredentialStore: the first store with a credential wins; errors are not swallowed', async () => {
  const asked: string[] = [];
  const recording = (name: string, cred?: Credential): CredentialStore => ({
    get: async () => {
      asked.push(name);
      return cred;
    },
  });
  const chain = new ChainCredentialStore([recording('a'), recording('b', { registryToken: 'b' }), recording('c', { registryToken: 'c' })]);
  assert.deepEqual(await chain.get('ghcr.io'), { registryToken: 'b' });
  assert.deepEqual(asked, ['a', 'b']);
  const failing: CredentialStore = { get: async () => Promise.reject(new AuthError('boom')) };
  await assert.rejects(new ChainCredentialStore([failing, recording('d', { registryToken: 'd' })]).get('x'), AuthError);
  assert.equal(await new ChainCredentialStore([]).get('x'), undefined);
});

test('defaultCredentialStore: explicit options > environment > docker config', async () => {
  const dir = await dockerConfig({ auths: { 'ghcr.io': { auth: b64('docker:pass') } } });
  const env = { COMMS_REGISTRY_HOST: 'quay.io', COMMS_REGISTRY_TOKEN: 'env-token' };
  const s = defaultCredentialStore({ env, configDir: dir });
  assert.deepEqual(await s.get('ghcr.io'), { username: 'docker', password: 'pass' });
  assert.deepEqual(await s.get('quay.io'), { registryToken: 'env-token' });
  assert.equal(await s.get('other.io'), undefined);

  const explicit = defaultCredentialStore({ username: 'cli', password: 'clipass', env, configDir: dir });
  assert.deepEqual(await explicit.get('ghcr.io'), { username: 'cli', password: 'clipass' });
  assert.deepEqual(await explicit.get('quay.io'), { username: 'cli', password: 'clipass' });
  assert.deepEqual(await defaultCredentialStore({ registryToken: 'tok', env: {}, configDir: dir }).get('ghcr.io'), { registryToken: 'tok' });

  const onlyDocker = defaultCredentialStore({ env: { DOCKER_CONFIG: dir } });
  assert.deepEqual(await onlyDocker.get('ghcr.io'), { username: 'docker', password: 'pass' });
});

test('defaultCredentialStore refuses a password without a username, without echoing it', () => {
  let caught: unknown;
  assert.throws(
    () => defaultCredentialStore({ password: SECRET, env: {} }),
    (e: unknown) => {
      caught = e;
      return e instanceof UsageError;
    },
  );
  assertNoSecret(caught);
});
