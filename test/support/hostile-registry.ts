/**
 * A registry stand-in that serves what no real registry will: docker-registry refuses to store a
 * manifest above 4 MiB and will not even read one planted in its storage (HTTP 500, "read exceeds
 * limit"), yet a compromised or malicious registry can send one. This server answers the few
 * Distribution API routes `comms recv` uses (GET /v2/, tag list, manifest by tag) with a given
 * manifest, announced by Content-Length or streamed chunked without one, and counts every TCP
 * connection, so a test can also prove that a command made no request at all.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { digestOf } from '../../src/oci/digest.ts';
import { MediaType } from '../../src/oci/mediatypes.ts';

export interface HostileRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Request lines seen (`GET /v2/…`). */
  readonly requests: string[];
  close(): Promise<void>;
}

export interface HostileRegistryOptions {
  /** Repository name → tag → manifest bytes. */
  manifests?: Record<string, Record<string, Uint8Array>>;
  /** Send manifests chunked, without Content-Length (default: with it). */
  chunked?: boolean;
}

export async function startHostileRegistry(options: HostileRegistryOptions = {}): Promise<HostileRegistry> {
  const requests: string[] = [];
  let connections = 0;
  const repos = options.manifests ?? {};
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url ?? '/', 'http://x');
    const notFound = () => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"NAME_UNKNOWN","message":"not here"}]}');
    };
    if (url.pathname === '/v2/') {
      res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0', 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    const tags = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname);
    if (tags && repos[tags[1]!]) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name: tags[1], tags: Object.keys(repos[tags[1]!]!).sort() }));
      return;
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    const bytes = manifest ? repos[manifest[1]!]?.[manifest[2]!] : undefined;
    if (bytes === undefined) return notFound();
    const headers: Record<string, string> = { 'content-type': MediaType.ImageManifest, 'docker-content-digest': digestOf(bytes) };
    if (!options.chunked) headers['content-length'] = String(bytes.length);
    res.writeHead(200, headers);
    if (req.method === 'HEAD') return void res.end();
    // Written in pieces so a chunked answer really arrives as a stream.
    for (let off = 0; off < bytes.length; off += 256 * 1024) res.write(bytes.subarray(off, off + 256 * 1024));
    res.end();
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
