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

/** Bytes of released GPU buffers kept for reuse: enough for a layer's repeated shapes, small enough to keep memory flat. */
const CLI_POOL_BYTES = 64 * 2 ** 20;

export async function openBackend(options: { cpu?: boolean; stderr: TextSink; device?: Device }): Promise<Backend> {
  if (options.cpu) return { device: undefined, label: 'the CPU (--cpu)', close: async () => {} };
  // a device the caller owns (tests running many commands): used, not closed
  if (options.device) return { device: options.device, label: options.device.label, close: async () => {} };
  try {
    const device = await init({ poolBytes: CLI_POOL_BYTES });
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
