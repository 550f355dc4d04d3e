// The Debian package, for real, on this machine: scripts/deb.js builds it,
// apt-get installs it, the installed commands and the service's pipeline run
// (as the package's user ctpipe, with the unit's capabilities, in a namespace
// of the test's own), then apt-get remove and purge leave nothing behind.
// The test changes the system while it runs (the package, the user ctpipe)
// and purges the package whatever happens. It refuses to touch a ctpipe
// package or user that was there before it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync, lstatSync, statSync, readdirSync, chmodSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, needRoot, makeNetns, delNetns, enableTracking, waitFor, lines, inCI } from '../helpers.js';

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

function sh(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, ...opts });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const installed = () => sh('dpkg-query', ['-W', '-f', '${Status}', 'ctpipe']).stdout.includes('install ok installed');
const userExists = () => sh('getent', ['passwd', 'ctpipe']).status === 0;

function preexisting(): string | false {
  const what = installed() ? 'a ctpipe package' : userExists() ? 'a user ctpipe' : null;
  if (!what) return false;
  const why = `${what} is already on this machine; this test would remove it (apt-get purge ctpipe first)`;
  if (inCI) throw new Error(why);
  return why;
}

const skip = needRoot() || preexisting();

/** A path dpkg listed that is still there and is not a directory (shared directories such as /usr/bin stay; /lib may be a link to one). */
function isLeftFile(f: string): boolean {
  let l;
  try { l = lstatSync(f); } catch { return false; }
  if (l.isDirectory()) return false;
  if (l.isSymbolicLink()) {
    try { return !statSync(f).isDirectory(); } catch { return true; }
  }
  return true;
}

test('npm run deb builds a package that installs, runs as user ctpipe, and removes and purges cleanly', { skip, timeout: 300_000 }, async () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'ctdeb-'));
  chmodSync(tmp, 0o755);
  let ns: string | null = null;
  try {
    const built = sh(process.execPath, [path.join(ROOT, 'scripts', 'deb.js'), '--out', tmp]);
    assert.equal(built.status, 0, built.stderr);
    const deb = built.stdout.trim();
    assert.equal(path.basename(deb), `ctpipe_${pkg.version}_${sh('dpkg', ['--print-architecture']).stdout.trim()}.deb`);
    const info = sh('dpkg-deb', ['-f', deb, 'Depends']).stdout;
    assert.match(info, /nodejs \(>= 20\)/);
    const recommends = sh('dpkg-deb', ['-f', deb, 'Recommends']).stdout;
    // Only the addon's BPF part is linked with libbpf: every command but ct-attribute's bpf method works without it.
    assert.doesNotMatch(info, /\blibbpf1\b/, 'libbpf1 is not a dependency');
    assert.match(recommends, /\blibbpf1\b/, 'the library the BPF part is linked with, recommended');
    assert.doesNotMatch(recommends, /bpftrace/, 'the BPF programs are the addon\'s own');
    // Production dependencies only.
    const contents = sh('dpkg-deb', ['-c', deb]).stdout;
    assert.match(contents, /\.\/usr\/lib\/ctpipe\/node_modules\/netlink\//);
    assert.match(contents, /\.\/usr\/lib\/ctpipe\/node_modules\/yargs\//);
    for (const dev of Object.keys(pkg.devDependencies)) assert.ok(!contents.includes(`./usr/lib/ctpipe/node_modules/${dev}/`), `devDependency ${dev} packaged`);
    assert.doesNotMatch(contents, /\.\/usr\/lib\/ctpipe\/(dist\/test\/|dist\/src\/.*\.map$|test\/|src\/)/m);

    const inst = sh('apt-get', ['install', '-y', '-q', `./${path.basename(deb)}`], { cwd: tmp });
    assert.equal(inst.status, 0, inst.stderr + inst.stdout);
    assert.ok(installed());
    const files = sh('dpkg', ['-L', 'ctpipe']).stdout.split('\n').filter(Boolean);

    // The system user: no login, no home.
    const pw = sh('getent', ['passwd', 'ctpipe']).stdout.trim().split(':');
    assert.ok(Number(pw[2]) < 1000, `uid ${pw[2]} is not a system uid`);
    assert.equal(pw[5], '/nonexistent');
    assert.match(pw[6], /nologin$/);
    assert.equal(sh('getent', ['group', 'ctpipe']).status, 0);

    // Every command on PATH, every man page where man finds it.
    for (const name of Object.keys(pkg.bin)) {
      assert.equal(lstatSync(`/usr/bin/${name}`).isSymbolicLink(), true, name);
      const v = sh(`/usr/bin/${name}`, ['--version']);
      assert.equal(v.status, 0, `${name}: ${v.stderr}`);
      assert.equal(v.stdout.trim(), pkg.version, name);
    }
    for (const page of pkg.man as string[]) {
      const base = path.basename(page);
      const section = base.split('.').pop()!;
      const w = sh('man', ['-w', section, base.replace(/\.\d$/, '')]);
      assert.equal(w.stdout.trim(), `/usr/share/man/man${section}/${base}.gz`, w.stderr);
    }
    assert.ok(existsSync('/usr/share/doc/ctpipe/copyright'));
    assert.match(sh('dpkg-query', ['-W', '-f', '${Conffiles}', 'ctpipe']).stdout, /\/etc\/default\/ctpipe /);
    // The installed unit, with its man pages now installed too.
    const v = sh('systemd-analyze', ['verify', '/lib/systemd/system/ctpipe.service']);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stderr.trim(), '');
    // The installed commands load their native module: ct-doctor asks ctnetlink.
    const doc = sh('/usr/bin/ct-doctor', ['--json']);
    const ct = lines(doc.stdout).find((c) => c.check === 'ctnetlink');
    assert.equal(ct?.status, 'pass', doc.stdout + doc.stderr);

    // The service's pipeline as the service runs it: user ctpipe, the unit's
    // ambient capabilities, options from /etc/default/ctpipe but the output.
    ns = makeNetns('ctdeb');
    enableTracking(ns);
    const outDir = path.join(tmp, 'out');
    sh('mkdir', ['-m', '0755', outDir]);
    chownSync(outDir, Number(pw[2]), Number(pw[3]));
    const out = path.join(outDir, 'events.ndjson');
    const caps = /^AmbientCapabilities=(.*)$/m.exec(readFileSync('/lib/systemd/system/ctpipe.service', 'utf8'))![1]
      .split(/\s+/).map((c) => '+' + c.replace(/^CAP_/, '').toLowerCase()).join(',');
    const defaults = sh('bash', ['-c', 'set -a; . /etc/default/ctpipe; echo "$CT_FILTER_OPTS"']).stdout.trim();
    assert.equal(defaults, '--no-self');
    const svc = spawn('ip', ['netns', 'exec', ns, 'setpriv', '--reuid=ctpipe', '--regid=ctpipe', '--init-groups', `--inh-caps=${caps}`, `--ambient-caps=${caps}`,
      'bash', '-c', 'set -a; . /etc/default/ctpipe; CT_OUTPUT="cat > $0"; exec /usr/lib/ctpipe/ctpipe-pipeline', out], {
      detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: '/usr/bin:/bin', TMPDIR: outDir },
    });
    let stderr = '';
    svc.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
    const closed = new Promise<number | null>((r) => svc.on('close', r));
    try {
      let sport = 0;
      for (let i = 0; i < 15 && !sport; i++) {
        const r = sh('ip', ['netns', 'exec', ns, '/usr/bin/python3', '-c', 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"x", ("127.0.0.1", 9)); print(s.getsockname()[1]); import time; time.sleep(0.5)']);
        const p = Number(r.stdout.trim());
        const seen = await waitFor(() => existsSync(out) && readFileSync(out, 'utf8').includes(`"sport":${p},`), 2000, 'event').then(() => true, () => false);
        if (seen) sport = p;
      }
      assert.ok(sport, `the installed pipeline captured nothing; stderr: ${stderr}`);
      const ev = lines(readFileSync(out, 'utf8')).find((e) => e.sport === sport);
      assert.equal(ev.attribution.ok, true, JSON.stringify(ev));
      assert.equal(ev.process.user, 'root');
    } finally {
      process.kill(svc.pid!, 'SIGTERM');
      const t = setTimeout(() => { try { process.kill(-svc.pid!, 'SIGKILL'); } catch { /* gone */ } }, 20000);
      const code = await closed;
      clearTimeout(t);
      assert.equal(code, 0, stderr);
    }

    // remove: the code goes, the configuration and the user stay.
    const rm = sh('apt-get', ['remove', '-y', '-q', 'ctpipe']);
    assert.equal(rm.status, 0, rm.stderr);
    assert.ok(!existsSync('/usr/bin/ct-events'));
    assert.ok(!existsSync('/usr/lib/ctpipe'));
    assert.ok(existsSync('/etc/default/ctpipe'));
    assert.ok(userExists());
    // purge: nothing is left, the user and its group neither.
    const purge = sh('apt-get', ['purge', '-y', '-q', 'ctpipe']);
    assert.equal(purge.status, 0, purge.stderr);
    assert.equal(installed(), false);
    assert.equal(sh('dpkg-query', ['-W', 'ctpipe']).status, 1, 'dpkg still knows ctpipe');
    const left = files.filter(isLeftFile);
    assert.deepEqual(left, []);
    for (const d of ['/usr/lib/ctpipe', '/usr/share/doc/ctpipe', '/etc/default/ctpipe', '/var/lib/ctpipe', '/run/ctpipe']) assert.ok(!existsSync(d), d);
    assert.equal(userExists(), false, 'user ctpipe left');
    assert.equal(sh('getent', ['group', 'ctpipe']).status, 2, 'group ctpipe left');
    assert.deepEqual(readdirSync('/usr/bin').filter((f) => f.startsWith('ct-') && Object.hasOwn(pkg.bin, f)), []);
  } finally {
    if (ns) delNetns(ns);
    if (installed() || sh('dpkg-query', ['-W', 'ctpipe']).status === 0) sh('apt-get', ['purge', '-y', '-q', 'ctpipe']);
    rmSync(tmp, { recursive: true, force: true });
  }
});
