/**
 * JSON exactly as Go's encoding/json (Go ≥ 1.22) writes the image-spec v1.1 structs that
 * dockercomms v1.0 marshals, so that a manifest comms builds from the same inputs has the same
 * bytes, and therefore the same digest: struct fields in declaration order, empty optional fields
 * omitted, map keys sorted by their UTF-8 bytes, no white space, and Go's string escaping.
 */
import type { Descriptor, ImageManifest } from '../oci/descriptor.ts';

const HEX = '0123456789abcdef';

/**
 * A JSON string literal as Go writes it: `<`, `>`, `&` as \u003c \u003e \u0026 (json.Marshal's
 * HTML escaping), U+2028/U+2029 escaped, \b \f \n \r \t short, other controls as \u00XX, and
 * anything that is not valid Unicode (a lone surrogate here) as \ufffd.
 */
export function goJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      switch (c) {
        case 0x22:
          out += '\\"';
          break;
        case 0x5c:
          out += '\\\\';
          break;
        case 0x08:
          out += '\\b';
          break;
        case 0x0c:
          out += '\\f';
          break;
        case 0x0a:
          out += '\\n';
          break;
        case 0x0d:
          out += '\\r';
          break;
        case 0x09:
          out += '\\t';
          break;
        case 0x3c:
        case 0x3e:
        case 0x26:
          out += `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}`;
          break;
        default:
          out += c < 0x20 ? `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}` : s[i];
      }
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += s[i]! + s[i + 1]!;
        i++;
      } else {
        out += '\\ufffd';
      }
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) {
      out += '\\ufffd';
      continue;
    }
    if (c === 0x2028 || c === 0x2029) {
      out += `\\u202${HEX[c & 0xf]}`;
      continue;
    }
    out += s[i];
  }
  return out + '"';
}

/** Go's sort of map keys: strings.Compare, i.e. by UTF-8 bytes (not by UTF-16 units as JS sorts). */
export function goKeyCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A map[string]string; `omitempty` is the caller's business. */
export function goStringMap(m: Record<string, string>): string {
  const keys = Object.keys(m).sort(goKeyCompare);
  return `{${keys.map((k) => `${goJsonString(k)}:${goJsonString(m[k]!)}`).join(',')}}`;
}

function goInt(n: number): string {
  if (!Number.isSafeInteger(n)) throw new TypeError(`not an integer: ${n}`);
  return String(n);
}

function goStringArray(a: string[]): string {
  return `[${a.map(goJsonString).join(',')}]`;
}

function hasKeys(m: Record<string, string> | undefined): m is Record<string, string> {
  return m !== undefined && Object.keys(m).length > 0;
}

/** ocispec.Platform in struct order. */
function goPlatform(p: Record<string, unknown>): string {
  const parts: string[] = [];
  parts.push(`"architecture":${goJsonString(String(p['architecture'] ?? ''))}`);
  parts.push(`"os":${goJsonString(String(p['os'] ?? ''))}`);
  if (typeof p['os.version'] === 'string' && p['os.version'] !== '') parts.push(`"os.version":${goJsonString(p['os.version'])}`);
  if (Array.isArray(p['os.features']) && p['os.features'].length > 0) parts.push(`"os.features":${goStringArray(p['os.features'].map(String))}`);
  if (typeof p['variant'] === 'string' && p['variant'] !== '') parts.push(`"variant":${goJsonString(p['variant'])}`);
  if (Array.isArray(p['features']) && p['features'].length > 0) parts.push(`"features":${goStringArray(p['features'].map(String))}`);
  return `{${parts.join(',')}}`;
}

/** ocispec.Descriptor (v1.1): mediaType, digest, size, urls, annotations, data, platform, artifactType. */
export function goDescriptor(d: Descriptor): string {
  const parts = [`"mediaType":${goJsonString(d.mediaType)}`, `"digest":${goJsonString(d.digest)}`, `"size":${goInt(d.size)}`];
  if (d.urls !== undefined && d.urls.length > 0) parts.push(`"urls":${goStringArray(d.urls)}`);
  if (hasKeys(d.annotations)) parts.push(`"annotations":${goStringMap(d.annotations)}`);
  if (d.data !== undefined && d.data !== '') parts.push(`"data":${goJsonString(d.data)}`);
  if (d.platform !== undefined) parts.push(`"platform":${goPlatform(d.platform)}`);
  if (d.artifactType !== undefined && d.artifactType !== '') parts.push(`"artifactType":${goJsonString(d.artifactType)}`);
  return `{${parts.join(',')}}`;
}

/**
 * ocispec.Manifest (v1.1): schemaVersion, mediaType, artifactType, config, layers, subject,
 * annotations. `layers` has no omitempty in Go, so an empty list is written as `[]`.
 */
export function goManifest(m: ImageManifest): string {
  const parts = [`"schemaVersion":${goInt(m.schemaVersion)}`];
  if (m.mediaType !== undefined && m.mediaType !== '') parts.push(`"mediaType":${goJsonString(m.mediaType)}`);
  if (m.artifactType !== undefined && m.artifactType !== '') parts.push(`"artifactType":${goJsonString(m.artifactType)}`);
  parts.push(`"config":${goDescriptor(m.config)}`);
  parts.push(`"layers":[${m.layers.map(goDescriptor).join(',')}]`);
  if (m.subject !== undefined) parts.push(`"subject":${goDescriptor(m.subject)}`);
  if (hasKeys(m.annotations)) parts.push(`"annotations":${goStringMap(m.annotations)}`);
  return `{${parts.join(',')}}`;
}
