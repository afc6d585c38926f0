/**
 * Filling a repository with thousands of foreign tags cheaply: one tiny manifest, tagged N times.
 * Over HTTP with bounded concurrency (one PUT per tag; docker-registry takes seconds for 5,000),
 * or — for comms serve, whose layout rewrites index.json on every tag — by writing the entries
 * into the repository's image-layout index.json in one atomic replace while nothing else writes.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { digestOf } from '../../src/oci/digest.ts';
import { ANNOTATION_REF_NAME, EMPTY_JSON_BYTES, EMPTY_JSON_DIGEST, MediaType } from '../../src/oci/mediatypes.ts';
import type { Repository } from '../../src/oci/target.ts';
import { recipientTag } from '../../src/protocol/tags.ts';
import { forEachLimit } from '../../src/util/pool.ts';

export interface ForeignManifest {
  descriptor: Descriptor;
  bytes: Uint8Array;
}

/** Pushes (and returns) a minimal artifact manifest that is not a comms message. */
export async function pushForeignManifest(repo: Repository): Promise<ForeignManifest> {
  await repo.push({ mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: EMPTY_JSON_BYTES.length }, EMPTY_JSON_BYTES);
  const bytes = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ImageManifest,
      artifactType: 'application/vnd.example.foreign',
      config: { mediaType: MediaType.EmptyJSON, digest: EMPTY_JSON_DIGEST, size: EMPTY_JSON_BYTES.length },
      layers: [],
    }),
  );
  const descriptor: Descriptor = { mediaType: MediaType.ImageManifest, digest: digestOf(bytes), size: bytes.length };
  await repo.pushManifest(descriptor, bytes);
  return { descriptor, bytes };
}

/**
 * `count` tag names that are not the recipient's: half look like build tags, half are other
 * people's inbox tags (so the recipient's prefix filter, not a fetch, must tell them apart).
 */
export function foreignTags(count: number): string[] {
  const tags: string[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) tags.push(`build-${String(i).padStart(5, '0')}`);
    else tags.push(`inbox-${recipientTag(`someone-${i % 97}`)}-20250101-${randomBytes(4).toString('hex')}-${String(i).padStart(8, '0')}`);
  }
  return tags;
}

/** Tags `manifest` under every name, `concurrency` PUTs at a time. */
export async function tagOverHttp(repo: Repository, manifest: ForeignManifest, tags: string[], concurrency = 16): Promise<void> {
  await forEachLimit(tags, concurrency, async (tag) => {
    await repo.pushManifest(manifest.descriptor, manifest.bytes, tag);
  });
}

/**
 * Adds the tags straight into an image layout's index.json (the manifest must already be stored
 * there), replacing the file atomically. Only while no one else writes to that layout.
 */
export async function tagInLayout(layoutDir: string, manifest: ForeignManifest, tags: string[]): Promise<void> {
  const file = join(layoutDir, 'index.json');
  const index = JSON.parse(await readFile(file, 'utf8')) as { manifests: Descriptor[] };
  const { mediaType, digest, size } = manifest.descriptor;
  index.manifests = index.manifests.filter((d) => d.digest !== digest);
  for (const tag of tags) index.manifests.push({ mediaType, digest, size, annotations: { [ANNOTATION_REF_NAME]: tag } });
  const tmp = `${file}.${randomBytes(4).toString('hex')}.seed`;
  await writeFile(tmp, JSON.stringify(index));
  await rename(tmp, file);
}
