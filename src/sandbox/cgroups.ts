// Per-executor cgroups, v2 (unified) or v1 (one hierarchy per controller), created only as
// children of the cgroup the supervisor itself runs in, and removed when the process is gone.
// Every path goes through a root directory (`/sys/fs/cgroup` on a real host), so the unit
// tests run the same code against a fake cgroupfs in a temporary folder.
import fs from 'node:fs';
import path from 'node:path';

export interface CgroupLimits {
  /** Bytes; swap is not allowed on top. */
  memory?: number;
  /** Share of one core. */
  cpu?: number;
  pids?: number;
}

export interface CgroupHost {
  version: 1 | 2;
  /** `/sys/fs/cgroup` normally. */
  root: string;
  /** Where this process sits, per controller ('' = the v2 unified path); from /proc/self/cgroup. */
  own: Record<string, string>;
}

/** One live cgroup (a directory per controller on v1, one directory on v2). */
export interface Cgroup {
  readonly name: string;
  /** Files a launcher writes its own pid into, to enter the cgroup before it execs. */
  readonly procsFiles: string[];
  /** controller → directory; v2 has the single key "unified". */
  readonly dirs: Record<string, string>;
  /** How many processes the kernel OOM-killed in it so far. */
  oomKills(): number;
  /**
   * Its memory is (nearly) all used now, or it hit its limit or had a process OOM-killed since
   * the last time this was asked: the kernel is reclaiming within it, which can stall every
   * process in it for seconds, until the OOM killer picks one and a while after. (While it
   * reclaims, usage swings below the limit: the counts are what show it.)
   */
  atMemoryLimit(): boolean;
  /** Kills every process in it (v2 cgroup.kill; v1 freeze, SIGKILL each, thaw). */
  kill(): void;
  /** Kills what is left and removes the directories. Idempotent. */
  remove(): Promise<void>;
}

const PERIOD_US = 100_000;
/** Within this much of its limit, a cgroup counts as at its limit (the kernel reclaims before it gets there). */
const NEAR_LIMIT_BYTES = 4 * 1024 * 1024;

/** A file's number; NaN when it is missing, unreadable or not a number ("max"). */
function readNumber(file: string): number {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim());
  } catch {
    return Number.NaN;
  }
}

function nearLimit(usage: number, limit: number): boolean {
  return Number.isFinite(usage) && Number.isFinite(limit) && usage >= limit - NEAR_LIMIT_BYTES;
}

/**
 * `atMemoryLimit` of one cgroup, from its usage, its limit and a count that rises with the
 * limit's hits and OOM kills (v1 does not count every hit in failcnt: on this kernel it stayed
 * 0 through an OOM kill).
 */
function memoryLimitWatch(usage: () => number, limit: () => number, hits: () => number): () => boolean {
  let seen = hits();
  return () => {
    const now = hits();
    const rose = now > seen;
    seen = now;
    return rose || nearLimit(usage(), limit());
  };
}
const V1_CONTROLLERS = ['memory', 'cpu', 'pids', 'freezer'] as const;

export class CgroupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CgroupError';
  }
}

/** Reads the host's cgroup layout; undefined when there is none we can use. */
export function detectCgroups(root = '/sys/fs/cgroup', selfCgroup = '/proc/self/cgroup'): CgroupHost | undefined {
  let lines: string[];
  try {
    lines = fs.readFileSync(selfCgroup, 'utf8').trim().split('\n');
  } catch {
    return undefined;
  }
  const own: Record<string, string> = {};
  for (const line of lines) {
    const [, controllers, p] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (controllers === undefined || p === undefined) continue;
    if (controllers === '') own[''] = p;
    else for (const c of controllers.split(',')) own[c] = p;
  }
  if (fs.existsSync(path.join(root, 'cgroup.controllers'))) return own[''] !== undefined ? { version: 2, root, own } : undefined;
  if (V1_CONTROLLERS.some((c) => own[c] !== undefined && fs.existsSync(path.join(root, c)))) return { version: 1, root, own };
  return undefined;
}

function write(file: string, value: string): void {
  try {
    fs.writeFileSync(file, value);
  } catch (err) {
    throw new CgroupError(`could not write "${value}" to ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function readProcs(dir: string): number[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function killAll(dir: string): void {
  for (const pid of readProcs(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Exited meanwhile.
    }
  }
}

/** Kills a cgroup's processes; a cgroup already removed has none left to kill. */
function killUnlessGone(kill: () => void): void {
  try {
    kill();
  } catch {
    // Already removed.
  }
}

async function rmdirWhenEmpty(dir: string): Promise<void> {
  // A killed process leaves its cgroup only once its parent has reaped it: retry briefly.
  for (let i = 0; i < 50; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw new CgroupError(`could not remove cgroup ${dir}: ${(err as Error).message}`, { cause: err });
      killAll(dir);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new CgroupError(`cgroup ${dir} still has processes after they were killed`);
}

/** Counter `key` in a flat-keyed cgroup file ("oom_kill 3"); 0 when missing. */
function counter(file: string, key: string): number {
  try {
    const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(fs.readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export abstract class CgroupManager {
  constructor(readonly host: CgroupHost, readonly prefix: string) {}

  static for(host: CgroupHost, prefix: string): CgroupManager {
    return host.version === 2 ? new CgroupV2(host, prefix) : new CgroupV1(host, prefix);
  }

  /** Which limits this host can enforce (controllers present and delegated to us). */
  abstract supports(): { memory: boolean; cpu: boolean; pids: boolean; kill: boolean };
  /** Creates `<prefix><suffix>` with the limits applied. */
  abstract create(suffix: string, limits: CgroupLimits): Cgroup;
  /** Parent directories our cgroups are made in (per controller). */
  protected abstract parents(): string[];

  /** Makes the supervisor's cgroup ready to have children with limits (v2 only). */
  prepare(_pids?: number[]): void {}

  /** Removes cgroups of ours left by a previous run that died (same prefix = same home). */
  async removeStale(): Promise<string[]> {
    const removed: string[] = [];
    for (const parent of this.parents()) {
      let entries: string[] = [];
      try {
        entries = fs.readdirSync(parent).filter((e) => e.startsWith(this.prefix) && e !== `${this.prefix}supervisor`);
      } catch {
        continue;
      }
      for (const e of entries) {
        const dir = path.join(parent, e);
        if (fs.existsSync(path.join(dir, 'cgroup.kill'))) write(path.join(dir, 'cgroup.kill'), '1');
        else killAll(dir);
        await rmdirWhenEmpty(dir);
        removed.push(dir);
      }
    }
    return removed;
  }
}

class CgroupV1 extends CgroupManager {
  private dirOf(controller: string): string | undefined {
    const own = this.host.own[controller];
    const mount = path.join(this.host.root, controller);
    if (own === undefined || !fs.existsSync(mount)) return undefined;
    return path.join(mount, own);
  }

  supports() {
    const has = (c: string) => this.dirOf(c) !== undefined;
    return { memory: has('memory'), cpu: has('cpu'), pids: has('pids'), kill: has('freezer') };
  }

  protected parents(): string[] {
    return V1_CONTROLLERS.flatMap((c) => this.dirOf(c) ?? []);
  }

  create(suffix: string, limits: CgroupLimits): Cgroup {
    const name = this.prefix + suffix;
    const dirs: Record<string, string> = {};
    const settings: [string, string, string][] = [];
    /** Files only some kernels have. */
    const optional = new Set(['memory.memsw.limit_in_bytes', 'memory.swappiness']);
    if (limits.memory !== undefined) {
      settings.push(['memory', 'memory.limit_in_bytes', String(limits.memory)]);
      // memsw exists only with swap accounting; without it, stop the kernel swapping us.
      settings.push(['memory', 'memory.memsw.limit_in_bytes', String(limits.memory)]);
      settings.push(['memory', 'memory.swappiness', '0']);
    }
    if (limits.cpu !== undefined) {
      settings.push(['cpu', 'cpu.cfs_period_us', String(PERIOD_US)]);
      settings.push(['cpu', 'cpu.cfs_quota_us', String(Math.max(1000, Math.round(limits.cpu * PERIOD_US)))]);
    }
    if (limits.pids !== undefined) settings.push(['pids', 'pids.max', String(limits.pids)]);
    const wanted = new Set<string>(['freezer', ...settings.map((s) => s[0])]);
    const made: string[] = [];
    try {
      for (const c of wanted) {
        const parent = this.dirOf(c);
        if (!parent) continue;
        const dir = path.join(parent, name);
        fs.mkdirSync(dir);
        made.push(dir);
        dirs[c] = dir;
      }
      for (const [c, file, value] of settings) {
        if (!dirs[c]) continue;
        const f = path.join(dirs[c]!, file);
        if (optional.has(file) && !fs.existsSync(f)) continue;
        write(f, value);
      }
    } catch (err) {
      for (const d of made) fs.rmSync(d, { recursive: false, force: true });
      throw err instanceof CgroupError ? err : new CgroupError(`could not create cgroup ${name}: ${(err as Error).message}`, { cause: err });
    }
    const memoryDir = dirs.memory;
    const freezer = dirs.freezer;
    let removed = false;
    const kill = () => {
      // Frozen tasks can't fork while we kill them one by one; the kill lands on thaw.
      if (freezer) write(path.join(freezer, 'freezer.state'), 'FROZEN');
      for (const d of Object.values(dirs)) killAll(d);
      if (freezer) write(path.join(freezer, 'freezer.state'), 'THAWED');
    };
    return {
      name,
      dirs,
      procsFiles: Object.values(dirs).map((d) => path.join(d, 'cgroup.procs')),
      oomKills: () => (memoryDir ? counter(path.join(memoryDir, 'memory.oom_control'), 'oom_kill') : 0),
      atMemoryLimit: memoryDir === undefined
        ? () => false
        : memoryLimitWatch(
            () => readNumber(path.join(memoryDir, 'memory.usage_in_bytes')),
            () => readNumber(path.join(memoryDir, 'memory.limit_in_bytes')),
            () => (readNumber(path.join(memoryDir, 'memory.failcnt')) || 0) + counter(path.join(memoryDir, 'memory.oom_control'), 'oom_kill'),
          ),
      kill: () => killUnlessGone(kill),
      remove: async () => {
        if (removed) return;
        removed = true;
        for (const d of Object.values(dirs)) if (fs.existsSync(d)) killAll(d);
        await Promise.all(Object.values(dirs).map(rmdirWhenEmpty));
      },
    };
  }
}

class CgroupV2 extends CgroupManager {
  /** Where our cgroups go: the supervisor's own cgroup (after it moved itself into a leaf). */
  private get base(): string {
    return path.join(this.host.root, this.host.own['']!);
  }

  private controllers(): Set<string> {
    try {
      return new Set(fs.readFileSync(path.join(this.base, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean));
    } catch {
      return new Set();
    }
  }

  supports() {
    const c = this.controllers();
    return { memory: c.has('memory'), cpu: c.has('cpu'), pids: c.has('pids'), kill: true };
  }

  protected parents(): string[] {
    return [this.base];
  }

  /**
   * The no-internal-processes rule: a cgroup that hands controllers to its children may not
   * hold processes itself. So the supervisor (and the daemons it starts later) move into a
   * leaf `<prefix>supervisor` first, then the controllers are enabled for our children.
   * Only processes of ours are moved; anyone else in the cgroup makes this fail (delegate a
   * cgroup of our own: systemd `Delegate=yes`).
   */
  override prepare(pids: number[] = [process.pid]): void {
    const leaf = path.join(this.base, `${this.prefix}supervisor`);
    fs.mkdirSync(leaf, { recursive: true });
    for (const pid of pids) write(path.join(leaf, 'cgroup.procs'), String(pid));
    const others = readProcs(this.base);
    if (others.length) throw new CgroupError(`cgroup v2: ${this.base} still holds processes that are not ours (${others.slice(0, 5).join(', ')}), so controllers can't be delegated to children; run Continuum in a cgroup of its own (systemd Delegate=yes)`);
    const want = ['memory', 'cpu', 'pids'].filter((c) => this.controllers().has(c));
    if (want.length) write(path.join(this.base, 'cgroup.subtree_control'), want.map((c) => `+${c}`).join(' '));
  }

  create(suffix: string, limits: CgroupLimits): Cgroup {
    const name = this.prefix + suffix;
    const dir = path.join(this.base, name);
    try {
      fs.mkdirSync(dir);
    } catch (err) {
      throw new CgroupError(`could not create cgroup ${dir}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const has = this.controllers();
      if (limits.memory !== undefined && has.has('memory')) {
        write(path.join(dir, 'memory.max'), String(limits.memory));
        write(path.join(dir, 'memory.swap.max'), '0');
      }
      if (limits.cpu !== undefined && has.has('cpu')) write(path.join(dir, 'cpu.max'), `${Math.max(1000, Math.round(limits.cpu * PERIOD_US))} ${PERIOD_US}`);
      if (limits.pids !== undefined && has.has('pids')) write(path.join(dir, 'pids.max'), String(limits.pids));
    } catch (err) {
      fs.rmSync(dir, { recursive: false, force: true });
      throw err;
    }
    let removed = false;
    const kill = () => {
      if (fs.existsSync(path.join(dir, 'cgroup.kill'))) write(path.join(dir, 'cgroup.kill'), '1');
      else killAll(dir);
    };
    return {
      name,
      dirs: { unified: dir },
      procsFiles: [path.join(dir, 'cgroup.procs')],
      oomKills: () => counter(path.join(dir, 'memory.events'), 'oom_kill'),
      atMemoryLimit: memoryLimitWatch(
        () => readNumber(path.join(dir, 'memory.current')),
        () => readNumber(path.join(dir, 'memory.max')),
        () => counter(path.join(dir, 'memory.events'), 'max') + counter(path.join(dir, 'memory.events'), 'oom_kill'),
      ),
      kill: () => killUnlessGone(kill),
      remove: async () => {
        if (removed) return;
        removed = true;
        if (fs.existsSync(dir)) kill();
        await rmdirWhenEmpty(dir);
      },
    };
  }
}

