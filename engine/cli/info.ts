// snout info --model PATH [--weights auto|f32|int8|int4] [--cache-dir DIR] [--json]
// Loads the model and says what it is and what it costs: architecture, parameters, how the weights are held, their
// resident size, the process's memory after load, and how long the load took (a second run reads the model cache).
import { readFileSync } from 'node:fs';
import { loadModel } from '../generate/load';
import { parameterCount } from '../model/safetensors-source';
import { modelArg, parseArgs, providerArg, weightArgs, weightFlags } from './model-args';
import { intraOpThreads } from '../runtime/session';

const peakRssMb = () => {
  try { return Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024; } catch { return process.memoryUsage().rss / 2 ** 20; }
};

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs('info', argv, { model: 'value', provider: 'value', json: 'switch', ...weightFlags });
  const model = await loadModel(modelArg('info', args), { provider: providerArg('info', args), ...weightArgs('info', args) });
  try {
    const s = model.spec;
    const info = {
      model: model.modelDir,
      architecture: s.modelType,
      parameters: parameterCount(s),
      layers: s.numLayers, hidden: s.hiddenSize, heads: s.numHeads, kvHeads: s.numKvHeads, vocab: s.vocabSize,
      context: s.maxPositionEmbeddings,
      weights: model.weights?.format,
      packed: model.weights?.packed,
      residentWeightBytes: model.weights?.residentBytes,
      cache: model.weights?.cache,
      provider: model.provider,
      /** onnxruntime threads per operator (0: onnxruntime's own default, on systems where Snout does not count cores). */
      threads: intraOpThreads(),
      loadSeconds: Number((model.loadSeconds ?? 0).toFixed(2)),
      rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
      peakRssMb: Math.round(peakRssMb()),
    };
    if (args.switches.has('json')) {
      process.stdout.write(JSON.stringify(info) + '\n');
    } else {
      const gib = (b?: number) => (b === undefined ? '?' : `${(b / 2 ** 30).toFixed(2)} GiB`);
      process.stdout.write([
        `model       ${info.model}`,
        `            ${info.architecture}, ${info.parameters >= 1e9 ? (info.parameters / 1e9).toFixed(2) + "B" : (info.parameters / 1e6).toFixed(1) + "M"} parameters, ${info.layers} layers, hidden ${info.hidden}, ` +
          `${info.heads}/${info.kvHeads} heads, vocab ${info.vocab}, context ${info.context}`,
        `weights     ${info.weights}${info.packed ? ' (packed, MatMulNBits)' : ''}: ${gib(info.residentWeightBytes)} resident` +
          (info.cache ? `; model cache: ${info.cache}` : ''),
        `memory      ${info.rssMb} MB resident after load, ${info.peakRssMb} MB peak`,
        `load        ${info.loadSeconds} s on ${info.provider}, ${info.threads || "onnxruntime's default"} threads per operator` +
          ' (SNOUT_THREADS to change)',
      ].join('\n') + '\n');
    }
    return 0;
  } finally {
    await model.dispose();
  }
}
