// The set-up the op tests share: the default device, and a second one whose
// storage bindings are cut at 4 KiB so that every kernel has to split its work
// into windows; arrays a test keeps in `live` are disposed after it (GPU
// memory is not left to the garbage collector).
import { afterAll, afterEach, beforeAll } from 'vitest';
import { close, Device, init, type WgArray } from '../../src/index.js';

/** The device with 4 KiB bindings (set by setUpOpsTests' beforeAll). */
export let small: Device;

/** Arrays to dispose at the end of the current test. */
export const live: WgArray[] = [];

/** Registers the hooks; call once at the top of a test file. */
export function setUpOpsTests(): void {
  beforeAll(async () => {
    await init();
    small = await Device.open();
    small.limits.maxStorageBufferBindingSize = 4096;
  });
  afterAll(async () => {
    small?.close();
    await close();
  });
  afterEach(() => {
    for (const a of live.splice(0)) a.dispose();
  });
}

/** An array's elements as numbers. */
export async function nums(a: WgArray): Promise<number[]> {
  return Array.from((await a.data()) as ArrayLike<number>);
}
