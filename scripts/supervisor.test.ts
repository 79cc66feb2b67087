/**
 * scripts/supervisor.ts: the restart policy as a pure function of a given clock, and the
 * supervisor on real child processes (tiny `node -e` programs) with a clock moved by hand.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import { type Clock, type GiveUp, RestartPolicy, Supervisor, type SupervisedChild, describeDelay, describeExit } from './supervisor.ts';
import { waitFor } from '../test/support/wait.ts';

describe('RestartPolicy', () => {
  test('given a child crashing again and again within the window, then the delays double and the 5th crash gives up', () => {
    const policy = new RestartPolicy();
    const decisions = [0, 1_500, 4_000, 9_000, 20_000].map((at) => policy.onCrash(at));
    assert.deepEqual(decisions, [
      { action: 'restart', delayMs: 1_000, restart: 1 },
      { action: 'restart', delayMs: 2_000, restart: 2 },
      { action: 'restart', delayMs: 4_000, restart: 3 },
      { action: 'restart', delayMs: 8_000, restart: 4 },
      { action: 'give-up', crashes: 5, windowMs: 60_000 },
    ]);
  });

  test('given crashes spread wider than the window, then it never gives up and the backoff starts over', () => {
    const policy = new RestartPolicy();
    const delays = [0, 10_000, 20_000, 30_000, 70_001, 80_000, 200_000].map((at) => policy.onCrash(at));
    // At 70 001 the crashes at 0 and 10 000 have left the 60 s window (3 in it, this one included),
    // at 80 000 the one at 20 000 too; at 200 000 all earlier ones have.
    assert.deepEqual(
      delays.map((d) => (d.action === 'restart' ? d.delayMs : d.action)),
      [1_000, 2_000, 4_000, 8_000, 4_000, 4_000, 1_000],
    );
    assert.deepEqual(
      delays.map((d) => (d.action === 'restart' ? d.restart : 0)),
      [1, 2, 3, 4, 5, 6, 7],
    );
  });

  test('given a small maximum delay, then the doubling stops there', () => {
    const policy = new RestartPolicy({ initialDelayMs: 100, maxDelayMs: 250, maxCrashes: 10 });
    assert.deepEqual(
      [0, 1, 2, 3].map((at) => policy.onCrash(at)).map((d) => d.action === 'restart' && d.delayMs),
      [100, 200, 250, 250],
    );
  });

  test('given nonsense options, then construction fails', () => {
    assert.throws(() => new RestartPolicy({ maxCrashes: 0 }), RangeError);
    assert.throws(() => new RestartPolicy({ initialDelayMs: 5_000, maxDelayMs: 1_000 }), RangeError);
    assert.throws(() => new RestartPolicy({ windowMs: 0 }), RangeError);
  });
});

describe('describeExit and describeDelay', () => {
  test('a signal reads as a shell reports it; delays read in s or ms', () => {
    assert.equal(describeExit({ code: null, signal: 'SIGKILL' }), 'code 137 / SIGKILL');
    assert.equal(describeExit({ code: null, signal: 'SIGTERM' }), 'code 143 / SIGTERM');
    assert.equal(describeExit({ code: 1, signal: null }), 'code 1');
    assert.deepEqual([1_000, 2_000, 1_500, 250].map(describeDelay), ['1 s', '2 s', '1.5 s', '250 ms']);
  });
});

/** A clock that stands still until the test fires its timers. */
class ManualClock implements Clock {
  at = 0;
  readonly timers: { callback: () => void; ms: number; cancelled: boolean }[] = [];
  now(): number {
    return this.at;
  }
  setTimeout(callback: () => void, ms: number): () => void {
    const timer = { callback, ms, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }
  pending(): { ms: number }[] {
    return this.#pending().map(({ ms }) => ({ ms }));
  }
  #pending() {
    return this.timers.filter((t) => !t.cancelled);
  }
  /** Fires the only pending timer whose delay is `ms`. */
  fire(ms: number): void {
    const due = this.#pending().filter((t) => t.ms === ms);
    assert.equal(due.length, 1, `one pending ${ms} ms timer`);
    due[0].cancelled = true;
    due[0].callback();
  }
}

function nodeChild(name: string, program: string, stdout: 'ignore' | 'pipe' = 'ignore'): SupervisedChild & { spawned: ChildProcess[] } {
  const spawned: ChildProcess[] = [];
  return {
    name,
    logFile: `.data/logs/${name}.log`,
    spawned,
    spawn() {
      const child = spawn(process.execPath, ['-e', program], { stdio: ['ignore', stdout, 'ignore'] });
      spawned.push(child);
      return child;
    },
  };
}

describe('Supervisor', () => {
  test('given a supervised child that keeps exiting, then it is restarted with backoff and given up on at the 5th crash', async () => {
    const clock = new ManualClock();
    const said: string[] = [];
    const gaveUp: GiveUp[] = [];
    const supervisor = new Supervisor({ clock, say: (m) => said.push(m), onGiveUp: (g) => gaveUp.push(g) });
    const child = nodeChild('order', 'process.exit(3)');
    supervisor.start(child);
    supervisor.supervise();
    for (const [n, delay] of [
      [1, 1_000],
      [2, 2_000],
      [3, 4_000],
      [4, 8_000],
    ] as const) {
      await waitFor(() => clock.pending().length === 1, 'one pending timer');
      assert.equal(said.at(-1), `order exited (code 3); restarting in ${delay / 1_000} s (restart ${n})`);
      assert.equal(supervisor.process('order'), null);
      clock.fire(delay);
      assert.equal(said.at(-1), `order restarted (pid ${child.spawned[n].pid})`);
      assert.equal(supervisor.process('order'), child.spawned[n]);
    }
    await waitFor(() => gaveUp.length === 1, 'the supervisor to give up');
    assert.equal(child.spawned.length, 5);
    assert.deepEqual(clock.pending(), []);
    assert.equal(gaveUp[0].name, 'order');
    assert.equal(gaveUp[0].crashes, 5);
    assert.deepEqual(gaveUp[0].last, { code: 3, signal: null });
    assert.equal(said.at(-1), 'order exited (code 3): 5 crashes within 60 s, so it is not restarted again; stopping everything. See .data/logs/order.log');
    assert.equal(gaveUp[0].message, said.at(-1));
    await supervisor.stopAll();
  });

  test('given a child killed with SIGKILL, then the message names the signal, and onRestarted sees the new process', async () => {
    const clock = new ManualClock();
    const said: string[] = [];
    const restarted: [number | undefined, number][] = [];
    const supervisor = new Supervisor({ clock, say: (m) => said.push(m), onGiveUp: () => assert.fail('no give-up') });
    const child = { ...nodeChild('inventory', 'setInterval(() => {}, 1000)'), onRestarted: (p: ChildProcess, n: number) => restarted.push([p.pid, n]) };
    const first = supervisor.start(child);
    supervisor.supervise();
    first.kill('SIGKILL');
    await waitFor(() => clock.pending().length === 1, 'one pending timer');
    assert.equal(said.at(-1), 'inventory exited (code 137 / SIGKILL); restarting in 1 s (restart 1)');
    clock.fire(1_000);
    assert.deepEqual(restarted, [[child.spawned[1].pid, 1]]);
    await supervisor.stopAll();
    assert.equal(child.spawned[1].signalCode, 'SIGTERM');
    assert.equal(said.length, 2, 'stopping is not a crash');
  });

  test("given a child that exits before supervise(), then it is not restarted (a start-up failure is the caller's to report)", async () => {
    const clock = new ManualClock();
    const said: string[] = [];
    const supervisor = new Supervisor({ clock, say: (m) => said.push(m), onGiveUp: () => assert.fail('no give-up') });
    const child = nodeChild('payment', 'process.exit(1)');
    const first = supervisor.start(child);
    await new Promise((resolve) => first.once('exit', resolve));
    supervisor.supervise();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(said, []);
    assert.deepEqual(clock.pending(), []);
    assert.equal(child.spawned.length, 1);
  });

  test('given a restart pending, when everything stops, then the restart is cancelled and nothing is spawned', async () => {
    const clock = new ManualClock();
    const supervisor = new Supervisor({ clock, say: () => {}, onGiveUp: () => assert.fail('no give-up') });
    const crashing = nodeChild('shipment', 'process.exit(2)');
    const running = nodeChild('gateway', 'setInterval(() => {}, 1000)');
    supervisor.start(crashing);
    supervisor.start(running);
    supervisor.supervise();
    await waitFor(() => clock.pending().length === 1, 'one pending timer');
    await supervisor.stopAll();
    assert.equal(running.spawned[0].signalCode, 'SIGTERM');
    assert.deepEqual(
      clock.pending().filter((t) => t.ms === 1_000),
      [],
    );
    assert.equal(crashing.spawned.length, 1);
  });

  test('given a child that ignores SIGTERM, when everything stops, then it gets SIGKILL after the grace', async () => {
    const clock = new ManualClock();
    const supervisor = new Supervisor({ clock, say: () => {}, onGiveUp: () => {}, stopGraceMs: 5_000 });
    const stubborn = nodeChild('product', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)", 'pipe');
    const started = supervisor.start(stubborn);
    supervisor.supervise();
    // Its SIGTERM handler is installed once it says so.
    await new Promise((resolve) => started.stdout!.once('data', resolve));
    const stopped = supervisor.stopAll();
    await waitFor(() => clock.pending().some((t) => t.ms === 5_000), 'a pending 5 s timer');
    clock.fire(5_000);
    await stopped;
    assert.equal(stubborn.spawned[0].signalCode, 'SIGKILL');
  });
});
