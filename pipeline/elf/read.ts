import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { dynamicSymbols, readDynamic, type DynamicInfo } from './dynamic.js';
import { ElfBytes, readSymbols, truncated, type ElfSymbol } from './tables.js';

export type { DynamicInfo } from './dynamic.js';
export type { ElfSymbol } from './tables.js';

export type ElfClass = 'ELF32' | 'ELF64';
export type ElfMachine = 'i386' | 'x86_64';
export type ElfType = 'REL' | 'EXEC' | 'DYN';
/** Objects of one ABI can link only with each other; x32 is ELF32 on x86_64. */
export type Abi = 'i386' | 'x86_64' | 'x32';
export type ObjectKind = 'executable' | 'library' | 'relocatable';

export interface ProgramHeader {
  /** PT_ name without the prefix (`LOAD`, `GNU_STACK`, …), or the number in hex. */
  type: string;
  flags: { read: boolean; write: boolean; execute: boolean };
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
}

export interface Section {
  name: string;
  type: number;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

export interface ElfInfo {
  /** The file the object was read from, for messages. */
  name: string;
  class: ElfClass;
  machine: ElfMachine;
  abi: Abi;
  type: ElfType;
  /** PT_INTERP: the dynamic loader the kernel starts for this object. */
  interpreter: string | undefined;
  programHeaders: ProgramHeader[];
  /** From PT_DYNAMIC; undefined for static and relocatable objects. */
  dynamic: DynamicInfo | undefined;
  dynamicSymbols: ElfSymbol[];
  /** .symtab; undefined when stripped. */
  symbols: ElfSymbol[] | undefined;
  /** Empty when the section header table is gone (sstrip). */
  sections: Section[];
}

/** An ELF object and where it was read from: the unit the linkage graph and the audit work on. */
export interface ElfObject {
  path: string;
  info: ElfInfo;
}

const MACHINES: Record<number, ElfMachine> = { 3: 'i386', 62: 'x86_64' };
const TYPES: Record<number, ElfType> = { 1: 'REL', 2: 'EXEC', 3: 'DYN' };
const SEGMENT_TYPES: Record<number, string> = {
  0: 'NULL', 1: 'LOAD', 2: 'DYNAMIC', 3: 'INTERP', 4: 'NOTE', 5: 'SHLIB', 6: 'PHDR', 7: 'TLS',
  0x6474e550: 'GNU_EH_FRAME', 0x6474e551: 'GNU_STACK', 0x6474e552: 'GNU_RELRO', 0x6474e553: 'GNU_PROPERTY',
};
const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const SHT_NOBITS = 8;

export async function readElf(path: string): Promise<ElfInfo> {
  let buffer: Buffer;
  try {
    buffer = await readFile(path);
  } catch (error) {
    throw new InputError(`cannot read ELF object ${path}: ${(error as Error).message}`, { cause: error });
  }
  return parseElf(buffer, path);
}

export function parseElf(data: Uint8Array, name: string): ElfInfo {
  const buffer = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buffer.length < 4 || buffer.readUInt32BE(0) !== 0x7f454c46) {
    throw new InputError(`${name} is not an ELF object (no \\x7fELF magic)`, { hint: 'Only ELF executables, shared libraries and object files can be read; is this a script or a linker script?' });
  }
  if (buffer.length < 16) throw truncated(name, 'the ELF identification (16 bytes) is incomplete');
  const elfClass = buffer[4] === 1 ? 'ELF32' : buffer[4] === 2 ? 'ELF64' : undefined;
  if (!elfClass) throw new InputError(`${name}: unknown ELF class ${buffer[4]}`, { hint: 'The file is damaged or not an object for i386 or x86_64.' });
  if (buffer[5] !== 1) throw new InputError(`${name} is a big-endian ELF object; only little-endian i386 and x86_64 objects are supported`);
  const bytes = new ElfBytes(buffer, name, elfClass === 'ELF64');
  try {
    return parseHeaders(bytes, elfClass);
  } catch (error) {
    // The explicit checks name the table; this catches any read they did not foresee.
    if (error instanceof RangeError) throw truncated(name, error.message);
    throw error;
  }
}

function parseHeaders(bytes: ElfBytes, elfClass: ElfClass): ElfInfo {
  const { name, wide } = bytes;
  bytes.check(0, wide ? 64 : 52, 'the ELF header');
  const type = TYPES[bytes.u16(16)];
  if (!type) throw new InputError(`${name}: ELF type ${bytes.u16(16)} is not an executable, shared library or object file`, { hint: 'Core dumps and processor-specific types cannot be audited.' });
  const machine = MACHINES[bytes.u16(18)];
  if (!machine) throw new InputError(`${name}: ELF machine ${bytes.u16(18)} is not i386 or x86_64`, { hint: 'Only i386 and x86_64 objects go into tor-ramdisk images; was it built with the wrong compiler?' });
  const abi: Abi = machine === 'i386' ? 'i386' : elfClass === 'ELF64' ? 'x86_64' : 'x32';

  const at = wide ? { phoff: 32, shoff: 40, phentsize: 54, phnum: 56, shentsize: 58, shnum: 60, shstrndx: 62 } : { phoff: 28, shoff: 32, phentsize: 42, phnum: 44, shentsize: 46, shnum: 48, shstrndx: 50 };
  const shoff = bytes.word(at.shoff);
  const shentsize = bytes.u16(at.shentsize);
  // Extended numbering: counts that do not fit 16 bits live in section header 0.
  const section0 = shoff !== 0 ? readSectionHeader(bytes, shoff, shentsize, 0) : undefined;
  let phnum = bytes.u16(at.phnum);
  if (phnum === 0xffff && section0) phnum = section0.info;
  let shnum = shoff === 0 ? 0 : bytes.u16(at.shnum);
  if (shnum === 0 && section0) shnum = section0.size;
  let shstrndx = bytes.u16(at.shstrndx);
  if (shstrndx === 0xffff && section0) shstrndx = section0.link;

  const programHeaders = readProgramHeaders(bytes, bytes.word(at.phoff), bytes.u16(at.phentsize), phnum);
  const sections = readSections(bytes, shoff, shentsize, shnum, shstrndx);
  const interp = programHeaders.find((ph) => ph.type === 'INTERP');
  let interpreter: string | undefined;
  if (interp) {
    bytes.check(interp.offset, interp.filesz, 'PT_INTERP');
    interpreter = bytes.string({ offset: interp.offset, size: interp.filesz }, 0, 'PT_INTERP');
  }
  const dynamicHeader = programHeaders.find((ph) => ph.type === 'DYNAMIC');
  const dynamic = dynamicHeader ? readDynamic(bytes, dynamicHeader, programHeaders) : undefined;

  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  const dynsym = sections.find((s) => s.type === SHT_DYNSYM);
  return {
    name,
    class: elfClass,
    machine,
    abi,
    type,
    interpreter,
    programHeaders,
    dynamic,
    // The section is exact when present; without section headers the dynamic entries locate the table.
    dynamicSymbols: dynsym ? symbolSection(bytes, dynsym, sections) : dynamic ? dynamicSymbols(bytes, dynamic, programHeaders) : [],
    symbols: symtab ? symbolSection(bytes, symtab, sections) : undefined,
    sections,
  };
}

function readProgramHeaders(bytes: ElfBytes, phoff: number, phentsize: number, phnum: number): ProgramHeader[] {
  if (phnum === 0) return [];
  bytes.check(phoff, phentsize * phnum, 'the program header table');
  const headers: ProgramHeader[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    const rawType = bytes.u32(o);
    const flags = bytes.u32(bytes.wide ? o + 4 : o + 24);
    headers.push({
      type: SEGMENT_TYPES[rawType] ?? `0x${rawType.toString(16)}`,
      flags: { read: (flags & 4) !== 0, write: (flags & 2) !== 0, execute: (flags & 1) !== 0 },
      offset: bytes.word(bytes.wide ? o + 8 : o + 4),
      vaddr: bytes.word(bytes.wide ? o + 16 : o + 8),
      filesz: bytes.word(bytes.wide ? o + 32 : o + 16),
      memsz: bytes.word(bytes.wide ? o + 40 : o + 20),
    });
  }
  return headers;
}

function readSectionHeader(bytes: ElfBytes, shoff: number, shentsize: number, index: number) {
  const o = shoff + index * shentsize;
  bytes.check(o, bytes.wide ? 64 : 40, `section header ${index}`);
  return bytes.wide
    ? { name: bytes.u32(o), type: bytes.u32(o + 4), offset: bytes.word(o + 24), size: bytes.word(o + 32), link: bytes.u32(o + 40), info: bytes.u32(o + 44), entsize: bytes.word(o + 56) }
    : { name: bytes.u32(o), type: bytes.u32(o + 4), offset: bytes.u32(o + 16), size: bytes.u32(o + 20), link: bytes.u32(o + 24), info: bytes.u32(o + 28), entsize: bytes.u32(o + 36) };
}

function readSections(bytes: ElfBytes, shoff: number, shentsize: number, shnum: number, shstrndx: number): Section[] {
  if (shnum === 0) return [];
  bytes.check(shoff, shentsize * shnum, 'the section header table');
  const raw = Array.from({ length: shnum }, (_, i) => readSectionHeader(bytes, shoff, shentsize, i));
  const names = raw[shstrndx];
  if (names) bytes.check(names.offset, names.size, 'the section name table');
  return raw.map((s) => ({
    name: names && s.name < names.size ? bytes.string(names, s.name, 'a section name') : '',
    type: s.type,
    offset: s.offset,
    size: s.type === SHT_NOBITS ? 0 : s.size,
    link: s.link,
    entsize: s.entsize,
  }));
}

function symbolSection(bytes: ElfBytes, table: Section, sections: Section[]): ElfSymbol[] {
  const strings = sections[table.link];
  if (!strings) throw truncated(bytes.name, `symbol table ${table.name} links to missing section ${table.link}`);
  bytes.check(strings.offset, strings.size, `string table ${strings.name}`);
  const entsize = table.entsize || (bytes.wide ? 24 : 16);
  return readSymbols(bytes, table.offset, Math.floor(table.size / entsize), entsize, strings, table.name);
}

/**
 * What the object is for: PIEs and shared libraries are both ET_DYN. DF_1_PIE settles it; without
 * it, a SONAME means a library (glibc's libc.so.6 has a PT_INTERP yet is one), a PT_INTERP a PIE.
 */
export function objectKind(info: ElfInfo): ObjectKind {
  if (info.type === 'REL') return 'relocatable';
  if (info.type === 'EXEC' || info.dynamic?.flags1.pie) return 'executable';
  if (info.dynamic?.soname !== undefined) return 'library';
  return info.interpreter !== undefined ? 'executable' : 'library';
}
