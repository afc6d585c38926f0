/**
 * The one spelling of a registry used to match credentials: docker config keys may be
 * `ghcr.io`, `https://ghcr.io` or `http://host:5000/v2/`, and Docker Hub has three names.
 */
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** Lowercased host[:port] without scheme or path; Docker Hub's aliases become `docker.io`. */
export function normalizeRegistryHost(registryOrUrl: string): string {
  let s = registryOrUrl.trim().toLowerCase();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//.exec(s);
  if (scheme) s = s.slice(scheme[0].length);
  const slash = s.indexOf('/');
  if (slash >= 0) s = s.slice(0, slash);
  return DOCKER_HUB_ALIASES.has(s) ? 'docker.io' : s;
}
