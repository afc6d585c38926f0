/**
 * A small message (5 bytes of text) sent to docker-registry on loopback: requests and time, against
 * curl making the minimal pushes of a small artifact (blob POST + PUT, manifest PUT: 3 curl
 * processes) in the same run, interleaved so that load on this shared machine hits both alike.
 *
 * - CLI: bin/comms.js as users run it, `send -m hello` unsigned (--no-sign) and key-signed (--key),
 *   without --plain-http (so the client decides the scheme of a loopback registry itself: one TLS
 *   hello, answered in plain HTTP, which the registry does not log as a request). Its requests are
 *   counted from the registry's access log (the HTTP requests the registry served).
 * - library: send() in this process on a warm client, unsigned and signed, requests counted by the
 *   client's onRequest hook.
 *
 * Each case sends into its own mailbox, which the warm-up run creates: the counted sends are a
 * mailbox's later messages (the first message of a repository also uploads the shared empty config:
 * 2 requests more).
 *
 *   node bench/small-send.ts [--runs 9]
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { loadKeySigner, send } from '../src/index.ts';
import { RegistryClient } from '../src/oci/remote/index.ts';
import { startRegistry } from '../test/support/registry.ts';
import { prepareCli } from './lib/cli.ts';
import { argValue, loadNow, machineInfo, measure, median, OUT_DIR, ROOT, table } from './lib/common.ts';

const runs = Number(argValue('runs') ?? 9);
const KEY = path.join(ROOT, 'fixtures', 'keys', 'test-only-p256.key');
const cli = prepareCli();
const [node, ...nodeFlags] = cli.argv.slice(0, -1);
mkdirSync(path.join(OUT_DIR, 'bin'), { recursive: true });
copyFileSync(path.join(ROOT, 'bin', 'comms.js'), path.join(OUT_DIR, 'bin', 'comms.js'));
const comms = [...nodeFlags, path.join(OUT_DIR, 'bin', 'comms.js')];

const registry = await startRegistry({ mode: 'plain', accessLog: true });
const loadAtStart = loadNow();
const REQUEST_LINE = /"(GET|HEAD|POST|PUT|PATCH|DELETE) \/v2\/[^"]*"/g;
const countIn = (text: string, re: RegExp) => (text.match(re) ?? []).length;

/** Requests the registry logged while `fn` ran (its access log grows; the log is read after a pause for its writer). */
async function logged<T>(fn: () => Promise<T>): Promise<{ value: T; requests: number }> {
  const before = registry.logs().length;
  const value = await fn();
  await new Promise((r) => setTimeout(r, 300));
  const added = registry.logs().slice(before);
  return { value, requests: countIn(added, REQUEST_LINE) };
}

// The minimal push of a small artifact with curl: a blob (POST, then PUT ?digest= with the bytes),
// then a manifest naming it (PUT). The config is the same blob, so one upload serves both.
const CURL_SCRIPT = `
set -eu
base="http://${registry.host}/v2/curl/$1"
blob='{}'
digest="sha256:$(printf '%s' "$blob" | sha256sum | cut -d' ' -f1)"
loc=$(curl -sS -o /dev/null -D - -X POST "$base/blobs/uploads/" | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p')
case "$loc" in http*) ;; *) loc="http://${registry.host}$loc" ;; esac
case "$loc" in *\\?*) sep='&' ;; *) sep='?' ;; esac
curl -sS -f -o /dev/null -X PUT -H 'content-type: application/octet-stream' --data-binary "$blob" "$loc\${sep}digest=$digest"
manifest='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example+type","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"'$digest'","size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"'$digest'","size":2}]}'
curl -sS -f -o /dev/null -X PUT -H 'content-type: application/vnd.oci.image.manifest.v1+json' --data-binary "$manifest" "$base/manifests/t$1"
`;

interface Case {
  name: string;
  run: (i: number) => Promise<{ wallMs: number; cpuMs?: number; requests: number }>;
}

const viaProcess =
  (args: (i: number) => string[], cmd: string = node!): Case['run'] =>
  async (i) => {
    const r = await logged(() => measure(cmd, args(i)));
    return { wallMs: r.value.wallMs, cpuMs: r.value.cpuS * 1000, requests: r.requests };
  };

const signer = await loadKeySigner(KEY);
let libRequests: string[] = [];
const client = new RegistryClient({
  onRequest: (e) =>
    void libRequests.push(
      `${e.method} ${new URL(e.url).pathname.replace(/\/uploads\/[^/]+$/, '/uploads/…').replace(/([0-9a-f]{12})[0-9a-f]{52}/g, '$1…')} ${e.status ?? '-'}`,
    ),
});
/** The requests of each library case's last counted send, printed after the table. */
const lastRequests = new Map<string, string[]>();
const viaLibrary =
  (signed: boolean): Case['run'] =>
  async () => {
    libRequests = [];
    const start = performance.now();
    const repository = client.repository(`${registry.host}/lib/${signed ? 's' : 'u'}`);
    await send({ repository, recipient: 'bob', sender: 'alice', input: { text: 'hello' }, ...(signed ? { signer } : { unsigned: true }) });
    const wallMs = performance.now() - start;
    lastRequests.set(signed ? 'signed' : 'unsigned', libRequests);
    return { wallMs, requests: libRequests.length };
  };

const cases: Case[] = [
  { name: 'curl: blob POST + PUT, manifest PUT (3 processes)', run: viaProcess((i) => ['-c', CURL_SCRIPT, 'sh', `r${i}`], '/bin/sh') },
  {
    name: 'comms send -m, unsigned (CLI)',
    run: viaProcess(() => [...comms, 'send', '-m', 'hello', '--repo', `${registry.host}/cli/u`, '--to', 'bob', '--sender', 'alice', '--no-sign', '--json']),
  },
  {
    name: 'comms send -m --key, signed (CLI)',
    run: viaProcess(() => [...comms, 'send', '-m', 'hello', '--repo', `${registry.host}/cli/s`, '--to', 'bob', '--sender', 'alice', '--key', KEY, '--json']),
  },
  { name: 'send(), unsigned (library, warm client)', run: viaLibrary(false) },
  { name: 'send(), signed (library, warm client)', run: viaLibrary(true) },
];

const results = new Map<string, Array<{ wallMs: number; cpuMs?: number; requests: number }>>(cases.map((c) => [c.name, []]));
try {
  // Warm-up (file cache, the library client's scheme decision), not counted.
  for (const c of cases) await c.run(1000);
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? cases : [...cases].reverse();
    for (const c of order) results.get(c.name)!.push(await c.run(i));
  }
} finally {
  await client.close();
  await registry.stop();
}

const base = median(results.get(cases[0]!.name)!.map((r) => r.wallMs));
console.log(`# small send (${new Date().toISOString()})\n`);
console.log(
  `${machineInfo()}\n- ${runs} runs each, interleaved (order alternating); load at start ${loadAtStart}, at the end ${loadNow()}; CLI: ${cli.description}\n`,
);
console.log(
  table(
    ['case', 'median wall ms', 'ratio to curl', 'median CPU ms', 'HTTP requests (registry log / client hook)'],
    cases.map((c) => {
      const rs = results.get(c.name)!;
      const w = median(rs.map((r) => r.wallMs));
      const cpu = rs.every((r) => r.cpuMs !== undefined) ? median(rs.map((r) => r.cpuMs!)).toFixed(0) : '—';
      const req = [...new Set(rs.map((r) => r.requests))].join(' / ');
      return [c.name, w.toFixed(1), `${(w / base).toFixed(2)}x`, cpu, req];
    }),
  ),
);
for (const [kind, requests] of lastRequests)
  console.log(`\nsend(), ${kind}: the requests of the last counted send, in the order they were answered\n${requests.map((r) => `    ${r}`).join('\n')}`);
