/**
 * A child process for the concurrent-writers test: waits for "go" on stdin, then opens the layout
 * (creating it if needed) and, for each i, pushes a distinct blob and a manifest tagged
 * `w<worker>-<i>` that references it. Prints "ready" first and "done" at the end. With `journal`,
 * the layout journals its index updates (as the registry does) and pushes five manifests at a time,
 * so that updates of one process are grouped into one write too; the journal is left unfolded.
 * Usage: node layout-writer.ts <layout path> <worker id> <count> [journal]
 */
import { createInterface } from 'node:readline';
import { digestOf } from '../../src/oci/digest.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { MediaType } from '../../src/oci/mediatypes.ts';

const [root, worker, countText, mode] = process.argv.slice(2);
if (root === undefined || worker === undefined || countText === undefined) throw new Error('usage: layout-writer.ts <root> <worker> <count>');
const count = Number(countText);

const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
for await (const line of lines) if (line.trim() === 'go') break;
lines.close();

const journal = mode === 'journal';
const layout = await OciLayout.open(root, { create: true, journal });
const enc = new TextEncoder();
async function pushOne(i: number): Promise<void> {
  const data = enc.encode(`worker ${worker} blob ${i}`);
  const layer = { mediaType: 'application/octet-stream', digest: digestOf(data), size: data.length };
  await layout.push(layer, data);
  const config = enc.encode(`{"worker":"${worker}","i":${i}}`);
  const configDesc = { mediaType: 'application/vnd.example.config+json', digest: digestOf(config), size: config.length };
  await layout.push(configDesc, config);
  const manifest = enc.encode(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageManifest, config: configDesc, layers: [layer] }));
  await layout.pushManifest({ mediaType: MediaType.ImageManifest, digest: digestOf(manifest), size: manifest.length }, manifest, `w${worker}-${i}`);
}
const atOnce = journal ? 5 : 1;
for (let i = 0; i < count; i += atOnce) {
  await Promise.all(Array.from({ length: Math.min(atOnce, count - i) }, (_, k) => pushOne(i + k)));
}
process.stdout.write('done\n');
