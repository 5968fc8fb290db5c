// snout logits --model DIR (--prompt TEXT | --ids 1,2,3) [--attention METHOD] [--provider P]
// Prints one JSON object: {"ids": [...], "logits": [... vocab floats for the last position ...]}.
import { UserError } from '../errors';
import { loadModel } from '../generate/load';
import { attentionConfigArg, attentionFlags, idsArg, modelArg, parseArgs, providerArg, stringArg, weightArgs, weightFlags } from './model-args';

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs('logits', argv, { model: 'value', prompt: 'value', ids: 'value', provider: 'value', ...attentionFlags, ...weightFlags });
  const dir = modelArg('logits', args);
  const prompt = stringArg(args, 'prompt');
  const rawIds = stringArg(args, 'ids');
  if ((prompt === undefined) === (rawIds === undefined)) throw new UserError('logits: give exactly one of --prompt TEXT or --ids 1,2,3');
  const attention = attentionConfigArg('logits', args);

  const model = await loadModel(dir, { provider: providerArg('logits', args), ...weightArgs('logits', args) });
  try {
    const ids = rawIds !== undefined ? idsArg('logits', rawIds) : model.tokenizer.encode(prompt!);
    const logits = await model.logits(ids, attention);
    process.stdout.write(JSON.stringify({ ids, logits: Array.from(logits) }) + '\n');
    return 0;
  } finally {
    await model.dispose();
  }
}
