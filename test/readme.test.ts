// The README's ```js examples run as written: each console.log prints what the
// comment on its line says.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { DIST_INDEX, REPO, runChild } from './helpers/child.js';

const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

test('the README has runnable examples', () => {
  expect(blocks.length).toBeGreaterThanOrEqual(2);
});

test.each(blocks.map((block, i) => [i + 1, block] as const))('README example %i prints what its comments say', async (_, block) => {
  const expected = block
    .split('\n')
    .filter((l) => /^\s*console\.log\(/.test(l))
    .map((l) => l.slice(l.lastIndexOf('// ') + 3).trim());
  const source = block.replace(/from 'wgarray'/, `from ${JSON.stringify(DIST_INDEX)}`);
  const r = await runChild(source);
  expect(r.stderr).not.toMatch(/Error/);
  expect(r.code).toBe(0);
  const printed = r.stdout.trim().split('\n').map((l) => l.trim());
  expect(printed).toEqual(expected);
});
