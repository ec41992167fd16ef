import { InputError } from '../errors.js';

/** Where a string table lies in the file. */
export interface StringTable {
  offset: number;
  size: number;
}

export interface ElfSymbol {
  name: string;
  /**
   * The `@VERSION` (or `@@VERSION`) that ld appends to .symtab names, split off so names compare
   * plainly. Dynamic symbols keep theirs in DT_VERSYM, which is not read: undefined there.
   */
  version: string | undefined;
  /** st_shndx is not SHN_UNDEF: this object provides it rather than needing it. */
  defined: boolean;
  binding: 'local' | 'global' | 'weak' | 'unique' | 'other';
  type: 'notype' | 'object' | 'func' | 'section' | 'file' | 'common' | 'tls' | 'ifunc' | 'other';
}

/**
 * Bounds-checked little-endian reads. Every table is checked as a whole before it is read, so
 * a cut-short file fails with a message saying which table lies past the end.
 */
export class ElfBytes {
  readonly view: DataView;
  constructor(
    readonly buffer: Buffer,
    readonly name: string,
    readonly wide: boolean,
  ) {
    this.view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  check(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.buffer.length) {
      throw truncated(this.name, `${what} (${length} bytes at offset ${offset}) lies past the end of the file (${this.buffer.length} bytes)`);
    }
  }

  u8(offset: number): number {
    return this.view.getUint8(offset);
  }
  u16(offset: number): number {
    return this.view.getUint16(offset, true);
  }
  u32(offset: number): number {
    return this.view.getUint32(offset, true);
  }
  /** An address or size: 4 bytes in ELF32, 8 in ELF64. Past 2^53 it is garbage, which the bounds checks catch. */
  word(offset: number): number {
    return this.wide ? Number(this.view.getBigUint64(offset, true)) : this.view.getUint32(offset, true);
  }

  /** A NUL-terminated string inside a string table. */
  string(table: StringTable, index: number, what: string): string {
    const start = table.offset + index;
    const end = this.buffer.indexOf(0, start);
    if (index >= table.size || end < 0 || end >= table.offset + table.size) throw truncated(this.name, `${what} (index ${index}) runs past its string table`);
    return this.buffer.toString('utf8', start, end);
  }
}

export function truncated(name: string, detail: string): InputError {
  return new InputError(`${name}: truncated or damaged ELF object: ${detail}`, { hint: 'The file was cut short or corrupted; rebuild it (or fetch it again) and rerun.' });
}

/** Symbol entries; index 0 is the reserved null symbol, and unnamed ones (sections, files) are skipped. */
export function readSymbols(bytes: ElfBytes, offset: number, count: number, entsize: number, strings: StringTable, what: string): ElfSymbol[] {
  bytes.check(offset, count * entsize, `symbol table ${what}`);
  const symbols: ElfSymbol[] = [];
  for (let i = 1; i < count; i++) {
    const o = offset + i * entsize;
    const nameIndex = bytes.u32(o);
    if (nameIndex === 0) continue;
    const info = bytes.u8(bytes.wide ? o + 4 : o + 12);
    const shndx = bytes.u16(bytes.wide ? o + 6 : o + 14);
    const [name, version] = splitVersion(bytes.string(strings, nameIndex, `a name in ${what}`));
    symbols.push({
      name,
      version,
      defined: shndx !== 0,
      binding: BINDINGS[info >> 4] ?? 'other',
      type: SYMBOL_TYPES[info & 0xf] ?? 'other',
    });
  }
  return symbols;
}

function splitVersion(raw: string): [string, string | undefined] {
  const at = raw.indexOf('@', 1);
  return at < 0 ? [raw, undefined] : [raw.slice(0, at), raw.slice(at).replace(/^@+/, '')];
}

const BINDINGS: Record<number, ElfSymbol['binding']> = { 0: 'local', 1: 'global', 2: 'weak', 10: 'unique' };
const SYMBOL_TYPES: Record<number, ElfSymbol['type']> = { 0: 'notype', 1: 'object', 2: 'func', 3: 'section', 4: 'file', 5: 'common', 6: 'tls', 10: 'ifunc' };

