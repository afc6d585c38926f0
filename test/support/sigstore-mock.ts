/**
 * Local stand-ins for Sigstore's Fulcio and Rekor: @sigstore/mock's request handlers (its own CA,
 * CT log and transparency log, with real keys and signatures) served over HTTP on loopback, so a
 * keyless signer — in process or a `comms` child process — reaches them exactly as it reaches the
 * public-good instance. `trustedRoot` is the Sigstore TrustedRoot JSON naming the mock's CA and log
 * keys, for `--trusted-root FILE`. `serveStub` stands in for one other service (an OIDC token
 * endpoint, a Fulcio that fails or hangs).
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fulcioHandler, initializeCA, initializeCTLog, initializeTLog, rekorHandler, type HandlerFn } from '@sigstore/mock';

export interface SigstoreMock {
  fulcioURL: string;
  rekorURL: string;
  /** A TrustedRoot (JSON object) naming the mock CA, CT log and transparency log. */
  trustedRoot: object;
  /** Requests each service answered (method and path). */
  fulcioRequests: string[];
  rekorRequests: string[];
  /** A TrustedRoot with the same logs but a CA that never issued anything: no chain verifies against it. */
  strangerRoot(): Promise<object>;
  close(): Promise<void>;
}

/** An unsigned JWT with `aud: sigstore`; the mock Fulcio reads claims without checking a signature. */
export function mockIdentityToken(claims: Record<string, unknown>): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ aud: 'sigstore', iat: now, exp: now + 600, ...claims })}.`;
}

const bytes = (v: ArrayBufferView) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
const b64 = (v: ArrayBufferView) => bytes(v).toString('base64');

/** Serves `path` (POST only) with a mock handler, once `handler()` has one. */
async function serveHandler(path: string, handler: () => HandlerFn | undefined, log: string[]): Promise<{ server: Server; url: string }> {
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      log.push(`${req.method} ${req.url}`);
      const fn = handler();
      if (fn === undefined || req.method !== 'POST' || req.url !== path) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
        return;
      }
      fn(Buffer.concat(chunks).toString('utf8')).then(
        (r) => {
          res.writeHead(r.statusCode, { 'content-type': r.contentType ?? 'text/plain' });
          res.end(typeof r.response === 'string' ? r.response : bytes(r.response));
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

export async function startSigstoreMock(): Promise<SigstoreMock> {
  const ctlog = await initializeCTLog(generateKeyPairSync('ec', { namedCurve: 'P-256' }));
  const ca = await initializeCA(generateKeyPairSync('ec', { namedCurve: 'P-256' }), ctlog);
  const fulcioRequests: string[] = [];
  const rekorRequests: string[] = [];
  const fulcioFn = fulcioHandler(ca).fn;
  const fulcio = await serveHandler('/api/v2/signingCert', () => fulcioFn, fulcioRequests);
  // Rekor puts its host in checkpoints, so its log is created once the server's URL is known.
  let rekorFn: HandlerFn | undefined;
  const rekor = await serveHandler('/api/v1/log/entries', () => rekorFn, rekorRequests);
  const tlogKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const tlog = await initializeTLog(rekor.url, tlogKeys);
  rekorFn = rekorHandler(tlog).fn;

  const start = new Date(Date.now() - 3600_000).toISOString();
  const rootFor = (caCert: ArrayBufferView) => ({
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl: rekor.url,
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: b64(tlog.publicKey), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
        logId: { keyId: b64(createHash('sha256').update(tlog.publicKey).digest()) },
      },
    ],
    certificateAuthorities: [
      {
        subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
        uri: fulcio.url,
        certChain: { certificates: [{ rawBytes: b64(caCert) }] },
        validFor: { start },
      },
    ],
    ctlogs: [
      {
        baseUrl: 'https://ctfe.mock.invalid',
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: b64(ctlog.publicKey), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
        logId: { keyId: b64(ctlog.logID) },
      },
    ],
    timestampAuthorities: [],
  });
  const trustedRoot = rootFor(ca.rootCertificate);

  return {
    fulcioURL: fulcio.url,
    rekorURL: rekor.url,
    trustedRoot,
    fulcioRequests,
    rekorRequests,
    async strangerRoot() {
      return rootFor((await initializeCA(generateKeyPairSync('ec', { namedCurve: 'P-256' }), ctlog)).rootCertificate);
    },
    async close() {
      for (const s of [fulcio.server, rekor.server]) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}

export interface Stub {
  server: Server;
  url: string;
  requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
}

/**
 * A stand-in for one Sigstore-side HTTP service (an OIDC token endpoint, a Fulcio that fails or
 * hangs): serves `respond` on an ephemeral loopback port and records each request.
 */
export async function serveStub(
  respond: (req: IncomingMessage, body: string) => Promise<{ status: number; body: string | ArrayBufferView; type?: string }>,
): Promise<Stub> {
  const requests: Stub['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      respond(req, Buffer.concat(chunks).toString('utf8')).then(
        (r) => {
          res.writeHead(r.status, { 'content-type': r.type ?? 'text/plain' });
          res.end(typeof r.body === 'string' ? r.body : bytes(r.body));
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, requests };
}
