/**
 * TLS against a real docker-registry serving a certificate from the suite's test CA: refused
 * without the CA (a typed error, and no fallback to plain HTTP), accepted with `caFile`, and
 * accepted with `insecure`. The scheme is left to the client (HTTPS first on loopback).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CommsError } from '../../src/errors.ts';
import { EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';
import { RegistryClient, type ClientOptions, type RequestEvent } from '../../src/oci/remote/index.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { requireTool, skipMessage } from '../support/tools.ts';
import { rejection } from '../support/rejection.ts';

const empty = { mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: 2 };

if (!requireTool('docker-registry')) {
  it('TLS registry', (t) => t.skip(skipMessage('docker-registry')));
} else {
  describe('TLS registry', () => {
    let server: RegistryServer;
    before(async () => {
      server = await startRegistry({ mode: 'tls' });
    });
    after(async () => {
      await server.stop();
    });

    async function withClient(options: ClientOptions, fn: (c: RegistryClient, events: RequestEvent[]) => Promise<void>): Promise<void> {
      const events: RequestEvent[] = [];
      const c = new RegistryClient({ ...options, onRequest: (e) => events.push(e) });
      try {
        await fn(c, events);
      } finally {
        await c.close();
      }
    }

    it('is refused without the CA, with a typed error and no plain-HTTP fallback', async () => {
      await withClient({}, async (c, events) => {
        const err = await rejection(c.repository(`${server.host}/tls/a`).push(empty, EMPTY_JSON_BYTES), 'expected a certificate error');
        assert.ok(err instanceof CommsError);
        assert.equal(err.code, 'TLS_CERTIFICATE');
        assert.ok(err.message.includes(server.host));
        assert.ok(
          events.every((e) => e.url.startsWith('https:')),
          'nothing was sent over plain HTTP',
        );
      });
    });

    it('is accepted with caFile', async () => {
      await withClient({ caFile: server.caFile! }, async (c, events) => {
        const repo = c.repository(`${server.host}/tls/b`);
        await repo.push(empty, EMPTY_JSON_BYTES);
        assert.equal(await repo.exists(empty), true);
        assert.ok(events.every((e) => e.url.startsWith('https:')));
      });
    });

    it('is accepted with insecure', async () => {
      await withClient({ insecure: true }, async (c) => {
        const repo = c.repository(`${server.host}/tls/c`);
        await repo.push(empty, EMPTY_JSON_BYTES);
        assert.equal(await repo.exists(empty), true);
      });
    });
  });
}
