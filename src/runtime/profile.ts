// Where a quantize/convert run spends its time, per stage. Host stages (read,
// upload, readback, write) are wall time around the calls that do them. GPU
// stages (quantize, stats) are GPU time from timestamp queries where the
// adapter offers `timestamp-query` (lavapipe does), summed over their compute
// passes; without it, wall time around dispatch + a queue wait, which the
// profiler then adds (so a profiled run without timestamps is slower).
//
// Stages overlap in a pipelined run: their sum can exceed the total, and the
// slowest stage is the floor the total is judged against.

export const STAGES = ['read', 'upload', 'quantize', 'stats', 'readback', 'write'] as const;
export type Stage = (typeof STAGES)[number];
/** Stages whose work is GPU compute passes. */
export const GPU_STAGES: readonly Stage[] = ['quantize', 'stats'];

export interface StageFigures {
  /** Wall milliseconds spent in the stage's calls (GPU stages: encoding + any wait the profiler added). */
  wallMs: number;
  /** GPU milliseconds from timestamp queries (GPU stages, when the adapter has timestamp-query). */
  gpuMs?: number;
  /** Bytes the stage moved (read: file bytes, upload: host -> GPU, readback: GPU -> host, write: file bytes). */
  bytes: number;
  /** Calls (host stages) or compute passes (GPU stages). */
  count: number;
}

export interface ProfileSummary {
  stages: Record<Stage, StageFigures>;
  /** True when the GPU stages' times are timestamp queries. */
  gpuTimestamps: boolean;
}

export class Profile {
  private readonly figures = Object.fromEntries(STAGES.map((s) => [s, { wallMs: 0, bytes: 0, count: 0 }])) as Record<Stage, StageFigures>;
  private gpuTotals: Partial<Record<Stage, number>> = {};
  private gpuPasses: Partial<Record<Stage, number>> = {};
  gpuTimestamps = false;

  /** Adds `ms` of wall time (and `bytes`) to `stage`. */
  add(stage: Stage, ms: number, bytes = 0): void {
    const f = this.figures[stage];
    f.wallMs += ms;
    f.bytes += bytes;
    f.count++;
  }

  /** Adds GPU time of one compute pass. */
  addGpu(stage: Stage, ms: number): void {
    this.gpuTotals[stage] = (this.gpuTotals[stage] ?? 0) + ms;
    this.gpuPasses[stage] = (this.gpuPasses[stage] ?? 0) + 1;
  }

  /** GPU milliseconds and pass counts per stage label as recorded (labels beyond STAGES included: the forward bench labels passes by pipeline). */
  gpuByLabel(): { label: string; ms: number; passes: number }[] {
    return Object.entries(this.gpuTotals).map(([label, ms]) => ({ label, ms: ms ?? 0, passes: this.gpuPasses[label as Stage] ?? 0 }));
  }

  /** Times `fn` as `stage`. */
  async time<T>(stage: Stage, fn: () => Promise<T> | T, bytes = 0): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.add(stage, performance.now() - t0, bytes);
    }
  }

  summary(): ProfileSummary {
    const stages = {} as Record<Stage, StageFigures>;
    for (const s of STAGES) {
      const f = { ...this.figures[s] };
      if (this.gpuTimestamps && GPU_STAGES.includes(s)) {
        f.gpuMs = this.gpuTotals[s] ?? 0;
        f.count = this.gpuPasses[s] ?? 0;
      }
      stages[s] = f;
    }
    return { stages, gpuTimestamps: this.gpuTimestamps };
  }
}

/** A stage's time as the profile judges it: GPU time where measured, wall time otherwise. */
export function stageMs(f: StageFigures): number {
  return f.gpuMs ?? f.wallMs;
}

const QUERIES_PER_SET = 4096;

/**
 * Timestamp queries for compute passes: each pass recorded while a stage is
 * set gets a begin/end pair; full query sets are resolved and read back
 * without waiting, and collect() sums them into the profile at the end.
 */
export class GpuTimer {
  private set: GPUQuerySet | null = null;
  private used = 0;
  private labels: Stage[] = [];
  private pending: Promise<void>[] = [];
  stage: Stage | null = null;

  constructor(
    private readonly device: GPUDevice,
    private readonly profile: Profile,
    /** Submits the open batch (the resolve must follow the passes it times). */
    private readonly flush: () => void,
  ) {
    profile.gpuTimestamps = true;
  }

  /** timestampWrites for the next compute pass, or undefined when no stage is being timed. */
  passWrites(): GPUComputePassTimestampWrites | undefined {
    if (!this.stage) return undefined;
    if (this.set && this.used + 2 > QUERIES_PER_SET) this.retire();
    this.set ??= this.device.createQuerySet({ type: 'timestamp', count: QUERIES_PER_SET, label: 'profile timestamps' });
    const at = this.used;
    this.used += 2;
    this.labels.push(this.stage);
    return { querySet: this.set, beginningOfPassWriteIndex: at, endOfPassWriteIndex: at + 1 };
  }

  /** Resolves the current query set and reads it back in the background. */
  private retire(): void {
    const set = this.set;
    if (!set || this.used === 0) return;
    const used = this.used;
    const labels = this.labels;
    this.set = null;
    this.used = 0;
    this.labels = [];
    this.flush();
    const bytes = used * 8;
    const resolved = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const staging = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.resolveQuerySet(set, 0, used, resolved, 0);
    enc.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
    this.device.queue.submit([enc.finish()]);
    const done = staging.mapAsync(GPUMapMode.READ).then(() => {
      const t = new BigUint64Array(staging.getMappedRange().slice(0));
      for (let i = 0; i < labels.length; i++) {
        const begin = t[2 * i];
        const end = t[2 * i + 1];
        this.profile.addGpu(labels[i], end > begin ? Number(end - begin) / 1e6 : 0);
      }
      staging.unmap();
    });
    this.pending.push(
      done.finally(() => {
        staging.destroy();
        resolved.destroy();
        set.destroy();
      }),
    );
  }

  /** Waits for every timed pass and adds them to the profile. */
  async collect(): Promise<void> {
    this.retire();
    const all = this.pending;
    this.pending = [];
    await Promise.all(all);
  }
}
