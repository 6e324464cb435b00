// The SDK's reconnect loop against a fake edge that accepts the first session and then
// hangs up on every rejoin — the situation that used to multiply reconnect loops.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { connect, ContinuumError } from '../../src/client/index.js';

describe('SDK reconnect', () => {
  let wss: WebSocketServer;
  let url: string;
  let connections = 0;
  let acceptJoins = true;
  const sockets = new Set<WebSocket>();

  before(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`;
    wss.on('connection', (ws) => {
      connections++;
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('message', (data: Buffer) => {
        const req = JSON.parse(data.toString()) as { id: string; method: string };
        if (req.method === 'session.connect' && acceptJoins) {
          ws.send(JSON.stringify({ jsonrpc: '2.0', id: req.id, result: { sessionId: 's1', environment: 'remote', action: 'created', executor: { id: 'remote-0', pid: 1 }, createdAt: 1 } }));
        } else if (req.method === 'session.connect') {
          ws.close(1011, 'going away mid-join');
        } else {
          ws.send(JSON.stringify({ jsonrpc: '2.0', id: req.id, result: { pong: true } }));
        }
      });
    });
  });
  after(() => new Promise<void>((r) => wss.close(() => r())));

  it('keeps one reconnect loop at its backoff pace when rejoins are cut off', async () => {
    const client = await connect({ url, token: 't', environment: 'remote', reconnect: { initialMs: 100, maxMs: 400 } });
    let reconnecting = 0;
    client.on('reconnecting', () => reconnecting++);
    const disconnected = new Promise((r) => client.once('disconnected', r));
    acceptJoins = false;
    connections = 0;
    for (const ws of sockets) ws.terminate();
    await disconnected;
    await new Promise((r) => setTimeout(r, 2_000));
    // At 100→400 ms with jitter, 2 s allows at most ~12 attempts; a storm makes thousands.
    assert.ok(connections <= 15, `${connections} connections in 2 s`);
    assert.ok(reconnecting <= 15, `${reconnecting} reconnecting events in 2 s`);
    assert.ok(sockets.size <= 1, `${sockets.size} sockets left open`);

    // A request made while reconnecting waits; close() settles it at once with CLIENT_CLOSED.
    let errors = 0;
    client.on('error', () => errors++);
    const waiting = client.ping();
    const started = Date.now();
    await client.close();
    await assert.rejects(waiting, (e: ContinuumError) => e.code === 'CONTINUUM_CLIENT_CLOSED');
    assert.ok(Date.now() - started < 1_000);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(errors, 0, 'closing is not an error');
    assert.equal(sockets.size, 0, 'nothing left open after close()');
  });

  it('an abort signal ends a request that waits for a reconnect', async () => {
    acceptJoins = true;
    const client = await connect({ url, token: 't', environment: 'remote', reconnect: { initialMs: 2_000, maxMs: 2_000 } });
    const disconnected = new Promise((r) => client.once('disconnected', r));
    for (const ws of sockets) ws.terminate();
    await disconnected;
    const ac = new AbortController();
    const req = client.request('system.ping', {}, { signal: ac.signal });
    setTimeout(() => ac.abort('user gave up'), 50);
    const started = Date.now();
    await assert.rejects(req, (e: ContinuumError) => e.code === 'CONTINUUM_CLIENT_TIMEOUT');
    assert.ok(Date.now() - started < 1_000, 'aborted promptly, not at the next reconnect');
    await client.close();
  });
});
