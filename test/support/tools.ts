/**
 * Small helpers every integration test needs: "is this system tool here?" (with the CI rule that a
 * missing server fails the run instead of skipping it), a free loopback port, and temp folders.
 */
import { accessSync, constants, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';

/** The script that installs every system tool the integration tests start. */
export const INSTALL_HINT = 'scripts/install-test-deps.sh';

/** True when the environment says we run in CI ('true' or '1', as most CI systems set it). */
export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.CI ?? '').trim().toLowerCase();
  return v === 'true' || v === '1';
}

/** Absolute path of an executable found on PATH (or the path itself when absolute), else undefined. */
export function whichTool(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = isAbsolute(name)
    ? [name]
    : (env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, name));
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/**
 * True when `name` is on PATH. When it is missing: in CI this throws (a test that needs a server
 * must fail, never skip silently); elsewhere it returns false so the caller can `t.skip(...)`.
 */
export function requireTool(name: string): boolean {
  return requireTools(name);
}

/** Like requireTool for several tools at once; the error names every missing one. */
export function requireTools(...names: string[]): boolean {
  const missing = names.filter((n) => whichTool(n) === undefined);
  if (missing.length === 0) return true;
  if (isCI()) {
    throw new Error(`required test tool(s) not installed: ${missing.join(', ')}; run ${INSTALL_HINT} (CI never skips integration tests)`);
  }
  return false;
}

/** The skip message to pass to `t.skip()` when requireTool(s) returned false. */
export function skipMessage(...names: string[]): string {
  return `${names.join(', ')} not installed: run ${INSTALL_HINT}`;
}

/** A TCP port that was free on 127.0.0.1 a moment ago (the OS picked it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the port of a loopback listener'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

export interface TempDir {
  path: string;
  /** Removes the folder and everything in it; safe to call twice. */
  cleanup(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

// Folders still present when the test process exits are removed then, so a failing test that
// never reached its cleanup leaves nothing behind in /tmp.
const liveTempDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const dir of liveTempDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  });
}

/** A fresh folder under the OS temp dir, named `<prefix>XXXXXX`. */
export async function tempDir(prefix = 'comms-test-'): Promise<TempDir> {
  installExitHook();
  const path = await mkdtemp(join(tmpdir(), prefix));
  liveTempDirs.add(path);
  const cleanup = async (): Promise<void> => {
    liveTempDirs.delete(path);
    await rm(path, { recursive: true, force: true });
  };
  return { path, cleanup, [Symbol.asyncDispose]: cleanup };
}
