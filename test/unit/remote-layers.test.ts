/**
 * The registry client's cross-cutting layers, each proven once: retry (status codes,
 * Retry-After, dropped connections, what is never repeated), redirects (Authorization never
 * follows to another origin), auth (Basic, Bearer, token cache, refresh tokens, refusal without
 * secrets), error mapping (by status and code, never by text). In-process node:http fakes only.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { Agent } from 'undici';
import { AuthError, CommsError, ExitCode, NotFoundError, ProtocolError } from '../../src/errors.ts';
import { StaticCredentialStore } from '../../src/oci/auth/credentials.ts';
import { errorFor, parseErrorBody } from '../../src/oci/remote/error-map.ts';
import { compose, redactUrl, type HttpResponse, type Send } from '../../src/oci/remote/http.ts';
import { nextLink } from '../../src/oci/remote/link.ts';
import { redirectLayer } from '../../src/oci/remote/redirect.ts';
import { backoffDelay, parseRetryAfter, retryLayer } from '../../src/oci/remote/retry.ts';
import { mergeScopes } from '../../src/oci/remote/scopes.ts';
import { TokenCache } from '../../src/oci/remote/token-cache.ts';
import { undiciTransport } from '../../src/oci/remote/transport.ts';
import { RegistryClient } from '../../src/oci/remote/index.ts';
import { rejection } from '../support/rejection.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

interface Fake {
  host: string;
  origin: string;
  seen: Seen[];
  close(): Promise<void>;
}

/** A loopback HTTP server running `handler` after recording each request (with its body). */
async function fake(handler: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void): Promise<Fake> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      handler(req, res, s);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    origin: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function withAgent<T>(fn: (send: Send) => Promise<T>): Promise<T> {
  const agent = new Agent();
  try {
    return await fn(undiciTransport(agent));
  } finally {
    await agent.close();
  }
}

async function text(res: HttpResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('retry layer', () => {
  const policy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000 };

  it('waits what Retry-After says (seconds) after a 429, then returns the success', async () => {
    let n = 0;
    const server = await fake((_req, res) => {
      if (++n === 1) {
        res.writeHead(429, { 'retry-after': '3' }).end();
        return;
      }
      res.writeHead(200).end('ok');
    });
    const waits: number[] = [];
    try {
      await withAgent(async (base) => {
        const send = compose(base, retryLayer(policy, { sleep: async (ms) => void waits.push(ms) }));
        const res = await send({ method: 'GET', url: new URL(`${server.origin}/v2/`) });
        assert.equal(res.status, 200);
        assert.equal(await text(res), 'ok');
      });
      assert.deepEqual(waits, [3000]);
      assert.equal(server.seen.length, 2);
    } finally {
      await server.close();
    }
  });

  it('honours Retry-After as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:07 GMT', now), 7000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(undefined, now), undefined);
  });

  it('retries 502, 503 and 504 with full-jitter backoff, bounded by maxAttempts', async () => {
    const statuses = [503, 502, 504, 503, 200];
    const server = await fake((_req, res) => void res.writeHead(statuses.shift() ?? 200).end());
    const waits: number[] = [];
    try {
      await withAgent(async (base) => {
        const send = compose(base, retryLayer(policy, { sleep: async (ms) => void waits.push(ms), random: () => 0.999 }));
        const res = await send({ method: 'GET', url: new URL(`${server.origin}/x`) });
        // 4 attempts allowed: the 4th answer (503) is handed back, the 200 is never asked for.
        assert.equal(res.status, 503);
        await text(res);
      });
      assert.equal(server.seen.length, 4);
      // Ceilings 100, 200, 400 (×0.999): exponential growth, capped by maxDelayMs.
      assert.deepEqual(waits, [99, 199, 399]);
    } finally {
      await server.close();
    }
    assert.equal(
      backoffDelay(10, policy, () => 0.5),
      500,
      'the ceiling is maxDelayMs',
    );
  });

  it('retries a 500 for a read (GET) but never for a write (PUT)', async () => {
    const answered = new Map<string, number>();
    const server = await fake((req, res) => {
      const n = (answered.get(req.method ?? '') ?? 0) + 1;
      answered.set(req.method ?? '', n);
      res.writeHead(n === 1 ? 500 : 200).end();
    });
    try {
      await withAgent(async (base) => {
        const send = compose(base, retryLayer(policy, { sleep: async () => undefined }));
        const read = await send({ method: 'GET', url: new URL(`${server.origin}/v2/r/manifests/sha256-abc`) });
        assert.equal(read.status, 200, 'the read was tried again after its 500');
        await text(read);
        const write = await send({ method: 'PUT', url: new URL(`${server.origin}/v2/r/manifests/t`), body: new Uint8Array([1]), idempotent: true });
        assert.equal(write.status, 500, 'the write was handed back as it came');
        await text(write);
      });
      assert.equal(server.seen.filter((x) => x.method === 'GET').length, 2);
      assert.equal(server.seen.filter((x) => x.method === 'PUT').length, 1);
    } finally {
      await server.close();
    }
  });

  it('retries a GET whose connection was reset, and a refused connection', async () => {
    let n = 0;
    const server = await fake((req, res) => {
      if (++n === 1) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200).end('second time');
    });
    try {
      await withAgent(async (base) => {
        const send = compose(base, retryLayer(policy, { sleep: async () => {} }));
        const res = await send({ method: 'GET', url: new URL(`${server.origin}/x`) });
        assert.equal(await text(res), 'second time');
      });
      assert.equal(server.seen.length, 2);
    } finally {
      await server.close();
    }
    // Nobody listens on the port any more: ECONNREFUSED each time, maxAttempts attempts, then the error.
    let attempts = 0;
    await withAgent(async (base) => {
      const counted: Send = (req) => {
        attempts++;
        return base(req);
      };
      const send = compose(counted, retryLayer(policy, { sleep: async () => {} }));
      await assert.rejects(send({ method: 'GET', url: new URL(`${server.origin}/x`) }), (err: Error & { code?: string }) => err.code === 'ECONNREFUSED');
    });
    assert.equal(attempts, policy.maxAttempts);
  });

  it('never repeats a non-idempotent request, nor one whose body is a stream', async () => {
    const server = await fake((_req, res) => void res.writeHead(503).end());
    try {
      await withAgent(async (base) => {
        const send = compose(base, retryLayer(policy, { sleep: async () => {} }));
        const post = await send({ method: 'POST', url: new URL(`${server.origin}/v2/x/blobs/uploads/`) });
        assert.equal(post.status, 503);
        await text(post);
        const patch = await send({ method: 'PATCH', url: new URL(`${server.origin}/u`), body: Buffer.from('abc'), idempotent: false });
        assert.equal(patch.status, 503);
        await text(patch);
        // Declared idempotent, but a stream cannot be read twice.
        const put = await send({ method: 'PUT', url: new URL(`${server.origin}/u`), body: Readable.from([Buffer.from('abc')]), idempotent: true });
        assert.equal(put.status, 503);
        await text(put);
        // Bytes in memory with idempotent: true are repeated.
        const again = await send({ method: 'PUT', url: new URL(`${server.origin}/m`), body: Buffer.from('abc'), idempotent: true });
        assert.equal(again.status, 503);
        await text(again);
      });
      assert.deepEqual(
        server.seen.map((s) => `${s.method} ${s.url}`),
        ['POST /v2/x/blobs/uploads/', 'PATCH /u', 'PUT /u', 'PUT /m', 'PUT /m', 'PUT /m', 'PUT /m'],
      );
      assert.ok(
        server.seen.filter((s) => s.url === '/m').every((s) => s.body === 'abc'),
        'the replayed body is complete each time',
      );
    } finally {
      await server.close();
    }
  });
});

describe('redirect layer', () => {
  it('follows a blob redirect to another origin without the Authorization header', async () => {
    const storage = await fake((_req, res) => void res.writeHead(200).end('blob bytes'));
    const registry = await fake((req, res) => {
      if (req.url === '/v2/r/blobs/same') {
        res.writeHead(307, { location: '/v2/r/blobs/moved' }).end();
      } else if (req.url === '/v2/r/blobs/moved') {
        res.writeHead(200).end('same origin');
      } else {
        res.writeHead(307, { location: `${storage.origin}/bucket/obj?X-Amz-Signature=s3cr3t` }).end();
      }
    });
    try {
      await withAgent(async (base) => {
        const send = compose(base, redirectLayer());
        const res = await send({
          method: 'GET',
          url: new URL(`${registry.origin}/v2/r/blobs/other`),
          headers: { authorization: 'Bearer registry-token' },
          followRedirects: true,
        });
        assert.equal(await text(res), 'blob bytes');
        assert.equal(res.url.origin, storage.origin);
        const same = await send({
          method: 'GET',
          url: new URL(`${registry.origin}/v2/r/blobs/same`),
          headers: { authorization: 'Bearer registry-token' },
          followRedirects: true,
        });
        assert.equal(await text(same), 'same origin');
      });
      assert.equal(storage.seen.length, 1);
      assert.equal(storage.seen[0]?.headers.authorization, undefined, 'the token must not reach object storage');
      const moved = registry.seen.find((s) => s.url === '/v2/r/blobs/moved');
      assert.equal(moved?.headers.authorization, 'Bearer registry-token', 'same-origin hops keep it');
    } finally {
      await registry.close();
      await storage.close();
    }
  });

  it('does not follow redirects of requests that did not ask, and bounds the hops', async () => {
    const loop = await fake((req, res) => void res.writeHead(302, { location: req.url === '/a' ? '/b' : '/a' }).end());
    try {
      await withAgent(async (base) => {
        const send = compose(base, redirectLayer(3));
        const res = await send({ method: 'GET', url: new URL(`${loop.origin}/a`) });
        assert.equal(res.status, 302);
        await text(res);
        await assert.rejects(send({ method: 'GET', url: new URL(`${loop.origin}/a`), followRedirects: true }), ProtocolError);
      });
      assert.equal(loop.seen.length, 1 + 4);
    } finally {
      await loop.close();
    }
  });
});

describe('error mapping', () => {
  const ctx = { registry: 'reg.example:5000', repository: 'team/app', operation: 'fetch manifest v1' };

  it('classifies by status and by the registry error code, never by message text', () => {
    const cases: [number, string[], typeof CommsError, number][] = [
      [401, [], AuthError, ExitCode.AUTH],
      [403, [], AuthError, ExitCode.AUTH],
      [400, ['DENIED'], AuthError, ExitCode.AUTH],
      [404, [], NotFoundError, ExitCode.NOT_FOUND],
      [400, ['MANIFEST_BLOB_UNKNOWN'], NotFoundError, ExitCode.NOT_FOUND],
      [404, ['NAME_UNKNOWN'], NotFoundError, ExitCode.NOT_FOUND],
      [400, [], ProtocolError, ExitCode.PROTOCOL],
      [500, ['MANIFEST_INVALID'], ProtocolError, ExitCode.PROTOCOL],
      [400, ['TAG_INVALID'], ProtocolError, ExitCode.PROTOCOL],
      [400, ['SIZE_INVALID'], ProtocolError, ExitCode.PROTOCOL],
      [500, [], CommsError, ExitCode.FAILURE],
      [429, ['TOOMANYREQUESTS'], CommsError, ExitCode.FAILURE],
    ];
    for (const [status, codes, cls, exit] of cases) {
      const err = errorFor(
        status,
        codes.map((code) => ({ code, message: 'blob unknown to registry: unauthorized manifest invalid' })),
        ctx,
      );
      assert.equal(err.constructor, cls, `${status} ${codes.join(',')}`);
      assert.equal(err.exitCode, exit, `${status} ${codes.join(',')}`);
      assert.equal(err.status, status);
      assert.equal(err.registry, ctx.registry);
      assert.match(err.message, /reg\.example:5000/);
      assert.match(err.message, /team\/app/);
      if (codes[0] !== undefined) assert.equal(err.code, codes[0]);
    }
  });

  it('passes a registry code through as the error code only when the spec defines it; the raw entries stay', () => {
    const err = errorFor(400, [{ code: 'X_VENDOR_QUIRK', message: 'odd' }], ctx);
    assert.equal(err.code, 'BAD_REQUEST');
    assert.deepEqual(err.registryErrors, [{ code: 'X_VENDOR_QUIRK', message: 'odd' }]);
    assert.equal(errorFor(502, [{ code: 'X_VENDOR_QUIRK' }], ctx).code, 'HTTP_502');
    assert.equal(errorFor(404, [{ code: 'manifest_unknown' }], ctx).code, 'MANIFEST_UNKNOWN');
  });

  it('parses the OCI error body and ignores anything else', () => {
    const body = new TextEncoder().encode(
      JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: 'v1' } }, { nope: 1 }] }),
    );
    assert.deepEqual(parseErrorBody(body), [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: 'v1' } }]);
    assert.deepEqual(parseErrorBody(new TextEncoder().encode('404 page not found')), []);
    assert.deepEqual(parseErrorBody(new TextEncoder().encode('{"errors":"x"}')), []);
  });
});

describe('auth layer', () => {
  const password = 'pa55-w0rd-SECRET';
  const basic = `Basic ${Buffer.from(`alice:${password}`).toString('base64')}`;

  it('answers a Basic challenge with the stored credentials, then pre-authorizes', async () => {
    const registry = await fake((req, res) => {
      if (req.headers.authorization !== basic) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"name":"team/app","tags":["a"]}');
    });
    const client = new RegistryClient({ plainHttp: true, credentials: new StaticCredentialStore({ [registry.host]: { username: 'alice', password } }) });
    try {
      const repo = client.repository(`${registry.host}/team/app`);
      const pages: string[][] = [];
      await repo.tags((p) => void pages.push(p));
      await repo.tags((p) => void pages.push(p));
      assert.deepEqual(pages, [['a'], ['a']]);
      // One challenge, then every request carries the credentials.
      assert.deepEqual(
        registry.seen.map((s) => s.headers.authorization === basic),
        [false, true, true],
      );
    } finally {
      await client.close();
      await registry.close();
    }
  });

  it('a refused password is AuthError (exit 3) naming registry and repository, with no secret in it', async () => {
    const registry = await fake((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
    });
    const client = new RegistryClient({ plainHttp: true, credentials: new StaticCredentialStore({ [registry.host]: { username: 'alice', password } }) });
    try {
      const err = await rejection(client.repository(`${registry.host}/team/app`).fetchManifest('v1'), 'expected AuthError');
      assert.ok(err instanceof AuthError);
      assert.equal(err.exitCode, ExitCode.AUTH);
      assert.match(err.message, new RegExp(registry.host.replace('.', '\\.')));
      assert.match(err.message, /team\/app/);
      const everything = JSON.stringify({ ...err, message: err.message, stack: err.stack });
      assert.ok(!everything.includes(password), 'the password must not appear');
      assert.ok(!everything.includes(Buffer.from(`alice:${password}`).toString('base64')), 'nor its base64');
      // Exactly one retry after the challenge: no loop on a refused password.
      assert.equal(registry.seen.length, 2);
    } finally {
      await client.close();
      await registry.close();
    }
  });

  /** A token issuer + registry pair: the registry wants `Bearer <token for scope>`. */
  async function bearerPair(options: { expiresIn?: number; issue?: (seen: Seen) => string | undefined } = {}) {
    let issued = 0;
    const issuer = await fake((req, res, seen) => {
      const token = options.issue ? options.issue(seen) : `tok-${++issued}`;
      if (token === undefined) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
      const url = new URL(req.url ?? '/', 'http://x');
      const scope = seen.method === 'POST' ? new URLSearchParams(seen.body).get('scope') : url.searchParams.getAll('scope').join(' ');
      validTokens.set(token, scope ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token, ...(options.expiresIn !== undefined ? { expires_in: options.expiresIn } : {}) }));
    });
    const validTokens = new Map<string, string>();
    const registry = await fake((req, res) => {
      const path = req.url ?? '';
      const name = /^\/v2\/(.+?)\/(?:tags|manifests|blobs)\//.exec(path)?.[1] ?? '';
      const action = req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'push';
      const need = `repository:${name}:${action}`;
      const token = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
      const granted = validTokens.get(token);
      if (granted === undefined || !granted.split(' ').some((s) => s.startsWith(`repository:${name}:`) && s.split(':')[2]?.split(',').includes(action))) {
        res
          .writeHead(401, {
            'www-authenticate': `Bearer realm="${issuer.origin}/token",service="fake-registry",scope="${need}"`,
          })
          .end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"tags":["t"]}');
    });
    return {
      issuer,
      registry,
      validTokens,
      close: async () => {
        await registry.close();
        await issuer.close();
      },
    };
  }

  it('Bearer: one token request per scope however many operations run, sent with Basic credentials', async () => {
    const pair = await bearerPair();
    const client = new RegistryClient({ plainHttp: true, credentials: new StaticCredentialStore({ [pair.registry.host]: { username: 'alice', password } }) });
    try {
      const repo = client.repository(`${pair.registry.host}/team/app`);
      await Promise.all(Array.from({ length: 12 }, () => repo.tags(() => {})));
      await repo.tags(() => {});
      assert.equal(pair.issuer.seen.length, 1, 'twelve parallel listings and one more share one token');
      const tokenReq = new URL(pair.issuer.seen[0]?.url ?? '', 'http://x');
      assert.equal(tokenReq.searchParams.get('service'), 'fake-registry');
      assert.deepEqual(tokenReq.searchParams.getAll('scope'), ['repository:team/app:pull']);
      assert.equal(pair.issuer.seen[0]?.headers.authorization, basic);
      // Another repository is another scope: one more token.
      await client.repository(`${pair.registry.host}/team/other`).tags(() => {});
      assert.equal(pair.issuer.seen.length, 2);
      // The scheme is known now: a new scope is fetched before the request, without a 401 first.
      const before = pair.registry.seen.length;
      await client.repository(`${pair.registry.host}/team/third`).tags(() => {});
      assert.equal(pair.registry.seen.length, before + 1);
    } finally {
      await client.close();
      await pair.close();
    }
  });

  it('Bearer: an identity token is exchanged with POST grant_type=refresh_token', async () => {
    const pair = await bearerPair();
    const client = new RegistryClient({
      plainHttp: true,
      credentials: new StaticCredentialStore({ [pair.registry.host]: { identityToken: 'refresh-SECRET' } }),
    });
    try {
      await client.repository(`${pair.registry.host}/team/app`).tags(() => {});
      const req = pair.issuer.seen[0];
      assert.equal(req?.method, 'POST');
      assert.equal(req?.headers['content-type'], 'application/x-www-form-urlencoded');
      const form = new URLSearchParams(req?.body);
      assert.equal(form.get('grant_type'), 'refresh_token');
      assert.equal(form.get('refresh_token'), 'refresh-SECRET');
      assert.equal(form.get('service'), 'fake-registry');
      assert.equal(form.get('scope'), 'repository:team/app:pull');
      assert.ok(!(req?.url ?? '').includes('SECRET'), 'the refresh token travels in the body, not the URL');
    } finally {
      await client.close();
      await pair.close();
    }
  });

  it('Bearer: a refused token request is AuthError without the secret; anonymous works without credentials', async () => {
    const refusing = await bearerPair({ issue: (seen) => (seen.headers.authorization === undefined ? 'anon' : undefined) });
    const client = new RegistryClient({
      plainHttp: true,
      credentials: new StaticCredentialStore({ [refusing.registry.host]: { username: 'alice', password } }),
    });
    const anonymous = new RegistryClient({ plainHttp: true });
    try {
      const err = await rejection(
        client.repository(`${refusing.registry.host}/team/app`).tags(() => {}),
        'expected AuthError',
      );
      assert.ok(err instanceof AuthError);
      assert.match(err.message, /team\/app/);
      assert.ok(!JSON.stringify({ m: err.message, s: err.stack, ...err }).includes(password));
      await anonymous.repository(`${refusing.registry.host}/team/app`).tags(() => {});
    } finally {
      await client.close();
      await anonymous.close();
      await refusing.close();
    }
  });

  it('Bearer: an expired token is fetched again; a token the registry refuses is retried once, then AuthError', async () => {
    let now = 1_000_000;
    const cache = new TokenCache(() => now);
    let fetches = 0;
    const fetch = async () => ({ token: `t${++fetches}`, expiresIn: 60 });
    assert.equal(await cache.get('k', fetch), 't1');
    now += 49_000;
    assert.equal(await cache.get('k', fetch), 't1', 'valid until expires_in minus the margin');
    now += 2_000;
    assert.equal(await cache.get('k', fetch), 't2', 'fetched again once within the margin of expiry');
    cache.invalidate('k', 't2');
    assert.equal(await cache.get('k', fetch), 't3');

    // The issuer grants tokens the registry never accepts.
    const pair = await bearerPair();
    const client = new RegistryClient({ plainHttp: true });
    try {
      pair.validTokens.clear();
      const orig = pair.validTokens.set.bind(pair.validTokens);
      pair.validTokens.set = (k: string, v: string) => orig(`never-${k}`, v);
      await assert.rejects(
        client.repository(`${pair.registry.host}/team/app`).tags(() => {}),
        AuthError,
      );
      assert.equal(pair.registry.seen.length, 2, 'the request is sent again once, not in a loop');
    } finally {
      await client.close();
      await pair.close();
    }
  });
});

describe('small pieces', () => {
  it('merges scopes into one canonical set', () => {
    assert.deepEqual(mergeScopes(['repository:a/b:push', 'repository:a/b:pull', 'repository:c:pull', 'repository:a/b:pull,push']), [
      'repository:a/b:pull,push',
      'repository:c:pull',
    ]);
    assert.deepEqual(mergeScopes(['registry:catalog:*']), ['registry:catalog:*']);
  });

  it('reads Link rel="next" relative to the page, and refuses another origin', () => {
    const base = new URL('http://r.example/v2/a/tags/list?n=2');
    assert.equal(nextLink(['</v2/a/tags/list?n=2&last=b>; rel="next"'], base)?.href, 'http://r.example/v2/a/tags/list?n=2&last=b');
    assert.equal(nextLink(['<http://r.example/x>; rel="prev", </y>; rel=next'], base)?.href, 'http://r.example/y');
    assert.equal(nextLink([], base), undefined);
    assert.throws(() => nextLink(['<http://evil.example/v2/a/tags/list>; rel="next"'], base), ProtocolError);
  });

  it('redacts query values that may be secrets in reported URLs', () => {
    const shown = redactUrl(new URL('https://u:p@s3.example/b/o?X-Amz-Signature=abc&digest=sha256:1&_state=xyz'));
    assert.ok(!shown.includes('abc') && !shown.includes('xyz') && !shown.includes('u:p'));
    assert.ok(shown.includes('digest=sha256%3A1'));
  });
});
