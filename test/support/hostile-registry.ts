/**
 * A registry stand-in that serves what no real registry will: docker-registry refuses to store a
 * manifest above 4 MiB and will not even read one planted in its storage (HTTP 500, "read exceeds
 * limit"), yet a compromised or malicious registry can send one. This server answers the few
 * Distribution API routes `comms recv` uses (GET /v2/, tag list, manifest by tag) with a given
 * manifest, announced by Content-Length or streamed chunked without one, and counts every TCP
 * connection, so a test can also prove that a command made no request at all.
 *
 * It also misbehaves on demand as only a hostile registry does: tag or referrers lists that never
 * end (every page links to another), and blobs whose body stalls after a few bytes.
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
  /** Every tag-list page holds this many new tags and links to a next page, forever. */
  endlessTags?: { perPage: number; prefix?: string };
  /** Every referrers page holds this many new descriptors and links to a next page, forever. */
  endlessReferrers?: { perPage: number };
  /** Digest → blob bytes, served by GET /v2/<name>/blobs/<digest> in any repository. */
  blobs?: Record<string, Uint8Array>;
  /** Blob bodies stop after this many bytes (headers announce the whole size) and never end. */
  stallBlobsAfter?: number;
  /** Tag-list requests get no answer at all (not even headers); the connection stays open. */
  silentTags?: boolean;
  /** Every blob GET is answered 200, chunked (no Content-Length), with bytes that never end. */
  endlessBlobs?: boolean;
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
    if (tags && options.silentTags) return;
    if (tags && options.endlessTags) {
      const page = Number(url.searchParams.get('page') ?? '0');
      const names = Array.from({ length: options.endlessTags.perPage }, (_, i) => `${options.endlessTags!.prefix ?? 'junk-'}${page}-${i}`);
      res.writeHead(200, { 'content-type': 'application/json', link: `</v2/${tags[1]}/tags/list?page=${page + 1}>; rel="next"` });
      res.end(JSON.stringify({ name: tags[1], tags: names }));
      return;
    }
    const referrers = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(url.pathname);
    if (referrers && options.endlessReferrers) {
      const page = Number(url.searchParams.get('page') ?? '0');
      const manifests = Array.from({ length: options.endlessReferrers.perPage }, (_, i) => ({
        mediaType: MediaType.ImageManifest,
        digest: `sha256:${(page * 1_000_000 + i).toString(16).padStart(64, '0')}`,
        size: 500,
        artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      }));
      res.writeHead(200, { 'content-type': MediaType.ImageIndex, link: `</v2/${referrers[1]}/referrers/${referrers[2]}?page=${page + 1}>; rel="next"` });
      res.end(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests }));
      return;
    }
    const blob = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(url.pathname);
    if (blob && options.endlessBlobs) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const piece = Buffer.alloc(512, 0x61);
      // Written as fast as the client takes them, until it hangs up.
      const pump = () => {
        while (!res.destroyed && res.write(piece));
      };
      res.on('drain', pump);
      pump();
      return;
    }
    const blobBytes = blob ? options.blobs?.[blob[2]!] : undefined;
    if (blobBytes !== undefined) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(blobBytes.length), 'docker-content-digest': blob![2]! });
      if (req.method === 'HEAD') return void res.end();
      if (options.stallBlobsAfter === undefined) return void res.end(blobBytes);
      // Some bytes, then silence: the connection stays open and nothing more ever comes.
      res.write(blobBytes.subarray(0, options.stallBlobsAfter));
      return;
    }
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
