// The native addon's build steps (native/): `node scripts/native.js CMD`.
//   install   npm's install step: nothing when a prebuilt binary loads here,
//             else build from source (needs a C compiler, make, python3)
//   build     build from source into native/build/Release/: ctpipe.node
//             (sockets, setns) and ctpipe_bpf.node (the bpf method, the
//             only one linked with libbpf)
//   prebuild  build from source and refresh the committed prebuilt binaries
//             native/prebuilds/<platform>-<arch>/<name>.<libc>.node and
//             their record (sources' and binaries' sha256) beside them
//   hash      print the sha256 of the native sources (what the record holds)
// node-gyp is npm's own (npm_config_node_gyp) or one on PATH; the Node.js
// headers come from this node's installation when it has them (Debian's and
// NodeSource's packages do), so no download is needed.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const native = path.join(root, 'native');
/** The addons: ctpipe.node, and the BPF part, ctpipe_bpf.node (needs libbpf.so.1 to load). */
export const NAMES = ['ctpipe', 'ctpipe_bpf'];
const builtOf = (name) => path.join(native, 'build', 'Release', `${name}.node`);
const built = builtOf('ctpipe');

function libc() {
  const r = process.report?.getReport?.();
  return r && r.header && r.header.glibcVersionRuntime ? 'glibc' : 'musl';
}
const prebuiltDir = path.join(native, 'prebuilds', `${process.platform}-${process.arch}`);
const prebuiltOf = (name) => path.join(prebuiltDir, `${name}.${libc()}.node`);
const prebuilt = prebuiltOf('ctpipe');
const record = path.join(prebuiltDir, 'ctpipe.sha256');

/** Files whose content the binary is built from: everything under native/ but build outputs and prebuilds. */
export function sourceFiles() {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      const rel = path.relative(native, p).split(path.sep).join('/');
      if (rel === 'build' || rel === 'prebuilds' || rel === 'node_modules') continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(rel);
    }
  };
  walk(native);
  return out.sort();
}

export function sourcesHash() {
  const h = createHash('sha256');
  for (const rel of sourceFiles()) {
    h.update(rel + '\0');
    h.update(fs.readFileSync(path.join(native, rel)));
    h.update('\0');
  }
  return h.digest('hex');
}

const sha256 = (file) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

function nodeGyp() {
  if (process.env.npm_config_node_gyp && fs.existsSync(process.env.npm_config_node_gyp)) return [process.execPath, process.env.npm_config_node_gyp];
  // npm's bundled node-gyp, beside the npm that runs this node.
  const guess = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (fs.existsSync(guess)) return [process.execPath, guess];
  return ['node-gyp'];
}

function build() {
  const args = ['rebuild'];
  // The headers of this node, when installed with it (no download).
  const prefix = path.dirname(path.dirname(process.execPath));
  if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  const [cmd, ...pre] = nodeGyp();
  const r = spawnSync(cmd, [...pre, ...args], { cwd: native, stdio: 'inherit' });
  if (r.error || r.status !== 0) {
    console.error(`ctpipe: building the native addon from source failed${r.error ? `: ${r.error.message}` : ''} (needs a C compiler, make and python3: apt-get install build-essential python3)`);
    process.exit(1);
  }
}

function loads(file) {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { encoding: 'utf8' });
  return r.status === 0;
}

const cmd = process.argv[2];
if (cmd === 'hash') {
  console.log(sourcesHash());
} else if (cmd === 'build') {
  build();
} else if (cmd === 'install') {
  // ctpipe.node decides: ctpipe_bpf.node may not load for want of libbpf.so.1,
  // which building it here would not change (ct-attribute says so at start).
  if (fs.existsSync(built) && loads(built)) process.exit(0);
  if (fs.existsSync(prebuilt) && loads(prebuilt)) process.exit(0);
  console.error(`ctpipe: no prebuilt native addon fits ${process.platform}-${process.arch} ${libc()}; building it from source`);
  build();
} else if (cmd === 'prebuild') {
  build();
  fs.mkdirSync(prebuiltDir, { recursive: true });
  let text = `${sourcesHash()}  sources\n`;
  for (const name of NAMES) {
    const out = prebuiltOf(name);
    fs.copyFileSync(builtOf(name), out);
    execFileSync('strip', ['--strip-unneeded', out]);
    text += `${sha256(out)}  ${path.basename(out)}\n`;
  }
  fs.writeFileSync(record, text);
  console.log(`${NAMES.map((n) => path.relative(root, prebuiltOf(n))).join(', ')} and ${path.relative(root, record)} refreshed`);
} else if (import.meta.url === `file://${process.argv[1]}`) {
  console.error('usage: node scripts/native.js install|build|prebuild|hash');
  process.exit(2);
}
