// Reuse of GPU buffers. Arrays come and go in loops (quantize one tensor, save
// it, drop it, next); creating and destroying a buffer each time costs driver
// calls and fragments memory. Released buffers wait here, grouped by a size
// class, until a request of the same class takes them.

import type { Device } from './device.js';

/** Usage of every array buffer: bound as storage, copied to and from. */
function arrayUsage(device: Device): GPUBufferUsageFlags {
  let usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  // Where storage buffers may also be mapped, readback maps them directly.
  if (device.features.mapExtended) usage |= GPUBufferUsage.MAP_READ;
  return usage;
}

/**
 * Size classes with at most 1/8 waste: a size rounds up to its top three
 * significant bits (256, 288, 320, ... 1 MiB, 1.125 MiB, ...), at least 256 bytes.
 */
export function sizeClass(bytes: number): number {
  const n = Math.max(256, Math.ceil(bytes / 4) * 4);
  const top = 2 ** Math.floor(Math.log2(n));
  const step = Math.max(4, top / 8);
  return Math.ceil(n / step) * step;
}

export interface PoolStats {
  /** Bytes in buffers handed out and not yet released. */
  liveBytes: number;
  /** Bytes in released buffers kept for reuse. */
  freeBytes: number;
  /** Buffers created since the pool started. */
  created: number;
  /** Requests served by a kept buffer. */
  reused: number;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  /** Kept buffers, oldest first, for eviction past the cap. */
  private readonly order: GPUBuffer[] = [];
  private stats: PoolStats = { liveBytes: 0, freeBytes: 0, created: 0, reused: 0 };

  constructor(
    private readonly device: Device,
    private readonly capBytes: number,
  ) {}

  /** A buffer of at least `bytes` (a multiple of 4) for array storage. */
  acquire(bytes: number, label?: string): GPUBuffer {
    this.device.check();
    let size = sizeClass(bytes);
    if (size > this.device.limits.maxBufferSize) size = Math.ceil(bytes / 4) * 4;
    const list = this.free.get(size);
    const kept = list?.pop();
    if (kept) {
      this.order.splice(this.order.indexOf(kept), 1);
      this.stats.freeBytes -= size;
      this.stats.liveBytes += size;
      this.stats.reused++;
      return kept;
    }
    const buffer = this.device.createBuffer(size, arrayUsage(this.device), label);
    this.stats.created++;
    this.stats.liveBytes += size;
    return buffer;
  }

  /** Returns a buffer from acquire() for reuse. */
  release(buffer: GPUBuffer): void {
    const size = buffer.size;
    this.stats.liveBytes -= size;
    if (this.device.isClosed) return;
    if (size > this.capBytes) {
      this.device.releaseAfterSubmit(buffer);
      return;
    }
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buffer);
    this.order.push(buffer);
    this.stats.freeBytes += size;
    while (this.stats.freeBytes > this.capBytes && this.order.length) {
      const old = this.order.shift()!;
      const l = this.free.get(old.size)!;
      l.splice(l.indexOf(old), 1);
      this.stats.freeBytes -= old.size;
      // Work already recorded may still use it: destroy after that is submitted.
      this.device.releaseAfterSubmit(old);
    }
  }

  /** Destroys every kept buffer (released memory goes back to the driver). */
  trim(): void {
    for (const b of this.order) this.device.releaseAfterSubmit(b);
    this.order.length = 0;
    this.free.clear();
    this.stats.freeBytes = 0;
    this.device.flush();
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }

  /** Called by Device.close(): the device's destruction frees the buffers. */
  destroy(): void {
    for (const b of this.order) b.destroy();
    this.order.length = 0;
    this.free.clear();
    this.stats.freeBytes = 0;
  }
}

/**
 * A GPU buffer shared by an array and its views. The last release returns the
 * buffer to the pool.
 */
export class GpuStorage {
  private refs = 1;
  constructor(
    readonly device: Device,
    readonly buffer: GPUBuffer,
    /** Bytes of meaningful data (the buffer may be larger: size class, 4-byte rounding). */
    readonly byteLength: number,
  ) {}

  static allocate(device: Device, byteLength: number, label?: string): GpuStorage {
    return new GpuStorage(device, device.pool.acquire(Math.max(4, byteLength), label), byteLength);
  }

  get alive(): boolean {
    return this.refs > 0;
  }

  retain(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (this.refs <= 0) return;
    if (--this.refs === 0) this.device.pool.release(this.buffer);
  }
}
