/**
 * Where keyless verification gets its roots of trust (Fulcio CA, Rekor and CT log keys): a
 * TrustedRoot JSON file (`--trusted-root FILE`), or the Sigstore public-good root distributed
 * through TUF (@sigstore/tuf), cached under ~/.cache/comms/tuf. Only keyless verification needs
 * one; key-signed messages are checked against the trusted keys alone.
 *
 * Every failure is a VerificationError (exit 2, code `TRUSTED_ROOT_UNAVAILABLE`): without a root
 * of trust nothing keyless can be verified, and recv must treat that as "not verified".
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { CommsError, VerificationError } from '../errors.ts';
import { abortable } from '../util/abort.ts';

/**
 * The Sigstore public-good TUF repository: @sigstore/tuf's DEFAULT_MIRROR_URL, written here so
 * that checking a trusted root (key verification, a --trusted-root file) does not load the TUF
 * client; the unit tests check that the two agree.
 */
export const PUBLIC_GOOD_TUF_MIRROR = 'https://tuf-repo-cdn.sigstore.dev';

const TRUSTED_ROOT_TARGET = 'trusted_root.json';

export interface PublicGoodTrustedRootOptions {
  /** TUF cache directory; default `$XDG_CACHE_HOME/comms/tuf` or `~/.cache/comms/tuf`. */
  cacheDir?: string;
  /** TUF repository; default the public-good mirror https://tuf-repo-cdn.sigstore.dev. */
  mirrorURL?: string;
  /**
   * Never touch the network: use the trusted root last fetched into the cache, or, for the
   * public-good mirror, the copy shipped inside @sigstore/tuf. The cached copy was checked against
   * TUF metadata when it was fetched; its expiry is not re-checked offline.
   */
  offline?: boolean;
  signal?: AbortSignal;
}

/** The default TUF cache directory. */
export function defaultTufCacheDir(env: Record<string, string | undefined> = process.env): string {
  const base = env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'comms', 'tuf');
}

/**
 * The trusted root for keyless verification: the file at `path` when given (`--trusted-root`),
 * else the public-good root through TUF.
 */
export async function loadTrustedRoot(options: PublicGoodTrustedRootOptions & { path?: string | undefined } = {}): Promise<object> {
  const { path, ...publicGood } = options;
  return path !== undefined && path !== '' ? loadTrustedRootFile(path) : loadPublicGoodTrustedRoot(publicGood);
}

/** Reads a TrustedRoot JSON file (`--trusted-root FILE`) and checks that it parses. */
export async function loadTrustedRootFile(path: string): Promise<object> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw unavailable(`cannot read trusted root ${path} (${code ?? 'read failed'})`, err);
  }
  return parseTrustedRoot(text, path);
}

/**
 * The public-good TrustedRoot via TUF. Online, TUF metadata is refreshed only when the cached copy
 * has expired (@sigstore/tuf `forceCache`), so repeated runs do not hit the network.
 */
export async function loadPublicGoodTrustedRoot(options: PublicGoodTrustedRootOptions = {}): Promise<object> {
  const cacheDir = options.cacheDir ?? defaultTufCacheDir();
  const mirrorURL = options.mirrorURL ?? PUBLIC_GOOD_TUF_MIRROR;
  if (options.offline) return cachedTrustedRoot(cacheDir, mirrorURL);
  return abortable(
    async () => {
      // The TUF client is loaded only when the root is fetched through it.
      const { getTrustedRoot } = await import('@sigstore/tuf');
      try {
        const root = await getTrustedRoot({ cachePath: cacheDir, mirrorURL, forceCache: true });
        return TrustedRoot.toJSON(root) as object;
      } catch (err) {
        if (err instanceof CommsError) throw err;
        throw unavailable(
          `cannot fetch the Sigstore trusted root from ${mirrorURL} (cache ${cacheDir}); give a trustedRoot file, or use the cached copy offline`,
          err,
        );
      }
    },
    options.signal,
    'fetching the trusted root',
  );
}

/** Checks a TrustedRoot given as JSON (object or text) and returns it as a plain object. */
export function parseTrustedRoot(json: string | object, source = 'the trusted root'): object {
  let value: unknown = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (err) {
      throw unavailable(`${source} is not JSON`, err);
    }
  }
  toTrustedRoot(value, source);
  return value as object;
}

/** The protobuf form @sigstore/verify consumes. */
export function toTrustedRoot(json: unknown, source = 'the trusted root'): TrustedRoot {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw unavailable(`${source} is not a JSON object`);
  }
  let root: TrustedRoot;
  try {
    root = TrustedRoot.fromJSON(json);
  } catch (err) {
    throw unavailable(`${source} is not a Sigstore TrustedRoot`, err);
  }
  if (root.certificateAuthorities.length === 0 && root.tlogs.length === 0) {
    throw unavailable(`${source} names no certificate authority and no transparency log`);
  }
  return root;
}

async function cachedTrustedRoot(cacheDir: string, mirrorURL: string): Promise<object> {
  // The layout @sigstore/tuf uses: <cache>/<encoded host+path>/targets/<encoded target name>.
  const url = new URL(mirrorURL);
  const repo = encodeURIComponent(url.host + url.pathname.replace(/\/$/, ''));
  const cached = join(cacheDir, repo, 'targets', encodeURIComponent(TRUSTED_ROOT_TARGET));
  try {
    return parseTrustedRoot(await readFile(cached, 'utf8'), `the cached trusted root ${cached}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err instanceof CommsError ? err : unavailable(`cannot read ${cached}`, err);
  }
  const seeded = seededTrustedRoot(mirrorURL);
  if (seeded === undefined) {
    throw unavailable(`no cached trusted root for ${mirrorURL} in ${cacheDir}; run once online, or give a trustedRoot file`);
  }
  return parseTrustedRoot(seeded, `the trusted root shipped with @sigstore/tuf`);
}

/** The trusted root @sigstore/tuf ships as the seed of its public-good cache. */
function seededTrustedRoot(mirrorURL: string): string | undefined {
  const require = createRequire(import.meta.url);
  let seeds: Record<string, { targets?: Record<string, string> }>;
  try {
    seeds = require('@sigstore/tuf/seeds.json') as typeof seeds;
  } catch {
    return undefined;
  }
  const target = seeds[mirrorURL]?.targets?.[TRUSTED_ROOT_TARGET];
  return target === undefined ? undefined : Buffer.from(target, 'base64').toString('utf8');
}

function unavailable(message: string, cause?: unknown): VerificationError {
  return new VerificationError(message, { code: 'TRUSTED_ROOT_UNAVAILABLE', ...(cause !== undefined ? { cause } : {}) });
}
