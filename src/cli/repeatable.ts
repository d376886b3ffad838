/** A repeatable option's values in the order given (`--include a --include b`), for commander's argParser. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
