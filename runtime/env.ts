// Environment access that works on Deno and Bun, and never throws.
export function env(name: string): string | undefined {
  const g = globalThis as {
    Deno?: { env: { get(n: string): string | undefined } };
    process?: { env: Record<string, string | undefined> };
  };
  try {
    return g.Deno ? g.Deno.env.get(name) : g.process?.env[name];
  } catch {
    return undefined; // --allow-env not granted
  }
}

// Sets an environment variable of this process (inherited by the processes it starts).
export function setEnv(name: string, value: string): void {
  const g = globalThis as {
    Deno?: { env: { set(n: string, v: string): void } };
    process?: { env: Record<string, string | undefined> };
  };
  if (g.Deno) g.Deno.env.set(name, value);
  else if (g.process) g.process.env[name] = value;
}
