// src/proc/cgroup.ts: /proc/PID/cgroup text -> path, systemd unit, container.
// The strings follow what real hosts print (shapes seen in runc, containerd,
// CRI-O, Podman, LXC and Docker bug reports), with ids of our own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupPath, unitOf, containerOf } from '../../src/proc/cgroup.js';

const ID = 'd0b3604b67ac7930dd34ba3a796627e3e4717d12309e90a4afe3f38b6816ac98';
const ID2 = '5eed917563583925ffdbd40a64efb2aaffe58638e57add8becaf460fe74f5b1c';
const POD = 'a5c1f8d5-1919-434d-add7-4afaafdaef89';
const POD_ = POD.replace(/-/g, '_');

/** path, unit and container of one cgroup file's text. */
function parse(text: string) {
  const path = cgroupPath(text);
  return { path, unit: unitOf(path), container: containerOf(path) };
}

/** A cgroup v1 file: every controller at `path`, name=systemd at `systemd`. */
function v1(path: string, systemd = path, opts: { rdmaRoot?: boolean; unified?: string } = {}): string {
  const rows = [
    `12:rdma:${opts.rdmaRoot ? '/' : path}`,
    `11:pids:${path}`, `10:hugetlb:${path}`, `9:perf_event:${path}`, `8:net_cls,net_prio:${path}`,
    `7:freezer:${path}`, `6:devices:${path}`, `5:memory:${path}`, `4:blkio:${path}`,
    `3:cpu,cpuacct:${path}`, `2:cpuset:${path}`, `1:name=systemd:${systemd}`,
  ];
  if (opts.unified !== undefined) rows.push(`0::${opts.unified}`);
  return rows.join('\n') + '\n';
}

test('systemd services and scopes on cgroup v2', () => {
  assert.deepEqual(parse('0::/system.slice/nginx.service\n'), { path: '/system.slice/nginx.service', unit: 'nginx.service', container: null });
  assert.deepEqual(parse('0::/user.slice/user-1000.slice/session-3.scope\n'), { path: '/user.slice/user-1000.slice/session-3.scope', unit: 'session-3.scope', container: null });
  // A user's own units live inside user@UID.service: the inner unit is the one that runs the process.
  const app = parse('0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-4c1e7b4a-8f0b-4a8a-9b1e-0f3f2c6d0b1e.scope\n');
  assert.equal(app.unit, 'vte-spawn-4c1e7b4a-8f0b-4a8a-9b1e-0f3f2c6d0b1e.scope');
  assert.equal(app.container, null);
  assert.equal(parse('0::/user.slice/user-1000.slice/user@1000.service/app.slice/pipewire.service\n').unit, 'pipewire.service');
  assert.equal(parse('0::/user.slice/user-1000.slice/user@1000.service/init.scope\n').unit, 'init.scope');
  // A templated instance keeps its @ part.
  assert.equal(parse('0::/system.slice/system-getty.slice/getty@tty1.service\n').unit, 'getty@tty1.service');
  assert.equal(parse('0::/system.slice/systemd-journald.service\n').unit, 'systemd-journald.service');
  // Slices alone are not units that run anything; the root is no unit.
  assert.deepEqual(parse('0::/user.slice\n'), { path: '/user.slice', unit: null, container: null });
  assert.deepEqual(parse('0::/init.scope\n'), { path: '/init.scope', unit: 'init.scope', container: null });
  assert.deepEqual(parse('0::/\n'), { path: '/', unit: null, container: null });
});

test('Docker with the systemd cgroup driver', () => {
  const r = parse(`0::/system.slice/docker-${ID}.scope\n`);
  assert.equal(r.path, `/system.slice/docker-${ID}.scope`);
  assert.equal(r.unit, `docker-${ID}.scope`);
  assert.deepEqual(r.container, { id: ID, runtime: 'docker' });
  // cgroup v1 (CentOS 7 style): the same scope on every controller.
  assert.deepEqual(parse(v1(`/system.slice/docker-${ID}.scope`)).container, { id: ID, runtime: 'docker' });
  // The daemon itself is not in a container.
  assert.deepEqual(parse(v1('/system.slice/docker.service')), { path: '/system.slice/docker.service', unit: 'docker.service', container: null });
});

test('Docker with the cgroupfs driver', () => {
  assert.deepEqual(parse(`0::/docker/${ID}\n`), { path: `/docker/${ID}`, unit: null, container: { id: ID, runtime: 'docker' } });
  assert.deepEqual(parse(v1(`/docker/${ID}`)).container, { id: ID, runtime: 'docker' });
  // A process started in the container with its own systemd units below it.
  assert.deepEqual(parse(`0::/docker/${ID}/system.slice/cron.service\n`), { path: `/docker/${ID}/system.slice/cron.service`, unit: 'cron.service', container: { id: ID, runtime: 'docker' } });
});

test('containerd under Kubernetes, systemd driver (cgroup v2 and v1)', () => {
  const path = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_}.slice/cri-containerd-${ID}.scope`;
  const r = parse(`0::${path}\n`);
  assert.equal(r.path, path);
  assert.equal(r.unit, `cri-containerd-${ID}.scope`);
  assert.deepEqual(r.container, { id: ID, runtime: 'kubernetes', pod: POD });
  assert.deepEqual(parse(v1(path)).container, { id: ID, runtime: 'kubernetes', pod: POD });
  // Guaranteed QoS pods sit right under kubepods.slice.
  assert.deepEqual(containerOf(`/kubepods.slice/kubepods-pod${POD_}.slice/cri-containerd-${ID2}.scope`), { id: ID2, runtime: 'kubernetes', pod: POD });
  // Docker as the Kubernetes runtime, systemd driver.
  assert.deepEqual(containerOf(`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_}.slice/docker-${ID}.scope`), { id: ID, runtime: 'kubernetes', pod: POD });
  // containerd alone (nerdctl, systemd driver): not Kubernetes.
  assert.deepEqual(containerOf(`/system.slice/cri-containerd-${ID}.scope`), { id: ID, runtime: 'containerd' });
});

test('Kubernetes with the cgroupfs driver: /kubepods/<qos>/pod<uid>/<id>', () => {
  assert.deepEqual(parse(`0::/kubepods/besteffort/pod${POD}/${ID}\n`).container, { id: ID, runtime: 'kubernetes', pod: POD });
  assert.deepEqual(parse(v1(`/kubepods/burstable/pod${POD}/${ID2}`)).container, { id: ID2, runtime: 'kubernetes', pod: POD });
  // Guaranteed pods have no QoS level in the path.
  assert.deepEqual(containerOf(`/kubepods/pod${POD}/${ID}`), { id: ID, runtime: 'kubernetes', pod: POD });
  // The pod's own cgroup holds no container.
  assert.equal(containerOf(`/kubepods/besteffort/pod${POD}`), null);
});

test('Kubernetes static pods: a 32-hex config hash as the pod uid', () => {
  const hash = '8daa50c3a64c9ff60bb9eab7b44b56fd';
  assert.deepEqual(containerOf(`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${hash}.slice/cri-containerd-${ID}.scope`), { id: ID, runtime: 'kubernetes', pod: hash });
});

test('kind and other kubelets nested in a kubelet.slice', () => {
  const path = `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${POD_}.slice/cri-containerd-${ID}.scope`;
  assert.deepEqual(containerOf(path), { id: ID, runtime: 'kubernetes', pod: POD });
});

test('containerd on cgroup v1 with the systemd driver: "slice:cri-containerd:<id>" paths', () => {
  // What containerd writes when the systemd driver meets v1 controllers systemd does not manage.
  const odd = `/kubepods-besteffort-pod${POD_}.slice:cri-containerd:${ID}`;
  const text = [
    `11:perf_event:${odd}`,
    `10:blkio:/system.slice/containerd.service${odd}`,
    `9:cpuacct,cpu:/system.slice/containerd.service${odd}`,
    `8:cpuset:${odd}`,
    `7:hugetlb:${odd}`,
    `6:devices:/system.slice/containerd.service${odd}`,
    `5:pids:/system.slice/containerd.service${odd}`,
    `4:memory:/system.slice/containerd.service${odd}`,
    `3:freezer:${odd}`,
    `2:net_cls,net_prio:${odd}`,
    `1:name=systemd:/system.slice/containerd.service${odd}`,
    '',
  ].join('\n');
  const r = parse(text);
  assert.equal(r.path, `/system.slice/containerd.service${odd}`);
  assert.deepEqual(r.container, { id: ID, runtime: 'kubernetes', pod: POD });
  assert.deepEqual(containerOf(odd), { id: ID, runtime: 'kubernetes', pod: POD });
});

test('CRI-O', () => {
  const path = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_}.slice/crio-${ID2}.scope`;
  assert.deepEqual(parse(`0::${path}\n`).container, { id: ID2, runtime: 'kubernetes', pod: POD });
  assert.deepEqual(parse(v1(path)).container, { id: ID2, runtime: 'kubernetes', pod: POD });
  // Without Kubernetes (podman-less CRI-O tests, crictl runp): cri-o.
  assert.deepEqual(containerOf(`/machine.slice/crio-${ID2}.scope`), { id: ID2, runtime: 'cri-o' });
  // The conmon of a container is named after it.
  assert.deepEqual(containerOf(`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_}.slice/crio-conmon-${ID2}.scope`), { id: ID2, runtime: 'kubernetes', pod: POD });
});

test('Podman: root (machine.slice), rootless (user@UID.service), split cgroups', () => {
  const root = parse(`0::/machine.slice/libpod-${ID}.scope\n`);
  assert.deepEqual(root, { path: `/machine.slice/libpod-${ID}.scope`, unit: `libpod-${ID}.scope`, container: { id: ID, runtime: 'podman' } });
  // Podman 4+ puts the payload in a "container" child of the scope.
  const rootless = parse(`0::/user.slice/user-0.slice/user@0.service/machine.slice/libpod-${ID}.scope/container\n`);
  assert.deepEqual(rootless.container, { id: ID, runtime: 'podman' });
  assert.equal(rootless.unit, `libpod-${ID}.scope`);
  // v1 with systemd inside the container: name=systemd is the container's init.scope.
  const sysd = parse(v1(`/machine.slice/libpod-${ID}.scope`, `/machine.slice/libpod-${ID}.scope/init.scope`));
  assert.equal(sysd.path, `/machine.slice/libpod-${ID}.scope/init.scope`);
  assert.deepEqual(sysd.container, { id: ID, runtime: 'podman' });
});

test('LXC: lxc.payload.<name> (LXC 4+) and /lxc/<name> (older), the monitor is not the container', () => {
  const r = parse('0::/lxc.payload.web1/system.slice/nginx.service\n');
  assert.equal(r.unit, 'nginx.service');
  assert.deepEqual(r.container, { id: 'web1', runtime: 'lxc', name: 'web1' });
  assert.deepEqual(containerOf('/lxc.payload.db-2/init.scope'), { id: 'db-2', runtime: 'lxc', name: 'db-2' });
  assert.deepEqual(containerOf('/lxc.payload.web1/.lxc'), { id: 'web1', runtime: 'lxc', name: 'web1' });
  assert.deepEqual(parse(v1('/lxc/deloittedigi/system.slice/php7.1-fpm.service')).container, { id: 'deloittedigi', runtime: 'lxc', name: 'deloittedigi' });
  assert.equal(containerOf('/lxc.monitor.web1'), null);
});

test('cgroup v1 files: name=systemd is the path, whatever the line order', () => {
  const text = [
    '11:perf_event:/',
    '10:devices:/system.slice/sshd.service',
    '9:freezer:/',
    '8:memory:/system.slice/sshd.service',
    '1:name=systemd:/system.slice/sshd.service',
    '',
  ].join('\n');
  assert.deepEqual(parse(text), { path: '/system.slice/sshd.service', unit: 'sshd.service', container: null });
  // No name=systemd (an OpenRC host): the first controller that places the process, not a "/" one.
  const openrc = [
    '13:rdma:/',
    '12:pids:/docker/' + ID,
    '11:hugetlb:/docker/' + ID,
    '10:memory:/docker/' + ID,
    '',
  ].join('\n');
  assert.equal(cgroupPath(openrc), '/docker/' + ID);
  assert.deepEqual(containerOf(cgroupPath(openrc)), { id: ID, runtime: 'docker' });
  // The lines a non-containerised process on an OpenRC host shows: all roots.
  assert.equal(cgroupPath('3:cpu:/\n2:memory:/\n1:cpuset:/\n'), '/');
});

test('hybrid hosts: 0:: and v1 lines together', () => {
  // systemd hybrid mode: the unified line carries the same unit.
  const hybrid = v1('/system.slice/cron.service', '/system.slice/cron.service', { unified: '/system.slice/cron.service' });
  assert.equal(cgroupPath(hybrid), '/system.slice/cron.service');
  // The unified line is "/" while v1 controllers place the process: the v1 path says more.
  const docker = v1(`/docker/${ID}`, `/docker/${ID}`, { unified: '/' });
  assert.equal(cgroupPath(docker), `/docker/${ID}`);
  assert.deepEqual(parse(docker).container, { id: ID, runtime: 'docker' });
  // A v2-only host's single line wins over nothing.
  assert.equal(cgroupPath('0::/system.slice/ssh.service'), '/system.slice/ssh.service');
});

test('empty, garbage and partial files', () => {
  assert.equal(cgroupPath(''), null);
  assert.equal(cgroupPath('\n\n'), null);
  assert.equal(cgroupPath('garbage\nno colons here\n'), null);
  assert.equal(cgroupPath('one:colon\n'), null);
  assert.deepEqual(parse('\0\0\0'), { path: null, unit: null, container: null });
  // A path with colons in it is kept whole after the second colon.
  assert.equal(cgroupPath('0::/a:b:c\n'), '/a:b:c');
  assert.equal(unitOf(null), null);
  assert.equal(unitOf(''), null);
  assert.equal(containerOf(null), null);
  assert.equal(containerOf('/'), null);
  // Hex that is not a container id (too short, or not in a runtime's place).
  assert.equal(containerOf('/docker/abc123'), null);
  assert.equal(containerOf(`/system.slice/${ID}.service`), null);
  assert.equal(containerOf(`/user.slice/docker-${ID.slice(1)}.scope`), null);
});
