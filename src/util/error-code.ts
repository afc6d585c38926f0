/** Reading the `code` of an error or of the errors it wraps (Node and undici nest the socket error as `cause`). */

/** How deep a cause chain is followed: wrappers nest a few levels, never more. */
const MAX_DEPTH = 5;

/**
 * The first string `code` along `err` and its `cause` chain that `accept` takes (by default the
 * first code at all), or undefined.
 */
export function findErrorCode(err: unknown, accept: (code: string) => boolean = () => true): string | undefined {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < MAX_DEPTH; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && accept(code)) return code;
  }
  return undefined;
}
