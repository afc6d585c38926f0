/**
 * A plain-HTTP token realm gets the credentials in clear. It is accepted only when the registry
 * itself is on loopback (and the realm too), or is the very host the user chose to talk plain
 * HTTP to. A remote registry naming a loopback realm (`http://127.0.0.1:<port>/token`, a port any
 * local user may hold) or a third host over HTTP is refused (exit 4, INSECURE_REALM), and the
 * realm never sees a request. The "remote" registry listens on this machine's first non-loopback
 * address, which is what makes it remote to the client.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { StaticCredentialStore } from '../../src/oci/auth/credentials.ts';
import { RegistryClient } from '../../src/oci/remote/client.ts';
import { ProtocolError } from '../../src/errors.ts';
import { isCI } from '../support/tools.ts';

/** This machine's first IPv4 address that is not loopback, if any. */
function lanAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

interface Listener {
  server: Server;
  host: string;
  seen: IncomingMessage[];
}

async function listen(address: string, handle: (req: IncomingMessage, res: import('node:http').ServerResponse, self: Listener) => void): Promise<Listener> {
  const self = { seen: [] } as unknown as Listener;
  self.server = createServer((req, res) => {
    self.seen.push(req);
    handle(req, res, self);
  });
  await new Promise<void>((resolve) => self.server.listen(0, address, resolve));
  self.host = `${address}:${(self.server.address() as AddressInfo).port}`;
  return self;
}

/** A token issuer: any request gets a token. */
const issue = (_req: IncomingMessage, res: import('node:http').ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t0k3n","expires_in":300}');
};

/** A registry whose tag list needs `Bearer t0k3n`, and which sends clients to `realm()` for it. */
function registry(realm: (self: Listener) => string) {
  return (req: IncomingMessage, res: import('node:http').ServerResponse, self: Listener) => {
    if (req.url?.startsWith('/token')) return issue(req, res);
    if (req.headers.authorization !== 'Bearer t0k3n') {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm(self)}",service="test"`, 'content-type': 'application/json' });
      return void res.end('{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}');
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"name":"mbox","tags":["a"]}');
  };
}

async function listTags(host: string, options: { plainHttp?: boolean } = {}): Promise<string[]> {
  const client = new RegistryClient({
    plainHttp: options.plainHttp,
    credentials: new StaticCredentialStore({ [host]: { username: 'alice', password: 's3cret' } }),
  });
  try {
    const tags: string[] = [];
    await client.repository(`${host}/mbox`).tags((page) => void tags.push(...page));
    return tags;
  } finally {
    await client.close();
  }
}

const lan = lanAddress();
const servers: Listener[] = [];
let loopIssuer: Listener;

before(async () => {
  loopIssuer = await listen('127.0.0.1', issue);
  servers.push(loopIssuer);
});
after(async () => {
  for (const s of servers) {
    s.server.closeAllConnections();
    await new Promise<void>((r) => s.server.close(() => r()));
  }
});

describe('plain-HTTP token realms', () => {
  it('a remote registry naming a loopback plain-HTTP realm is refused; the realm gets no request', async (t) => {
    if (lan === undefined) {
      if (isCI()) throw new Error('no non-loopback IPv4 address to stand for a remote registry');
      return t.skip('no non-loopback IPv4 address on this machine');
    }
    const remote = await listen(
      lan,
      registry(() => `http://${loopIssuer.host}/token`),
    );
    servers.push(remote);
    const before = loopIssuer.seen.length;
    await assert.rejects(
      listTags(remote.host, { plainHttp: true }),
      (e: unknown) => e instanceof ProtocolError && e.code === 'INSECURE_REALM' && e.exitCode === 4,
    );
    assert.equal(loopIssuer.seen.length, before, 'no request (and no credential) reached the loopback realm');
  });

  it('a remote registry naming a third host over plain HTTP is refused', async (t) => {
    if (lan === undefined) {
      if (isCI()) throw new Error('no non-loopback IPv4 address to stand for a remote registry');
      return t.skip('no non-loopback IPv4 address on this machine');
    }
    const remote = await listen(
      lan,
      registry(() => `http://${lan}:1/token`),
    );
    servers.push(remote);
    await assert.rejects(listTags(remote.host, { plainHttp: true }), (e: unknown) => e instanceof ProtocolError && e.code === 'INSECURE_REALM');
  });

  it('a remote registry the user talks plain HTTP to may use a plain-HTTP realm on that very host', async (t) => {
    if (lan === undefined) {
      if (isCI()) throw new Error('no non-loopback IPv4 address to stand for a remote registry');
      return t.skip('no non-loopback IPv4 address on this machine');
    }
    const remote = await listen(
      lan,
      registry((self) => `http://${self.host}/token`),
    );
    servers.push(remote);
    assert.deepEqual(await listTags(remote.host, { plainHttp: true }), ['a']);
    assert.ok(
      remote.seen.some((r) => r.url?.startsWith('/token')),
      'the token came from the registry host',
    );
  });

  it('a loopback registry may use a loopback plain-HTTP realm', async () => {
    const local = await listen(
      '127.0.0.1',
      registry(() => `http://${loopIssuer.host}/token`),
    );
    servers.push(local);
    const before = loopIssuer.seen.length;
    assert.deepEqual(await listTags(local.host), ['a']);
    assert.equal(loopIssuer.seen.length, before + 1, 'one token request');
  });
});
