/**
 * Test PKI made with the `openssl` CLI at run time: a CA, a server certificate for 127.0.0.1 and
 * localhost signed by it (TLS registries), and a self-signed key pair for signing registry tokens.
 * Made once per test process and cached; the files live in a temp folder removed at exit.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './tools.ts';

const run = promisify(execFile);

export interface TestPki {
  dir: string;
  /** PEM of the test CA (give this to the client as its trusted CA). */
  caFile: string;
  caPem: string;
  /** Server certificate (PEM, SANs IP:127.0.0.1 and DNS:localhost) signed by the CA, and its key. */
  serverCertFile: string;
  serverKeyFile: string;
}

export interface TokenSigningKey {
  /** Self-signed P-256 certificate (PEM); goes in the registry's `auth.token.rootcertbundle`. */
  certFile: string;
  certPem: string;
  /** Its private key (PKCS#8 PEM). */
  keyPem: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makePki(): Promise<TestPki> {
  const { path: dir } = await tempDir('comms-pki-');
  await openssl(
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '7',
      '-subj',
      '/CN=comms test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  await openssl(['req', ...EC, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  await writeFile(
    join(dir, 'server.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
  );
  await openssl(
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '7', '-extfile', 'server.ext'],
    dir,
  );
  const caFile = join(dir, 'ca.pem');
  return {
    dir,
    caFile,
    caPem: await readFile(caFile, 'utf8'),
    serverCertFile: join(dir, 'server.pem'),
    serverKeyFile: join(dir, 'server.key'),
  };
}

async function makeTokenKey(): Promise<TokenSigningKey> {
  const { path: dir } = await tempDir('comms-tokenkey-');
  await openssl(
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      'token.key',
      '-out',
      'token.pem',
      '-days',
      '7',
      '-subj',
      '/CN=comms test token issuer',
      '-addext',
      'keyUsage=critical,digitalSignature',
    ],
    dir,
  );
  const certFile = join(dir, 'token.pem');
  return {
    certFile,
    certPem: await readFile(certFile, 'utf8'),
    keyPem: await readFile(join(dir, 'token.key'), 'utf8'),
  };
}

let pki: Promise<TestPki> | undefined;
let tokenKey: Promise<TokenSigningKey> | undefined;

/** The process-wide test CA and server certificate (made on first use). */
export function testPki(): Promise<TestPki> {
  // A failed attempt is not cached, so the next test gets a fresh try and its own error.
  pki ??= makePki().catch((err: unknown) => {
    pki = undefined;
    throw err;
  });
  return pki;
}

/** The process-wide token signing key and certificate (made on first use). */
export function tokenSigningKey(): Promise<TokenSigningKey> {
  tokenKey ??= makeTokenKey().catch((err: unknown) => {
    tokenKey = undefined;
    throw err;
  });
  return tokenKey;
}
