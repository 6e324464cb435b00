// What a sandbox's new root holds, as bubblewrap arguments: read-only system directories
// (what a shell, coreutils and node need), a fresh /proc and /dev, a tmpfs /tmp, and only
// the host paths named; nothing else of the host.
import fs from 'node:fs';
import path from 'node:path';
import type { MountOp } from '../protocol/internal.js';

export type { MountOp };

const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32'];
/** /etc entries programs need to start, resolve libraries, trust CAs and name users. */
const ETC_ENTRIES = [
  'alternatives', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'ssl', 'ca-certificates', 'ca-certificates.conf',
  'nsswitch.conf', 'hosts', 'host.conf', 'gai.conf', 'localtime', 'mime.types', 'protocols', 'services', 'inputrc',
];

/** The read-only system part of every sandbox root (shared by executors and their shells). */
export function systemMounts(nodePath = process.execPath, etcOverrides: { passwd: string; group: string }): MountOp[] {
  const ops: MountOp[] = [];
  for (const dir of SYSTEM_DIRS) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(dir);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) ops.push({ op: 'symlink', target: fs.readlinkSync(dir), dest: dir });
    else if (st.isDirectory()) ops.push({ op: 'ro-bind', src: dir });
  }
  // A node installed outside /usr (nvm, /opt) is bound from its prefix.
  const prefix = path.dirname(path.dirname(fs.realpathSync(nodePath)));
  if (!SYSTEM_DIRS.some((d) => prefix === d || prefix.startsWith(`${d}/`))) ops.push({ op: 'ro-bind', src: prefix });
  for (const e of ETC_ENTRIES) if (fs.existsSync(`/etc/${e}`)) ops.push({ op: 'ro-bind', src: `/etc/${e}` });
  ops.push({ op: 'file', src: etcOverrides.passwd, dest: '/etc/passwd' }, { op: 'file', src: etcOverrides.group, dest: '/etc/group' });
  ops.push({ op: 'proc', dest: '/proc' }, { op: 'dev', dest: '/dev' });
  return ops;
}

/**
 * bubblewrap makes missing parents of a destination mode 0700, which an unprivileged
 * process can't cross: every parent is made 0755 explicitly first.
 */
export function bwrapMountArgs(ops: readonly MountOp[]): string[] {
  const args: string[] = [];
  const made = new Set<string>(['/']);
  for (const m of ops) {
    const dest = 'dest' in m && m.dest !== undefined ? m.dest : (m as { src: string }).src;
    const parts = dest.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const dir = `/${parts.slice(0, i).join('/')}`;
      if (made.has(dir)) continue;
      made.add(dir);
      args.push('--perms', '0755', '--dir', dir);
    }
    made.add(dest);
    switch (m.op) {
      case 'ro-bind':
      case 'bind':
      case 'dev-bind':
        args.push(`--${m.op}`, m.src, m.dest ?? m.src);
        break;
      case 'file':
        args.push('--ro-bind', m.src, m.dest);
        break;
      case 'symlink':
        args.push('--symlink', m.target, m.dest);
        break;
      case 'tmpfs':
      case 'proc':
      case 'dev':
        if (m.perms) args.push('--perms', m.perms);
        args.push(`--${m.op}`, m.dest);
        break;
    }
  }
  return args;
}

/** /etc/passwd and /etc/group naming only root, nobody and the sandbox users. */
export function writeEtcFiles(dir: string, users: { name: string; uid: number; gid: number }[]): { passwd: string; group: string } {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const passwd = path.join(dir, 'passwd');
  const group = path.join(dir, 'group');
  const pw = ['root:x:0:0:root:/root:/bin/bash', 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin', ...users.map((u) => `${u.name}:x:${u.uid}:${u.gid}::/tmp:/bin/bash`)];
  const gr = ['root:x:0:', 'nogroup:x:65534:', ...users.map((u) => `${u.name}:x:${u.gid}:`)];
  fs.writeFileSync(passwd, `${pw.join('\n')}\n`, { mode: 0o644 });
  fs.writeFileSync(group, `${gr.join('\n')}\n`, { mode: 0o644 });
  return { passwd, group };
}
