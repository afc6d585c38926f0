/**
 * Bounds on a listing (tags, referrers): a registry that answers every page with another
 * `Link: rel="next"`, or with endless entries, would otherwise keep a client reading, and
 * holding, forever. Past a bound the listing fails with exit 4 (ProtocolError `LIST_LIMIT`),
 * naming the bound.
 */
import { ProtocolError } from '../../errors.ts';

export interface ListLimits {
  /** Pages of one tag listing (1,000 pages of the 1,000 tags comms asks for cover maxTags). */
  maxTagPages: number;
  /** Tags in one listing. */
  maxTags: number;
  /** Pages of one referrers listing. */
  maxReferrerPages: number;
  /** Descriptors in one referrers listing. */
  maxReferrers: number;
}

export const DEFAULT_LIST_LIMITS: Readonly<ListLimits> = {
  maxTagPages: 1000,
  maxTags: 1_000_000,
  maxReferrerPages: 1000,
  maxReferrers: 100_000,
};

/** Counts the pages and entries of one listing, and fails past either bound. */
export class ListBudget {
  private pages = 0;
  private entries = 0;
  private readonly operation: string;
  private readonly registry: string;
  private readonly maxPages: number;
  private readonly maxEntries: number;
  private readonly noun: string;

  constructor(operation: string, registry: string, maxPages: number, maxEntries: number, noun: string) {
    this.operation = operation;
    this.registry = registry;
    this.maxPages = maxPages;
    this.maxEntries = maxEntries;
    this.noun = noun;
  }

  /** Before each page is requested. */
  page(): void {
    if (this.pages >= this.maxPages) {
      throw new ProtocolError(
        `${this.operation}: ${this.registry} still links to a next page after ${this.maxPages} pages (the limit of pages per listing); refusing an endless list`,
        { code: 'LIST_LIMIT', registry: this.registry },
      );
    }
    this.pages++;
  }

  /** After each page is read. */
  add(count: number): void {
    this.entries += count;
    if (this.entries > this.maxEntries) {
      throw new ProtocolError(
        `${this.operation}: ${this.registry} listed more than ${this.maxEntries} ${this.noun} (the limit per listing); refusing an endless list`,
        { code: 'LIST_LIMIT', registry: this.registry },
      );
    }
  }
}
