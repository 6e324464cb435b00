// The raw floor for one WebSocket hop: a bare `ws` server that answers a JSON-RPC ping with
// a JSON-RPC response of the same shape and size as Continuum's system.ping result. It
// parses the request and stringifies the answer, as any real server must. Runs as its own
// process (started by bench/run.ts), listens on 127.0.0.1 only, prints `PORT <n>`.
import { WebSocketServer, type WebSocket } from 'ws';

process.title = 'continuum-bench-echo';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
const executor = { id: 'remote-0', pid: process.pid };

wss.on('connection', (ws: WebSocket) => {
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) return;
    let req: { id?: string | number | null; method?: string };
    try {
      req = JSON.parse(data.toString('utf8')) as typeof req;
    } catch {
      ws.send('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}');
      return;
    }
    if (req.id === undefined) return;
    ws.send(JSON.stringify({ jsonrpc: '2.0', id: req.id, result: { pong: true, environment: 'remote', executor, time: Date.now() } }));
  });
  ws.on('error', () => undefined);
});

wss.on('listening', () => {
  const address = wss.address();
  process.stdout.write(`PORT ${typeof address === 'object' && address ? address.port : String(address)}\n`);
});

// Dies with its parent: the bench closes our stdin (or exits) when done.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
