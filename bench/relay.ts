// A diagnostic floor for Continuum's architecture: the least a two-process design must
// do. `front` is a bare `ws` server that parses each request (as an edge must) and
// forwards its bytes over a Unix socket, with Continuum's own frame codec, to `backend`,
// which parses it and answers with a ping result; `front` sends the answer back as it came.
// No auth, routing tables, validation or logging: what Continuum costs above this is its
// implementation, what this costs above the raw echo is the extra process hop.
//
//   node relay.js backend <socket>      prints READY
//   node relay.js front <socket>        prints PORT <n>  (listens on 127.0.0.1 only)
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeRequestPayload, FrameKind, OK_LEAD, requestLead } from '../src/bus/frame-codec.js';
import { connectFrameSocket, listenFrameSockets } from '../src/bus/frame-socket.js';
import { successFrame } from '../src/protocol/jsonrpc.js';

const [role, socketPath] = process.argv.slice(2);
if (!socketPath || (role !== 'front' && role !== 'backend')) {
  process.stderr.write('usage: relay.js front|backend <socket>\n');
  process.exit(2);
}
process.title = `continuum-bench-relay-${role}`;
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

if (role === 'backend') {
  const executor = { id: 'remote-0', pid: process.pid };
  await listenFrameSockets(socketPath, (socket) => {
    socket.onFrame((frame) => {
      if (frame.kind !== FrameKind.Request) return;
      const { body } = decodeRequestPayload(frame.payload);
      const req = JSON.parse(body.toString('utf8')) as { id: number | string | null };
      socket.send(FrameKind.Response, frame.tag, successFrame(req.id, { pong: true, environment: 'remote', executor, time: Date.now() }), OK_LEAD);
    });
  });
  process.stdout.write('READY\n');
} else {
  const link = await connectFrameSocket(socketPath, 2_000);
  const waiting = new Map<number, WebSocket>();
  const lead = requestLead('bench-session');
  let nextTag = 1;
  link.onFrame((frame) => {
    const ws = waiting.get(frame.tag);
    if (!ws) return;
    waiting.delete(frame.tag);
    ws.send(frame.payload.subarray(1), { binary: false });
  });
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
  wss.on('connection', (ws: WebSocket) => {
    ws.on('message', (data: Buffer) => {
      JSON.parse(data.toString('utf8'));
      const tag = nextTag++;
      waiting.set(tag, ws);
      link.send(FrameKind.Request, tag, data, lead);
    });
    ws.on('error', () => undefined);
  });
  wss.on('listening', () => {
    const address = wss.address();
    process.stdout.write(`PORT ${typeof address === 'object' && address ? address.port : String(address)}\n`);
  });
}
