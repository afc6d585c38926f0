/**
 * The layout's referrers index: one small file per (subject, referrer) pair,
 * `referrers/<alg>/<subject hex>/<alg>-<referrer hex>.json`, holding the referrer's descriptor
 * exactly as the Referrers API returns it (mediaType, digest, size, artifactType, annotations).
 *
 * Why files and not index.json: adding a referrer is one atomic create with no lock and no
 * rewrite of a growing index.json; a query is one readdir of the subject's folder plus one small
 * read per referrer — O(referrers of that subject), never a scan of the store's blobs.
 * The content of each file is a function of the (immutable) referrer manifest, so rewriting it
 * is idempotent and two processes adding the same referrer cannot disagree.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Descriptor } from '../descriptor.ts';
import { parseDigest } from '../digest.ts';
import { writeFileAtomic } from './atomic.ts';

const MARKER_RE = /^(sha256|sha512)-([a-f0-9]+)\.json$/;

export class ReferrersIndex {
  private readonly dir: string;
  private readonly tmpDir: string;

  constructor(dir: string, tmpDir: string) {
    this.dir = dir;
    this.tmpDir = tmpDir;
  }

  private subjectDir(subjectDigest: string): string {
    const { algorithm, hex } = parseDigest(subjectDigest);
    return join(this.dir, algorithm, hex);
  }

  private markerName(referrerDigest: string): string {
    const { algorithm, hex } = parseDigest(referrerDigest);
    return `${algorithm}-${hex}.json`;
  }

  async add(subjectDigest: string, referrer: Descriptor): Promise<void> {
    const dir = this.subjectDir(subjectDigest);
    await mkdir(dir, { recursive: true });
    const bytes = new TextEncoder().encode(JSON.stringify(referrer));
    await writeFileAtomic(this.tmpDir, join(dir, this.markerName(referrer.digest)), bytes, 'replace');
  }

  async remove(subjectDigest: string, referrerDigest: string): Promise<void> {
    await rm(join(this.subjectDir(subjectDigest), this.markerName(referrerDigest)), { force: true });
  }

  /** The recorded referrers of `subjectDigest`, sorted by digest; damaged entries are skipped. */
  async list(subjectDigest: string): Promise<Descriptor[]> {
    const dir = this.subjectDir(subjectDigest);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: Descriptor[] = [];
    for (const name of names) {
      const m = MARKER_RE.exec(name);
      if (m === null) continue;
      let d: Partial<Descriptor>;
      try {
        d = JSON.parse(await readFile(join(dir, name), 'utf8')) as Partial<Descriptor>;
      } catch {
        continue; // removed meanwhile, or not ours to interpret
      }
      if (d.digest !== `${m[1]}:${m[2]}` || typeof d.mediaType !== 'string' || typeof d.size !== 'number') continue;
      out.push(d as Descriptor);
    }
    return out.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  }
}
