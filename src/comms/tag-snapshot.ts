/**
 * One listing of a repository's tags, taken once and shared by every lookup in a run, so a busy
 * inbox costs (tag pages) requests, not (tag pages × messages) as v1.0's per-message listing does.
 */
import type { OperationOptions, Repository } from '../oci/target.ts';

export class TagSnapshot {
  private readonly sorted: string[];

  private constructor(tags: string[]) {
    this.sorted = [...new Set(tags)].sort();
  }

  /**
   * Lists every tag once. With `prefixes`, only the tags that start with one of them are kept
   * while listing, so a mailbox full of other tags costs requests but not memory.
   */
  static async load(repo: Repository, options: OperationOptions & { pageSize?: number; prefixes?: readonly string[] } = {}): Promise<TagSnapshot> {
    const kept: string[] = [];
    const prefixes = options.prefixes;
    await repo.tags(
      (page) => {
        for (const t of page) if (prefixes === undefined || prefixes.some((p) => t.startsWith(p))) kept.push(t);
      },
      { signal: options.signal, pageSize: options.pageSize ?? 1000 },
    );
    return new TagSnapshot(kept);
  }

  /**
   * The tags that start with `prefix` (and sort after `from`, when given), in one listing that
   * starts at the prefix (`last`) and stops at its end: on a registry that honours `last` this
   * costs the pages of these tags only, however many others the repository holds. A registry that
   * ignores `last` (distribution 2.8) still gives the right answer, at the cost of a full listing.
   */
  static async loadRange(repo: Repository, prefix: string, options: OperationOptions & { from?: string; pageSize?: number } = {}): Promise<TagSnapshot> {
    const kept: string[] = [];
    const from = options.from !== undefined && options.from > prefix ? options.from : prefix;
    await repo.tags(
      (page) => {
        for (const t of page) {
          if (t.startsWith(prefix)) kept.push(t);
          else if (t > prefix) return false; // past the prefix: nothing of ours follows
        }
        return true;
      },
      { signal: options.signal, pageSize: options.pageSize ?? 1000, last: from },
    );
    return new TagSnapshot(kept);
  }

  static of(tags: string[]): TagSnapshot {
    return new TagSnapshot(tags);
  }

  get size(): number {
    return this.sorted.length;
  }

  has(tag: string): boolean {
    const i = this.lowerBound(tag);
    return this.sorted[i] === tag;
  }

  /** Every tag that starts with `prefix`, in lexical order (binary search, no full scan). */
  withPrefix(prefix: string): string[] {
    const out: string[] = [];
    for (let i = this.lowerBound(prefix); i < this.sorted.length; i++) {
      const t = this.sorted[i]!;
      if (!t.startsWith(prefix)) break;
      out.push(t);
    }
    return out;
  }

  private lowerBound(key: string): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
