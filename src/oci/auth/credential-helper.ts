/**
 * Runs a docker credential helper (`docker-credential-<name> get`, the server URL on stdin,
 * `{"ServerURL","Username","Secret"}` on stdout). Its output may hold secrets, so no failure
 * carries its stdout, stderr or the child-process error: only the helper's name and the registry.
 */
import { AbortError, AuthError, ProtocolError, type ErrorCode } from '../../errors.ts';
import { abortErrorOf } from '../../util/abort.ts';
import type { Credential } from './credential.ts';

export interface CredentialHelperOptions {
  /** The registry the lookup is for, named in errors (never a secret). */
  registry: string;
  /** Environment of the helper; its PATH is where `docker-credential-<name>` is looked up. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Kill the helper after this long (default 30 s): a helper may wait on a keychain prompt. */
  timeoutMs?: number;
}

export const DEFAULT_HELPER_TIMEOUT_MS = 30_000;
/** A helper's answer is a few hundred bytes; anything past this is refused unread. */
const MAX_HELPER_OUTPUT = 1024 * 1024;
/** What docker-credential-helpers prints (on stdout, exit 1) when it has nothing for the URL. */
const NOT_FOUND_MESSAGE = 'credentials not found in native keychain';
/** The Username a helper returns when Secret is an identity (refresh) token. */
const IDENTITY_TOKEN_USERNAME = '<token>';

const HELPER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A helper name may only be a plain suffix: `../x` would otherwise run a path relative to cwd. */
export function isValidHelperName(name: string): boolean {
  return typeof name === 'string' && name.length <= 128 && HELPER_NAME_RE.test(name);
}

interface ExecFailure {
  code?: string | number | null;
  killed?: boolean;
  signal?: NodeJS.Signals | null;
  name?: string;
}

/**
 * Asks helper `name` for the credentials of `serverURL`. Undefined when the helper says it has
 * none; AuthError (exit 3) when it is missing, fails, hangs or answers garbage.
 */
export function runCredentialHelper(name: string, serverURL: string, options: CredentialHelperOptions): Promise<Credential | undefined> {
  const program = `docker-credential-${name}`;
  const registry = options.registry;
  if (!isValidHelperName(name)) {
    return Promise.reject(
      new ProtocolError(`invalid credential helper name ${JSON.stringify(name)} for ${registry}`, { registry, code: 'CREDENTIAL_HELPER_INVALID' }),
    );
  }
  if (options.signal?.aborted) return Promise.reject(abortErrorOf(options.signal));
  const timeoutMs = options.timeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;
  const failure = (why: string, code: ErrorCode = 'CREDENTIAL_HELPER_FAILED'): AuthError =>
    new AuthError(`credential helper ${program} ${why} (registry ${registry})`, { registry, code });

  // Loaded on first use: most runs find their credentials without a helper.
  const { execFile } = process.getBuiltinModule('node:child_process');
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      ['get'],
      {
        env: options.env ?? process.env,
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: MAX_HELPER_OUTPUT,
        encoding: 'utf8',
        windowsHide: true,
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (err, stdout) => {
        if (err) {
          const e = err as ExecFailure;
          if (options.signal?.aborted) return reject(abortErrorOf(options.signal));
          if (e.name === 'AbortError') return reject(new AbortError());
          if (e.code === 'ENOENT') return reject(failure('was not found on PATH', 'CREDENTIAL_HELPER_MISSING'));
          if (e.code === 'EACCES') return reject(failure('could not be executed'));
          if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return reject(failure(`printed more than ${MAX_HELPER_OUTPUT} bytes`));
          if (e.killed) return reject(failure(`did not answer within ${timeoutMs} ms`));
          // The not-found answer is defined by the helper protocol as this exact stdout text.
          if (stdout.trim() === NOT_FOUND_MESSAGE) return resolve(undefined);
          const how = typeof e.code === 'number' ? `exit status ${e.code}` : e.signal ? `signal ${e.signal}` : 'an error';
          return reject(failure(`failed with ${how}`));
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(stdout);
        } catch {
          return reject(failure('returned output that is not JSON'));
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
          return reject(failure('returned JSON that is not an object'));
        }
        const { Username: username = '', Secret: secret = '' } = parsed as Record<string, unknown>;
        if (typeof username !== 'string' || typeof secret !== 'string') {
          return reject(failure('returned a Username or Secret that is not a string'));
        }
        if (username === '' && secret === '') return resolve(undefined);
        if (username === IDENTITY_TOKEN_USERNAME) return resolve({ identityToken: secret });
        resolve({ username, password: secret });
      },
    );
    // A helper that exits without reading stdin makes this write fail with EPIPE; its exit
    // status, handled above, is what matters.
    child.stdin?.on('error', () => {});
    child.stdin?.end(serverURL);
  });
}

/**
 * `docker-credential-<name> store` (`{"ServerURL","Username","Secret"}` on stdin) or `erase` (the
 * server URL on stdin). `erase` of a server the helper does not know is not an error. Failures
 * name the helper and the registry only: the helper's output may echo what it was given.
 */
export function runCredentialHelperAction(name: string, action: 'store' | 'erase', input: string, options: CredentialHelperOptions): Promise<void> {
  const program = `docker-credential-${name}`;
  const registry = options.registry;
  if (!isValidHelperName(name)) {
    return Promise.reject(
      new ProtocolError(`invalid credential helper name ${JSON.stringify(name)} for ${registry}`, { registry, code: 'CREDENTIAL_HELPER_INVALID' }),
    );
  }
  if (options.signal?.aborted) return Promise.reject(new AbortError());
  const timeoutMs = options.timeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;
  const failure = (why: string, code: ErrorCode = 'CREDENTIAL_HELPER_FAILED'): AuthError =>
    new AuthError(`credential helper ${program} ${action} ${why} (registry ${registry})`, { registry, code });
  const { execFile } = process.getBuiltinModule('node:child_process');
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      [action],
      {
        env: options.env ?? process.env,
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: MAX_HELPER_OUTPUT,
        encoding: 'utf8',
        windowsHide: true,
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (err, stdout) => {
        if (!err) return resolve();
        const e = err as ExecFailure;
        if (e.name === 'AbortError' || options.signal?.aborted) return reject(new AbortError());
        if (e.code === 'ENOENT') return reject(failure('was not found on PATH', 'CREDENTIAL_HELPER_MISSING'));
        if (e.code === 'EACCES') return reject(failure('could not be executed'));
        if (e.killed) return reject(failure(`did not answer within ${timeoutMs} ms`));
        if (action === 'erase' && stdout.trim() === NOT_FOUND_MESSAGE) return resolve();
        const how = typeof e.code === 'number' ? `exit status ${e.code}` : e.signal ? `signal ${e.signal}` : 'an error';
        reject(failure(`failed with ${how}`));
      },
    );
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  });
}
