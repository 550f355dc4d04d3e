// The bin shims: run as a user who may not enter a directory on the
// command's path (a checkout in root's home, run with setpriv or sudo -u from
// inside it), a command says so in one line instead of Node's "Cannot find
// module" stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, copyFileSync, symlinkSync, chmodSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { installForOthers } from '../installed.js';

const root = typeof process.getuid === 'function' && process.getuid() === 0;
if (!root && process.env.CI === 'true') throw new Error('the shim test runs a command as nobody through setpriv: it needs root, and CI=true forbids skipping');

test('a directory closed to the user: one line naming the file and the user, exit 1', { skip: root ? false : 'needs root (setpriv to nobody)' }, () => {
  const top = mkdtempSync(path.join(tmpdir(), 'ct-shim-'));
  try {
    // top (0711) / repo (0700): bin/ is reachable from inside repo, not by its full path.
    const repo = path.join(top, 'repo');
    mkdirSync(path.join(repo, 'bin'), { recursive: true });
    // The package as installed for other users: the checkout itself may sit in a 0700 directory.
    const lib = installForOthers().lib;
    for (const f of readdirSync(path.join(lib, 'bin'))) copyFileSync(path.join(lib, 'bin', f), path.join(repo, 'bin', f));
    symlinkSync(path.join(lib, 'dist'), path.join(repo, 'dist'));
    symlinkSync(path.join(lib, 'node_modules'), path.join(repo, 'node_modules'));
    chmodSync(top, 0o711);
    chmodSync(path.join(repo, 'bin'), 0o755);
    for (const f of readdirSync(path.join(repo, 'bin'))) chmodSync(path.join(repo, 'bin', f), 0o755);
    const asNobody = (mode: number) => {
      chmodSync(repo, mode);
      return spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', './bin/ct-format', '--version'], { cwd: repo, encoding: 'utf8' });
    };
    const open = asNobody(0o755);
    assert.equal(open.status, 0, open.stderr);
    assert.match(open.stdout, /^\d+\.\d+\.\d+\n$/);
    const closed = asNobody(0o700);
    assert.equal(closed.status, 1);
    assert.equal(closed.stdout, '');
    assert.equal(closed.stderr, 'ct-format: cannot read ./bin/ct-format as user nobody: a directory on its path is closed to that user\n');
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
});
