// Reading files of a model folder, which is untrusted input: only regular files (a FIFO would block forever, a link to
// /dev/zero would read without end, a directory named like a file would throw deep inside a parser), and never more
// bytes than the file kind can justify, checked before a byte is read. Every failure is one UserError line.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { UserError } from '../errors';

const MiB = 1024 * 1024;

/** Largest size each JSON file of a model folder may have (far above real ones: tokenizer.json of a 256K vocab ~ 35 MB). */
export const MODEL_FILE_LIMITS = {
  config: 4 * MiB,
  generationConfig: 4 * MiB,
  tokenizer: 128 * MiB,
  tokenizerConfig: 32 * MiB,
  safetensorsIndex: 64 * MiB,
} as const;

/**
 * Opens `file` for reading if it is a regular file (links are followed: model hubs' caches link to blobs); returns
 * the descriptor and size. O_NONBLOCK so that opening a FIFO returns at once and is then refused by the stat.
 */
export function openRegularFile(file: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? 'not found' : code === 'EISDIR' ? 'is a directory, not a file' : `cannot open (${code ?? (e as Error).message})`, file);
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isSocket() ? 'a socket' : 'not a regular file';
    throw new UserError(`is ${kind}, not a regular file`, file);
  }
  return { fd, size: st.size };
}

/** The whole of a regular file of at most `maxBytes` bytes. */
export function readRegularFile(file: string, maxBytes: number): Buffer {
  const { fd, size } = openRegularFile(file);
  try {
    if (size > maxBytes) throw new UserError(`is ${size} bytes, more than the limit of ${maxBytes} for this file`, file);
    const buf = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, buf, done, size - done, done);
      if (n <= 0) break; // shrank while reading: parse what is there
      done += n;
    }
    return done === size ? buf : buf.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

/** A JSON object from a regular file of at most `maxBytes`; UserError for anything else. */
export function readJsonObject(file: string, maxBytes: number): Record<string, unknown> {
  const text = readRegularFile(file, maxBytes).toString('utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new UserError(`not valid JSON (${(err as Error).message})`, file);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new UserError('expected a JSON object', file);
  return v as Record<string, unknown>;
}
