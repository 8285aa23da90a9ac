// `npm run bench -- NAME [args]`: runs bench/NAME.ts's default export.
// Benchmarks print tables with the machine they ran on; they are not tests.
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NAMES = ['quantize', 'save', 'ops', 'e2e', 'forward', 'moe'] as const;

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  if (!name || !(NAMES as readonly string[]).includes(name)) {
    console.error(`usage: npm run bench -- <${NAMES.join('|')}> [options]`);
    process.exit(2);
  }
  process.env.XDG_RUNTIME_DIR ??= join(tmpdir(), 'wgarray-xdg');
  if (!existsSync(process.env.XDG_RUNTIME_DIR)) mkdirSync(process.env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
  const mod = (await import(`./${name}.js`)) as { default: (args: string[]) => Promise<void> };
  await mod.default(args);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
