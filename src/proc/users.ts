// User and group names from the system's databases (/etc/passwd, /etc/group),
// re-read when the files change; a uid or gid with no name keeps its number.
// Names from NSS sources other than files (LDAP, sssd) are looked up once
// each with getent(1) and cached, hits and misses alike.
import { readFileSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export function parseColonDb(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#' || line[0] === '+' || line[0] === '-') continue;
    const f = line.split(':');
    if (f.length < 3) continue;
    // Digits only: Number('') is 0, and an empty field must not name root.
    if (!/^\d+$/.test(f[2])) continue;
    const id = Number(f[2]);
    if (!out.has(id)) out.set(id, f[0]);
  }
  return out;
}

class Db {
  private map = new Map<number, string>();
  private mtime = -1;
  private checked = 0;
  private nss = new Map<number, string | null>();
  constructor(private file: string, private db: string, private useGetent: boolean) {}

  name(id: number): string | undefined {
    const now = Date.now();
    if (now - this.checked > 2000) {
      this.checked = now;
      try {
        const m = statSync(this.file).mtimeMs;
        if (m !== this.mtime) {
          this.mtime = m;
          this.map = parseColonDb(readFileSync(this.file, 'utf8'));
        }
      } catch { /* no file: numbers only */ }
    }
    const n = this.map.get(id);
    if (n !== undefined) return n;
    if (!this.useGetent) return undefined;
    if (this.nss.has(id)) return this.nss.get(id) ?? undefined;
    let found: string | null = null;
    try {
      found = execFileSync('getent', [this.db, String(id)], { encoding: 'utf8', timeout: 1000, stdio: ['ignore', 'pipe', 'ignore'] }).split(':')[0] || null;
    } catch { /* unknown id */ }
    if (this.nss.size > 10000) this.nss.clear();
    this.nss.set(id, found);
    return found ?? undefined;
  }
}

export class Users {
  private users: Db;
  private groups: Db;
  constructor(opts: { etc?: string; getent?: boolean } = {}) {
    const etc = opts.etc ?? '/etc';
    this.users = new Db(`${etc}/passwd`, 'passwd', opts.getent ?? true);
    this.groups = new Db(`${etc}/group`, 'group', opts.getent ?? true);
  }
  user(uid: number): string | undefined { return this.users.name(uid); }
  group(gid: number): string | undefined { return this.groups.name(gid); }
}

/** A uid's name, or its number when it has none (or no database is at hand). */
export function userName(users: Users | undefined, uid: number): string {
  return users?.user(uid) ?? String(uid);
}

/** A gid's name, or its number when it has none. */
export function groupName(users: Users | undefined, gid: number): string {
  return users?.group(gid) ?? String(gid);
}
