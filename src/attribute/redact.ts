// ct-attribute --redact: secrets taken out of command lines before they are
// written (process.cmdline and peer.cmdline), each replaced by `***`. The
// default patterns cover the usual ways a secret gets onto a command line:
//   name=value     names ending in password, passwd, pwd, secret, token, api_key,
//                  access_key, private_key, client_secret, auth,
//                  credentials, session (also as --name=value, PGPASSWORD=value
//                  in an environment assignment, and in a URL's query);
//   --name value   the same names as options, the secret the next argument;
//   headers        Authorization:, Proxy-Authorization:, X-Api-Key:, Cookie:
//                  (curl -H, wget --header), the value after the scheme;
//   URLs           https://user:secret@host: the password;
//   user:secret    after -u/--user (curl), --proxy-user.
// Users add their own regular expressions: each match is replaced, or only
// what its first group caught when it has groups. Pure functions and a
// cache; no I/O, no `process`. It never changes a process object: an owner
// with secrets gets a copy.
import type { ProcessInfo, ProcessRef } from '../event.js';

const MASK = '***';

/** Names whose value is a secret (matched case-insensitively, as a whole word, `-` and `_` alike). */
const SECRET_NAMES = 'pass|passwd|password|passphrase|pwd|secret|client[-_]?secret|token|access[-_]?token|refresh[-_]?token|auth[-_]?token|id[-_]?token|api[-_]?key|apikey|access[-_]?key|secret[-_]?key|private[-_]?key|auth|credentials?|session[-_]?(?:id|key|token)?';

/** `name=value` anywhere in an argument (also `--db-password=x`, `PGPASSWORD=x`, `?token=x&`): the value up to `&`, `;`, a space or the end. */
const ASSIGNED = new RegExp(`(?:^|[^a-z0-9])[a-z0-9_-]*?(?:${SECRET_NAMES})=([^&;\\s]+)`, 'gid');
/** A whole argument naming a secret option whose value is the next argument. */
const OPTION = new RegExp(`^--?(?:[a-z0-9]+[-_])*(?:${SECRET_NAMES})$`, 'i');
/** Header lines whose value is a credential: the value after an optional scheme word (Bearer, Basic, ...). */
const HEADER = /(?:^|[=\s'"])(?:proxy-)?authorization:\s*(?:[a-z]+\s+)?([^\s'"]+)|(?:^|[=\s'"])(?:x-api-key|x-auth-token|cookie|x-vault-token):\s*([^'"]+)/gid;
/** user:password@ in a URL. */
const USERINFO = /[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:([^/\s@]+)@/gid;
/** Options whose next argument is user:password. */
const USER_OPTION = /^(?:-u|--user|--proxy-user|-U)$/;

export interface Redactor {
  /** The command line with secrets replaced; the same array when nothing was. */
  argv(argv: string[]): string[];
}

/** Replace in `s` what each match of `re` caught in its first group (or the whole match). */
function mask(s: string, re: RegExp): string {
  re.lastIndex = 0;
  let out = '';
  let at = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const idx = (m as RegExpExecArray & { indices?: [number, number][] }).indices;
    // The first group that took part (patterns with alternatives have several).
    let span: [number, number] | undefined;
    if (idx) for (let g = 1; g < idx.length && !span; g++) if (idx[g]) span = idx[g];
    if (!span) span = [m.index, m.index + m[0].length];
    if (span[1] > span[0] && span[0] >= at) {
      out += s.slice(at, span[0]) + MASK;
      at = span[1];
    }
    if (m[0].length === 0) re.lastIndex++;
  }
  return at === 0 ? s : out + s.slice(at);
}

export class PatternError extends Error {}

/**
 * A redactor with the default patterns and `extra` (regular expression
 * sources, case-insensitive). Throws PatternError naming a bad one.
 */
export function compileRedactor(extra: string[] = []): Redactor {
  const user = extra.map((src) => {
    try {
      return new RegExp(src, 'gid');
    } catch (e) {
      throw new PatternError(`--redact-pattern '${src}': ${(e as Error).message}`);
    }
  });
  const one = (arg: string): string => {
    let s = mask(arg, ASSIGNED);
    s = mask(s, HEADER);
    s = mask(s, USERINFO);
    for (const re of user) s = mask(s, re);
    return s;
  };
  return {
    argv(argv) {
      let out: string[] | null = null;
      for (let i = 0; i < argv.length; i++) {
        let s = one(argv[i]);
        const prev = i > 0 ? argv[i - 1] : '';
        if (i > 0 && OPTION.test(prev) && !prev.includes('=')) s = MASK;
        else if (i > 0 && USER_OPTION.test(prev)) s = s.replace(/^([^:]*):.+$/, `$1:${MASK}`);
        if (s !== argv[i]) {
          out ??= argv.slice();
          out[i] = s;
        }
      }
      return out ?? argv;
    },
  };
}

/** The owners of an event with their command lines redacted: copies, made once per owner object. */
export class OwnerRedactor {
  private copies = new WeakMap<ProcessInfo, ProcessInfo>();
  constructor(private r: Redactor) {}

  private owner(p: ProcessInfo): ProcessInfo {
    let c = this.copies.get(p);
    if (c === undefined) {
      const argv = Array.isArray(p.cmdline) ? this.r.argv(p.cmdline) : p.cmdline;
      c = argv === p.cmdline ? p : { ...p, cmdline: argv };
      // The ancestors' command lines (ct-attribute --ancestry) too.
      const ref = (a: ProcessRef): ProcessRef => {
        const v = Array.isArray(a.cmdline) ? this.r.argv(a.cmdline) : a.cmdline;
        return v === a.cmdline ? a : { ...a, cmdline: v };
      };
      if (p.parent && typeof p.parent === 'object') {
        const parent = ref(p.parent);
        if (parent !== p.parent) c = { ...c, parent };
      }
      if (Array.isArray(p.ancestors)) {
        const ancestors = p.ancestors.map(ref);
        if (ancestors.some((x, i) => x !== p.ancestors![i])) c = { ...c, ancestors };
      }
      this.copies.set(p, c);
    }
    return c;
  }

  /** The event with `process` and `peer` replaced by redacted copies where they hold secrets (the event itself is changed). */
  event<T extends { process?: ProcessInfo; peer?: ProcessInfo }>(ev: T): T {
    if (ev.process && typeof ev.process === 'object') ev.process = this.owner(ev.process);
    if (ev.peer && typeof ev.peer === 'object') ev.peer = this.owner(ev.peer);
    return ev;
  }
}
