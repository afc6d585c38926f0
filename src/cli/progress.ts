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

export interface TransferState {
  /** Payload bytes read so far. */
  read: number;
  /** Payload bytes that are done (in the registry), the measure of the rate and ETA. */
  done: number;
  /** Payload size, when known. */
  total: number | undefined;
}

export interface TransferSink {
  update(state: TransferState): void;
  finish(): void;
}

/** How far back the rate looks: recent enough to follow a change of speed, long enough to be steady. */
const RATE_WINDOW_MS = 5000;

/**
 * A send's progress line: bytes read and bytes uploaded as they happen, with the rate and ETA of
 * what is done (uploaded) over the last few seconds — before the first upload the rate is the read
 * rate, and no ETA is claimed. `now` is injectable for tests.
 */
export function createTransferProgress(label: string, options: { enabled: boolean; stream?: NodeJS.WriteStream; now?: () => number }): TransferSink {
  const stream = options.stream ?? process.stderr;
  if (!options.enabled || !stream.isTTY) return { update() {}, finish() {} };
  const now = options.now ?? Date.now;
  const samples: Array<{ t: number; read: number; done: number }> = [{ t: now(), read: 0, done: 0 }];
  let last = -Infinity;
  let drawn = false;
  return {
    update(state) {
      const t = now();
      samples.push({ t, read: state.read, done: state.done });
      while (samples.length > 2 && samples[1]!.t <= t - RATE_WINDOW_MS) samples.shift();
      if ((state.total ?? state.read) < MIN_BYTES || t - last < REDRAW_MS) return;
      last = t;
      stream.write(`\r\x1b[2K${transferLine(label, state, samples[0]!, t)}`);
      drawn = true;
    },
    finish() {
      if (drawn) stream.write('\r\x1b[2K');
    },
  };
}

/** The progress line for `state`, with rates measured since `from`. */
export function transferLine(label: string, state: TransferState, from: { t: number; read: number; done: number }, t: number): string {
  const secs = Math.max((t - from.t) / 1000, 0.001);
  const pct = (n: number) => (state.total !== undefined && state.total > 0 ? ` (${Math.min(100, Math.floor((n / state.total) * 100))}%)` : '');
  const parts = [
    `${label}${state.total !== undefined ? ` ${formatBytes(state.total)}` : ''}:`,
    `read ${formatBytes(state.read)}${pct(state.read)}`,
    `uploaded ${formatBytes(state.done)}${pct(state.done)}`,
  ];
  const doneRate = (state.done - from.done) / secs;
  if (doneRate > 0) {
    parts.push(`${formatBytes(doneRate)}/s`);
    if (state.total !== undefined) parts.push(`ETA ${formatDuration(Math.max(0, state.total - state.done) / doneRate)}`);
  } else {
    const readRate = (state.read - from.read) / secs;
    parts.push(`reading ${formatBytes(readRate)}/s`);
  }
  return parts.join('  ');
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
