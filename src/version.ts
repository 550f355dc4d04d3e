// The package version, read once from package.json at the package root.
import { readFileSync } from 'node:fs';
import { packageUrl } from './paths.js';

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(packageUrl('package.json'), 'utf8'));
    return String(pkg.version);
  } catch {
    return '0.0.0';
  }
}

export const VERSION = readVersion();
