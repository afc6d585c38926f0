/**
 * OCI / Docker references: `host[:port]/name[:tag][@digest]`, checked against the OCI
 * distribution grammars before any request is made, with Docker Hub normalised as docker does
 * (`ubuntu` → `docker.io/library/ubuntu`). Also the `oci:<path>` form naming an image-layout folder.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { InvalidReferenceError } from '../errors.ts';
import { parseDigest } from './digest.ts';

export interface Reference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

export type TargetRef = { kind: 'remote'; reference: Reference } | { kind: 'layout'; path: string; tag?: string; digest?: string };

/** Docker Hub's canonical name, and the legacy one docker rewrites to it. */
export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_LEGACY = 'index.docker.io';
const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';
const OFFICIAL_PREFIX = 'library/';

/** The distribution spec's limit on a repository name. */
export const MAX_REPOSITORY_LENGTH = 255;
/** Hosts longer than a DNS name can be are refused before any pattern runs over them. */
const MAX_HOST_LENGTH = 255;
/** Whole inputs beyond this cannot be valid (host + name + tag + sha512 digest) and are not scanned. */
const MAX_INPUT_LENGTH = 1024;

const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DOMAIN_COMPONENT_RE = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
const PORT_RE = /^[0-9]{1,5}$/;

function q(s: string): string {
  return JSON.stringify(s.length > 300 ? `${s.slice(0, 300)}…` : s);
}

/** Throws InvalidReferenceError unless `name` is a valid repository name (lowercase path components). */
export function validateRepositoryName(name: string): void {
  if (typeof name !== 'string' || name === '') {
    throw new InvalidReferenceError('invalid repository name "": it must not be empty');
  }
  if (name.length > MAX_REPOSITORY_LENGTH) {
    throw new InvalidReferenceError(`invalid repository name ${q(name)}: longer than ${MAX_REPOSITORY_LENGTH} characters`);
  }
  if (name !== name.toLowerCase()) {
    throw new InvalidReferenceError(`invalid repository name ${q(name)}: it must be lowercase`);
  }
  for (const component of name.split('/')) {
    if (component === '') {
      throw new InvalidReferenceError(`invalid repository name ${q(name)}: empty path component (leading, trailing or doubled '/')`);
    }
    if (!PATH_COMPONENT_RE.test(component)) {
      throw new InvalidReferenceError(
        `invalid repository name ${q(name)}: path component ${q(component)} must be lowercase letters and digits, ` + `separated by '.', '_', '__' or '-'`,
      );
    }
  }
}

/** Throws InvalidReferenceError unless `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. */
export function validateTag(tag: string): void {
  if (typeof tag !== 'string' || !TAG_RE.test(tag)) {
    const s = typeof tag === 'string' ? tag : String(tag);
    throw new InvalidReferenceError(`invalid tag ${q(s)}: a tag is 1 to 128 letters, digits, '_', '.' or '-', and does not start with '.' or '-'`);
  }
}

/** Throws InvalidReferenceError unless `host` is `name[:port]`, `ipv4[:port]` or `[ipv6][:port]`. */
export function validateRegistryHost(host: string): void {
  const bad = (why: string): never => {
    throw new InvalidReferenceError(`invalid registry host ${q(host)}: ${why}`);
  };
  if (typeof host !== 'string' || host === '') bad('it must not be empty');
  if (host.length > MAX_HOST_LENGTH) bad(`longer than ${MAX_HOST_LENGTH} characters`);
  let name: string;
  let port: string | undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) bad("an IPv6 address opened with '[' is not closed with ']'");
    name = host.slice(1, end);
    const rest = host.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) bad("only ':<port>' may follow an IPv6 address in brackets");
      port = rest.slice(1);
    }
    // Zones (`%eth0`) and IPv4 forms are refused: the distribution grammar allows hex and ':' only.
    if (!/^[0-9a-fA-F:]+$/.test(name) || !isIPv6(name)) bad(`${q(name)} is not an IPv6 address`);
  } else {
    const i = host.indexOf(':');
    name = i < 0 ? host : host.slice(0, i);
    port = i < 0 ? undefined : host.slice(i + 1);
    if (name === '') bad('the host name is empty');
    for (const component of name.split('.')) {
      if (!DOMAIN_COMPONENT_RE.test(component)) {
        bad(
          component === ''
            ? "empty label (leading, trailing or doubled '.')"
            : `label ${q(component)} must be letters, digits and '-', not starting or ending with '-'` +
                (host.includes('://') ? ' (write the host without a URL scheme)' : ''),
        );
      }
    }
  }
  if (port !== undefined) {
    if (!PORT_RE.test(port)) bad(`port ${q(port)} is not a number`);
    const n = Number(port);
    if (n < 1 || n > 65535) bad(`port ${port} is outside 1-65535`);
  }
}

function fail(input: string, why: string, cause?: unknown): never {
  throw new InvalidReferenceError(`invalid reference ${q(input)}: ${why}`, cause === undefined ? {} : { cause });
}

/** Re-throws a component's error with the whole input quoted, keeping its code and cause chain. */
function within<T>(input: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof InvalidReferenceError) {
      throw new InvalidReferenceError(`invalid reference ${q(input)}: ${err.message}`, { code: err.code, cause: err });
    }
    throw err;
  }
}

/**
 * Splits `name[:tag][@digest]` into its parts, the tag being after a ':' in the last path
 * segment (so a registry port is never mistaken for a tag).
 */
function splitTagAndDigest(input: string, body: string): { name: string; tag?: string; digest?: string } {
  let name = body;
  let digest: string | undefined;
  let tag: string | undefined;
  const at = name.indexOf('@');
  if (at >= 0) {
    digest = name.slice(at + 1);
    name = name.slice(0, at);
    if (digest === '') fail(input, "nothing follows '@' (expected a digest such as sha256:<64 hex>)");
    if (digest.includes('@')) fail(input, "more than one '@'");
    const d = digest;
    within(input, () => parseDigest(d));
  }
  const lastSlash = name.lastIndexOf('/');
  const colon = name.indexOf(':', lastSlash + 1);
  if (colon >= 0) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
    if (tag === '') fail(input, "nothing follows ':' (expected a tag)");
    const t = tag;
    within(input, () => validateTag(t));
  }
  const out: { name: string; tag?: string; digest?: string } = { name };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/**
 * Parses `host[:port]/name[:tag][@digest]`, normalising Docker Hub as docker does: when the
 * first path component is not a host (no '.', no ':', not 'localhost', all lowercase) the
 * registry is `docker.io`; one-component Docker Hub names get `library/`; `index.docker.io`
 * becomes `docker.io`. Throws InvalidReferenceError (exit 4) quoting the input.
 */
export function parseReference(input: string): Reference {
  if (typeof input !== 'string') throw new InvalidReferenceError(`invalid reference: expected a string, got ${typeof input}`);
  if (input === '') throw new InvalidReferenceError('invalid reference "": it must not be empty');
  if (input.length > MAX_INPUT_LENGTH) fail(input, `longer than ${MAX_INPUT_LENGTH} characters`);
  if (/\s/.test(input)) fail(input, 'it contains whitespace');
  if (input.includes('://')) fail(input, 'a reference has no URL scheme; write host/name[:tag]');

  // The registry part ends at the first '/', and may itself contain ':' (port) — split it off
  // before looking for the tag so `localhost:5000/x` keeps its port.
  let registry: string;
  let rest: string;
  const slash = input.indexOf('/');
  const first = slash < 0 ? '' : input.slice(0, slash);
  if (slash < 0) {
    registry = DOCKER_HUB;
    rest = input;
  } else if (first === 'localhost' || /[.:]/.test(first) || first !== first.toLowerCase() || first.startsWith('[')) {
    registry = first;
    rest = input.slice(slash + 1);
  } else {
    registry = DOCKER_HUB;
    rest = input;
  }
  // '@' or ':' inside the host part would be a digest or tag with nothing to tag.
  if (registry.includes('@')) fail(input, "'@' must follow a repository name");
  within(input, () => validateRegistryHost(registry));
  if (registry === DOCKER_HUB_LEGACY) registry = DOCKER_HUB;

  const { name, tag, digest } = splitTagAndDigest(input, rest);
  let repository = name;
  if (repository === '') fail(input, 'the repository name is empty');
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = OFFICIAL_PREFIX + repository;
  within(input, () => validateRepositoryName(repository));

  const ref: Reference = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `registry/repository[:tag][@digest]`, fully qualified (Docker Hub names keep `docker.io/library/`). */
export function formatReference(ref: Reference): string {
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** The host to send HTTP requests to: Docker Hub's API lives on `registry-1.docker.io`. */
export function registryEndpointHost(registry: string): string {
  return registry === DOCKER_HUB || registry === DOCKER_HUB_LEGACY ? DOCKER_HUB_ENDPOINT : registry;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Whether `host` (optionally with `:port`) is this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
 * Used to allow plain HTTP only where nothing crosses a network.
 */
export function isLoopbackHost(host: string): boolean {
  if (typeof host !== 'string') return false;
  let name = host;
  if (name.startsWith('[')) {
    const end = name.indexOf(']');
    if (end < 0) return false;
    const rest = name.slice(end + 1);
    if (rest !== '' && !/^:[0-9]{1,5}$/.test(rest)) return false;
    name = name.slice(1, end);
    return isIPv6(name) && LOOPBACK.check(name, 'ipv6');
  }
  if (isIPv6(name)) return LOOPBACK.check(name, 'ipv6');
  const colon = name.indexOf(':');
  if (colon >= 0) {
    if (!/^[0-9]{1,5}$/.test(name.slice(colon + 1))) return false;
    name = name.slice(0, colon);
  }
  if (name.toLowerCase() === 'localhost') return true;
  return isIPv4(name) && LOOPBACK.check(name, 'ipv4');
}

const LAYOUT_PREFIX = 'oci:';

/**
 * `oci:<path>[:tag][@digest]` → an image-layout folder; anything else → a remote reference.
 *
 * Paths may contain ':' and '@', so the suffixes are recognised from the right:
 * - the text after the LAST '@' is a digest when it contains no '/' or '\' (and must then be a
 *   valid digest); otherwise the '@' belongs to the path;
 * - then the text after the LAST ':' is a tag when it contains no '/' or '\' (and must then be a
 *   valid tag); otherwise the ':' belongs to the path.
 * So a typo in a tag is an error, never a different folder. A folder whose last segment itself
 * contains ':' or '@' is written with a trailing '/' (`oci:./a:b/`); a Windows drive (`C:\x`)
 * is never taken for a tag because what follows contains '\'.
 */
export function parseTargetRef(input: string): TargetRef {
  if (typeof input !== 'string') throw new InvalidReferenceError(`invalid reference: expected a string, got ${typeof input}`);
  if (!input.startsWith(LAYOUT_PREFIX)) {
    try {
      return { kind: 'remote', reference: parseReference(input) };
    } catch (err) {
      // A filesystem path is a likely mistake for a layout folder: say how to write one.
      if (err instanceof InvalidReferenceError && /^(?:\.{0,2}\/|~\/)/.test(input)) {
        throw new InvalidReferenceError(`${err.message} (for an image-layout folder write oci:${input})`, { code: err.code, cause: err });
      }
      throw err;
    }
  }

  let path = input.slice(LAYOUT_PREFIX.length);
  let tag: string | undefined;
  let digest: string | undefined;
  const hasSeparator = (s: string): boolean => s.includes('/') || s.includes('\\');

  const at = path.lastIndexOf('@');
  if (at >= 0 && !hasSeparator(path.slice(at + 1))) {
    digest = path.slice(at + 1);
    path = path.slice(0, at);
    if (digest === '') fail(input, "nothing follows '@' (expected a digest such as sha256:<64 hex>)");
    const d = digest;
    within(input, () => parseDigest(d));
  }
  const colon = path.lastIndexOf(':');
  if (colon >= 0 && !hasSeparator(path.slice(colon + 1))) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (tag === '') fail(input, "nothing follows ':' (expected a tag)");
    const t = tag;
    within(input, () => validateTag(t));
  }
  if (path === '') fail(input, "the layout path after 'oci:' is empty");
  if (path.includes('\0')) fail(input, 'the layout path contains a NUL character');

  const out: TargetRef = { kind: 'layout', path };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}
