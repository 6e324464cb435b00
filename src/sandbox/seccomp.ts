// The seccomp deny-lists, compiled to BPF by libseccomp (its Python bindings, Debian
// `python3-seccomp`) once at start and cached under <home>/run/sandbox; bubblewrap loads a
// program from a file descriptor (`--seccomp FD`). Never hand-assembled.
//
// Two programs: `shell` for the commands sessions run (everything below refused), and
// `executor` for the executor process itself, which must still build each shell's nested
// sandbox, so it may create namespaces and mount inside them (it holds no capabilities
// outside its own user namespace). Everything else in the list is refused to both.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export type SeccompKind = 'executor' | 'shell';

/** Refused with EPERM to every confined process. */
export const DENIED_ALWAYS = [
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'bpf', 'keyctl', 'add_key', 'request_key', 'userfaultfd',
  'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'setns', 'kexec_load', 'kexec_file_load',
  'init_module', 'finit_module', 'delete_module', 'perf_event_open', 'open_by_handle_at', 'name_to_handle_at',
  'swapon', 'swapoff', 'reboot', 'acct', 'settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex', 'syslog',
  'quotactl', 'lookup_dcookie', 'iopl', 'ioperm', 'uselib', 'personality', 'fsopen', 'fsmount', 'fsconfig',
  'fspick', 'move_mount', 'open_tree', 'mount_setattr', 'vhangup', 'nfsservctl',
] as const;

/** Also refused to shells: what building a sandbox needs (namespaces, mounts, a new root). */
export const DENIED_TO_SHELLS = ['mount', 'umount2', 'pivot_root', 'chroot', 'unshare'] as const;

/** clone() flags that create namespaces (CLONE_NEWNS … CLONE_NEWTIME). */
const CLONE_NS_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080];

const GENERATOR = `
import errno, json, sys, seccomp
spec = json.loads(sys.argv[1])
f = seccomp.SyscallFilter(seccomp.ALLOW)
eperm = seccomp.ERRNO(errno.EPERM)
for name in spec["deny"]:
    try:
        f.add_rule(eperm, name)
    except (RuntimeError, ValueError, OSError):
        pass  # not a syscall on this architecture
for bit in spec["cloneFlags"]:
    f.add_rule(eperm, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, bit, bit))
if spec["cloneFlags"]:
    # clone3 passes its flags in memory, where a filter can't look: make callers fall back to clone.
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
with open(spec["out"], "wb") as out:
    f.export_bpf(out)
`;

export class SeccompUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SeccompUnavailable';
  }
}

/** A Python 3 that has the libseccomp bindings, or undefined. */
export function findSeccompPython(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(py, ['-c', 'import seccomp'], { stdio: 'ignore', timeout: 10_000 });
      return py;
    } catch {
      // Try the next one.
    }
  }
  return undefined;
}

export function deniedSyscalls(kind: SeccompKind): string[] {
  return kind === 'shell' ? [...DENIED_ALWAYS, ...DENIED_TO_SHELLS] : [...DENIED_ALWAYS];
}

/** Compiles both programs into `dir`; returns kind → file. Throws SeccompUnavailable. */
export function buildSeccompPrograms(dir: string, python = findSeccompPython()): Record<SeccompKind, string> {
  if (!python) throw new SeccompUnavailable('libseccomp\'s Python bindings are missing (apt-get install python3-seccomp)');
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const out = {} as Record<SeccompKind, string>;
  for (const kind of ['executor', 'shell'] as const) {
    const file = path.join(dir, `seccomp-${kind}.bpf`);
    const spec = { deny: deniedSyscalls(kind), cloneFlags: kind === 'shell' ? CLONE_NS_FLAGS : [], out: file };
    try {
      execFileSync(python, ['-c', GENERATOR, JSON.stringify(spec)], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
      throw new SeccompUnavailable(`could not compile the ${kind} seccomp filter: ${stderr || (err as Error).message}`, { cause: err });
    }
    fs.chmodSync(file, 0o644);
    out[kind] = file;
  }
  return out;
}
