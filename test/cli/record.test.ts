// bin/ct-record as a process: lines written unchanged, files 0600, usage
// errors, a directory that is not private, refusal to overwrite, rotation
// across a clock boundary (CT_RECORD_CLOCK), --gzip read back with zcat,
// SIGHUP as logrotate sends it (nocreate and create), SIGTERM, a full disk
// (a 256 KiB tmpfs this test mounts, filled mid-stream and then freed), and
// the README's reading-back pipeline into ct-filter and ct-format.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { runBin, BIN, ROOT, needRoot, waitFor, sleep } from '../helpers.js';

let tmp = '';
let n = 0;
let events: string[] = [];
before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrec-cli-'));
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  for (const l of generate(3000, 5)) events.push(l);
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function dir(mode = 0o700): string {
  const d = path.join(tmp, `d${++n}`);
  fs.mkdirSync(d);
  fs.chmodSync(d, mode);
  return d;
}
const read = (f: string) => fs.readFileSync(f, 'utf8');

/** ct-record with stdin left open: write to it, signal it, wait for it. */
function start(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(BIN('ct-record'), args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  let stdout = '';
  child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  child.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stdin!.on('error', () => {});
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, closed, err: () => stderr, out: () => stdout };
}

/** The path of the file ct-record (pid) has open for writing in `d`, if any. */
function openIn(pid: number, d: string): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const t = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (t.startsWith(d + '/')) out.push(t);
    } catch { /* closed meanwhile */ }
  }
  return out;
}

test('--help, --version, unknown flags, a missing or bad -f, bad -t and sizes', async () => {
  let r = await runBin('ct-record', ['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: ct-record -f PATTERN/);
  assert.match(r.stdout, /192\.168\.1\.100 --port 80/);
  r = await runBin('ct-record', ['--version']);
  assert.equal(r.code, 0);
  const d = dir();
  for (const [args, msg] of [
    [['-f', `${d}/x`, '--frobnicate'], /Unknown argument: frobnicate/],
    [[], /Missing required argument: file/],
    [['-f', `${d}/x-%Q`], /unknown conversion %Q/],
    [['-f', `${d}/x`, '--minutes', '0'], /--minutes '0' must be a whole number of minutes from 1 to 1440/],
    [['-f', `${d}/x`, '--minutes', '1441'], /from 1 to 1440/],
    [['-f', `${d}/x`, '--max-bytes', 'lots'], /--max-bytes 'lots' is not a size/],
    [['-f', `${d}/x`, '--buffer', '0'], /--buffer '0' is not a size/],
  ] as [string[], RegExp][]) {
    r = await runBin('ct-record', args, 'a\n');
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, msg);
    assert.match(r.stderr, /Try 'ct-record --help'\.\n$/);
  }
  assert.deepEqual(fs.readdirSync(d), [], 'no file made on a usage error');
});

test('lines pass unchanged (blank lines, CRLF, not JSON); a last line gets its newline; the file is 0600; nothing on stdout', async () => {
  const d = dir();
  const input = events.slice(0, 200).join('\n') + '\n\n  \r\nnot json at all\r\n' + events[200];
  const r = await runBin('ct-record', ['-f', `${d}/x-%Y%m%d.ndjson`], input);
  assert.deepEqual([r.code, r.stderr, r.stdout], [0, '', '']);
  const files = fs.readdirSync(d);
  assert.equal(files.length, 1);
  assert.match(files[0], /^x-\d{8}\.ndjson$/);
  assert.equal(read(path.join(d, files[0])), input + '\n');
  assert.equal(fs.statSync(path.join(d, files[0])).mode & 0o7777, 0o600);
});

test('stdin redirected from a file (read in large chunks): the same bytes', async () => {
  const d = dir();
  const input = events.join('\n') + '\n' + events.slice(0, 1000).join('\n');
  fs.writeFileSync(path.join(tmp, 'saved.ndjson'), input);
  const r = spawnSync('sh', ['-c', `"${BIN('ct-record')}" -f "${d}/x.ndjson" < "${path.join(tmp, 'saved.ndjson')}"`], { encoding: 'utf8' });
  assert.deepEqual([r.status, r.stderr], [0, '']);
  assert.ok(input.length > 3 << 20);
  assert.equal(read(`${d}/x.ndjson`), input + '\n');
});

test('empty input: an empty file, exit 0', async () => {
  const d = dir();
  const r = await runBin('ct-record', ['-f', `${d}/x.ndjson`], '');
  assert.deepEqual([r.code, r.stderr], [0, '']);
  assert.equal(read(`${d}/x.ndjson`), '');
});

test('an over-long line is named and skipped; the others are written; exit 1', async () => {
  const d = dir();
  const r = await runBin('ct-record', ['-f', `${d}/x.ndjson`], `a\n${'x'.repeat((1 << 20) + 10)}\nb\n`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^ct-record: stdin:2: line longer than 1048576 bytes \(\d+\+?\), skipped\nct-record: 1 over-long line skipped\n$/);
  assert.equal(read(`${d}/x.ndjson`), 'a\nb\n');
});

test('a directory that is not private is refused before anything is read or created: exit 1, one line', async () => {
  for (const mode of [0o755, 0o770, 0o1777, 0o701 | 0o040]) {
    const d = dir(mode);
    const r = await runBin('ct-record', ['-f', `${d}/x.ndjson`], 'a\n');
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^ct-record: ${d}: directory is not private \\(mode ${mode.toString(8).padStart(4, '0')}\\): .*chmod go-rw\\)\\n$`));
    assert.deepEqual(fs.readdirSync(d), []);
  }
  // Search permission alone is allowed.
  const d = dir(0o711);
  const r = await runBin('ct-record', ['-f', `${d}/x.ndjson`], 'a\n');
  assert.deepEqual([r.code, r.stderr], [0, '']);
});

test('never overwrites: an existing file keeps its content; the next free name is used and named on stderr', async () => {
  const d = dir();
  fs.writeFileSync(`${d}/ct.ndjson`, 'precious\n');
  fs.writeFileSync(`${d}/ct.1.ndjson`, 'precious too\n');
  fs.symlinkSync('/etc/passwd', `${d}/ct.2.ndjson`);
  const r = await runBin('ct-record', ['-f', `${d}/ct.ndjson`], 'new\n');
  assert.equal(r.code, 0);
  assert.equal(r.stderr, `ct-record: ${d}/ct.ndjson exists; writing to ${d}/ct.3.ndjson\n`);
  assert.equal(read(`${d}/ct.ndjson`), 'precious\n');
  assert.equal(read(`${d}/ct.1.ndjson`), 'precious too\n');
  assert.ok(fs.lstatSync(`${d}/ct.2.ndjson`).isSymbolicLink());
  assert.equal(read(`${d}/ct.3.ndjson`), 'new\n');
});

test('rotation across a clock boundary (CT_RECORD_CLOCK): lines before it in the first file, after it in the next', async () => {
  const d = dir();
  const p = start(['-f', `${d}/tcp-%Y%m%d-%H%M%S.ndjson`, '--minutes', '1', '--utc'], { CT_RECORD_CLOCK: '2026-11-23T07:59:58Z' });
  const before = events.slice(0, 100).join('\n') + '\n';
  const afterB = events.slice(100, 300).join('\n') + '\n';
  p.child.stdin!.write(before);
  await waitFor(() => fs.existsSync(`${d}/tcp-20261123-080000.ndjson`), 15000, 'the 08:00 file');
  p.child.stdin!.end(afterB);
  assert.equal(await p.closed, 0, p.err());
  assert.equal(p.err(), '');
  assert.deepEqual(fs.readdirSync(d).sort(), ['tcp-20261123-075958.ndjson', 'tcp-20261123-080000.ndjson']);
  assert.equal(read(`${d}/tcp-20261123-075958.ndjson`), before);
  assert.equal(read(`${d}/tcp-20261123-080000.ndjson`), afterB);
});

test('--gzip: the closed file is compressed, the uncompressed one removed; zcat gives the input back byte for byte', async () => {
  const d = dir();
  const input = events.join('\n') + '\n';
  const r = await runBin('ct-record', ['-f', `${d}/g.ndjson`, '--gzip', '--max-bytes', '400k'], input);
  assert.deepEqual([r.code, r.stderr.replace(/^.*exists; writing to.*\n/gm, '')], [0, '']);
  const files = fs.readdirSync(d);
  assert.ok(files.length >= 3 && files.every((f) => f.endsWith('.ndjson.gz')), files.join(' '));
  for (const f of files) assert.equal(fs.statSync(path.join(d, f)).mode & 0o7777, 0o600);
  // In write order: ls -v (sort -V) puts g.ndjson.gz before g.1.ndjson.gz ... g.10.ndjson.gz.
  const order = execFileSync('sh', ['-c', 'ls -v'], { cwd: d, encoding: 'utf8' }).trim().split('\n');
  const z = spawnSync('zcat', order, { cwd: d, maxBuffer: 1 << 26 });
  assert.equal(z.status, 0, String(z.stderr));
  assert.equal(z.stdout.toString(), input);
});

test('SIGHUP, logrotate nocreate: the file moved away keeps what came before; a new file gets what comes after', async () => {
  const d = dir();
  const p = start(['-f', `${d}/ct.ndjson`]);
  p.child.stdin!.write('a1\na2\n');
  await waitFor(() => fs.existsSync(`${d}/ct.ndjson`) && read(`${d}/ct.ndjson`) === 'a1\na2\n', 10000, 'the first lines');
  fs.renameSync(`${d}/ct.ndjson`, `${d}/ct.ndjson.1`);
  p.child.kill('SIGHUP');
  await waitFor(() => fs.existsSync(`${d}/ct.ndjson`), 10000, 'the new file');
  p.child.stdin!.end('b1\n');
  assert.equal(await p.closed, 0, p.err());
  assert.equal(p.err(), '');
  assert.equal(read(`${d}/ct.ndjson.1`), 'a1\na2\n');
  assert.equal(read(`${d}/ct.ndjson`), 'b1\n');
  assert.equal(fs.statSync(`${d}/ct.ndjson`).mode & 0o777, 0o600);
});

test('SIGHUP, logrotate create: the empty file logrotate made is written to, with its mode', async () => {
  const d = dir();
  const p = start(['-f', `${d}/ct.ndjson`]);
  p.child.stdin!.write('a1\n');
  await waitFor(() => fs.existsSync(`${d}/ct.ndjson`) && read(`${d}/ct.ndjson`) === 'a1\n', 10000, 'the first line');
  fs.renameSync(`${d}/ct.ndjson`, `${d}/ct.ndjson.1`);
  fs.writeFileSync(`${d}/ct.ndjson`, '');
  fs.chmodSync(`${d}/ct.ndjson`, 0o640);
  p.child.kill('SIGHUP');
  await waitFor(() => openIn(p.child.pid!, d).includes(`${d}/ct.ndjson`), 10000, 'ct-record to open the new ct.ndjson');
  p.child.stdin!.end('b1\nb2\n');
  assert.equal(await p.closed, 0, p.err());
  assert.equal(p.err(), '');
  assert.deepEqual(fs.readdirSync(d).sort(), ['ct.ndjson', 'ct.ndjson.1']);
  assert.equal(read(`${d}/ct.ndjson.1`), 'a1\n');
  assert.equal(read(`${d}/ct.ndjson`), 'b1\nb2\n');
  assert.equal(fs.statSync(`${d}/ct.ndjson`).mode & 0o777, 0o640);
});

test('SIGTERM: everything read is written (an unfinished last line with a newline added, said on stderr), exit 0', async () => {
  const d = dir();
  const p = start(['-f', `${d}/ct.ndjson`]);
  const whole = events.slice(0, 50).join('\n') + '\n';
  p.child.stdin!.write(whole + '{"half":');
  await waitFor(() => fs.existsSync(`${d}/ct.ndjson`) && read(`${d}/ct.ndjson`) === whole, 10000, 'the lines');
  p.child.kill('SIGTERM');
  assert.equal(await p.closed, 0, p.err());
  assert.equal(read(`${d}/ct.ndjson`), whole + '{"half":\n');
  assert.equal(p.err(), 'ct-record: stdin: the last line read (8 bytes) had no newline yet when reading stopped; written with one added\n');
});

test('reading back: zcat the files into ct-filter --net 192.168.1.100 --port 80 and ct-format, as the README shows', async () => {
  // Events to and from 192.168.1.100 (one of the generator's remote hosts renamed), some on port 80.
  const input = events.map((l) => l.replaceAll('"140.82.121.4"', '"192.168.1.100"')).join('\n') + '\n';
  const d = dir();
  // Compressed files from an earlier run (several in one second: numbered names), and the uncompressed file of a later one.
  const half = input.indexOf('\n', input.length >> 1) + 1;
  const args = ['-f', `${d}/tcp-%Y%m%d-%H%M%S.ndjson`, '--utc'];
  let r = await runBin('ct-record', [...args, '--gzip', '--max-bytes', '500k'], input.slice(0, half), { env: { ...process.env, CT_RECORD_CLOCK: '2026-11-23T07:00:00Z' } });
  assert.equal(r.code, 0, r.stderr);
  r = await runBin('ct-record', args, input.slice(half), { env: { ...process.env, CT_RECORD_CLOCK: '2026-11-23T08:00:00Z' } });
  assert.deepEqual([r.code, r.stderr], [0, '']);
  const names = execFileSync('sh', ['-c', 'ls -v'], { cwd: d, encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(names.slice(0, 2), ['tcp-20261123-070000.ndjson.gz', 'tcp-20261123-070000.1.ndjson.gz']);
  assert.equal(names[names.length - 1], 'tcp-20261123-080000.ndjson');
  // The README's line, with the directory and the commands' paths.
  const pipeline = spawnSync('bash', ['-o', 'pipefail', '-c', `zcat -f $(ls -v ${d}/tcp-*.ndjson*) | ct-filter --net 192.168.1.100 --port 80 | ct-format --preset ctrecorder`], {
    encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, PATH: `${path.join(ROOT, 'bin')}:${process.env.PATH}` },
  });
  assert.equal(pipeline.status, 0, pipeline.stderr);
  // The same selection made here: any address of the flow (original or reply) and any port.
  const want = input.split('\n').filter((l) => {
    if (!l) return false;
    const e = JSON.parse(l);
    if (!['new', 'update', 'destroy'].includes(e.event)) return false;
    const addrs = [e.src, e.dst, e.reply?.src, e.reply?.dst];
    const ports = [e.sport, e.dport, e.reply?.sport, e.reply?.dport];
    return addrs.includes('192.168.1.100') && ports.includes(80);
  });
  assert.ok(want.length >= 10, `the test data has such flows (${want.length})`);
  const direct = spawnSync(BIN('ct-format'), ['--preset', 'ctrecorder'], { input: want.join('\n') + '\n', encoding: 'utf8' });
  assert.equal(pipeline.stdout, direct.stdout);
  assert.equal(pipeline.stdout.split('\n').length - 1, want.length);
});

test('a full disk mid-stream (256 KiB tmpfs): no partial line in any file, reading stops, nothing lost once space returns', { skip: needRoot() }, async () => {
  const mnt = path.join(tmp, 'tmpfs');
  fs.mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', mnt]);
  let child: ChildProcess | null = null;
  let wfd = -1;
  try {
    // 232 KB of lines of different lengths (the file system holds 256 KiB): 8 KB before the disk
    // fills, then more than ct-record can take in without writing: the bound (4 KiB) and one read
    // (64 KiB), what Node's stream reads ahead (64 KiB) and the FIFO (64 KiB).
    const lines = Array.from({ length: 1460 }, (_, i) => JSON.stringify({ ts: '2026-11-23T07:41:33.965873Z', event: 'new', n: i, pad: 'x'.repeat(40 + ((i * 37) % 101)) }));
    const input = lines.join('\n') + '\n';
    const cut = input.indexOf('\n', 8000) + 1;
    assert.ok(input.length - cut > 200 * 1024 && input.length < 236 * 1024, `${input.length}`);
    // stdin is a FIFO (64 KiB) fed without blocking, so that the test sees exactly what ct-record takes in.
    const fifo = path.join(tmp, 'in.fifo');
    execFileSync('mkfifo', ['-m', '0600', fifo]);
    const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    wfd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    child = spawn(BIN('ct-record'), ['-f', `${mnt}/rec-%Y%m%d-%H%M%S.ndjson`, '--buffer', '4k'], { stdio: [rfd, 'ignore', 'pipe'] });
    fs.closeSync(rfd);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (x) => (stderr += x));
    const closed = new Promise<number | null>((resolve) => child!.on('close', (code) => resolve(code)));
    const data = Buffer.from(input);
    let fed = 0;
    /** Write up to `limit` in atomic 4 KiB pieces until the FIFO is full; true when all is in. */
    const feed = (limit: number) => {
      while (fed < limit) {
        try {
          fed += fs.writeSync(wfd, data, fed, Math.min(4096, limit - fed));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return false;
          throw e;
        }
      }
      return true;
    };
    const recFiles = () => fs.readdirSync(mnt).filter((f) => f.startsWith('rec-')).sort();
    const written = () => recFiles().map((f) => read(path.join(mnt, f))).join('');

    await waitFor(() => feed(cut), 10000, 'the first lines fed');
    await waitFor(() => written().length === cut, 10000, 'the first lines on disk');
    // Fill the file system.
    const filler = fs.openSync(path.join(mnt, 'filler'), 'w');
    const block = Buffer.alloc(4096, 0x41);
    try {
      for (;;) fs.writeSync(filler, block);
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
    }
    fs.closeSync(filler);

    const feeding = setInterval(() => feed(data.length), 5);
    try {
      await waitFor(() => /ENOSPC/.test(stderr), 10000, 'the disk-full report');
      assert.match(stderr, /^ct-record: .*rec-\d{8}-\d{6}\.ndjson: ENOSPC: no space left on device; holding lines in memory \(up to 4096 bytes, then reading stops\) and retrying\n$/);
      // No partial line: every file holds whole input lines, in order.
      const sofar = written();
      assert.ok(sofar.length >= cut && sofar.endsWith('\n') && input.startsWith(sofar), `whole lines only (${sofar.length} bytes)`);
      for (const f of recFiles()) {
        const t = read(path.join(mnt, f));
        assert.ok(t === '' || t.endsWith('\n'), `${f} ends with a whole line`);
      }
      // Back-pressure: ct-record stops reading; the FIFO stays full and the rest of the input waits.
      let last = -1;
      await waitFor(() => {
        const full = !feed(data.length);
        const still = full && fed === last;
        last = fed;
        return still;
      }, 10000, 'ct-record to stop reading');
      await sleep(300);
      assert.equal(feed(data.length), false, 'the FIFO is still full');
      assert.equal(fed, last, 'nothing more was taken');
      const inMemory = fed - written().length - 65536;
      assert.ok(fed < data.length, `input left over (${data.length - fed} bytes)`);
      // The bound, plus the read that reached it and what Node's stream reads ahead (64 KiB each).
      assert.ok(inMemory <= 4096 + 2 * 65536, `held in memory: ${inMemory} bytes`);
      assert.ok(written() === sofar || (written().endsWith('\n') && input.startsWith(written())));

      // Space returns.
      fs.unlinkSync(path.join(mnt, 'filler'));
      await waitFor(() => /writing again after [\d.]+ s; nothing was lost/.test(stderr), 15000, 'the recovery report');
      await waitFor(() => fed === data.length, 15000, 'all input fed');
    } finally {
      clearInterval(feeding);
    }
    fs.closeSync(wfd);
    wfd = -1;
    assert.equal(await closed, 0, stderr);
    child = null;
    assert.equal(stderr.split('\n').length - 1, 2, stderr);
    assert.equal(written(), input, 'every line, once, in order');
  } finally {
    if (child) child.kill('SIGKILL');
    if (wfd >= 0) fs.closeSync(wfd);
    spawnSync('umount', ['-l', mnt]);
  }
});
