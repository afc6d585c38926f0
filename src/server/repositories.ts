/**
 * The server's repositories: repository `a/b` is the OCI image-layout folder `<root>/a/b/`,
 * opened through OciLayout (atomic blob writes, the locked index.json with its journal, so a tag
 * push costs O(1) however many tags the repository has; the referrers index). Names
 * reach this module only after routes.ts validated them, so a name can never leave the root.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../errors.ts';
import { parseDigest } from '../oci/digest.ts';
import { OciLayout } from '../oci/layout/index.ts';
import { RegistryHttpError } from './errors.ts';

export class RepositoryStore {
  readonly root: string;
  private readonly open = new Map<string, Promise<OciLayout>>();
  /** Repositories that lost a manifest, with when: their blobs may now be unreferenced. */
  private readonly deletedIn = new Map<string, number>();

  constructor(root: string) {
    this.root = root;
  }

  /** The repository `name`; NAME_UNKNOWN when it does not exist (it is created on first push). */
  async get(name: string): Promise<OciLayout> {
    const cached = this.open.get(name);
    if (cached !== undefined) return cached;
    try {
      return await this.remember(name, OciLayout.open(join(this.root, name), { create: false, journal: true }));
    } catch (err) {
      if (err instanceof NotFoundError) throw new RegistryHttpError('NAME_UNKNOWN', `repository ${name} not known to registry`, { detail: { name } });
      throw err;
    }
  }

  /** The repository `name`, created when absent (only once content is about to be committed). */
  async getOrCreate(name: string): Promise<OciLayout> {
    const cached = this.open.get(name);
    if (cached !== undefined) return cached;
    return this.remember(name, OciLayout.open(join(this.root, name), { create: true, journal: true }));
  }

  /** The repository when it exists, else undefined. */
  async find(name: string): Promise<OciLayout | undefined> {
    try {
      return await this.get(name);
    } catch (err) {
      if (err instanceof RegistryHttpError && err.code === 'NAME_UNKNOWN') return undefined;
      throw err;
    }
  }

  /** Notes that `name` lost a manifest (DELETE): the next sweeps look for blobs nothing refers to. */
  markDeleted(name: string): void {
    this.deletedIn.set(name, Date.now());
  }

  /**
   * Removes the blobs no manifest refers to any more in each repository that lost a manifest,
   * those older than `graceMs` (a client uploads blobs before their manifest). A repository is
   * looked at until `graceMs` has passed since its last deletion. Returns how many blobs went.
   */
  async sweepUnreferencedBlobs(graceMs: number): Promise<number> {
    let removed = 0;
    for (const [name, at] of [...this.deletedIn]) {
      const layout = await this.find(name).catch(() => undefined);
      if (layout === undefined) {
        this.deletedIn.delete(name);
        continue;
      }
      removed += (await layout.removeUnreferencedBlobs({ olderThanMs: graceMs })).length;
      if (Date.now() - at > graceMs) this.deletedIn.delete(name);
    }
    return removed;
  }

  /** Folds every open repository's index journal into its index.json (on shutdown). */
  async compactAll(): Promise<void> {
    for (const opening of this.open.values()) {
      const layout = await opening.catch(() => undefined);
      await layout?.compact();
    }
  }

  private async remember(name: string, opening: Promise<OciLayout>): Promise<OciLayout> {
    const layout = await opening;
    if (!this.open.has(name)) {
      this.open.set(name, Promise.resolve(layout));
      // Temp files of writes a crash interrupted are invisible but take space; clear old ones.
      void layout.sweepTemp().catch(() => undefined);
    }
    return (await this.open.get(name)) as OciLayout;
  }
}

/**
 * Size of a blob in a layout, read from its image-layout path `blobs/<alg>/<hex>` (the layout
 * format defines it), or undefined when absent. Needed for HEAD, Range and Content-Length.
 */
export async function blobSize(layout: OciLayout, digest: string): Promise<number | undefined> {
  try {
    const st = await stat(blobFile(layout, digest));
    return st.isFile() ? st.size : undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

export function blobFile(layout: OciLayout, digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return join(layout.root, 'blobs', algorithm, hex);
}
