/**
 * Several processes writing one layout at the same time lose nothing: every blob, manifest and
 * tag each of them wrote is there afterwards. Without the index.json lock, their read-modify-write
 * updates overwrite each other and tags go missing.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { digestOf } from '../../src/oci/digest.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';

const WORKERS = 8;
const TAGS_EACH = 25;
const WRITER = new URL('../support/layout-writer.ts', import.meta.url).pathname;

function startWriter(
  root: string,
  id: number,
  journal = false,
): { child: ChildProcess; ready: Promise<void>; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [WRITER, root, String(id), String(TAGS_EACH), ...(journal ? ['journal'] : [])], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const ready = new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => line === 'ready' && resolve());
    void exited.then(() => reject(new Error(`writer ${id} exited before ready: ${err}`)));
  });
  return { child, ready, exited, stderr: () => err };
}

for (const journaling of [false, true]) {
  it(`${WORKERS} processes pushing and tagging ${TAGS_EACH} tags each into one layout lose nothing${journaling ? ' (half of them journaling, five pushes at a time)' : ''}`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'comms-layout-concurrency-'));
    try {
      const root = join(dir, 'store');
      const writers = Array.from({ length: WORKERS }, (_, id) => startWriter(root, id, journaling && id % 2 === 0));
      await Promise.all(writers.map((w) => w.ready));
      // Released together, so their index.json updates overlap (the layout does not exist yet either).
      for (const w of writers) w.child.stdin!.end('go\n');
      const codes = await Promise.all(writers.map((w) => w.exited));
      codes.forEach((code, id) => assert.equal(code, 0, `writer ${id} failed: ${writers[id]!.stderr()}`));

      const layout = await OciLayout.open(root);
      const tags: string[] = [];
      await layout.tags((page) => void tags.push(...page), { pageSize: 50 });
      const expected = [];
      for (let w = 0; w < WORKERS; w++) for (let i = 0; i < TAGS_EACH; i++) expected.push(`w${w}-${i}`);
      const missing = expected.filter((t) => !tags.includes(t));
      assert.deepEqual(missing, [], `${missing.length} of ${expected.length} tags lost`);
      assert.equal(tags.length, expected.length);

      const enc = new TextEncoder();
      for (let w = 0; w < WORKERS; w++) {
        for (let i = 0; i < TAGS_EACH; i++) {
          const { bytes } = await layout.fetchManifest(`w${w}-${i}`);
          const m = JSON.parse(new TextDecoder().decode(bytes));
          assert.equal(m.layers[0].digest, digestOf(enc.encode(`worker ${w} blob ${i}`)));
          assert.equal(await layout.exists(m.layers[0]), true);
          assert.equal(await layout.exists(m.config), true);
        }
      }
      // Folded into index.json, the index lists each tag once (what other tools read).
      await (await OciLayout.open(root, { journal: true })).compact();
      await assert.rejects(readFile(join(root, 'index.json.journal')), { code: 'ENOENT' });
      const index = JSON.parse(await readFile(join(root, 'index.json'), 'utf8'));
      assert.equal(index.manifests.length, WORKERS * TAGS_EACH, 'one entry per tag, no duplicates');
      assert.deepEqual(await readdir(join(root, '.tmp')), [], 'no temp files left');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
