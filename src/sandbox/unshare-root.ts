// The fallback where bubblewrap is missing and we are root: util-linux `unshare` makes the
// namespaces, a small sh script (run as pid 1 of the new pid namespace, in the new mount
// namespace) builds the same new root from the same mount list and pivots into it, and
// `setpriv` drops to the environment's uid/gid with no groups, no capabilities and
// no_new_privs. What it lacks against bubblewrap: no seccomp filter (setpriv can't load one
// here) and no nested per-session sandboxes; both are reported as warnings.
import type { MountOp } from '../protocol/internal.js';

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/** The sh script that builds the root at $R from `ops`, pivots into it and execs "$@". */
export function unshareRootScript(ops: readonly MountOp[], opts: { chdir: string; network: boolean }): string {
  const lines = [
    'set -e',
    'mount --make-rprivate /',
    // One fixed, empty mount point (not in /tmp, where the sources of binds may live).
    'R=/run/continuum-root',
    'mkdir -p "$R"',
    'mount -t tmpfs -o mode=0755 continuum-root "$R"',
  ];
  for (const m of ops) {
    switch (m.op) {
      case 'ro-bind':
      case 'bind':
      case 'dev-bind': {
        const dest = `"$R"${q(m.dest ?? m.src)}`;
        lines.push(`if [ -d ${q(m.src)} ]; then mkdir -p ${dest}; else mkdir -p "$(dirname ${dest})"; touch ${dest}; fi`);
        lines.push(`mount --rbind ${q(m.src)} ${dest}`);
        if (m.op === 'ro-bind') lines.push(`mount -o remount,bind,ro ${dest}`);
        break;
      }
      case 'file':
        lines.push(`mkdir -p "$(dirname "$R"${q(m.dest)})"; touch "$R"${q(m.dest)}`, `mount --bind ${q(m.src)} "$R"${q(m.dest)}`, `mount -o remount,bind,ro "$R"${q(m.dest)}`);
        break;
      case 'symlink':
        lines.push(`mkdir -p "$(dirname "$R"${q(m.dest)})"; ln -s ${q(m.target)} "$R"${q(m.dest)}`);
        break;
      case 'tmpfs':
        lines.push(`mkdir -p "$R"${q(m.dest)}`, `mount -t tmpfs -o mode=${m.perms ?? '0755'} tmpfs "$R"${q(m.dest)}`);
        break;
      case 'proc':
        lines.push(`mkdir -p "$R"${q(m.dest)}`, `mount -t proc -o nosuid,nodev,noexec proc "$R"${q(m.dest)}`);
        break;
      case 'dev':
        lines.push(`mkdir -p "$R"${q(m.dest)}`, `mount -t tmpfs -o mode=0755,nosuid tmpfs "$R"${q(m.dest)}`);
        for (const d of DEVICES) lines.push(`touch "$R"${q(`${m.dest}/${d}`)}; mount --bind /dev/${d} "$R"${q(`${m.dest}/${d}`)}`);
        lines.push(`mkdir -p "$R"${q(`${m.dest}/shm`)}; mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R"${q(`${m.dest}/shm`)}`);
        break;
    }
  }
  if (opts.network) lines.push('ip link set lo up 2>/dev/null || true');
  lines.push(
    'cd "$R"',
    'mkdir .old-root',
    'pivot_root . .old-root',
    'umount -l /.old-root',
    'rmdir /.old-root',
    'mount -o remount,bind,ro /',
    `cd ${q(opts.chdir)}`,
    'exec "$@"',
  );
  return lines.join('\n');
}
