// The one place that acquires a WebGPU adapter and device. It keeps the object
// returned by dawn.node's create() for the process's life (see dawnInstance),
// batches command encoding,
// turns device loss and uncaptured GPU errors into errors on the next call,
// and releases everything on close() so the process can exit.

import { DeviceError, LimitError } from '../errors.js';
import { throttleDawnPolling } from './dawn-polling.js';
import { BufferPool } from './pool.js';
import { GpuTimer, Profile, type Stage } from './profile.js';

export interface DeviceOptions {
  /** Dawn backend: 'vulkan', 'metal', 'd3d12', 'opengl', ... Default: Dawn's choice. Env: WGARRAY_BACKEND. */
  backend?: string;
  /** Adapter name as Dawn lists it (e.g. 'llvmpipe', 'Apple M2'); Env: WGARRAY_ADAPTER. */
  adapter?: string;
  powerPreference?: GPUPowerPreference;
  /** Use the shader-f16 feature where offered (default true). Env WGARRAY_F16=0 turns it off. */
  shaderF16?: boolean;
  /** Use buffer-map-extended-usages (map storage buffers directly) where offered (default true). */
  mapExtended?: boolean;
  /** Bytes of released buffers the pool may keep for reuse (default 512 MiB). */
  poolBytes?: number;
  /**
   * Route dawn.node's main-thread polls through setTimeout(0) instead of a
   * setImmediate spin (default true; process-wide, see dawn-polling.ts).
   * Env WGARRAY_DAWN_POLL=immediate turns it off.
   */
  throttlePolling?: boolean;
}

export interface DeviceLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupsPerDimension: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupStorageSize: number;
  maxStorageBuffersPerShaderStage: number;
  minStorageBufferOffsetAlignment: number;
  minUniformBufferOffsetAlignment: number;
}

export interface DeviceFeatures {
  shaderF16: boolean;
  /** STORAGE buffers that are also MAP_READ: readback without a staging copy. */
  mapExtended: boolean;
  subgroups: boolean;
  timestampQuery: boolean;
}

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

type Dawn = { create(flags: string[]): GPU; globals: Record<string, unknown> };
let dawn: Dawn | null = null;

async function loadDawn(): Promise<Dawn> {
  if (dawn) return dawn;
  let mod: Dawn;
  try {
    mod = (await import('webgpu')) as unknown as Dawn;
  } catch (cause) {
    throw new DeviceError(
      'NO_ADAPTER',
      `cannot load Dawn's WebGPU binding (the 'webgpu' package) for ${process.platform}-${process.arch}: ` +
        `${(cause as Error).message}`,
      { cause },
    );
  }
  // WebGPU's enum-like globals (GPUBufferUsage, GPUMapMode, ...) are used by name.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  dawn = mod;
  return mod;
}

function platformHint(): string {
  switch (process.platform) {
    case 'linux':
      return (
        'On Linux without a GPU, install Mesa\'s lavapipe (software Vulkan): on Debian 12 run ' +
        '`sudo bash scripts/setup-lavapipe.sh` from the wgarray package (Mesa >= 24 from bookworm-backports); ' +
        'elsewhere install your distribution\'s mesa-vulkan-drivers and libvulkan1. With a GPU, install its Vulkan driver.'
      );
    case 'darwin':
      return 'On macOS WebGPU runs on Metal (macOS 11+); check that the process can reach the GPU (not in a sandbox without Metal).';
    case 'win32':
      return 'On Windows WebGPU runs on D3D12 or Vulkan; update the GPU driver.';
    default:
      return `WebGPU through Dawn is not known to work on ${process.platform}.`;
  }
}

const DEFAULT_POOL_BYTES = 512 * 2 ** 20;
/** Compute passes recorded before the batch is submitted on its own. */
const MAX_PASSES_PER_BATCH = 64;

export class Device {
  readonly adapter: GPUAdapter;
  readonly gpuDevice: GPUDevice;
  readonly limits: DeviceLimits;
  readonly features: DeviceFeatures;
  readonly adapterInfo: AdapterDescription;
  readonly pool: BufferPool;
  readonly label: string;

  private failure: DeviceError | null = null;
  private closed = false;
  private encoder: GPUCommandEncoder | null = null;
  private passes = 0;
  /** Buffers used by the open batch that may be destroyed once it is submitted. */
  private transient: GPUBuffer[] = [];
  /** The run being profiled (see profile.ts), and its timestamp queries where the adapter has them. */
  profile: Profile | null = null;
  private timer: GpuTimer | null = null;

  private constructor(adapter: GPUAdapter, device: GPUDevice, features: DeviceFeatures, poolBytes: number) {
    this.adapter = adapter;
    this.gpuDevice = device;
    this.features = features;
    const l = device.limits;
    this.limits = {
      maxBufferSize: Number(l.maxBufferSize),
      maxStorageBufferBindingSize: Number(l.maxStorageBufferBindingSize),
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
      minUniformBufferOffsetAlignment: l.minUniformBufferOffsetAlignment,
    };
    const i = adapter.info;
    this.adapterInfo = {
      vendor: i.vendor ?? '',
      architecture: i.architecture ?? '',
      device: i.device ?? '',
      description: i.description ?? '',
    };
    this.label = this.adapterInfo.description || this.adapterInfo.device || 'WebGPU device';
    this.pool = new BufferPool(this, poolBytes);

    device.addEventListener('uncapturederror', (event) => {
      const err = (event as GPUUncapturedErrorEvent).error;
      const kind = err.constructor?.name ?? 'GPUError';
      this.failure ??= new DeviceError('GPU_ERROR', `${this.label}: ${kind}: ${err.message}`);
    });
    void device.lost.then((info) => {
      if (this.closed) return;
      this.failure ??= new DeviceError('DEVICE_LOST', `${this.label}: device lost (${info.reason}): ${info.message}`);
    });
  }

  /** Opens a device on the adapter chosen by `options` (and WGARRAY_* environment variables). */
  static async open(options: DeviceOptions = {}): Promise<Device> {
    const backend = options.backend ?? process.env.WGARRAY_BACKEND;
    const adapterName = options.adapter ?? process.env.WGARRAY_ADAPTER;
    const flags: string[] = [];
    if (backend) flags.push(`backend=${backend}`);
    if (adapterName) flags.push(`adapter=${adapterName}`);
    const gpu = await dawnInstance(flags);
    let adapter: GPUAdapter | null = null;
    try {
      adapter = await gpu.requestAdapter(options.powerPreference ? { powerPreference: options.powerPreference } : undefined);
    } catch (cause) {
      throw new DeviceError('NO_ADAPTER', `no WebGPU adapter (${flags.join(' ') || 'default'}): ${(cause as Error).message}. ${platformHint()}`, { cause });
    }
    if (!adapter) {
      const asked = flags.length ? ` matching ${flags.join(', ')}` : '';
      throw new DeviceError('NO_ADAPTER', `no WebGPU adapter${asked} on ${process.platform}-${process.arch}. ${platformHint()}`);
    }
    const wantF16 = (options.shaderF16 ?? process.env.WGARRAY_F16 !== '0') && adapter.features.has('shader-f16');
    const wantMap =
      (options.mapExtended ?? process.env.WGARRAY_MAP_EXTENDED !== '0') &&
      adapter.features.has('buffer-map-extended-usages' as GPUFeatureName);
    const features: DeviceFeatures = {
      shaderF16: wantF16,
      mapExtended: wantMap,
      subgroups: adapter.features.has('subgroups' as GPUFeatureName),
      timestampQuery: adapter.features.has('timestamp-query'),
    };
    const requiredFeatures: GPUFeatureName[] = [];
    if (features.shaderF16) requiredFeatures.push('shader-f16');
    if (features.mapExtended) requiredFeatures.push('buffer-map-extended-usages' as GPUFeatureName);
    if (features.subgroups) requiredFeatures.push('subgroups' as GPUFeatureName);
    if (features.timestampQuery) requiredFeatures.push('timestamp-query');
    // Ask for the adapter's own limits: the defaults (256 MiB buffers, 128 MiB
    // bindings) are far below what real tensors need on real GPUs.
    const a = adapter.limits;
    const requiredLimits: Record<string, number> = {
      maxBufferSize: a.maxBufferSize,
      maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
      maxComputeWorkgroupsPerDimension: a.maxComputeWorkgroupsPerDimension,
      maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
      maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
    };
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'wgarray' });
    } catch (cause) {
      throw new DeviceError('NO_ADAPTER', `the WebGPU adapter refused a device: ${(cause as Error).message}`, { cause });
    }
    if (options.throttlePolling ?? process.env.WGARRAY_DAWN_POLL !== 'immediate') throttleDawnPolling(true);
    return new Device(adapter, device, features, options.poolBytes ?? DEFAULT_POOL_BYTES);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Throws the device's failure (lost, GPU error) or that it is closed. Every op calls it first. */
  check(): void {
    if (this.closed) throw new DeviceError('DEVICE_CLOSED', `${this.label}: the device was closed`);
    if (this.failure) throw this.failure;
  }

  /** Creates a buffer after checking the device's limits. */
  createBuffer(size: number, usage: GPUBufferUsageFlags, label?: string, mappedAtCreation = false): GPUBuffer {
    this.check();
    if (size > this.limits.maxBufferSize) {
      throw new LimitError(
        `${label ?? 'buffer'} needs ${size} bytes, over this device's maxBufferSize of ${this.limits.maxBufferSize} bytes (${this.label})`,
      );
    }
    return this.gpuDevice.createBuffer({ size, usage, label, mappedAtCreation });
  }

  /** The open command encoder of the current batch. */
  commandEncoder(): GPUCommandEncoder {
    this.check();
    this.encoder ??= this.gpuDevice.createCommandEncoder();
    return this.encoder;
  }

  /** Records one compute dispatch into the current batch. */
  dispatch(
    pipeline: GPUComputePipeline,
    bindGroups: GPUBindGroup[],
    workgroups: readonly [number, number?, number?],
  ): void {
    const timestampWrites = this.timer?.passWrites();
    const pass = this.commandEncoder().beginComputePass(timestampWrites ? { timestampWrites } : undefined);
    pass.setPipeline(pipeline);
    bindGroups.forEach((g, i) => pass.setBindGroup(i, g));
    pass.dispatchWorkgroups(workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1);
    pass.end();
    if (++this.passes >= MAX_PASSES_PER_BATCH) this.flush();
  }

  /** A small uniform buffer holding `words`, destroyed after the batch that uses it is submitted. */
  uniform(words: ArrayLike<number>, kind: 'u32' | 'i32' | 'f32' = 'u32'): GPUBuffer {
    const size = Math.max(16, Math.ceil((words.length * 4) / 16) * 16);
    const buf = this.createBuffer(size, GPUBufferUsage.UNIFORM, 'uniform', true);
    const range = buf.getMappedRange();
    if (kind === 'f32') new Float32Array(range).set(words);
    else if (kind === 'i32') new Int32Array(range).set(words);
    else new Uint32Array(range).set(words);
    buf.unmap();
    this.transient.push(buf);
    return buf;
  }

  /** Destroys `buffer` once the work recorded so far no longer needs it. */
  releaseAfterSubmit(buffer: GPUBuffer): void {
    this.transient.push(buffer);
  }

  /** Submits the recorded batch. Cheap when nothing is recorded. */
  flush(): void {
    if (this.encoder) {
      const cb = this.encoder.finish();
      this.encoder = null;
      this.passes = 0;
      this.gpuDevice.queue.submit([cb]);
    }
    if (this.transient.length) {
      for (const b of this.transient) b.destroy();
      this.transient = [];
    }
  }

  /** Writes host bytes into a buffer, after the batch recorded so far (which may still read it). */
  writeBuffer(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    this.check();
    this.flush();
    this.gpuDevice.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Submits the batch and waits until the GPU has finished it; rejects with any GPU error. */
  async sync(): Promise<void> {
    this.flush();
    this.check();
    await this.gpuDevice.queue.onSubmittedWorkDone();
    this.check();
  }

  /**
   * Runs `fn` inside validation and out-of-memory error scopes, so an error is
   * reported to this call rather than to a later one.
   */
  async scoped<T>(what: string, fn: () => T): Promise<T> {
    this.check();
    const d = this.gpuDevice;
    d.pushErrorScope('out-of-memory');
    d.pushErrorScope('validation');
    let result: T;
    try {
      result = fn();
    } finally {
      const validation = d.popErrorScope();
      const oom = d.popErrorScope();
      const [v, o] = await Promise.all([validation, oom]);
      const err = v ?? o;
      if (err) throw new DeviceError('GPU_ERROR', `${what}: ${err.message}`);
    }
    return result;
  }

  /** Starts profiling the work on this device (GPU stages by timestamp queries where offered). */
  startProfile(): Profile {
    const profile = new Profile();
    this.profile = profile;
    this.timer = this.features.timestampQuery ? new GpuTimer(this.gpuDevice, profile, () => this.flush()) : null;
    return profile;
  }

  /** Whether GPU stages are timed by timestamp queries (else the profiler waits for the queue). */
  get timesGpu(): boolean {
    return this.timer !== null;
  }

  /** Runs `fn` (which records dispatches) with its compute passes counted as `stage`. */
  gpuStage<T>(stage: Stage, fn: () => T): T {
    if (!this.timer) return fn();
    const before = this.timer.stage;
    this.timer.stage = stage;
    try {
      return fn();
    } finally {
      this.timer.stage = before;
    }
  }

  /** Stops profiling; waits for the timestamp readbacks. */
  async stopProfile(): Promise<Profile | null> {
    const profile = this.profile;
    const timer = this.timer;
    this.profile = null;
    this.timer = null;
    await timer?.collect();
    return profile;
  }

  /** Releases every buffer and the device; the process can exit afterwards. Idempotent. */
  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } catch {
      // a failed device cannot flush; it is being torn down anyway
    }
    this.closed = true;
    this.pool.destroy();
    this.gpuDevice.destroy();
  }
}

/**
 * dawn.node's create() objects, one per flag set, kept for the process's life
 * and shared by the devices opened with those flags. Dawn's node binding polls
 * the instance from setImmediate callbacks that a pending promise (device.lost,
 * a mapAsync) keeps scheduling through a raw pointer: once the create() object
 * was collected, such a callback locked a freed mutex and killed the process
 * (SIGSEGV or a glibc assertion) in 3-19% of exits after close(), more under load.
 */
const dawnInstances = new Map<string, GPU>();

async function dawnInstance(flags: string[]): Promise<GPU> {
  const key = flags.join(' ');
  let gpu = dawnInstances.get(key);
  if (gpu) return gpu;
  const { create } = await loadDawn();
  try {
    gpu = create(flags);
  } catch (cause) {
    throw new DeviceError('NO_ADAPTER', `WebGPU could not start with ${key || 'default flags'}: ${(cause as Error).message}`, { cause });
  }
  dawnInstances.set(key, gpu);
  return gpu;
}

/**
 * The process-wide default device: the one state behind getDevice(), init(),
 * deviceOf() and close(). `opened` is the device once its open has resolved,
 * so ops can find it synchronously.
 */
let defaultDevice: Promise<Device> | null = null;
let opened: Device | null = null;
let defaultOptions: DeviceOptions = {};

/** Sets the options the default device will open with; closes it if it is open. */
export async function configureDevice(options: DeviceOptions): Promise<void> {
  await closeDevice();
  defaultOptions = { ...options };
}

/** The process-wide default device, opened on first use. */
export function getDevice(): Promise<Device> {
  if (defaultDevice) {
    return defaultDevice.then((d) => {
      if (d.isClosed) {
        if (opened === d) opened = null;
        defaultDevice = null;
        return getDevice();
      }
      return d;
    });
  }
  const opening = Device.open(defaultOptions);
  defaultDevice = opening;
  opening.then(
    (d) => {
      if (defaultDevice === opening) opened = d;
    },
    () => {
      if (defaultDevice === opening) defaultDevice = null;
    },
  );
  return opening;
}

/** Closes the default device (if open). Arrays made on it can no longer be used. */
export async function closeDevice(): Promise<void> {
  const d = defaultDevice;
  defaultDevice = null;
  opened = null;
  if (d) {
    try {
      (await d).close();
    } catch {
      // it never opened: nothing to close
    }
  }
}

/** Opens the default device (once); ops on arrays made without `device` use it. */
export async function init(options?: DeviceOptions): Promise<Device> {
  if (options) await configureDevice(options);
  const d = await getDevice();
  opened = d;
  return d;
}

/** Closes the default device; the process can exit afterwards. */
export async function close(): Promise<void> {
  await closeDevice();
}

/** The device an op runs on: the one given, else the default one opened by init(). */
export function deviceOf(device?: Device): Device {
  const d = device ?? opened;
  if (!d || d.isClosed) {
    throw new DeviceError('DEVICE_CLOSED', 'no device is open: call `await init()` first (or pass { device })');
  }
  return d;
}

/**
 * The device an async entry point (load, upload, save, quantize pipelines)
 * runs on: the one given, else the default one, opened on first use as MLX
 * users expect. Synchronous ops keep deviceOf's clear DEVICE_CLOSED error.
 */
export async function deviceOrDefault(device?: Device): Promise<Device> {
  if (device) return deviceOf(device);
  if (opened && !opened.isClosed) return opened;
  return init();
}
