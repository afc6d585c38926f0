/**
 * A one-line progress display (bytes, rate, ETA) on stderr, drawn only on a terminal, only for
 * transfers larger than a few MiB, and never with --json. Redraws are throttled.
 */
const MIN_BYTES = 4 * 1024 * 1024;
const REDRAW_MS = 120;

export interface ProgressSink {
  update(done: number, total: number | undefined): void;
  finish(): void;
}

export function createProgress(label: string, options: { enabled: boolean; stream?: NodeJS.WriteStream }): ProgressSink {
  const stream = options.stream ?? process.stderr;
  if (!options.enabled || !stream.isTTY) return { update() {}, finish() {} };
  const started = Date.now();
  let last = 0;
  let drawn = false;
  const draw = (done: number, total: number | undefined) => {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    const rate = done / secs;
    let line = `${label} ${formatBytes(done)}`;
    if (total !== undefined && total > 0) {
      const pct = Math.min(100, (done / total) * 100);
      const eta = rate > 0 ? Math.max(0, (total - done) / rate) : 0;
      line += ` / ${formatBytes(total)} (${pct.toFixed(0)}%) ${formatBytes(rate)}/s ETA ${formatDuration(eta)}`;
    } else {
      line += ` ${formatBytes(rate)}/s`;
    }
    stream.write(`\r\x1b[2K${line}`);
    drawn = true;
  };
  return {
    update(done, total) {
      if ((total ?? done) < MIN_BYTES) return;
      const now = Date.now();
      if (now - last < REDRAW_MS) return;
      last = now;
      draw(done, total);
    },
    finish() {
      if (drawn) stream.write('\r\x1b[2K');
    },
  };
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  const sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
