/**
 * A deliberately hostile `bcmr serve` for client tests, started over the real sshd through
 * `--remote-path "node hostile_server.js MODE"`. It speaks valid frames but lies:
 *   list-escape   List names that climb out (`..`), absolute names, and one honest file
 *   more-bytes    Get sends more bytes than Stat announced
 *   bad-hash      Get's Ok carries a hash of other bytes
 *   link-parent   an honest tree whose directory `link` the test made a symlink to outside
 *   stall-get     Get sends part of the file, then the server goes silent (alive, reading)
 *   stall-hello   reads Hello and never answers
 *   extra-caps    Welcome grants a capability the client did not ask for
 */
import { blake3Hex } from '../../src/codec/hash.js';
import { MessageReader } from '../../src/protocol/message_reader.js';
import type { ListEntry, Message } from '../../src/protocol/messages.js';
import { FrameSink } from '../../src/transport/frame_sink.js';

const mode = process.argv[2];
const reader = new MessageReader(process.stdin);
const sink = new FrameSink(process.stdout);
const content = Buffer.from('0123456789');

function entriesFor(): ListEntry[] {
  const f = (path: string): ListEntry => ({ path, size: content.length, mtime: 0, isDir: false });
  if (mode === 'list-escape')
    return [f('ok.txt'), f('../escaped.txt'), f('/tmp/bcmr-absolute-escape.txt'), f('a/../../up.txt')];
  if (mode === 'link-parent')
    return [{ path: 'link', size: 0, mtime: 0, isDir: true }, f('link/x.txt'), f('ok.txt')];
  return [];
}

function reply(m: Message): void {
  switch (m.type) {
    case 'Stat': {
      const isDir = mode === 'list-escape' || mode === 'link-parent';
      sink.send({ type: 'StatResponse', size: isDir ? 4096 : content.length, mtime: 0, isDir });
      return;
    }
    case 'List':
      sink.send({ type: 'ListResponse', entries: entriesFor() });
      return;
    case 'Get': {
      if (mode === 'stall-get') {
        sink.send({ type: 'Data', data: content.subarray(0, 4) });
        stall();
        return;
      }
      const body = mode === 'more-bytes' ? Buffer.concat([content, content]) : content;
      sink.send({ type: 'Data', data: body });
      const hash = mode === 'bad-hash' ? blake3Hex(Buffer.from('something else')) : blake3Hex(body);
      sink.send({ type: 'Ok', hash });
      return;
    }
    default:
      sink.send({ type: 'Error', message: `unexpected message: ${m.type}` });
  }
}

/** Silent but alive: keeps reading so the client sees no error, only nothing. */
function stall(): void {
  stalled = true;
  void (async () => {
    while ((await reader.next()) !== null) {}
    process.exit(0);
  })();
}
let stalled = false;

const hello = await reader.next();
if (hello?.type === 'Hello' && mode === 'stall-hello') {
  stall();
  await new Promise(() => {});
}
if (hello?.type === 'Hello') {
  const caps = mode === 'extra-caps' ? (hello.caps & 0x9f) | 0x40 : hello.caps & 0x9f;
  sink.send({ type: 'Welcome', version: 2, caps });
  await sink.flush();
  for (let m = await reader.next(); m !== null; m = await reader.next()) {
    reply(m);
    await sink.flush();
    if (stalled) await new Promise(() => {});
  }
}
await sink.end();
