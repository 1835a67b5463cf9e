/**
 * Every message of protocol v2 as a typed value, discriminated on `type`
 * (the names of `MsgType`). Sizes, offsets and mtimes are numbers: the codec refuses
 * values beyond 2^53, which no real file reaches.
 */
import type { AlgoId } from './constants.js';

export interface ListEntry {
  path: string;
  size: number;
  mtime: number;
  isDir: boolean;
}

export type ClientMessage =
  | { type: 'Hello'; version: number; caps: number }
  | { type: 'List'; path: string }
  | { type: 'Stat'; path: string }
  | { type: 'Hash'; path: string; offset: number; limit: number | null }
  | { type: 'Get'; path: string; offset: number }
  | { type: 'Put'; path: string; size: number; offset: number; overwrite: boolean }
  | { type: 'Mkdir'; path: string }
  | { type: 'Resume'; path: string }
  | { type: 'Done' }
  /** `hashes` holds `count` raw 32-byte BLAKE3 digests back to back. */
  | { type: 'HaveBlocks'; blockSize: number; hashes: Uint8Array }
  | { type: 'OpenDirectChannel' }
  | { type: 'AuthHello'; mac: Uint8Array }
  | { type: 'PutChunked'; path: string; offset: number; length: number }
  | { type: 'GetChunked'; path: string; offset: number; length: number }
  | { type: 'Truncate'; path: string; size: number };

export type ServerMessage =
  | { type: 'Welcome'; version: number; caps: number }
  | { type: 'Ok'; hash: string | null }
  | { type: 'Error'; message: string }
  | { type: 'Data'; data: Uint8Array }
  | { type: 'StatResponse'; size: number; mtime: number; isDir: boolean }
  | { type: 'HashResponse'; hash: string }
  | { type: 'ListResponse'; entries: ListEntry[] }
  | { type: 'ResumeResponse'; size: number; blockHash: string | null }
  | { type: 'DataCompressed'; algo: AlgoId; originalSize: number; payload: Uint8Array }
  | { type: 'MissingBlocks'; bitmap: Uint8Array }
  | { type: 'DirectChannelReady'; addr: string; sessionKey: Uint8Array }
  | { type: 'AuthChallenge'; nonce: Uint8Array };

export type Message = ClientMessage | ServerMessage;

/** Data frames: the two shapes file content travels in. */
export type DataMessage = Extract<ServerMessage, { type: 'Data' | 'DataCompressed' }>;

export function isData(m: Message): m is DataMessage {
  return m.type === 'Data' || m.type === 'DataCompressed';
}
