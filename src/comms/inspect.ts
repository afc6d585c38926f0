/**
 * inspect: a manifest exactly as the registry (or layout folder) serves it — its bytes, its
 * digest — and a summary read from those bytes (kind, config, layers, subject, annotations).
 * The summary is a reading aid; the bytes and the digest are what was served.
 */
import type { Descriptor } from '../oci/descriptor.ts';
import { MediaType } from '../oci/mediatypes.ts';
import type { OperationOptions, Repository } from '../oci/target.ts';
import { ArtifactType } from '../protocol/constants.ts';
import { UsageError } from '../errors.ts';

export interface InspectOptions extends OperationOptions {
  repository: Repository;
  /** A tag or a digest in the repository. */
  reference: string;
}

export interface ManifestSummary {
  /** message, receipt, bundle (comms artifacts), index, image, or unknown (not a manifest comms can read). */
  kind: 'message' | 'receipt' | 'bundle' | 'index' | 'image' | 'unknown';
  schemaVersion?: number;
  artifactType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  /** Sum of the layers' sizes (image manifests). */
  layersBytes?: number;
  /** The index's entries (image indexes). */
  manifests?: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface InspectResult {
  repository: string;
  reference: string;
  /** The digest of the bytes served (verified against the reference when it is a digest). */
  digest: string;
  mediaType: string;
  size: number;
  /** The manifest's exact bytes as served. */
  bytes: Uint8Array;
  summary: ManifestSummary;
}

export async function inspect(options: InspectOptions): Promise<InspectResult> {
  if (typeof options.reference !== 'string' || options.reference === '') {
    throw new UsageError('inspect needs a tag or a digest (host/name:tag, host/name@sha256:…, oci:<folder>:tag)');
  }
  const { descriptor, bytes } = await options.repository.fetchManifest(options.reference, { signal: options.signal });
  return {
    repository: options.repository.name,
    reference: options.reference,
    digest: descriptor.digest,
    mediaType: descriptor.mediaType,
    size: descriptor.size,
    bytes,
    summary: summarizeManifest(bytes),
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function descriptorOf(v: unknown): Descriptor | undefined {
  if (!isObject(v) || typeof v['mediaType'] !== 'string' || typeof v['digest'] !== 'string' || typeof v['size'] !== 'number') return undefined;
  const d: Descriptor = { mediaType: v['mediaType'], digest: v['digest'], size: v['size'] };
  if (typeof v['artifactType'] === 'string') d.artifactType = v['artifactType'];
  const annotations = stringMap(v['annotations']);
  if (annotations !== undefined) d.annotations = annotations;
  if (isObject(v['platform'])) d.platform = v['platform'];
  return d;
}

function stringMap(v: unknown): Record<string, string> | undefined {
  if (!isObject(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

function descriptors(v: unknown): Descriptor[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.map(descriptorOf).filter((d): d is Descriptor => d !== undefined);
}

/** What the bytes say, read leniently: fields that are absent or of the wrong type are left out. */
export function summarizeManifest(bytes: Uint8Array): ManifestSummary {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return { kind: 'unknown' };
  }
  if (!isObject(parsed)) return { kind: 'unknown' };
  const summary: ManifestSummary = { kind: 'unknown' };
  if (typeof parsed['schemaVersion'] === 'number') summary.schemaVersion = parsed['schemaVersion'];
  if (typeof parsed['artifactType'] === 'string') summary.artifactType = parsed['artifactType'];
  const manifests = descriptors(parsed['manifests']);
  const layers = descriptors(parsed['layers']);
  const config = descriptorOf(parsed['config']);
  const subject = descriptorOf(parsed['subject']);
  const annotations = stringMap(parsed['annotations']);
  if (
    manifests !== undefined &&
    (parsed['mediaType'] === undefined || parsed['mediaType'] === MediaType.ImageIndex || parsed['mediaType'] === MediaType.DockerManifestList)
  ) {
    summary.kind = 'index';
    summary.manifests = manifests;
  } else if (config !== undefined && layers !== undefined) {
    summary.config = config;
    summary.layers = layers;
    summary.layersBytes = layers.reduce((n, d) => n + d.size, 0);
    const type = summary.artifactType ?? config.mediaType;
    summary.kind = type === ArtifactType.Message ? 'message' : type === ArtifactType.Receipt ? 'receipt' : type === ArtifactType.Bundle ? 'bundle' : 'image';
  }
  if (subject !== undefined) summary.subject = subject;
  if (annotations !== undefined && Object.keys(annotations).length > 0) summary.annotations = annotations;
  return summary;
}
