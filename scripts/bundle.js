// Bundle each command (package.json "bin") into one ES module,
// dist/bundle/<cmd>.js, from tsc's output in dist/src: what bin/<cmd> loads.
// Node pays for every module file it resolves, reads and links; one file per
// command instead of a hundred small ones takes about a third off each
// command's start-up CPU (bench/startup.bench.js). The bundles sit two
// directories below the package root, as dist/src/*.js do, so src/paths.ts
// finds the root from either (import.meta.url names the bundle).
//
// Left outside the bundle: `netlink` (node-gyp-build finds its .node file
// from its own __dirname) and the worker threads' entry points
// (dist/src/lines/worker.js, dist/src/es/worker.js), which load as tsc built
// them. CommonJS dependencies require Node's built-in modules, which an ES
// module bundle has no `require` for: the banner makes one.
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
/** Where the bundles go. */
export const OUT = path.join(root, 'dist', 'bundle');

// ct-attribute's bin loads the bpf method's early start (and the capability
// check it needs) before the command: a second entry point, built together
// with the command and split, so that both share one copy of early.ts's state.
const EARLY = {
  'ct-attribute': "export { startEarly, wantedEarly, testSwitches } from './src/attribute/sources/bpf/early.js';\n" +
    "export { NEEDS, missingCaps, ownEffectiveCaps } from './src/caps.js';\n",
};

// src/ takes only RawNetlinkSocket from `netlink`, whose index loads every
// protocol the package knows (rtnetlink, genl, nl80211, WireGuard): 57 ms of
// CPU as an ES import (Node's CommonJS export scan included) against 3 ms
// for require() of the one file that defines the socket. The bundles take
// that file alone, by require(); a name src/ imported from `netlink` that
// is not listed here fails the build ("No matching export").
const NETLINK_RAW = ['RawNetlinkSocket'];
const netlinkRaw = {
  name: 'netlink-raw',
  setup(b) {
    b.onResolve({ filter: /^netlink$/ }, () => ({ path: 'netlink', namespace: 'netlink-raw' }));
    b.onLoad({ filter: /.*/, namespace: 'netlink-raw' }, () => ({
      contents: `const raw = require('netlink/dist/raw.js');\n${NETLINK_RAW.map((n) => `export const ${n} = raw.${n};\n`).join('')}`,
      loader: 'js',
      resolveDir: root,
    }));
  },
};

// string-width (yargs' and cliui's, for laying out --help) builds an
// Intl.Segmenter and Unicode property regular expressions (\\p{RGI_Emoji})
// when it is imported: about 10 ms of every start-up, for a function that
// only --help calls. Its module body runs on the first call instead; the
// function and its results are the same. A string-width whose shape is not
// the one expected (its imports on single lines, then one default-exported
// function) is bundled as it is, with a warning.
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/](?:.*[\\/])?string-width[\\/]index\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      const lines = text.split('\n');
      const imports = lines.filter((l) => l.startsWith('import '));
      const body = lines.filter((l) => !l.startsWith('import ')).join('\n');
      const exports = body.match(/^export .*/gm) ?? [];
      if (!imports.every((l) => /;\s*$/.test(l)) || exports.length !== 1 || !/^export default function stringWidth\(/.test(exports[0])) {
        return { contents: text, loader: 'js', warnings: [{ text: 'string-width left eager: not the shape scripts/bundle.js expects' }] };
      }
      const contents = `${imports.join('\n')}\nlet impl;\nexport default function stringWidth(...args) {\n  return (impl ??= load())(...args);\n}\nfunction load() {\n${body.replace(/^export default function stringWidth\(/m, 'function stringWidth(')}\nreturn stringWidth;\n}\n`;
      return { contents, loader: 'js' };
    });
  },
};

// yargs finds its message translations (locales/de.json, ...: "Optionen:"
// under LANG=de_DE) three directories above its platform shim's own file;
// from a bundle that path leads nowhere, and every locale would get English.
// The bundles ask Node for the installed yargs' directory instead (yargs
// stays a runtime dependency), and keep yargs' own path when that fails.
const yargsLocales = {
  name: 'yargs-locales',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      const from = "directory: resolve(__dirname, '../../../locales'),";
      if (!text.includes(from)) throw new Error(`${args.path}: no "${from}" to point at the installed yargs' locales; see scripts/bundle.js`);
      const to = "directory: (() => { try { return resolve(dirname(require.resolve('yargs/package.json')), 'locales'); } catch { return resolve(__dirname, '../../../locales'); } })(),";
      return { contents: text.replace(from, to), loader: 'js' };
    });
  },
};

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['netlink/dist/raw.js'],
  plugins: [netlinkRaw, lazyStringWidth, yargsLocales],
  banner: { js: "import { createRequire as __ctpipeRequire } from 'node:module';\nconst require = __ctpipeRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
};

/** The entry points of command `cmd`'s build: name -> module text, from dist/. */
function entries(cmd) {
  const main = `export { run } from './src/cli.js';\nexport { command } from './src/commands/${cmd.replace(/^ct-/, '')}.js';\n`;
  return EARLY[cmd] ? { [cmd]: main, [`${cmd}-early`]: EARLY[cmd] } : { [cmd]: main };
}

/** Entry points as modules of their own namespace: nothing written beside tsc's output. */
function entryModules(files) {
  return {
    name: 'entries',
    setup(b) {
      b.onResolve({ filter: /^ctpipe-entry:/ }, (a) => ({ path: a.path.slice('ctpipe-entry:'.length), namespace: 'ctpipe-entry' }));
      b.onLoad({ filter: /.*/, namespace: 'ctpipe-entry' }, (a) => ({ contents: files[a.path], loader: 'js', resolveDir: path.join(root, 'dist') }));
    },
  };
}

/**
 * Build every command's bundle from dist/ (tsc's output). write: false
 * returns the files ({ path, text }) without writing them, so that a test
 * can tell whether dist/bundle/ is what dist/src/ makes now.
 */
export async function buildBundles({ write = true } = {}) {
  const results = await Promise.all(Object.keys(pkg.bin).map((cmd) => {
    const files = entries(cmd);
    return build({
      ...common,
      plugins: [...common.plugins, entryModules(files)],
      entryPoints: Object.keys(files).map((name) => ({ in: `ctpipe-entry:${name}`, out: name })),
      // Only ct-attribute has two entries: their shared modules go into one chunk.
      splitting: Object.keys(files).length > 1,
      chunkNames: `${cmd}-[hash]`,
      outdir: OUT,
      write,
    });
  }));
  return results.flatMap((r) => (r.outputFiles ?? []).map((f) => ({ path: f.path, text: f.text })));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  rmSync(OUT, { recursive: true, force: true });
  await buildBundles();
}
