// The model lock's rules on their own: completions before asks, asks told to yield, a bounded queue, abandoned waits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelScheduler, Overloaded, Superseded } from '../../engine/server/scheduler';

const tick = () => new Promise((r) => setImmediate(r));

test('completions are granted before asks that queued earlier; FIFO within a class', async () => {
  const s = new ModelScheduler();
  const order: string[] = [];
  const release0 = await s.acquire('completion');
  const wait = (name: string, p: 'completion' | 'ask') => s.acquire(p).then((release) => { order.push(name); release(); });
  const all = [wait('ask1', 'ask'), wait('ask2', 'ask'), wait('c1', 'completion'), wait('c2', 'completion')];
  await tick();
  assert.equal(s.queued, 4);
  release0();
  await Promise.all(all);
  assert.deepEqual(order, ['c1', 'c2', 'ask1', 'ask2']);
  assert.equal(s.busy, false);
});

test('an ask holding the model is asked to yield when a completion arrives (not when another ask does)', async () => {
  const s = new ModelScheduler();
  let yields = 0;
  const releaseAsk = await s.acquire('ask', undefined, () => yields++);
  const ask2 = s.acquire('ask');
  await tick();
  assert.equal(yields, 0);
  const c = s.acquire('completion');
  await tick();
  assert.equal(yields, 1);
  releaseAsk();
  (await c)();
  (await ask2)();
});

test('the queue is bounded; an aborted wait leaves the queue', async () => {
  const s = new ModelScheduler(2);
  const release = await s.acquire('completion');
  const ctrl = new AbortController();
  const a = s.acquire('completion', ctrl.signal);
  const b = s.acquire('ask');
  await assert.rejects(s.acquire('completion'), Overloaded);
  ctrl.abort();
  await assert.rejects(a, Superseded);
  assert.equal(s.queued, 1);
  release();
  (await b)();
  assert.equal(s.busy, false);
});

test('index requests come after completions and asks, and yield to either of them', async () => {
  const s = new ModelScheduler();
  const order: string[] = [];
  let yields = 0;
  const releaseIndex = await s.acquire('index', undefined, () => yields++);
  const wait = (name: string, p: 'completion' | 'ask' | 'index') => s.acquire(p).then((release) => { order.push(name); release(); });
  const idx2 = wait('index2', 'index');
  await tick();
  assert.equal(yields, 0, 'another index request does not preempt one');
  const ask = wait('ask', 'ask');
  await tick();
  assert.equal(yields, 1, 'an ask preempts an index request');
  const c = wait('completion', 'completion');
  await tick();
  assert.equal(yields, 2, 'so does a completion');
  releaseIndex();
  await Promise.all([idx2, ask, c]);
  assert.deepEqual(order, ['completion', 'ask', 'index2']);
});
