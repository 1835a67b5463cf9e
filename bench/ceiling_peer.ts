/**
 * Receiver for bench/ceilings.ts: listens on 127.0.0.1, prints its port, takes one connection,
 * reads it to the end (through RecordOpener when given a hex key) and prints "done".
 */
import net from 'node:net';
import { Direction } from '../src/protocol/aead.js';
import { RecordOpener } from '../src/transport/aead_stream.js';

const keyHex = process.argv[2] ?? '-';
const server = net.createServer((sock) => {
  const input =
    keyHex === '-'
      ? sock
      : sock.pipe(new RecordOpener(Buffer.from(keyHex, 'hex'), Direction.clientToServer, 0));
  input.on('data', () => {});
  input.on('end', () => {
    process.stdout.write('done\n');
    server.close();
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
});
