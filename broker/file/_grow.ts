// Typed arrays that grow without holding two copies: past `BIG` elements an array lives in a
// resizable ArrayBuffer that reserves address space for `MAX_ELEMENTS` and grows in place (pages
// never written cost no memory, and nothing is copied). Smaller arrays are copied, and the old
// buffer is detached at once rather than left to the garbage collector.

/** Elements past which an array lives in a resizable buffer. */
const BIG = 1 << 16;
/** The elements a resizable buffer reserves room for (address space, not memory). */
const MAX_ELEMENTS = 2 ** 27;

/** The typed arrays this file grows. */
export type Column = Float64Array | Uint32Array | Int32Array | Uint16Array | Uint8Array;

interface ColumnClass<T extends Column> {
  new (buffer: ArrayBuffer): T;
  readonly BYTES_PER_ELEMENT: number;
}

/**
 * `a` with room for `n` elements and the same contents: the same array grown in place when its
 * buffer allows, else a new one (the old one's buffer is detached: do not keep `a`).
 */
export function grow<T extends Column>(a: T, n: number, of: ColumnClass<T>): T {
  const bpe = of.BYTES_PER_ELEMENT;
  const buf = a.buffer as ArrayBuffer;
  if (buf.resizable && n * bpe <= buf.maxByteLength) {
    buf.resize(n * bpe);
    return a;
  }
  const b = new of(
    n >= BIG
      ? new ArrayBuffer(n * bpe, { maxByteLength: Math.max(n, MAX_ELEMENTS) * bpe })
      : new ArrayBuffer(n * bpe),
  );
  b.set(a as never);
  free(a);
  return b;
}

/** `a` cut to its first `n` elements, giving the memory of the rest back where it can. */
export function shrink<T extends Column>(a: T, n: number, of: ColumnClass<T>): T {
  const buf = a.buffer as ArrayBuffer;
  if (buf.resizable) {
    buf.resize(n * of.BYTES_PER_ELEMENT);
    return a;
  }
  const b = a.slice(0, n) as T;
  free(a);
  return b;
}

/** Releases the buffer of `a` now (it reads as empty afterwards). */
export function free(a: Column): void {
  const buf = a.buffer as ArrayBuffer;
  if (!buf.resizable && typeof buf.transfer === "function" && !buf.detached) buf.transfer(0);
}

/** A new array of `n` elements (in a resizable buffer when big). */
export function column<T extends Column>(n: number, of: ColumnClass<T>): T {
  return grow(new of(new ArrayBuffer(0)), n, of);
}
