// The commands' bundles (scripts/bundle.js, dist/bundle/): bin/ct-x loads
// them, so the cli and e2e tests run them; here, that they are what
// dist/src builds now (not stale, none missing, none left over), and that
// the packed package ships them and its commands run from where npm
// installs them: --version, a fixture through ct-filter and ct-format, and
// worker threads (whose entry is tsc's output, found from the bundle).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, FIXTURES, runBin } from '../helpers.js';
import { installForOthers } from '../installed.js';

const PKG = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const COMMANDS = Object.keys(PKG.bin as Record<string, string>);
const BUNDLE = path.join(ROOT, 'dist', 'bundle');

test('dist/bundle/ is byte for byte what dist/src/ builds now: every command has one, nothing stale, nothing left over', async () => {
  const { buildBundles } = await import(pathToFileURL(path.join(ROOT, 'scripts', 'bundle.js')).href);
  const fresh: { path: string; text: string }[] = await buildBundles({ write: false });
  const names = fresh.map((f) => path.relative(BUNDLE, f.path)).sort();
  for (const c of COMMANDS) assert.ok(names.includes(`${c}.js`), `${c}.js is built`);
  assert.deepEqual(readdirSync(BUNDLE).sort(), names, 'dist/bundle/ holds the files a build makes, no others');
  for (const f of fresh) assert.ok(readFileSync(f.path, 'utf8') === f.text, `${path.relative(ROOT, f.path)} is stale: run npm run build`);
});

test('every bin loads its bundle, not dist/src', () => {
  for (const c of COMMANDS) {
    const text = readFileSync(path.join(ROOT, 'bin', c), 'utf8');
    assert.match(text, new RegExp(`from '\\.\\./dist/bundle/${c}\\.js'|import\\('\\.\\./dist/bundle/${c}\\.js'\\)`), c);
    assert.doesNotMatch(text, /dist\/src\//, c);
  }
});

/** Command `name` run from tsc's output (dist/src), as the bins ran it before the bundles. */
function runUnbundled(name: string, args: string[], env: NodeJS.ProcessEnv) {
  const code = `const { run } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist', 'src', 'cli.js')).href)});
const { command } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist', 'src', 'commands', `${name.slice(3)}.js`)).href)});
process.argv.splice(1, 0, ${JSON.stringify(name)});
run(command);`;
  return runBin(name, args, '', { prefix: [process.execPath, '--input-type=module', '-e', code], bin: () => '--', env });
}

test('every command from its bundle says what it says from dist/src: --help, --version and a usage error, in English and in German (yargs\' own words translated)', async () => {
  for (const lang of ['C', 'de_DE.UTF-8']) {
    const env = { ...process.env, LC_ALL: lang, LANG: lang };
    for (const c of COMMANDS) {
      const cases = lang === 'C' ? [['--help'], ['--version'], ['--no-such-option']] : [['--help'], ['--no-such-option']];
      const runs = await Promise.all(cases.map((args) => Promise.all([runBin(c, args, '', { env }), runUnbundled(c, args, env)])));
      runs.forEach(([b, u], i) => {
        const what = `${c} ${cases[i].join(' ')} (LC_ALL=${lang})`;
        assert.equal(b.stdout, u.stdout, what);
        assert.equal(b.stderr, u.stderr, what);
        assert.equal(b.code, u.code, what);
      });
    }
  }
  const de = await runBin('ct-filter', ['--help'], '', { env: { ...process.env, LC_ALL: 'de_DE.UTF-8' } });
  assert.match(de.stdout, /^Optionen:$/m, 'yargs found its translations');
});

test('the packed package: the same bundles, and every command answers --version from where npm installs it', async () => {
  const inst = installForOthers();
  const shipped = readdirSync(path.join(inst.lib, 'dist', 'bundle')).sort();
  assert.deepEqual(shipped, readdirSync(BUNDLE).sort());
  for (const f of shipped) assert.ok(readFileSync(path.join(inst.lib, 'dist', 'bundle', f)).equals(readFileSync(path.join(BUNDLE, f))), `${f} as packed`);
  for (const c of COMMANDS) {
    const r = await runBin(c, ['--version'], '', { bin: inst.bin });
    assert.equal(r.stderr, '', c);
    assert.equal(r.code, 0, c);
    assert.equal(r.stdout, `${PKG.version}\n`, c);
  }
  // yargs' translations, found from where the bundle is installed.
  const de = await runBin('ct-filter', ['--help'], '', { bin: inst.bin, env: { ...process.env, LC_ALL: 'de_DE.UTF-8' } });
  assert.equal(de.code, 0, de.stderr);
  assert.match(de.stdout, /^Optionen:$/m);
});

test('the packed package: a fixture through ct-filter and ct-format, one thread and worker threads, as from the checkout', async () => {
  const inst = installForOthers();
  const events = readFileSync(path.join(FIXTURES, 'filter', 'events.ndjson'), 'utf8');
  const want = readFileSync(path.join(FIXTURES, 'filter', 'tcp-dport-443.golden'), 'utf8');
  const filtered = await runBin('ct-filter', ['-p', 'tcp', '--dport', '443'], events, { bin: inst.bin });
  assert.equal(filtered.stderr, '');
  assert.equal(filtered.code, 0);
  assert.equal(filtered.stdout, want);
  const fmt = ['-p', 'kv'];
  const here = await runBin('ct-format', fmt, events);
  const there = await runBin('ct-format', fmt, events, { bin: inst.bin });
  assert.equal(here.code, 0, here.stderr);
  assert.equal(there.code, 0, there.stderr);
  assert.ok(here.stdout.length > 0);
  assert.equal(there.stdout, here.stdout);

  // Enough lines that --jobs 2 starts its workers (one read of 32 KiB or more).
  const tmp = mkdtempSync(path.join(tmpdir(), 'ct-bundle-'));
  try {
    const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
    const lines: string[] = [];
    for (const l of generate(20000, 5)) lines.push(l);
    const big = path.join(tmp, 'big.ndjson');
    writeFileSync(big, lines.join('\n') + '\n');
    const args = ['-p', 'udp', big];
    const single = await runBin('ct-filter', ['--jobs', '0', ...args], '', { bin: inst.bin });
    const workers = await runBin('ct-filter', ['--jobs', '2', ...args], '', { bin: inst.bin });
    assert.equal(single.code, 0, single.stderr);
    assert.equal(workers.code, 0, workers.stderr);
    assert.ok(single.stdout.length > 100_000);
    assert.equal(workers.stdout, single.stdout);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
