// The package installed where any user can read it, for tests that run its
// commands as another user (setpriv --reuid): the checkout may sit in a
// directory only its owner can enter (root's home is 0700 on Debian), and
// then nobody could not even load bin/. `npm pack` (what "files" ships)
// and `npm install -g` of the tarball into a fresh prefix under the
// system's temporary directory, made readable by all; once per test file.
// The addon built here from source, when there is one, goes with it, so that
// these tests run what CI built (see src/native/addon.ts). Removed at exit.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from './helpers.js';

export interface Installed {
  /** The prefix: commands in bin/, the package in lib/node_modules/ctpipe. */
  prefix: string;
  /** An installed command's path. */
  bin(name: string): string;
  /** The installed package's directory (packaging/ is not shipped: tests copy what they need). */
  lib: string;
  remove(): void;
}

let installed: Installed | null = null;

function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd, timeout: 180_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

export function installForOthers(): Installed {
  if (installed) return installed;
  const dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-installed-'));
  chmodSync(dir, 0o755);
  // --ignore-scripts: no "prepack" rebuild, which would rewrite dist/ under other tests.
  const info = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT))[0];
  const prefix = path.join(dir, 'prefix');
  run('npm', ['install', '-g', '--prefix', prefix, path.join(dir, info.filename), '--prefer-offline', '--no-audit', '--no-fund']);
  const lib = path.join(prefix, 'lib', 'node_modules', 'ctpipe');
  // The addons built here (ctpipe.node, and the BPF part ctpipe_bpf.node), so that what runs is what was built.
  for (const name of ['ctpipe.node', 'ctpipe_bpf.node']) {
    const built = path.join(ROOT, 'native', 'build', 'Release', name);
    if (!existsSync(built)) continue;
    mkdirSync(path.join(lib, 'native', 'build', 'Release'), { recursive: true });
    copyFileSync(built, path.join(lib, 'native', 'build', 'Release', name));
  }
  run('chmod', ['-R', 'a+rX', dir]);
  // Removed when the test file's process ends.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  installed = {
    prefix,
    lib,
    bin: (name) => path.join(prefix, 'bin', name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
  return installed;
}
