/**
 * For runs of the CLI (cli.ts) in a hostile setting: an environment stripped of anything that
 * would change what comms does (signing keys, OIDC tokens, docker credentials, a shared temp
 * folder), and a listing of everything a run left in a folder.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';

/**
 * PATH and HOME only, plus `tmpDir` as TMPDIR (where recv keeps its partial files when that is on
 * the same filesystem as --out) and an empty DOCKER_CONFIG folder: no COMMS_KEY, no
 * SIGSTORE_ID_TOKEN, no ACTIONS_ID_TOKEN_REQUEST_URL leak in from the machine running the tests.
 */
export function cleanEnv(tmpDir: string, dockerConfigDir: string): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/root',
    TMPDIR: tmpDir,
    DOCKER_CONFIG: dockerConfigDir,
    // The default trust file lives under the config folder: the user's own must not leak in.
    XDG_CONFIG_HOME: `${tmpDir}/config`,
    // A sender for the commands that push; without one they refuse (no made-up user@host).
    COMMS_SENDER: 'tester',
    NO_COLOR: '1',
  };
}

/** Every entry under `dir`, hidden ones included, as relative paths; [] when it does not exist. */
export async function listAll(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const e of entries) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      found.push(r);
      if (e.isDirectory()) await walk(path.join(d, e.name), r);
    }
  };
  await walk(dir, '');
  return found.sort();
}
