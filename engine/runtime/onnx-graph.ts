// A small builder for ONNX graphs on onnx-proto: declare inputs/outputs, add initializers (weights) and nodes, then
// serialize to the bytes onnxruntime loads. Everything here is plain data; no ONNX knowledge leaks into callers beyond
// operator names and their attributes (https://onnx.ai/onnx/operators/).
import { onnx } from 'onnx-proto';

export type ElemType = 'float32' | 'int64' | 'int32' | 'bool' | 'float16' | 'uint8';

const elemTypeCode: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
  float16: onnx.TensorProto.DataType.FLOAT16,
  uint8: onnx.TensorProto.DataType.UINT8,
};

/** A dimension: a fixed size or a symbolic name (dynamic, e.g. 'n' for sequence length). */
export type Dim = number | string;

/** Attribute values carry their ONNX type explicitly (1.0 as a float and 1 as an int look the same in JS). */
export type Attr =
  | { f: number }
  | { i: number }
  | { s: string }
  | { floats: number[] }
  | { ints: number[] };

export const attr = {
  f: (f: number): Attr => ({ f }),
  i: (i: number): Attr => ({ i }),
  s: (s: string): Attr => ({ s }),
  floats: (floats: number[]): Attr => ({ floats }),
  ints: (ints: number[]): Attr => ({ ints }),
};

export type TensorData = Float32Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;

export interface SerializeOptions {
  /** ONNX IR version (onnxruntime 1.30 reads up to 11; we stay <= 10). */
  irVersion?: number;
  /** Default-domain opset (17..21). */
  opset?: number;
}

function valueInfo(name: string, type: ElemType, dims: Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: elemTypeCode[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attributeProto(name: string, a: Attr): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('f' in a) return { name, type: T.FLOAT, f: a.f };
  if ('i' in a) return { name, type: T.INT, i: a.i };
  if ('s' in a) return { name, type: T.STRING, s: new TextEncoder().encode(a.s) };
  if ('floats' in a) return { name, type: T.FLOATS, floats: a.floats };
  return { name, type: T.INTS, ints: a.ints };
}

function bytesOf(data: TensorData): Uint8Array {
  // Raw little-endian bytes (every platform Node runs on here is little-endian).
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function elemTypeOf(data: TensorData, hint?: ElemType): ElemType {
  if (hint) return hint;
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint16Array) return 'float16';
  // Uint8Array without a hint: bool (masks); packed quantized weights pass 'uint8'.
  return 'bool';
}

export class GraphBuilder {
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly used = new Set<string>();
  private readonly reserved = new Set<string>();
  /** Operator domains besides the default one (com.microsoft for the contrib ops), imported at version 1. */
  private readonly domains = new Set<string>();
  private counter = 0;

  constructor(readonly name: string) {}

  /** A fresh value name with a readable stem (names must be unique in a graph). */
  fresh(stem: string): string {
    let name = stem;
    while (this.used.has(name)) name = `${stem}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  /** A fresh name to pass as a node output later (e.g. next to '' for unused optional outputs). */
  reserve(stem: string): string {
    const name = this.fresh(stem);
    this.reserved.add(name);
    return name;
  }

  input(name: string, type: ElemType, dims: Dim[]): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Mark an existing value as a graph output (renamed through Identity when the name differs). */
  output(value: string, name: string, type: ElemType, dims: Dim[]): string {
    if (value !== name) this.node('Identity', [value], { outputs: [name] });
    this.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** A constant tensor stored in the model (weights, shapes, tables). */
  initializer(stem: string, data: TensorData, dims: number[], type?: ElemType): string {
    const name = this.fresh(stem);
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) throw new Error(`initializer ${name}: ${data.length} values for shape [${dims}]`);
    this.initializers.push({ name, dims, dataType: elemTypeCode[elemTypeOf(data, type)], rawData: bytesOf(data) });
    return name;
  }

  /** Small int64 constant (shapes, axes, split sizes). */
  int64s(stem: string, values: number[], dims: number[] = [values.length]): string {
    return this.initializer(stem, BigInt64Array.from(values.map((v) => BigInt(v))), dims);
  }

  /** Scalar (or [1]) float constant. */
  float(stem: string, value: number, dims: number[] = []): string {
    return this.initializer(stem, new Float32Array([value]), dims);
  }

  /**
   * Add a node; returns its output names. `outputs` may be names or a count (fresh names from the op type).
   */
  node(
    opType: string,
    inputs: string[],
    options: { outputs?: string[] | number; attrs?: Record<string, Attr>; name?: string; domain?: string } = {},
  ): string[] {
    if (options.domain) this.domains.add(options.domain);
    const out = options.outputs ?? 1;
    const outputs = typeof out === 'number'
      ? Array.from({ length: out }, () => this.fresh(`${options.name ?? opType.toLowerCase()}`))
      // '' leaves an optional output unused (ONNX's convention), so it claims no name.
      : out.map((n) => (n !== '' && this.claim(n), n));
    this.nodes.push({
      opType,
      domain: options.domain,
      name: this.fresh(`${options.name ?? opType}_node`),
      input: inputs,
      output: outputs,
      attribute: Object.entries(options.attrs ?? {}).map(([k, v]) => attributeProto(k, v)),
    });
    return outputs;
  }

  /** Single-output node shorthand. */
  op(opType: string, inputs: string[], attrs?: Record<string, Attr>, name?: string): string {
    return this.node(opType, inputs, { attrs, name })[0];
  }

  toModel(options: SerializeOptions = {}): onnx.IModelProto {
    const irVersion = options.irVersion ?? 8;
    const opset = options.opset ?? 17;
    if (irVersion > 10) throw new Error(`IR version ${irVersion} > 10`);
    if (opset < 17 || opset > 21) throw new Error(`opset ${opset} outside 17..21`);
    return {
      irVersion,
      producerName: 'snout',
      opsetImport: [{ domain: '', version: opset }, ...[...this.domains].map((domain) => ({ domain, version: 1 }))],
      graph: {
        name: this.name,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
        node: this.nodes,
      },
    };
  }

  /** Serialized ModelProto bytes, ready for InferenceSession.create. */
  serialize(options: SerializeOptions = {}): Uint8Array {
    return onnx.ModelProto.encode(onnx.ModelProto.create(this.toModel(options))).finish();
  }

  private claim(name: string): void {
    if (this.reserved.delete(name)) return;
    if (this.used.has(name)) throw new Error(`graph ${this.name}: value name "${name}" used twice`);
    this.used.add(name);
  }
}
