/**
 * The two parts of undici the registry client uses — the Agent (connection pools) and
 * `request` — loaded by themselves. `import { Agent } from 'undici'` evaluates undici's whole
 * index — fetch, WebSocket, EventSource, the cache and mock layers — which the client never uses:
 * about 80 ms of a short CLI command against about 35 ms for these parts (bench/RESULTS.md §6).
 * (The index also copies `request` onto every dispatcher's prototype; without it, the transport
 * calls `request` with the dispatcher as `this`, which is what that method does.)
 *
 * undici has no `exports` map, so its files are reachable by path. If a release moves one of
 * them, the package's entry point is used instead (slower, same classes and functions).
 * test/unit/undici-parts.test.ts checks that the fast path is taken and carries real requests.
 */
import { createRequire } from 'node:module';
import type { Dispatcher, Agent as UndiciAgent } from 'undici';

const require = createRequire(import.meta.url);

/** Where undici 8 keeps what the client uses. */
export const UNDICI_PARTS = { agent: 'undici/lib/dispatcher/agent.js', request: 'undici/lib/api/api-request.js' } as const;

type RequestFn = (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

function load(): { Agent: typeof UndiciAgent; request: RequestFn } {
  try {
    return { Agent: require(UNDICI_PARTS.agent) as typeof UndiciAgent, request: require(UNDICI_PARTS.request) as RequestFn };
  } catch (err) {
    if ((err as NodeJS.ErrnoException | undefined)?.code !== 'MODULE_NOT_FOUND') throw err;
    const undici = require('undici') as typeof import('undici');
    return { Agent: undici.Agent, request: undici.Dispatcher.prototype.request as RequestFn };
  }
}

const parts = load();

export const Agent: typeof UndiciAgent = parts.Agent;
export type Agent = UndiciAgent;

/** One request through `dispatcher` (undici's `dispatcher.request(options)`). */
export function request(dispatcher: Dispatcher, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
  return parts.request.call(dispatcher, options);
}
