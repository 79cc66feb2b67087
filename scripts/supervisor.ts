/**
 * Supervision for `npm start` (scripts/start.ts): a child process that dies is started again after
 * an exponential backoff, and only a child that keeps crashing within a short window makes the
 * supervisor give up. {@link RestartPolicy} is the pure decision (unit-tested with a given clock);
 * {@link Supervisor} applies it to real child processes through an injectable {@link Clock}.
 *
 * No process-manager package fits here: pm2 and forever bring a daemon of their own, and the
 * small ones (respawn) are unmaintained. The backoff itself is one line, deterministic on
 * purpose (one local supervisor has no thundering herd to spread with jitter).
 */
import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:os';

/** When to restart and when to give up. */
export interface RestartPolicyOptions {
  /** Delay before the first restart in a window; doubles with each further crash in it. */
  readonly initialDelayMs: number;
  /** The doubling stops here. */
  readonly maxDelayMs: number;
  /** This many crashes of one child within {@link windowMs} make the supervisor give up. */
  readonly maxCrashes: number;
  readonly windowMs: number;
}

/** 1 s, 2 s, 4 s, 8 s; the 5th crash within 60 s gives up. */
export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = Object.freeze({
  initialDelayMs: 1_000,
  maxDelayMs: 30_000,
  maxCrashes: 5,
  windowMs: 60_000,
});

/** What to do about one crash. */
export type CrashDecision =
  | { readonly action: 'restart'; readonly delayMs: number /** Restarts of this child so far, this one included. */; readonly restart: number }
  | { readonly action: 'give-up'; readonly crashes: number; readonly windowMs: number };

/**
 * One child's crash history. The backoff grows with the crashes inside the window, so a child that
 * ran quietly for a whole window starts again from the initial delay.
 */
export class RestartPolicy {
  readonly options: RestartPolicyOptions;
  #crashes: number[] = [];
  #restarts = 0;

  constructor(options: Partial<RestartPolicyOptions> = {}) {
    this.options = { ...DEFAULT_RESTART_POLICY, ...options };
    const { initialDelayMs, maxDelayMs, maxCrashes, windowMs } = this.options;
    if (!(initialDelayMs >= 0 && maxDelayMs >= initialDelayMs && maxCrashes >= 1 && windowMs > 0)) {
      throw new RangeError(`invalid restart policy ${JSON.stringify(this.options)}`);
    }
  }

  /** Records a crash at `now` (ms) and decides. */
  onCrash(now: number): CrashDecision {
    const { initialDelayMs, maxDelayMs, maxCrashes, windowMs } = this.options;
    this.#crashes = this.#crashes.filter((at) => now - at < windowMs);
    this.#crashes.push(now);
    const crashes = this.#crashes.length;
    if (crashes >= maxCrashes) return { action: 'give-up', crashes, windowMs };
    this.#restarts += 1;
    return { action: 'restart', delayMs: Math.min(maxDelayMs, initialDelayMs * 2 ** (crashes - 1)), restart: this.#restarts };
  }
}

/** How a child process ended, as `node:child_process` reports it. */
export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** "code 1", or "code 137 / SIGKILL" for a signal (128 + its number, as a shell reports it). */
export function describeExit({ code, signal }: ExitStatus): string {
  if (signal) {
    const number = constants.signals[signal];
    return number === undefined ? signal : `code ${128 + number} / ${signal}`;
  }
  return `code ${code}`;
}

/** "1 s", "1.5 s", "250 ms". */
export function describeDelay(ms: number): string {
  return ms < 1_000 ? `${ms} ms` : `${Number((ms / 1_000).toFixed(1))} s`;
}

/** Time as the supervisor sees it; tests pass one they move by hand. */
export interface Clock {
  now(): number;
  /** Calls `callback` after `ms`; the returned function cancels it. */
  setTimeout(callback: () => void, ms: number): () => void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, ms) {
    const timer = setTimeout(callback, ms);
    return () => clearTimeout(timer);
  },
};

/** A process the supervisor keeps running. */
export interface SupervisedChild {
  readonly name: string;
  /** Where its output goes, named when the supervisor gives up on it. */
  readonly logFile: string;
  /** Starts the process: at first, and again at each restart. */
  spawn(): ChildProcess;
  /** Told about each restarted process (to announce when it answers again). */
  onRestarted?(process: ChildProcess, restart: number): void;
}

/** Why the supervisor gave up. */
export interface GiveUp {
  readonly name: string;
  readonly logFile: string;
  readonly crashes: number;
  readonly windowMs: number;
  readonly last: ExitStatus;
  /** The message the supervisor printed. */
  readonly message: string;
}

/** Options of {@link Supervisor}. */
export interface SupervisorOptions {
  readonly policy?: Partial<RestartPolicyOptions>;
  readonly clock?: Clock;
  /** Prints one line to the terminal. */
  readonly say: (message: string) => void;
  /** Called once, when a child crashed too often; the caller stops everything. */
  readonly onGiveUp: (giveUp: GiveUp) => void;
  /** How long a child may take to stop after SIGTERM before it gets SIGKILL. */
  readonly stopGraceMs?: number;
}

interface Entry {
  readonly child: SupervisedChild;
  readonly policy: RestartPolicy;
  process: ChildProcess | null;
  cancelRestart: (() => void) | null;
}

function exitOf(process: ChildProcess): Promise<ExitStatus> {
  if (process.exitCode !== null || process.signalCode !== null) return Promise.resolve({ code: process.exitCode, signal: process.signalCode });
  return new Promise((resolve) => process.once('exit', (code, signal) => resolve({ code, signal })));
}

/**
 * Keeps children running. Children start with {@link start} but are restarted only once
 * {@link supervise} is called: a child that dies before the platform is up is a start-up failure
 * (usually a setting), which the caller reports at once rather than retrying.
 */
export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #clock: Clock;
  readonly #entries = new Map<string, Entry>();
  #supervising = false;
  #stopping = false;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    // Fail on a bad policy at construction, not at the first crash.
    new RestartPolicy(options.policy);
  }

  /** Starts `child` and returns its process. */
  start(child: SupervisedChild): ChildProcess {
    if (this.#entries.has(child.name)) throw new Error(`${child.name} is already supervised`);
    const entry: Entry = { child, policy: new RestartPolicy(this.#options.policy), process: null, cancelRestart: null };
    this.#entries.set(child.name, entry);
    return this.#launch(entry);
  }

  /** Stops watching `name` (a child whose start failed and that is left stopped). */
  forget(name: string): void {
    const entry = this.#entries.get(name);
    entry?.cancelRestart?.();
    this.#entries.delete(name);
  }

  /** From now on, a child that exits is restarted. */
  supervise(): void {
    this.#supervising = true;
  }

  /** The running process of `name`, if any (none while a restart is pending). */
  process(name: string): ChildProcess | null {
    return this.#entries.get(name)?.process ?? null;
  }

  /**
   * Stops restarting, cancels pending restarts, and stops every child in reverse start order
   * (so the gateway goes before the subgraphs it calls): SIGTERM, then SIGKILL after the grace.
   */
  async stopAll(): Promise<void> {
    this.#stopping = true;
    for (const entry of [...this.#entries.values()].reverse()) {
      entry.cancelRestart?.();
      entry.cancelRestart = null;
      const running = entry.process;
      if (!running || running.exitCode !== null || running.signalCode !== null) continue;
      const exited = exitOf(running);
      running.kill('SIGTERM');
      const cancelKill = this.#clock.setTimeout(() => running.kill('SIGKILL'), this.#options.stopGraceMs ?? 20_000);
      await exited;
      cancelKill();
    }
  }

  #launch(entry: Entry): ChildProcess {
    const launched = entry.child.spawn();
    entry.process = launched;
    void exitOf(launched).then((status) => this.#exited(entry, launched, status));
    return launched;
  }

  #exited(entry: Entry, exited: ChildProcess, status: ExitStatus): void {
    if (entry.process !== exited) return;
    entry.process = null;
    if (this.#stopping || !this.#supervising || this.#entries.get(entry.child.name) !== entry) return;
    const { name, logFile } = entry.child;
    const decision = entry.policy.onCrash(this.#clock.now());
    if (decision.action === 'give-up') {
      this.#stopping = true;
      const message =
        `${name} exited (${describeExit(status)}): ${decision.crashes} crashes within ` +
        `${describeDelay(decision.windowMs)}, so it is not restarted again; stopping everything. See ${logFile}`;
      this.#options.say(message);
      this.#options.onGiveUp({ name, logFile, crashes: decision.crashes, windowMs: decision.windowMs, last: status, message });
      return;
    }
    this.#options.say(`${name} exited (${describeExit(status)}); restarting in ${describeDelay(decision.delayMs)} (restart ${decision.restart})`);
    entry.cancelRestart = this.#clock.setTimeout(() => {
      entry.cancelRestart = null;
      if (this.#stopping) return;
      const restarted = this.#launch(entry);
      this.#options.say(`${name} restarted (pid ${restarted.pid})`);
      entry.child.onRestarted?.(restarted, decision.restart);
    }, decision.delayMs);
  }
}
