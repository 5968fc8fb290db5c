// Bad GGUF files give one clear UserError line that names the file (and loads nothing), whatever is wrong with them.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { UserError } from '../../engine/errors';
import { openGguf } from '../../engine/model/gguf';
import { meta, writeHfAsGguf, type HfToGgufOptions } from '../fixtures/gguf-writer';
import { hasModel, modelDir } from '../engine/paths';

const tmp = mkdtempSync(path.join(tmpdir(), 'snout-gguf-bad-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const model = 'tiny-coder-hf';

function expectError(file: string, pattern: RegExp): void {
  assert.throws(() => openGguf(file), (err: unknown) => {
    assert.ok(err instanceof UserError, `a UserError, got ${(err as Error)?.stack}`);
    assert.ok(err.message.startsWith(`${file}: `), `names the file: ${err.message}`);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
}

let n = 0;
function bad(o: HfToGgufOptions & { type?: 'Q8_0' | 'Q4_K' | 'F32' } = {}): { file: string; size: number; dataStart: number; offsets: Map<string, number> } {
  const file = path.join(tmp, `bad-${n++}.gguf`);
  const r = writeHfAsGguf(modelDir(model), file, o.type ?? 'Q8_0', o);
  return { file, ...r };
}

describe('bad GGUF files', { skip: !hasModel(model) && `${model} not found` }, () => {
  it('a good file opens (the baseline the cases below break)', () => {
    openGguf(bad().file).close();
  });

  it('truncated in the tensor data', () => {
    const { file, size } = bad();
    truncateSync(file, size - 1000);
    expectError(file, /tensor "output_norm\.weight": .*run past the end of the \d+-byte file/);
  });

  it('truncated in the header', () => {
    const { file } = bad();
    truncateSync(file, 5000);
    expectError(file, /metadata "tokenizer\.ggml\.tokens" is 2048, more than the rest of the 5000-byte file can hold \(the file is truncated/);
    truncateSync(file, 30);
    expectError(file, /tensor count is 56, more than the rest of the 30-byte file can hold \(the file is truncated/);
  });

  it('too short to be anything, or not GGUF at all', () => {
    const { file } = bad();
    truncateSync(file, 10);
    expectError(file, /truncated: 10 bytes/);
    const st = path.join(tmp, 'model.safetensors');
    copyFileSync(path.join(modelDir(model), 'model.safetensors'), st);
    expectError(st, /not a GGUF file/);
    expectError(path.join(tmp, 'missing.gguf'), /not found/);
  });

  it('an unsupported version', () => {
    const { file } = bad();
    const b = readFileSync(file);
    b.writeUInt32LE(1, 4);
    writeFileSync(file, b);
    expectError(file, /GGUF version 1 is not supported/);
  });

  it('a lying offset: past the end, overlapping another tensor, unaligned', () => {
    const past = bad({ lie: (t) => (t.name === 'blk.2.ffn_up.weight' ? { offset: 1e9 } : undefined) });
    expectError(past.file, /tensor "blk\.2\.ffn_up\.weight": .* at offset 1000000000 run past the end/);
    const overlap = bad({ lie: (t) => (t.name === 'blk.0.attn_q.weight' ? { offset: 0 } : undefined) });
    expectError(overlap.file, /tensors "token_embd\.weight" and "blk\.0\.attn_q\.weight" overlap/);
    const unaligned = bad({ lie: (t) => (t.name === 'blk.0.attn_q.weight' ? { offset: 4 } : undefined) });
    expectError(unaligned.file, /offset 4 is not a multiple of the alignment 32/);
  });

  it('a lying size: more rows than the data holds, or a row that is not whole blocks', () => {
    const rows = bad({ lie: (t) => (t.name === 'output_norm.weight' ? { dims: [256, 1000] } : undefined) });
    expectError(rows.file, /tensor "output_norm\.weight": .*run past the end/);
    const grown = bad({ lie: (t) => (t.name === 'blk.0.ffn_up.weight' ? { dims: [256, 1408] } : undefined) });
    expectError(grown.file, /overlap|shape/);
    const blocks = bad({ lie: (t) => (t.name === 'blk.0.attn_k.weight' ? { dims: [250, 128] } : undefined) });
    expectError(blocks.file, /tensor "blk\.0\.attn_k\.weight": Q8_0 rows of 250 values are not whole blocks of 32/);
    const shape = bad({ lie: (t) => (t.name === 'blk.1.attn_v.weight' ? { dims: [128, 256] } : undefined) });
    expectError(shape.file, /tensor "blk\.1\.attn_v\.weight" has shape \[128,256\] but the metadata implies \[256,128\]/);
    const huge = bad({ lie: (t) => (t.name === 'blk.1.attn_v.weight' ? { dims: [256, 2 ** 52] } : undefined) });
    expectError(huge.file, /too large|run past the end/);
  });

  it('an unknown tensor type', () => {
    const q5 = bad({ lie: (t) => (t.name === 'blk.3.ffn_down.weight' ? { typeId: 6 } : undefined) });
    expectError(q5.file, /tensor "blk\.3\.ffn_down\.weight" has type Q5_0 \(ggml type 6\), which Snout does not read \(supported: F32, .*Q6_K/);
    const unknown = bad({ lie: (t) => (t.name === 'token_embd.weight' ? { typeId: 977 } : undefined) });
    expectError(unknown.file, /has type unknown \(ggml type 977\)/);
  });

  it('an unknown architecture, or none', () => {
    const gemma = bad({ omit: ['architecture'], extraMetadata: [['general.architecture', meta.str('gemma2')]] });
    expectError(gemma.file, /architecture "gemma2" is not supported \(supported: llama, qwen2\)/);
    const none = bad({ omit: ['architecture'] });
    expectError(none.file, /metadata has no "general\.architecture"/);
  });

  it('no tokenizer, or a broken one', () => {
    const none = bad({ omit: ['tokenizer'] });
    expectError(none.file, /has no tokenizer/);
    const pre = bad({ omit: ['tokenizer'], extraMetadata: [
      ['tokenizer.ggml.model', meta.str('gpt2')], ['tokenizer.ggml.tokens', meta.strs(['a', 'b'])],
      ['tokenizer.ggml.merges', meta.strs(['a b'])], ['tokenizer.ggml.pre', meta.str('deepseek-coder')],
    ] });
    expectError(pre.file, /tokenizer\.ggml\.pre "deepseek-coder" is not supported/);
    const kind = bad({ omit: ['tokenizer'], extraMetadata: [['tokenizer.ggml.model', meta.str('t5')], ['tokenizer.ggml.tokens', meta.strs(['a'])]] });
    expectError(kind.file, /tokenizer model "t5" is not supported/);
    const types = bad({ extraMetadata: [['tokenizer.ggml.eot_token_id', meta.u32(99999)]] });
    expectError(types.file, /tokenizer\.ggml\.eot_token_id 99999 is not a token id/);
  });

  it('a vocabulary that does not match the embedding', () => {
    const { file } = bad({ omit: ['tokenizer'], extraMetadata: [
      ['tokenizer.ggml.model', meta.str('llama')], ['tokenizer.ggml.tokens', meta.strs(['<unk>', 'a', 'b'])],
      ['tokenizer.ggml.scores', meta.f32s([0, 0, 0])],
    ] });
    expectError(file, /tensor "token_embd\.weight" has shape \[256,2048\] but the metadata implies \[256,3\]/);
  });

  it('a metadata array longer than the file', () => {
    const { file } = bad();
    const b = readFileSync(file);
    // The token list's length field follows its key, its value type (9) and its element type (8).
    const key = b.indexOf('tokenizer.ggml.tokens');
    b.writeBigUInt64LE(2n ** 40n, key + 'tokenizer.ggml.tokens'.length + 8);
    writeFileSync(file, b);
    expectError(file, /length of metadata "tokenizer\.ggml\.tokens" is 1099511627776, more than the rest of the \d+-byte file can hold/);
  });
});
