/**
 * A child process for the concurrent-ack test: it opens its own registry client, then for each
 * round waits for the shared start signal (the file `<dir>/go-<round>` appearing, holding the
 * message digest) and acks that message with the library's ack(). Waiting on a file that every
 * child watches lines the children up far tighter than spawning them would (Node start-up takes
 * hundreds of milliseconds on a busy machine), so the index writes really do collide.
 *
 * Usage: node referrers-ack-child.ts <repo-ref> <signal-dir> <rounds> <child-id>
 * Prints one JSON line per round: {round, child, digest, tag, indexedBy, indexWrites, ms} or {round, child, error, …}.
 */
import { existsSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import { ack } from '../../src/comms/ack.ts';
import { RegistryClient } from '../../src/oci/remote/index.ts';

const [repoRef, dir, roundsArg, childId] = process.argv.slice(2);
if (repoRef === undefined || dir === undefined || roundsArg === undefined || childId === undefined) {
  process.stderr.write('usage: referrers-ack-child.ts <repo-ref> <signal-dir> <rounds> <child-id>\n');
  process.exit(4);
}
const rounds = Number(roundsArg);
const client = new RegistryClient({ plainHttp: true });
const repo = client.repository(repoRef);

/** Resolves with the file's content once it exists (inotify, with a coarse poll as a safety net). */
function waitForFile(file: string): Promise<string> {
  return new Promise((resolve) => {
    let done = false;
    const check = () => {
      if (done || !existsSync(file)) return;
      done = true;
      watcher.close();
      clearInterval(poll);
      resolve(readFileSync(file, 'utf8').trim());
    };
    const watcher = watch(dir!, check);
    const poll = setInterval(check, 250);
    check();
  });
}

// Tell the parent this child is loaded and watching, so it can release every child at once.
process.stdout.write(`${JSON.stringify({ ready: true, child: childId })}\n`);
for (let round = 1; round <= rounds; round++) {
  const digest = await waitForFile(join(dir, `go-${round}`));
  let indexWrites = 0;
  const started = Date.now();
  try {
    const r = await ack({
      unsigned: true,
      repository: repo,
      forDigest: digest,
      status: 'accepted',
      sender: `acker-${childId}`,
      onIndexWrite: () => indexWrites++,
    });
    process.stdout.write(
      `${JSON.stringify({ round, child: childId, digest: r.digest, tag: r.tag, indexedBy: r.indexedBy, indexWrites, ms: Date.now() - started })}\n`,
    );
  } catch (err) {
    const e = err as { code?: string; message?: string };
    process.stdout.write(`${JSON.stringify({ round, child: childId, error: { code: e.code, message: e.message }, indexWrites, ms: Date.now() - started })}\n`);
  }
}
await client.close();
