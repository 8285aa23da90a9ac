// The CLI's compute backend: the WebGPU device, or, where no adapter exists,
// the CPU path (src/quant/host.ts) with a one-line notice.

import { DeviceError } from '../errors.js';
import { close, init } from '../runtime/device.js';
import type { Device } from '../runtime/device.js';
import type { TextSink } from './progress.js';

export interface Backend {
  device: Device | undefined;
  /** How the report names it. */
  label: string;
  close(): Promise<void>;
}

/**
 * dawn.node waits for GPU work (a mapAsync, onSubmittedWorkDone) by polling its
 * instance from a chain of setImmediate callbacks, one native function per
 * tick, looked up on the global object each time: the main thread spins at
 * 100% for as long as anything is pending. On a machine whose GPU is the CPU
 * (lavapipe) that spin took half a core and, through the garbage it makes
 * (a new function and handle per tick), ~0.7 s of GC from the kernels' time:
 * `quantize` to Q8_0 of a 180M-parameter model used 2.6-2.9 s of CPU with it
 * and 1.8-1.9 s with the polls 1 ms apart (same run, bench/RESULTS.md).
 * The CLI owns its process, so it routes those polls through setTimeout(0)
 * (node's 1 ms floor). Only a native function of no arguments and no name
 * is delayed: what Napi::Function::New makes; promise resolvers (one
 * argument), bound functions and JS callbacks pass through unchanged.
 */
export function throttleDawnPolling(): () => void {
  const g = globalThis as { setImmediate: typeof setImmediate; [THROTTLED]?: typeof setImmediate };
  const immediate = g[THROTTLED];
  if (immediate) return () => {};
  const original = g.setImmediate;
  const source = Function.prototype.toString;
  const throttled = function (this: unknown, callback: (...args: unknown[]) => void, ...args: unknown[]) {
    if (isDawnPoll(callback, source)) return setTimeout(callback, 0, ...args) as unknown as NodeJS.Immediate;
    return original(callback, ...args);
  } as typeof setImmediate;
  g.setImmediate = Object.assign(throttled, { __promisify__: original.__promisify__ });
  g[THROTTLED] = original;
  /** Puts the original setImmediate back (benchmarks compare both). */
  return () => {
    g.setImmediate = original;
    delete g[THROTTLED];
  };
}

const THROTTLED = Symbol.for('wgarray.throttleDawnPolling');

/** Whether `f` looks like dawn.node's poll callback: native, no name, no parameters. */
export function isDawnPoll(f: unknown, source = Function.prototype.toString): boolean {
  return typeof f === 'function' && f.length === 0 && f.name === '' && source.call(f).includes('[native code]');
}

/** Bytes of released GPU buffers kept for reuse: enough for a layer's repeated shapes, small enough to keep memory flat. */
const CLI_POOL_BYTES = 64 * 2 ** 20;

export async function openBackend(options: { cpu?: boolean; stderr: TextSink; device?: Device }): Promise<Backend> {
  if (options.cpu) return { device: undefined, label: 'the CPU (--cpu)', close: async () => {} };
  // a device the caller owns (tests running many commands): used, not closed
  if (options.device) return { device: options.device, label: options.device.label, close: async () => {} };
  try {
    const device = await init({ poolBytes: CLI_POOL_BYTES });
    throttleDawnPolling();
    return { device, label: device.label, close: () => close() };
  } catch (e) {
    if (e instanceof DeviceError && e.code === 'NO_ADAPTER') {
      // one line: the reason without the platform hints that follow it
      const why = e.message.split('\n')[0].replace(/^no WebGPU adapter\s*/, '').split('. ')[0].trim();
      options.stderr.write(`wgarray: no WebGPU adapter${why ? ` ${why}` : ''}; using the CPU path, which is slower\n`);
      return { device: undefined, label: 'the CPU (no WebGPU adapter)', close: async () => {} };
    }
    throw e;
  }
}
