/**
 * Runs `skopeo` (a peer client nobody here wrote) against loopback registries: raw manifest
 * inspection, tag lists, copies. Returns stdout bytes; a failure throws with skopeo's stderr.
 * By default TLS verification is off (plain-HTTP loopback registries need it off) and no stored
 * credentials are used, so the host's own docker/podman logins never leak into a test.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempDir } from './tools.ts';

/** How to reach one registry: the options skopeo has per side (`--src-*` / `--dest-*`). */
export interface SkopeoAccess {
  /** Verify TLS (default false). With true, pass certDir (or caFile) for the test CA. */
  tlsVerify?: boolean;
  /** Folder of *.crt files trusted for this registry. */
  certDir?: string;
  /** A CA PEM file; copied into a temp cert dir for skopeo. */
  caFile?: string;
  /** 'user:password'. */
  creds?: string;
  /** A Bearer token sent as is. */
  registryToken?: string;
  /** An auth.json/config.json to read credentials from (instead of anonymous). */
  authFile?: string;
}

export interface SkopeoRunOptions {
  env?: NodeJS.ProcessEnv;
  /** Default 60000. */
  timeoutMs?: number;
}

export interface SkopeoCopyOptions extends SkopeoRunOptions {
  src?: SkopeoAccess;
  dest?: SkopeoAccess;
  /** --all: copy every manifest of an index (default true). */
  all?: boolean;
  /** --preserve-digests (default true: a copy must not rewrite manifests). */
  preserveDigests?: boolean;
  extraArgs?: string[];
}

export class SkopeoError extends Error {
  readonly args: string[];
  readonly stderr: string;
  readonly exitCode: number | null;
  constructor(args: string[], stderr: string, exitCode: number | null) {
    super(`skopeo ${args.join(' ')} failed (exit ${exitCode}): ${stderr.trim()}`);
    this.name = 'SkopeoError';
    this.args = args;
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

const TRANSPORTS = ['docker://', 'oci:', 'oci-archive:', 'dir:', 'docker-archive:', 'docker-daemon:', 'containers-storage:'];

/** 'docker://' is added when the reference names no skopeo transport ('127.0.0.1:5000/a:b'). */
export function dockerRef(ref: string): string {
  return TRANSPORTS.some((t) => ref.startsWith(t)) ? ref : `docker://${ref}`;
}

const certDirs = new Map<string, Promise<string>>();
function certDirFor(caFile: string): Promise<string> {
  let dir = certDirs.get(caFile);
  if (!dir) {
    dir = (async () => {
      const { path } = await tempDir('comms-skopeo-certs-');
      await copyFile(caFile, join(path, 'ca.crt'));
      return path;
    })();
    certDirs.set(caFile, dir);
  }
  return dir;
}

async function accessArgs(access: SkopeoAccess, prefix: '' | 'src-' | 'dest-'): Promise<string[]> {
  const args = [`--${prefix}tls-verify=${access.tlsVerify === true}`];
  const certDir = access.certDir ?? (access.caFile !== undefined ? await certDirFor(access.caFile) : undefined);
  if (certDir !== undefined) args.push(`--${prefix}cert-dir`, certDir);
  if (access.creds !== undefined) args.push(`--${prefix}creds`, access.creds);
  else if (access.registryToken !== undefined) args.push(`--${prefix}registry-token`, access.registryToken);
  else if (access.authFile !== undefined) args.push(`--${prefix}authfile`, access.authFile);
  else args.push(`--${prefix}no-creds`);
  return args;
}

/** Runs skopeo with the given arguments; resolves stdout bytes, rejects with SkopeoError. */
export async function runSkopeo(args: string[], options: SkopeoRunOptions = {}): Promise<Buffer> {
  // An empty private tmpdir keeps skopeo's big-blob temp files out of shared /tmp clutter.
  const tmp = await mkdtemp(join(tmpdir(), 'comms-skopeo-run-'));
  const full = ['--insecure-policy', '--tmpdir', tmp, ...args];
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      execFile(
        'skopeo',
        full,
        { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024, timeout: options.timeoutMs ?? 60000, env: options.env ?? process.env },
        (err, stdout, stderr) => {
          if (err) {
            const code = typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
            reject(new SkopeoError(full, stderr.toString('utf8') || err.message, code));
          } else {
            resolve(stdout);
          }
        },
      );
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** `skopeo inspect --raw`: the manifest bytes exactly as the registry serves them. */
export async function skopeoInspectRaw(ref: string, access: SkopeoAccess = {}, options: SkopeoRunOptions = {}): Promise<Buffer> {
  return runSkopeo(['inspect', '--raw', ...(await accessArgs(access, '')), dockerRef(ref)], options);
}

/** `skopeo list-tags` for a repository reference ('127.0.0.1:PORT/repo'); returns the tag names. */
export async function skopeoListTags(repo: string, access: SkopeoAccess = {}, options: SkopeoRunOptions = {}): Promise<string[]> {
  const out = await runSkopeo(['list-tags', ...(await accessArgs(access, '')), dockerRef(repo)], options);
  const parsed = JSON.parse(out.toString('utf8')) as { Tags?: string[] | null };
  return parsed.Tags ?? [];
}

/** `skopeo copy` between any two references (docker://, oci:DIR:TAG, ...); returns stdout. */
export async function skopeoCopy(src: string, dst: string, options: SkopeoCopyOptions = {}): Promise<Buffer> {
  const args = ['copy'];
  if (options.all ?? true) args.push('--all');
  if (options.preserveDigests ?? true) args.push('--preserve-digests');
  if (isRegistryRef(src)) args.push(...(await accessArgs(options.src ?? {}, 'src-')));
  if (isRegistryRef(dst)) args.push(...(await accessArgs(options.dest ?? {}, 'dest-')));
  args.push(...(options.extraArgs ?? []), dockerRef(src), dockerRef(dst));
  return runSkopeo(args, options);
}

function isRegistryRef(ref: string): boolean {
  return dockerRef(ref).startsWith('docker://');
}
