// dawn.node waits for GPU work (a mapAsync, onSubmittedWorkDone) by polling its
// instance from a chain of setImmediate callbacks, one native function per
// tick, looked up on the global object each time: the main thread spins at
// 100% for as long as anything is pending. Where the GPU is the CPU (lavapipe)
// that spin takes a core from the kernels, plus ~0.7 s of GC per few seconds of
// waiting (a new function and handle per tick): quantize to Q8_0 of a
// 180M-parameter model used 2.6-2.9 s of CPU with it and 1.8-1.9 s with the
// polls 1 ms apart; the quantize bench's weighted Q4_K went from 11 to 19-25 M
// elements/s (bench/RESULTS.md, round 3). So every device opened by
// src/runtime/device.ts routes those polls through setTimeout(0) (node's 1 ms
// floor). Only a native function of no parameters and no name is delayed: what
// Napi::Function::New makes; promise resolvers, bound functions and JS
// callbacks go to setImmediate unchanged.

const ORIGINAL = Symbol.for('wgarray.dawnPolling.setImmediate');

type Global = { setImmediate: typeof setImmediate; [ORIGINAL]?: typeof setImmediate };

/** Whether `f` looks like dawn.node's poll callback: native, no name, no parameters. */
export function isDawnPoll(f: unknown): boolean {
  return typeof f === 'function' && f.length === 0 && f.name === '' && Function.prototype.toString.call(f).includes('[native code]');
}

/**
 * Throttles dawn.node's polls (`on`) or gives them setImmediate back; returns
 * the previous state. Process-wide: the global setImmediate is what dawn.node
 * calls. Opening a device turns it on unless DeviceOptions.throttlePolling is false.
 */
export function throttleDawnPolling(on: boolean): boolean {
  const g = globalThis as Global;
  const original = g[ORIGINAL];
  const was = original !== undefined;
  if (on && !was) {
    const immediate = g.setImmediate;
    const throttled = function (callback: (...args: unknown[]) => void, ...args: unknown[]) {
      if (isDawnPoll(callback)) return setTimeout(callback, 0, ...args) as unknown as NodeJS.Immediate;
      return immediate(callback, ...args);
    } as typeof setImmediate;
    g.setImmediate = Object.assign(throttled, { __promisify__: immediate.__promisify__ });
    g[ORIGINAL] = immediate;
  } else if (!on && was) {
    g.setImmediate = original;
    delete g[ORIGINAL];
  }
  return was;
}
