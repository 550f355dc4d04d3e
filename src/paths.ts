// Where this package's own files are, from the module that asks: the one
// place that knows the layout. Both ways the code runs keep modules two
// directories below the package root: tsc's output (dist/src/paths.js, which
// unit tests import) and each command's bundle (dist/bundle/ct-x.js, which
// bin/ct-x loads; esbuild leaves import.meta.url naming the bundle). A file
// that needs the root asks here rather than counting `..` from its own depth.
import { fileURLToPath } from 'node:url';

/** The package root (the directory of package.json), as a file: URL ending in '/'. */
export const ROOT_URL = new URL('../../', import.meta.url);

/** The package root as a path. */
export const ROOT = fileURLToPath(ROOT_URL);

/** A file of the package, by its path from the root ('native', 'dist/src/lines/worker.js'). */
export function packageUrl(rel: string): URL {
  return new URL(rel, ROOT_URL);
}
