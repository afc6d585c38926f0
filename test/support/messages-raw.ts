/**
 * A second, independent view of what is on the wire, for the interop tests: raw OCI Distribution
 * HTTP (fetch, no comms client), the recipient token computed from its definition, and chunk
 * layers opened with the system's gzip/zstd and tar, never through comms' own reader.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A blob upload as any client does it: POST for a session, then one PUT with the digest. */
export async function rawPushBlob(base: string, repo: string, bytes: Uint8Array): Promise<string> {
  const digest = sha256Digest(bytes);
  const post = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await post.arrayBuffer();
  if (post.status !== 202) throw new Error(`POST upload: ${post.status}`);
  const location = new URL(post.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`PUT blob: ${put.status}`);
  return digest;
}

/** PUT the manifest bytes exactly as given under `reference` (a tag or digest). */
export async function rawPushManifest(base: string, repo: string, reference: string, bytes: Uint8Array, mediaType = OCI_MANIFEST): Promise<string> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body: bytes, headers: { 'content-type': mediaType } });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT manifest ${reference}: ${res.status} ${text}`);
  return res.headers.get('docker-content-digest') ?? sha256Digest(bytes);
}

export interface RawManifest {
  bytes: Buffer;
  digest: string;
  contentType: string | null;
  json: Record<string, unknown>;
}

export async function rawGetManifest(base: string, repo: string, reference: string): Promise<RawManifest> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${reference}`, { headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`GET manifest ${reference}: ${res.status} ${bytes.toString('utf8')}`);
  return {
    bytes,
    digest: sha256Digest(bytes),
    contentType: res.headers.get('content-type'),
    json: JSON.parse(bytes.toString('utf8')) as Record<string, unknown>,
  };
}

export async function rawGetBlob(base: string, repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${base}/v2/${repo}/blobs/${digest}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`GET blob ${digest}: ${res.status}`);
  return bytes;
}

/** Every tag, following `Link: rel="next"`. */
export async function rawTags(base: string, repo: string): Promise<string[]> {
  const tags: string[] = [];
  let url: string | undefined = `${base}/v2/${repo}/tags/list`;
  while (url !== undefined) {
    const res: Response = await fetch(url);
    const body = (await res.json()) as { tags?: string[] | null };
    if (res.status !== 200) throw new Error(`GET tags: ${res.status}`);
    tags.push(...(body.tags ?? []));
    const next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
    url = next === undefined ? undefined : new URL(next, base).toString();
  }
  return tags;
}

/** recipient_tag from its definition: lowercase(base32hex, no padding (sha256(utf8)))[:26]. */
export function recipientTagOf(recipient: string): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUV';
  const bits = [...createHash('sha256').update(Buffer.from(recipient, 'utf8')).digest()].map((b) => b.toString(2).padStart(8, '0')).join('');
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
  return out.toLowerCase().slice(0, 26);
}

function run(cmd: string, args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // TZ=UTC: tar prints mtimes in local time.
    const child = execFile(cmd, args, { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024, env: { ...process.env, TZ: 'UTC' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message} ${stderr.toString('utf8')}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

export interface TarEntry {
  /** `tar -tv` type character: '-' regular file, 'l' symlink, 'd' folder… */
  type: string;
  mode: string;
  owner: string;
  size: number;
  mtime: string;
  name: string;
}

/**
 * Opens one chunk layer with the system tools: `gzip -dc` / `zstd -dc`, then GNU tar lists the
 * entries and extracts the (single) file's bytes. The layer is written to `scratch` first.
 */
export async function openLayerWithSystemTools(
  layer: Buffer,
  compression: 'gzip' | 'zstd',
  scratch: string,
): Promise<{ entries: TarEntry[]; content: Buffer; tar: Buffer }> {
  const file = join(scratch, `layer-${sha256Digest(layer).slice(7, 19)}`);
  await writeFile(file, layer);
  // -t first: a damaged stream or trailing garbage fails here.
  await run(compression, ['-t', file]);
  const tar = await run(compression, ['-dc', file]);
  const listing = (await run('tar', ['-tv', '--numeric-owner', '--full-time', '-f', '-'], tar)).toString('utf8');
  const entries = listing
    .split('\n')
    .filter(Boolean)
    .map((line): TarEntry => {
      // -rw-r--r-- 0/0   65536 1970-01-01 00:00:00 chunk_0.bin
      const m = /^(\S)(\S{9})\s+(\S+)\s+(\d+)\s+(\S+ \S+)\s+(.*)$/.exec(line);
      if (m === null) throw new Error(`unexpected tar listing line: ${line}`);
      return { type: m[1]!, mode: m[2]!, owner: m[3]!, size: Number(m[4]), mtime: m[5]!, name: m[6]! };
    });
  const content = await run('tar', ['-xO', '-f', '-'], tar);
  return { entries, content, tar };
}
