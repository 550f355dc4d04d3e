// The npm package as a user gets it: `npm pack` (what "files" selects, and
// nothing of the tests, sources or source maps), `npm install -g` of the
// tarball into a temporary prefix, then every installed command by name from
// PATH (--version, --help) and every man page with `man -l` and through
// MANPATH. The pack skips "prepack" (npm test built dist/ already, and a
// rebuild would rewrite files other tests are running from).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, needRoot, lines } from '../helpers.js';

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
let tmp = '';
let prefix = '';
let packed: string[] = [];
let env: NodeJS.ProcessEnv = {};

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: opts.env ?? process.env, cwd: opts.cwd, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'ctinstall-'));
  const p = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: ROOT });
  assert.equal(p.status, 0, p.stderr);
  const info = JSON.parse(p.stdout)[0];
  packed = info.files.map((f: { path: string }) => f.path);
  prefix = path.join(tmp, 'prefix');
  // Dependencies as the lock file has them in npm's cache (npm ci filled it).
  const i = run('npm', ['install', '-g', '--prefix', prefix, path.join(tmp, info.filename), '--prefer-offline', '--no-audit', '--no-fund']);
  assert.equal(i.status, 0, i.stderr);
  env = { ...process.env, PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}`, MANPATH: path.join(prefix, 'share', 'man'), MANPAGER: 'cat', MANWIDTH: '80' };
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test('the tarball holds the commands, the built library and the man pages, and no tests, sources or source maps', () => {
  for (const name of Object.keys(pkg.bin)) assert.ok(packed.includes(pkg.bin[name]), `${pkg.bin[name]} not packed`);
  for (const page of pkg.man) assert.ok(packed.includes(page), `${page} not packed`);
  assert.ok(packed.includes('dist/src/cli.js'));
  assert.ok(packed.includes('dist/src/index.d.ts'), 'type declarations for library users');
  const stray = packed.filter((f) => /^(dist\/test|test|src|bench|scripts(?!\/native\.js$)|packaging|man\/.*\.md$)|\.map$|\.ts$(?<!\.d\.ts$)/.test(f));
  assert.deepEqual(stray, []);
  // The addon: its prebuilt binary, and its sources with the script that
  // builds them where the binary does not fit (npm runs it at install).
  for (const f of ['native/prebuilds/linux-x64/ctpipe.glibc.node', 'native/prebuilds/linux-x64/ctpipe_bpf.glibc.node', 'native/binding.gyp', 'native/src/addon.c', 'native/bpf/sightings.bpf.c', 'native/bpf/embed.js', 'scripts/native.js']) assert.ok(packed.includes(f), `${f} not packed`);
  assert.ok(!packed.some((f) => f.startsWith('native/build/')), 'no local build output');
});

test('the installed package loads its prebuilt addon, with no compiler needed', () => {
  const lib = path.join(prefix, 'lib', 'node_modules', 'ctpipe');
  assert.ok(!existsSync(path.join(lib, 'native', 'build')), 'npm install built nothing: the prebuilt binary fits');
  const r = run(process.execPath, ['--input-type=module', '-e', `import { loadAddon } from ${JSON.stringify(path.join(lib, 'dist', 'src', 'native', 'addon.js'))}; console.log(loadAddon().path)`]);
  assert.equal(r.stdout.trim(), path.join(lib, 'native', 'prebuilds', 'linux-x64', 'ctpipe.glibc.node'));
});

test('every installed command runs by name from PATH: --version and --help', () => {
  for (const name of Object.keys(pkg.bin)) {
    assert.ok(existsSync(path.join(prefix, 'bin', name)), `${name} not installed`);
    const v = run(name, ['--version'], { env });
    assert.equal(v.status, 0, `${name} --version: ${v.stderr}`);
    assert.equal(v.stdout.trim(), pkg.version, name);
    const h = run(name, ['--help'], { env });
    assert.equal(h.status, 0, `${name} --help: ${h.stderr}`);
    assert.match(h.stdout, new RegExp(`Usage: ${name}\\b`), name);
  }
});

test('every man page renders with man -l, and man finds it through MANPATH', () => {
  for (const page of pkg.man as string[]) {
    const base = path.basename(page);
    const [title, section] = [base.replace(/\.\d$/, ''), base.split('.').pop()!];
    const file = path.join(prefix, 'share', 'man', `man${section}`, base);
    const l = run('man', ['-l', file], { env });
    assert.equal(l.status, 0, `man -l ${file}: ${l.stderr}`);
    assert.match(l.stdout, new RegExp(`^NAME\\n\\s+${title.replace(/[-]/g, '\\-')}`, 'm'), base);
    const w = run('man', ['-w', section, title], { env });
    assert.equal(w.status, 0, w.stderr);
    assert.ok(w.stdout.trim().startsWith(prefix), `man found ${w.stdout.trim()} for ${title}(${section})`);
  }
});

test('the installed ct-doctor loads the native netlink module and talks to the kernel', { skip: needRoot() }, () => {
  const d = run('ct-doctor', ['--json'], { env });
  const ct = lines(d.stdout).find((c) => c.check === 'ctnetlink');
  assert.equal(ct?.status, 'pass', d.stdout + d.stderr);
});
