// Build the Debian package with Debian's own dpkg-deb: `npm run deb`
// (builds first) or `node scripts/deb.js [--out DIR]`. Prints the .deb's path.
//
//   /usr/lib/ctpipe/          what `npm pack` packs (bin/, dist/bundle/, dist/src/, package.json)
//                             and its production node_modules (npm ci --omit=dev)
//   /usr/lib/ctpipe/ctpipe-pipeline   the service's pipeline (packaging/)
//   /usr/bin/ct-*             links to /usr/lib/ctpipe/bin/ct-*
//   /usr/share/man/man1, man5 the man pages, gzipped
//   /lib/systemd/system/ctpipe.service, /etc/default/ctpipe (a conffile)
//   DEBIAN/postinst, prerm, postrm   the system user ctpipe; see packaging/debian/
//
// Depends: nodejs (>= 20). Debian 13 (trixie) has it; Debian 12 (bookworm)
// has only 18, so there Node.js 20 or later must come from elsewhere (the
// NodeSource packages, whose "nodejs" satisfies this), else apt refuses
// the package, naming the dependency.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const args = process.argv.slice(2);
const outIdx = args.indexOf('--out');
const outDir = path.resolve(outIdx >= 0 ? args[outIdx + 1] : root);

const run = (cmd, argv, opts = {}) => execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts });

if (!fs.existsSync(path.join(root, 'dist', 'src', 'cli.js')) || !fs.existsSync(path.join(root, 'dist', 'bundle', 'ct-events.js'))) {
  console.error('deb: dist/ is not built; run npm run build (npm run deb does)');
  process.exit(1);
}
const arch = run('dpkg', ['--print-architecture']).trim();
// Node's name for the architecture, for the prebuilt native modules kept.
const nodeArch = { amd64: 'x64', arm64: 'arm64', armhf: 'arm', i386: 'ia32' }[arch] ?? arch;
const version = pkg.version;
const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'ctpipe-deb-'));
const top = path.join(stage, `ctpipe_${version}_${arch}`);
const P = (...p) => path.join(top, ...p);
const mkdir = (d) => fs.mkdirSync(d, { recursive: true });

try {
  // 1. The npm package's own files, exactly as `npm pack` selects them.
  const lib = P('usr', 'lib', 'ctpipe');
  mkdir(lib);
  const tgz = run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', stage], { cwd: root }).trim().split('\n').pop();
  run('tar', ['-xzf', path.join(stage, tgz), '-C', lib, '--strip-components=1', '--no-same-owner']);
  fs.rmSync(path.join(stage, tgz));
  // 2. Production dependencies, as the lock file pins them.
  fs.copyFileSync(path.join(root, 'package-lock.json'), path.join(lib, 'package-lock.json'));
  run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: lib, stdio: ['ignore', 'ignore', 'inherit'] });
  fs.rmSync(path.join(lib, 'package-lock.json'));
  fs.rmSync(path.join(lib, 'node_modules', '.package-lock.json'), { force: true });
  // Prebuilt native modules for other architectures are dead weight here.
  for (const dir of findDirs(path.join(lib, 'node_modules'), 'prebuilds')) {
    for (const d of fs.readdirSync(dir)) if (d !== `linux-${nodeArch}`) fs.rmSync(path.join(dir, d), { recursive: true });
  }
  // 3. Commands on PATH, man pages where man(1) looks.
  mkdir(P('usr', 'bin'));
  for (const name of Object.keys(pkg.bin)) fs.symlinkSync(`../lib/ctpipe/bin/${name}`, P('usr', 'bin', name));
  for (const page of pkg.man) {
    const section = page.split('.').pop();
    mkdir(P('usr', 'share', 'man', `man${section}`));
    const gz = run('gzip', ['-9nc', path.join(lib, page)], { encoding: 'buffer' });
    fs.writeFileSync(P('usr', 'share', 'man', `man${section}`, path.basename(page) + '.gz'), gz);
  }
  fs.rmSync(path.join(lib, 'man'), { recursive: true });
  // 4. The service.
  copy(path.join(root, 'packaging', 'ctpipe-pipeline'), path.join(lib, 'ctpipe-pipeline'), 0o755);
  copy(path.join(root, 'packaging', 'ctpipe.service'), P('lib', 'systemd', 'system', 'ctpipe.service'), 0o644);
  copy(path.join(root, 'packaging', 'ctpipe.default'), P('etc', 'default', 'ctpipe'), 0o644);
  copy(path.join(root, 'packaging', 'debian', 'copyright'), P('usr', 'share', 'doc', 'ctpipe', 'copyright'), 0o644);
  copy(path.join(root, 'README.md'), P('usr', 'share', 'doc', 'ctpipe', 'README.md'), 0o644);
  fs.rmSync(path.join(lib, 'README.md'));
  normalizeModes(top);

  // 5. Control files.
  const installedKb = Number(run('du', ['-sk', '--apparent-size', top]).split('\t')[0]);
  mkdir(P('DEBIAN'));
  const control = [
    'Package: ctpipe',
    `Version: ${version}`,
    `Architecture: ${arch}`,
    'Maintainer: ctpipe authors <ctpipe@localhost>',
    `Installed-Size: ${installedKb}`,
    // libbpf1: only the addon's BPF part (ctpipe_bpf.node) is linked with
    // it, for ct-attribute's bpf method (see ct-attribute(1)); without it
    // every command works but that method. iproute2 depends on it too. No
    // bpftrace: the programs are the addon's own.
    'Depends: nodejs (>= 20), adduser (>= 3.134), bash (>= 5.1)',
    'Recommends: nftables, libbpf1',
    'Suggests: rsyslog | system-log-daemon',
    'Section: net',
    'Priority: optional',
    `Description: ${pkg.description.replace(/,.*$/, '')}`,
    ' ctpipe is a family of small commands joined by shell pipes, with one JSON',
    ' object per line in between: ct-events (conntrack events from the kernel),',
    ' ct-attribute (the process and user behind each flow), ct-filter, ct-format,',
    ' ct-syslog, ct-es and ct-doctor (checks what the machine needs).',
    ' .',
    ' The ctpipe service runs ct-events | ct-attribute | ct-filter | an output',
    ' as the unprivileged user ctpipe with three capabilities; its options are',
    ' in /etc/default/ctpipe. It is not started until enabled.',
    '',
  ].join('\n');
  fs.writeFileSync(P('DEBIAN', 'control'), control);
  fs.writeFileSync(P('DEBIAN', 'conffiles'), '/etc/default/ctpipe\n');
  for (const s of ['postinst', 'prerm', 'postrm']) copy(path.join(root, 'packaging', 'debian', s), P('DEBIAN', s), 0o755);
  fs.writeFileSync(P('DEBIAN', 'md5sums'), md5sums(top));
  fs.chmodSync(P('DEBIAN', 'md5sums'), 0o644);

  mkdir(outDir);
  const deb = path.join(outDir, `ctpipe_${version}_${arch}.deb`);
  run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', top, deb], { stdio: ['ignore', 'ignore', 'inherit'] });
  console.log(deb);
} finally {
  fs.rmSync(stage, { recursive: true, force: true });
}

function copy(from, to, mode) {
  mkdir(path.dirname(to));
  fs.copyFileSync(from, to);
  fs.chmodSync(to, mode);
}

function* findDirs(dir, name) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const p = path.join(dir, e.name);
    if (e.name === name) yield p;
    else yield* findDirs(p, name);
  }
}

/** Directories 0755, files 0644 unless executable (then 0755): whatever the umask or npm left. */
function normalizeModes(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) continue;
    if (e.isDirectory()) {
      fs.chmodSync(p, 0o755);
      normalizeModes(p);
    } else {
      fs.chmodSync(p, fs.statSync(p).mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

function md5sums(top) {
  const lines = [];
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(top, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (r === 'DEBIAN' || r.startsWith('etc/')) continue; // conffiles have their own sums
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) lines.push(`${createHash('md5').update(fs.readFileSync(path.join(top, r))).digest('hex')}  ${r}`);
    }
  };
  walk('');
  return lines.sort((a, b) => (a.slice(34) < b.slice(34) ? -1 : 1)).join('\n') + '\n';
}
