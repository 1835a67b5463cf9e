/**
 * A slow link for benchmarks: two network namespaces joined by a veth pair, shaped with
 * `tc tbf` on both ends (default 10 MB/s). Addresses exist only inside the namespaces created
 * here; `teardown()` deletes both (and with them the veth pair). Needs root and iproute2.
 */
import { execFileSync } from 'node:child_process';

export interface SlowLink {
  clientNs: string;
  serverNs: string;
  serverAddr: string;
  /** argv prefix that runs a command in the client namespace. */
  inClient: string[];
  teardown(): void;
}

const CLIENT = 'bcmrb-cli';
const SERVER = 'bcmrb-srv';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

export function slowLinkUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root for network namespaces';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    execFileSync('tc', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'needs iproute2 (ip, tc)';
  }
  return null;
}

export function setupSlowLink(bytesPerSecond = 10_000_000): SlowLink {
  teardownQuiet();
  const rate = `${Math.round((bytesPerSecond * 8) / 1000)}kbit`;
  ip('netns', 'add', CLIENT);
  ip('netns', 'add', SERVER);
  ip('link', 'add', 'bcmrb-c', 'type', 'veth', 'peer', 'name', 'bcmrb-s');
  ip('link', 'set', 'bcmrb-c', 'netns', CLIENT);
  ip('link', 'set', 'bcmrb-s', 'netns', SERVER);
  ip('-n', CLIENT, 'addr', 'add', '10.231.0.1/24', 'dev', 'bcmrb-c');
  ip('-n', SERVER, 'addr', 'add', '10.231.0.2/24', 'dev', 'bcmrb-s');
  for (const [ns, dev] of [
    [CLIENT, 'bcmrb-c'],
    [SERVER, 'bcmrb-s'],
  ]) {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'set', dev, 'up');
    execFileSync('tc', [
      '-n',
      ns,
      'qdisc',
      'add',
      'dev',
      dev,
      'root',
      'tbf',
      'rate',
      rate,
      'burst',
      '64kb',
      'latency',
      '100ms',
    ]);
  }
  return {
    clientNs: CLIENT,
    serverNs: SERVER,
    serverAddr: '10.231.0.2',
    inClient: ['ip', 'netns', 'exec', CLIENT],
    teardown: teardownQuiet,
  };
}

function teardownQuiet(): void {
  for (const ns of [CLIENT, SERVER]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // Not there.
    }
  }
}
