// Flag parsing shared by the benches (each takes a few `--name value` flags after `snout bench <name>`).

/** The value after `--name`, if given. */
export function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** A list of sizes such as "16k,65536": a k suffix means × 1024. */
export function sizes(list: string): number[] {
  return list.split(',').map((x) => Math.round(Number(x.replace(/k$/i, '')) * (/k$/i.test(x) ? 1024 : 1)));
}
