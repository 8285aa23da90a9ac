// The header line every benchmark prints: what it ran on.
import { cpus, totalmem } from 'node:os';
import type { Device } from '../src/runtime/device.js';

export function machineDescription(device?: Device): string {
  const cpu = cpus();
  const parts = [
    `${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown CPU'}`,
    `${Math.round(totalmem() / 2 ** 30)} GiB`,
    `${process.platform}-${process.arch}`,
    `node ${process.version}`,
  ];
  if (device) {
    const i = device.adapterInfo;
    parts.push(`GPU: ${i.description || i.device || i.vendor} (${i.vendor}/${i.architecture})`);
    parts.push(`f16 ${device.features.shaderF16 ? 'on' : 'off'}`);
  }
  return parts.join(', ');
}

/** Median of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Prints rows as an aligned text table (first row: header). */
export function printTable(rows: (string | number)[][]): void {
  const cells = rows.map((r) => r.map(String));
  const widths = cells[0].map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => r.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ');
  console.log(line(cells[0]));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells.slice(1)) console.log(line(r));
}
