// The quality report of `quantize` and `convert`: per tensor the chosen type
// and the RMSE / SNR of the dequantized values against the source, a summary,
// and the same as JSON (--report FILE).

import type { RunResult, TensorReport } from '../convert/pipeline.js';
import { formatBytes, formatDuration, formatShape, table } from './format.js';
import type { TextSink } from './progress.js';
import { STAGES, stageMs, type ProfileSummary } from '../runtime/profile.js';

export interface QualityReport {
  command: 'quantize' | 'convert' | 'demo';
  input: string;
  output: string;
  /** What the input was, in words. */
  input_kind: string;
  /** Preset or outtype asked for, and the llama_ftype written. */
  type: string;
  file_type: number;
  backend: 'gpu' | 'cpu';
  device: string;
  parameters: number;
  file_bytes: number;
  bits_per_weight: number;
  timings_ms: { total: number; read: number; compute: number; write: number };
  summary: { tensors: number; lossy: number; mean_snr_db: number | null; worst_snr_db: number | null; worst_tensor: string | null };
  tensors: (Omit<TensorReport, 'snrDb'> & { snrDb: number | null })[];
  /** With --profile: per-stage figures. */
  profile?: ProfileSummary;
}

export function buildReport(
  command: QualityReport['command'],
  input: string,
  inputKind: string,
  type: string,
  fileType: number,
  device: string,
  result: RunResult,
): QualityReport {
  const parameters = result.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  const lossy = result.tensors.filter((t) => t.lossy && Number.isFinite(t.snrDb));
  // mean SNR weighted by elements: the SNR of the model's weights taken together would hide small tensors
  let worst: TensorReport | undefined;
  for (const t of lossy) if (!worst || t.snrDb < worst.snrDb) worst = t;
  const meanSnr = lossy.length ? lossy.reduce((s, t) => s + t.snrDb, 0) / lossy.length : null;
  const tensorBytes = result.tensors.reduce((n, t) => n + t.bytes, 0);
  return {
    command,
    input,
    output: result.path,
    input_kind: inputKind,
    type,
    file_type: fileType,
    backend: result.backend,
    device,
    parameters,
    file_bytes: result.bytes,
    bits_per_weight: parameters ? (tensorBytes * 8) / parameters : 0,
    timings_ms: {
      total: Math.round(result.timings.totalMs),
      read: Math.round(result.timings.readMs),
      compute: Math.round(result.timings.computeMs),
      write: Math.round(result.timings.writeMs),
    },
    summary: {
      tensors: result.tensors.length,
      lossy: lossy.length,
      mean_snr_db: meanSnr,
      worst_snr_db: worst ? worst.snrDb : null,
      worst_tensor: worst ? worst.name : null,
    },
    tensors: result.tensors.map((t) => ({ ...t, snrDb: Number.isFinite(t.snrDb) ? t.snrDb : null })),
    ...(result.profile ? { profile: result.profile } : {}),
  };
}

function num(x: number, digits: number): string {
  if (x === 0) return '0';
  if (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e5) return x.toExponential(2);
  return x.toFixed(digits);
}

/** Prints the per-tensor table (unless `brief`) and the summary. */
export function printReport(r: QualityReport, out: TextSink, brief = false): void {
  // an imatrix column only when an importance matrix was given (--imatrix)
  const weighted = r.tensors.filter((t) => t.imatrix).length;
  if (!brief) {
    const rows: string[][] = [['tensor', 'shape', 'type', 'size', 'RMSE', 'SNR dB', ...(weighted ? ['imatrix'] : []), '']];
    for (const t of r.tensors) {
      const type = t.from === t.to ? t.to : `${t.from} -> ${t.to}`;
      const measured = !t.lossy || Number.isFinite(t.rmse);
      const rmse = t.lossy && measured ? num(t.rmse, 6) : '-';
      const snr = !measured ? '-' : t.lossy ? (t.snrDb === null ? 'exact' : t.snrDb.toFixed(1)) : 'exact';
      const im = weighted ? [t.imatrix ? 'yes' : t.lossy ? 'no' : '-'] : [];
      rows.push([t.name, formatShape(t.shape), type, formatBytes(t.bytes), rmse, snr, ...im, t.note ?? '']);
    }
    out.write(table(rows, ['l', 'l', 'l', 'r', 'r', 'r', ...(weighted ? (['l'] as const) : []), 'l']) + '\n\n');
  }
  const s = r.summary;
  out.write(
    `${r.output}: ${s.tensors} tensors, ${(r.parameters / 1e6).toFixed(2)} M parameters, ` +
      `${formatBytes(r.file_bytes)} (${r.bits_per_weight.toFixed(2)} bits per weight), ${r.type}\n`,
  );
  if (weighted) out.write(`importance matrix: ${weighted} of ${s.tensors} tensors quantized with its weights\n`);
  if (s.lossy > 0 && s.mean_snr_db !== null) {
    out.write(`quality: ${s.lossy} tensors rounded; SNR mean ${s.mean_snr_db.toFixed(1)} dB, worst ${s.worst_snr_db!.toFixed(1)} dB (${s.worst_tensor})\n`);
  } else if (r.tensors.some((t) => t.lossy && !Number.isFinite(t.rmse))) {
    out.write('quality: not measured (--no-report)\n');
  } else {
    out.write('quality: every tensor holds its source values exactly\n');
  }
  const t = r.timings_ms;
  out.write(
    `time: ${formatDuration(t.total)} (read ${formatDuration(t.read)}, quantize ${formatDuration(t.compute)}, write ${formatDuration(t.write)}; pipelined, they overlap) ` +
      `on ${r.device}\n`,
  );
}

/** The per-stage profile (--profile) as table rows: stage, ms, MiB, MiB/s, share of the total. */
export function profileRows(p: ProfileSummary, totalMs: number): string[][] {
  const rows: string[][] = [['stage', p.gpuTimestamps ? 'ms (GPU stages: GPU time)' : 'ms (wall)', 'MiB', 'MiB/s', 'of total']];
  let slowest = 0;
  for (const s of STAGES) {
    const f = p.stages[s];
    const ms = stageMs(f);
    slowest = Math.max(slowest, ms);
    const mib = f.bytes / 2 ** 20;
    rows.push([s, ms.toFixed(0), f.bytes ? mib.toFixed(0) : '', f.bytes && ms > 0 ? (mib / (ms / 1000)).toFixed(0) : '', `${((100 * ms) / totalMs).toFixed(0)}%`]);
  }
  if (p.gpuTimestamps) {
    // one queue runs both: together they are one stage
    const gpu = stageMs(p.stages.quantize) + stageMs(p.stages.stats);
    slowest = Math.max(slowest, gpu);
    rows.push(['GPU (quantize + stats)', gpu.toFixed(0), '', '', `${((100 * gpu) / totalMs).toFixed(0)}%`]);
  }
  rows.push(['total', totalMs.toFixed(0), '', '', '100%']);
  rows.push(['total / slowest stage', slowest > 0 ? `${(totalMs / slowest).toFixed(2)}x` : '-', '', '', '']);
  return rows;
}

/** Prints the per-stage profile. */
export function printProfile(p: ProfileSummary, totalMs: number, out: TextSink): void {
  out.write('profile (stages overlap when pipelined; their sum can exceed the total):\n');
  out.write(table(profileRows(p, totalMs), ['l', 'r', 'r', 'r', 'r']) + '\n');
}
