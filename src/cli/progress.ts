// The progress line on stderr: a bar, tensors done / total, bytes written,
// MB/s and ETA. Drawn only on a terminal (and not with --quiet); redrawn at
// most ten times a second.

import { formatBytes, formatDuration } from './format.js';

export interface ProgressState {
  tensorsDone: number;
  tensorCount: number;
  tensor: string;
  bytesWritten: number;
  totalBytes: number;
}

export interface TextSink {
  write(s: string): unknown;
}

export class ProgressLine {
  private readonly started = performance.now();
  private last = 0;
  private drawn = false;

  constructor(
    private readonly out: TextSink,
    private readonly enabled: boolean,
    private readonly label: string,
    private readonly columns = 100,
  ) {}

  update(p: ProgressState, force = false): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const elapsed = (now - this.started) / 1000;
    const frac = p.totalBytes > 0 ? Math.min(1, p.bytesWritten / p.totalBytes) : 0;
    const rate = elapsed > 0 ? p.bytesWritten / elapsed : 0;
    const eta = rate > 0 ? ((p.totalBytes - p.bytesWritten) / rate) * 1000 : Infinity;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    let line =
      `${this.label} ${bar} ${String(Math.round(frac * 100)).padStart(3)}%  ` +
      `${p.tensorsDone}/${p.tensorCount} tensors  ${formatBytes(p.bytesWritten)}/${formatBytes(p.totalBytes)}  ` +
      `${formatBytes(rate)}/s  ETA ${formatDuration(eta)}  ${p.tensor}`;
    if ([...line].length > this.columns - 1) line = [...line].slice(0, this.columns - 2).join('') + '…';
    this.out.write(`\r${line}\x1b[K`);
    this.drawn = true;
  }

  /** Clears the line (before the report is printed, or on an error). */
  done(): void {
    if (this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }
}
