/**
 * Token scopes (`<type>:<name>:<actions>`) merged into one canonical set, so the token cache
 * keys on what is granted, not on the order a challenge and a request happened to list them.
 */

/** Merges scopes naming the same resource, sorts actions and resources; the result is canonical. */
export function mergeScopes(scopes: Iterable<string>): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const raw of scopes) {
    for (const scope of raw.split(' ')) {
      if (scope === '') continue;
      // The resource name may itself hold ':' (a registry host with a port), so split at the last one.
      const i = scope.lastIndexOf(':');
      if (i <= 0) continue;
      const resource = scope.slice(0, i);
      const actions = byResource.get(resource) ?? new Set<string>();
      for (const a of scope.slice(i + 1).split(',')) if (a !== '') actions.add(a);
      byResource.set(resource, actions);
    }
  }
  return [...byResource.entries()]
    .filter(([, actions]) => actions.size > 0)
    .map(([resource, actions]) => `${resource}:${[...actions].sort().join(',')}`)
    .sort();
}

/** The cache key for a scope set: canonical scopes joined by spaces ('' for no scope). */
export function scopeKey(scopes: Iterable<string>): string {
  return mergeScopes(scopes).join(' ');
}
