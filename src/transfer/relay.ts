/**
 * Remote -> remote: the data is relayed through this machine (as `scp -3`), both hosts reached
 * the ordinary way, through the copy job's download and upload paths.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FileResult, GetItem, PutItem } from '../core/items.js';
import type { RemoteFs } from '../core/remote_fs.js';
import { WorkQueue } from '../core/work_queue.js';
import { IntegrityError, InterruptedError } from '../errors.js';
import type { PlannedFile } from './plan.js';

/**
 * Remote -> remote copies are relayed through this machine (as `scp -3`): each batch of files
 * is downloaded from the source host into a private spool directory and uploaded from there,
 * through the ordinary download and upload paths (so -P N, striping, dedup, -C on the upload
 * leg and the fallback all apply). A batch holds at most this many bytes, or one file.
 */
const RELAY_BATCH_BYTES = 256 << 20;

/** What the relay takes from the copy job. */
export interface RelayJob {
  getItem(f: PlannedFile, local: string): GetItem;
  putItem(local: string, f: PlannedFile): PutItem;
  onBytes(n: number): void;
  /** Reports a file moved (or not), as the job does for every direction. */
  settle(src: string, dest: string, r: FileResult<unknown>): void;
  signal: AbortSignal;
}

/**
 * Each batch of files is downloaded into a spool directory of our own and uploaded from there
 * (so -P N, striping, dedup, -C on the upload leg and the fallback all apply). Verified end to
 * end: the source server's hash of what it sent must equal the destination server's hash of
 * what it stored (under --fast the download leg carries none: the source is asked after).
 * Downloads of a batch go into the spool (-C does not apply to that leg: the spool is
 * temporary); the spool is removed at the end, also on failure or exit.
 */
export async function relayFiles(
  src: RemoteFs,
  dst: RemoteFs,
  files: PlannedFile[],
  job: RelayJob,
): Promise<void> {
  const spool = fs.mkdtempSync(path.join(os.tmpdir(), 'bcmr-relay-'));
  // Also when the process ends without unwinding (a second Ctrl-C exits at once, SIGHUP).
  const removeSpool = () => fs.rmSync(spool, { recursive: true, force: true });
  process.once('exit', removeSpool);
  try {
    for (let i = 0; i < files.length && !job.signal.aborted; ) {
      const batch: PlannedFile[] = [];
      let bytes = 0;
      for (; i < files.length && (batch.length === 0 || bytes + files[i].size <= RELAY_BATCH_BYTES); i++) {
        batch.push(files[i]);
        bytes += files[i].size;
      }
      const spooled = new Map<string, { f: PlannedFile; down: FileResult<GetItem> }>();
      await src.download(
        new WorkQueue(
          batch.map((f, k) => ({
            ...job.getItem(f, path.join(spool, String(k))),
            overwrite: true,
            resume: false,
          })),
        ),
        {
          onFileDone: (r) => {
            const f = batch[Number(path.basename(r.item.local))];
            if (r.error) job.settle(f.src, f.dest, r);
            else spooled.set(r.item.local, { f, down: r });
          },
        },
      );
      if (job.signal.aborted) throw new InterruptedError();
      const puts = [...spooled.entries()].map(([local, { f }]) => job.putItem(local, f));
      const uploaded: { f: PlannedFile; down: FileResult<GetItem>; up: FileResult<PutItem> }[] = [];
      await dst.upload(new WorkQueue(puts), {
        onBytes: (n) => job.onBytes(n),
        onFileDone: (up) => {
          const entry = spooled.get(up.item.local);
          if (!entry) return;
          fs.rmSync(up.item.local, { force: true });
          uploaded.push({ ...entry, up });
        },
      });
      // --fast: the download leg carried no hash, so the source host is asked for it now (a
      // Hash request, or b3sum / a read-back on the fallback): a relay is always checked end
      // to end, whatever passed through this machine.
      const unhashed = uploaded.filter((u) => !u.up.error && u.down.hash === null);
      const asked = unhashed.length > 0 ? await src.hashFiles(unhashed.map((u) => u.f.src)) : [];
      for (const [i, u] of unhashed.entries()) {
        const h = asked[i];
        if (h instanceof Error)
          u.up.error = new IntegrityError(`relay: cannot hash the source: ${h.message}`);
        else u.down.hash = h;
      }
      for (const { f, down, up } of uploaded) {
        if (!up.error && down.hash !== null && down.hash !== up.hash) {
          up.error = new IntegrityError(
            `relay: source hashes to ${down.hash}, destination stored ${up.hash}`,
          );
          up.hash = null;
        }
        job.settle(f.src, f.dest, up);
      }
    }
  } finally {
    process.off('exit', removeSpool);
    removeSpool();
  }
}
