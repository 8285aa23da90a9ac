// GPU buffer -> mapped range -> caller. Everything that leaves the GPU
// (array.data(), saving a tensor to a file) goes through streamBuffer, which
// hands out mapped ranges in bounded chunks so memory stays flat however large
// the buffer is.

import type { Device } from './device.js';

export const DEFAULT_CHUNK_BYTES = 64 * 2 ** 20;

/** Receives one mapped chunk; the view is valid only until the returned promise settles. */
export type ChunkSink = (chunk: Uint8Array, offset: number) => void | Promise<void>;

export interface StreamOptions {
  /** Bytes per chunk (rounded to 256); default 64 MiB. */
  chunkBytes?: number;
  /** Map the source buffer itself (needs MAP_READ on it); default: where the device offers it. */
  direct?: boolean;
}

export interface ChunkPlan {
  /** Aligned byte range copied or mapped from the source. */
  start: number;
  length: number;
  /** Where the caller's bytes sit inside that range. */
  skip: number;
  take: number;
  /** Offset of this chunk's first byte within the caller's range. */
  offset: number;
}

/**
 * Splits [offset, offset + size) into chunks whose copies and maps satisfy
 * WebGPU's alignment (copy offsets/sizes multiple of 4, map offsets multiple
 * of 8): each chunk covers an aligned superset and says which bytes are wanted.
 */
export function planChunks(offset: number, size: number, chunkBytes: number): ChunkPlan[] {
  const plans: ChunkPlan[] = [];
  const step = Math.max(256, Math.floor(chunkBytes / 256) * 256);
  const end = offset + size;
  let pos = offset;
  while (pos < end) {
    const start = Math.floor(pos / 8) * 8;
    const stop = Math.min(end, start + step);
    const length = Math.ceil((stop - start) / 4) * 4;
    plans.push({ start, length, skip: pos - start, take: stop - pos, offset: pos - offset });
    pos = stop;
  }
  return plans;
}

/**
 * Streams bytes [offset, offset + size) of `buffer` to `sink`, in order, a
 * chunk at a time. Through staging buffers, two chunks are in flight: the GPU
 * copies chunk k+1 while the sink consumes chunk k. With `direct`, the source
 * buffer's own mapped ranges go to the sink (no copy at all).
 */
export async function streamBuffer(
  device: Device,
  buffer: GPUBuffer,
  offset: number,
  size: number,
  sink: ChunkSink,
  options: StreamOptions = {},
): Promise<void> {
  if (size === 0) return;
  const plans = planChunks(offset, size, options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  const direct = options.direct ?? (device.features.mapExtended && (buffer.usage & GPUBufferUsage.MAP_READ) !== 0);
  if (direct) {
    device.flush();
    for (const p of plans) {
      await buffer.mapAsync(GPUMapMode.READ, p.start, p.length);
      try {
        await sink(new Uint8Array(buffer.getMappedRange(p.start, p.length), p.skip, p.take), p.offset);
      } finally {
        buffer.unmap();
      }
    }
    device.check();
    return;
  }

  const stagingSize = Math.max(...plans.map((p) => p.length));
  const count = Math.min(2, plans.length);
  const staging: GPUBuffer[] = [];
  for (let i = 0; i < count; i++) {
    staging.push(device.createBuffer(stagingSize, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'staging'));
  }
  const inflight: (Promise<void> | undefined)[] = [];
  try {
    for (let k = 0; k < plans.length; k++) {
      const slot = k % count;
      const s = staging[slot];
      const p = plans[k];
      if (inflight[slot]) await inflight[slot]; // the slot's previous chunk is consumed
      device.commandEncoder().copyBufferToBuffer(buffer, p.start, s, 0, p.length);
      device.flush();
      const previous = inflight[(k + 1) % count];
      const mapped = s.mapAsync(GPUMapMode.READ, 0, p.length);
      inflight[slot] = (async () => {
        await mapped;
        if (count > 1 && k > 0) await previous; // keep the sink's calls in order
        try {
          await sink(new Uint8Array(s.getMappedRange(0, p.length), p.skip, p.take), p.offset);
        } finally {
          s.unmap();
        }
      })();
      // Nothing awaits a chunk until its slot comes round again: mark a failure handled here, it is rethrown below.
      inflight[slot]!.catch(() => {});
    }
    await Promise.all(inflight);
  } finally {
    await Promise.allSettled(inflight);
    for (const s of staging) s.destroy();
  }
  device.check();
}

/** Reads bytes [offset, offset + size) of `buffer` into a new Uint8Array. */
export async function readBuffer(device: Device, buffer: GPUBuffer, offset: number, size: number): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  await streamBuffer(device, buffer, offset, size, (chunk, at) => {
    out.set(chunk, at);
  });
  return out;
}
