/**
 * Puts the hostile message artifacts of fixtures/hostile/ into real stores, byte for byte: a
 * plain-HTTP docker-registry (raw Distribution API calls, so no client-side check of ours filters
 * anything) and an `oci:` image-layout folder (through OciLayout, as any writer would).
 *
 * Some cases a store refuses to hold (the registry and the layout both check a blob's digest on
 * upload, and both cap manifests at 4 MiB). A receiver must still survive them, because a
 * compromised registry, a man in the middle on plain HTTP, or a layout folder edited by hand serves
 * whatever it likes. So what the API refuses is then *planted* directly in the store's files
 * (distribution's filesystem layout, or blobs/sha256/<hex> plus an index.json entry), and the
 * result says which parts had to be planted, so a test can state it and notice when it changes.
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { digestOf } from '../../src/oci/digest.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';

export const HOSTILE_ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/hostile');

export interface HostileCase {
  name: string;
  /** The exact manifest bytes. */
  manifest: Uint8Array;
  /** Its digest (of the bytes as stored; the manifest itself may lie about anything else). */
  digest: string;
  /** Blobs as the fixture stores them: under the digest the manifest names (bytes may differ). */
  blobs: { digest: string; bytes: Uint8Array }[];
}

/** The case folders under fixtures/hostile/, sorted. */
export async function hostileCaseNames(): Promise<string[]> {
  const entries = await readdir(HOSTILE_ROOT, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

export async function loadHostileCase(name: string): Promise<HostileCase> {
  const dir = path.join(HOSTILE_ROOT, name);
  const manifest = await readFile(path.join(dir, 'manifest.json'));
  const blobs = await Promise.all(
    (await readdir(path.join(dir, 'blobs'))).sort().map(async (hex) => ({ digest: `sha256:${hex}`, bytes: await readFile(path.join(dir, 'blobs', hex)) })),
  );
  return { name, manifest, digest: digestOf(manifest), blobs };
}

/** What the store's own API refused and was therefore written into its files directly. */
export interface Stored {
  /** `blob <digest>` and/or `manifest`, in the order they were planted. */
  planted: string[];
  /** The API's answers to the refused requests (status and error code), for the test's message. */
  refusals: string[];
}

// ---------------------------------------------------------------------------------------------
// docker-registry (plain HTTP)

interface Answer {
  status: number;
  body: string;
}

/** A monolithic blob upload (POST, then PUT with ?digest=), as the Distribution spec describes. */
export async function pushBlobRaw(baseUrl: string, repo: string, digest: string, bytes: Uint8Array): Promise<Answer> {
  const start = await fetch(`${baseUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.arrayBuffer();
  const location = start.headers.get('location');
  if (start.status !== 202 || location === null) return { status: start.status, body: 'upload not started' };
  const url = new URL(location, baseUrl);
  url.searchParams.set('digest', digest);
  const put = await fetch(url, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  return { status: put.status, body: await put.text() };
}

export async function pushManifestRaw(
  baseUrl: string,
  repo: string,
  reference: string,
  bytes: Uint8Array,
  mediaType: string = MediaType.ImageManifest,
): Promise<Answer> {
  const put = await fetch(`${baseUrl}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body: bytes, headers: { 'content-type': mediaType } });
  return { status: put.status, body: await put.text() };
}

function registryRoot(storageDir: string): string {
  return path.join(storageDir, 'docker/registry/v2');
}

async function writeLink(file: string, digest: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, digest);
}

/** Writes `bytes` as the blob `digest` of `repo` in distribution's filesystem storage. */
export async function plantRegistryBlob(storageDir: string, repo: string, digest: string, bytes: Uint8Array): Promise<void> {
  const hex = digest.slice('sha256:'.length);
  const root = registryRoot(storageDir);
  const data = path.join(root, 'blobs/sha256', hex.slice(0, 2), hex, 'data');
  await mkdir(path.dirname(data), { recursive: true });
  await writeFile(`${data}.planting`, bytes);
  await rename(`${data}.planting`, data);
  await writeLink(path.join(root, 'repositories', repo, '_layers/sha256', hex, 'link'), digest);
}

/** Writes a manifest (its blob, its revision link) and points `tag` at it, as a PUT would have. */
export async function plantRegistryManifest(storageDir: string, repo: string, tag: string, bytes: Uint8Array): Promise<string> {
  const digest = digestOf(bytes);
  const hex = digest.slice('sha256:'.length);
  const root = registryRoot(storageDir);
  const data = path.join(root, 'blobs/sha256', hex.slice(0, 2), hex, 'data');
  await mkdir(path.dirname(data), { recursive: true });
  await writeFile(data, bytes);
  const manifests = path.join(root, 'repositories', repo, '_manifests');
  await writeLink(path.join(manifests, 'revisions/sha256', hex, 'link'), digest);
  await writeLink(path.join(manifests, 'tags', tag, 'index/sha256', hex, 'link'), digest);
  await writeLink(path.join(manifests, 'tags', tag, 'current/link'), digest);
  return digest;
}

function refusal(what: string, a: Answer): string {
  let code = '';
  try {
    code = (JSON.parse(a.body) as { errors?: { code?: string }[] }).errors?.map((e) => e.code).join(',') ?? '';
  } catch {
    // not a Distribution error body
  }
  return `${what}: ${a.status}${code ? ` ${code}` : ''}`;
}

/**
 * Pushes a case into `repo` of a plain-HTTP registry under `tag`: the empty config, every blob,
 * then the manifest. Whatever the registry refuses is planted in its storage instead.
 */
export async function storeInRegistry(registry: { url: string; storageDir: string }, repo: string, tag: string, c: HostileCase): Promise<Stored> {
  const stored: Stored = { planted: [], refusals: [] };
  const config = await pushBlobRaw(registry.url, repo, EMPTY_JSON_DIGEST, EMPTY_JSON_BYTES);
  if (config.status !== 201) throw new Error(`the registry refused the empty config: ${config.status} ${config.body}`);
  for (const b of c.blobs) {
    const a = await pushBlobRaw(registry.url, repo, b.digest, b.bytes);
    if (a.status === 201) continue;
    stored.refusals.push(refusal(`blob ${b.digest}`, a));
    await plantRegistryBlob(registry.storageDir, repo, b.digest, b.bytes);
    stored.planted.push(`blob ${b.digest}`);
  }
  const m = await pushManifestRaw(registry.url, repo, tag, c.manifest);
  if (m.status !== 201) {
    stored.refusals.push(refusal('manifest', m));
    await plantRegistryManifest(registry.storageDir, repo, tag, c.manifest);
    stored.planted.push('manifest');
  }
  return stored;
}

// ---------------------------------------------------------------------------------------------
// oci: image layout

/** Writes `bytes` at blobs/sha256/<hex> of the layout, whatever they hash to. */
export async function plantLayoutBlob(root: string, digest: string, bytes: Uint8Array): Promise<void> {
  const file = path.join(root, 'blobs/sha256', digest.slice('sha256:'.length));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(`${file}.planting`, bytes);
  await rename(`${file}.planting`, file);
}

/** Writes the manifest blob and adds an index.json entry tagging it, replacing index.json atomically. */
export async function plantLayoutManifest(root: string, tag: string, bytes: Uint8Array, mediaType: string = MediaType.ImageManifest): Promise<string> {
  const digest = digestOf(bytes);
  await plantLayoutBlob(root, digest, bytes);
  const indexPath = path.join(root, 'index.json');
  const index = JSON.parse(await readFile(indexPath, 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
  index.manifests = index.manifests.filter((e) => e.annotations?.['org.opencontainers.image.ref.name'] !== tag);
  index.manifests.push({ mediaType, digest, size: bytes.length, annotations: { 'org.opencontainers.image.ref.name': tag } } as never);
  await writeFile(`${indexPath}.planting`, JSON.stringify(index));
  await rename(`${indexPath}.planting`, indexPath);
  return digest;
}

/** Stores a case in the layout at `root` (created when absent) under `tag`; plants what it refuses. */
export async function storeInLayout(root: string, tag: string, c: HostileCase): Promise<Stored> {
  const stored: Stored = { planted: [], refusals: [] };
  const layout = await OciLayout.open(root, { create: true });
  await layout.push({ mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: EMPTY_JSON_BYTES.length }, EMPTY_JSON_BYTES);
  for (const b of c.blobs) {
    try {
      await layout.push({ mediaType: 'application/octet-stream', digest: b.digest, size: b.bytes.length }, b.bytes);
    } catch (err) {
      stored.refusals.push(`blob ${b.digest}: ${(err as { code?: string }).code ?? String(err)}`);
      await plantLayoutBlob(root, b.digest, b.bytes);
      stored.planted.push(`blob ${b.digest}`);
    }
  }
  try {
    await layout.pushManifest({ mediaType: MediaType.ImageManifest, digest: c.digest, size: c.manifest.length }, c.manifest, tag);
  } catch (err) {
    stored.refusals.push(`manifest: ${(err as { code?: string }).code ?? String(err)}`);
    await plantLayoutManifest(root, tag, c.manifest);
    stored.planted.push('manifest');
  }
  return stored;
}
