// Only text enters a prompt: bytes with NUL or invalid UTF-8 are binary (or an encoding the tokenizer would mangle).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export function decodeText(bytes: Uint8Array): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Extensions that are never text; skipped without reading them. */
const binaryExtensions = new Set([
  'png', 'jpg', 'jpeg', 'gif', 'bmp', 'ico', 'webp', 'tiff', 'psd', 'pdf', 'zip', 'gz', 'tgz', 'bz2', 'xz', '7z', 'rar',
  'jar', 'war', 'class', 'exe', 'dll', 'so', 'dylib', 'a', 'o', 'obj', 'lib', 'bin', 'wasm', 'pyc', 'pyo', 'onnx',
  'safetensors', 'gguf', 'pt', 'pth', 'ckpt', 'npy', 'npz', 'h5', 'parquet', 'sqlite', 'db', 'mp3', 'mp4', 'wav', 'ogg',
  'mov', 'avi', 'mkv', 'woff', 'woff2', 'ttf', 'otf', 'eot', 'vsix', 'node', 'map',
]);

export function hasBinaryExtension(relPath: string): boolean {
  const dot = relPath.lastIndexOf('.');
  return dot > relPath.lastIndexOf('/') && binaryExtensions.has(relPath.slice(dot + 1).toLowerCase());
}
