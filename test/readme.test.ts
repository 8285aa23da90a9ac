// The README's API example runs as written: each console.log prints what the
// comment on its line says.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { DIST_INDEX, REPO, runChild } from './helpers/child.js';

test('README API example prints what its comments say', async () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const api = readme.slice(readme.indexOf('## API'));
  const block = /```js\n([\s\S]*?)```/.exec(api)?.[1];
  expect(block, 'an ```js block under ## API').toBeTruthy();
  const expected = block!
    .split('\n')
    .filter((l) => /^\s*console\.log\(/.test(l))
    .map((l) => l.slice(l.lastIndexOf('// ') + 3).trim());
  const source = block!.replace(/from 'wgarray'/, `from ${JSON.stringify(DIST_INDEX)}`);
  const r = await runChild(source);
  expect(r.stderr).not.toMatch(/Error/);
  expect(r.code).toBe(0);
  const printed = r.stdout.trim().split('\n').map((l) => l.trim());
  expect(printed).toEqual(expected);
});
