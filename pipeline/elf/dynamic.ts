import type { ProgramHeader } from './read.js';
import { readSymbols, truncated, type ElfBytes, type ElfSymbol, type StringTable } from './tables.js';

/** What the dynamic section (PT_DYNAMIC) tells the loader, read without section headers. */
export interface DynamicInfo {
  /** DT_NEEDED sonames, in load order. */
  needed: string[];
  soname: string | undefined;
  rpath: string[];
  runpath: string[];
  /** The old-style DT_BIND_NOW entry. */
  bindNowEntry: boolean;
  /** The old-style DT_TEXTREL entry. */
  textrelEntry: boolean;
  flags: { bindNow: boolean; textrel: boolean; value: number };
  flags1: { now: boolean; pie: boolean; value: number };
  /** Virtual addresses (and sizes) of the tables the dynamic entries point at. */
  tables: { strtab?: number; strsz?: number; symtab?: number; syment?: number; hash?: number; gnuHash?: number };
}

const DT = {
  NULL: 0, NEEDED: 1, HASH: 4, STRTAB: 5, SYMTAB: 6, STRSZ: 10, SYMENT: 11, SONAME: 14, RPATH: 15,
  TEXTREL: 22, BIND_NOW: 24, RUNPATH: 29, FLAGS: 30, GNU_HASH: 0x6ffffef5, FLAGS_1: 0x6ffffffb,
} as const;
const DF_TEXTREL = 0x4;
const DF_BIND_NOW = 0x8;
const DF_1_NOW = 0x1;
const DF_1_PIE = 0x08000000;

export function readDynamic(bytes: ElfBytes, header: ProgramHeader, programHeaders: ProgramHeader[]): DynamicInfo {
  bytes.check(header.offset, header.filesz, 'the dynamic section (PT_DYNAMIC)');
  const half = bytes.wide ? 8 : 4;
  const entries: { tag: number; value: number }[] = [];
  for (let o = header.offset; o + 2 * half <= header.offset + header.filesz; o += 2 * half) {
    const tag = bytes.word(o);
    if (tag === DT.NULL) break;
    entries.push({ tag, value: bytes.word(o + half) });
  }
  const first = (tag: number) => entries.find((e) => e.tag === tag)?.value;
  const all = (tag: number) => entries.filter((e) => e.tag === tag).map((e) => e.value);
  const tables = {
    strtab: first(DT.STRTAB),
    strsz: first(DT.STRSZ),
    symtab: first(DT.SYMTAB),
    syment: first(DT.SYMENT),
    hash: first(DT.HASH),
    gnuHash: first(DT.GNU_HASH),
  };

  let strings: StringTable | undefined;
  const string = (index: number, what: string): string => {
    if (!strings) {
      if (tables.strtab === undefined || tables.strsz === undefined) throw truncated(bytes.name, `the dynamic section has ${what} but no DT_STRTAB/DT_STRSZ`);
      strings = { offset: fileOffset(bytes, programHeaders, tables.strtab, 'DT_STRTAB'), size: tables.strsz };
      bytes.check(strings.offset, strings.size, 'the dynamic string table');
    }
    return bytes.string(strings, index, what);
  };
  const pathList = (tag: number, what: string) => all(tag).flatMap((index) => string(index, what).split(':')).filter((dir) => dir.length > 0);
  const sonameIndex = first(DT.SONAME);
  const flags = first(DT.FLAGS) ?? 0;
  const flags1 = first(DT.FLAGS_1) ?? 0;
  return {
    needed: all(DT.NEEDED).map((index) => string(index, 'DT_NEEDED')),
    soname: sonameIndex === undefined ? undefined : string(sonameIndex, 'DT_SONAME'),
    rpath: pathList(DT.RPATH, 'DT_RPATH'),
    runpath: pathList(DT.RUNPATH, 'DT_RUNPATH'),
    bindNowEntry: first(DT.BIND_NOW) !== undefined,
    textrelEntry: first(DT.TEXTREL) !== undefined,
    flags: { bindNow: (flags & DF_BIND_NOW) !== 0, textrel: (flags & DF_TEXTREL) !== 0, value: flags },
    flags1: { now: (flags1 & DF_1_NOW) !== 0, pie: (flags1 & DF_1_PIE) !== 0, value: flags1 },
    tables,
  };
}

/** The dynamic symbol table found through DT_SYMTAB: what a stripped, section-less object still has. */
export function dynamicSymbols(bytes: ElfBytes, dynamic: DynamicInfo, programHeaders: ProgramHeader[]): ElfSymbol[] {
  const { symtab, strtab, strsz } = dynamic.tables;
  if (symtab === undefined || strtab === undefined || strsz === undefined) return [];
  const entsize = dynamic.tables.syment ?? (bytes.wide ? 24 : 16);
  const strings = { offset: fileOffset(bytes, programHeaders, strtab, 'DT_STRTAB'), size: strsz };
  bytes.check(strings.offset, strings.size, 'the dynamic string table');
  const count = symbolCount(bytes, dynamic, programHeaders, entsize);
  return readSymbols(bytes, fileOffset(bytes, programHeaders, symtab, 'DT_SYMTAB'), count, entsize, strings, 'DT_SYMTAB');
}

/**
 * The dynamic section does not say how many symbols there are; the hash tables do. DT_HASH's
 * nchain is the count; DT_GNU_HASH's is one past the end of the chain of the highest bucket.
 */
function symbolCount(bytes: ElfBytes, dynamic: DynamicInfo, programHeaders: ProgramHeader[], entsize: number): number {
  const { hash, gnuHash, symtab, strtab } = dynamic.tables;
  if (hash !== undefined) {
    const o = fileOffset(bytes, programHeaders, hash, 'DT_HASH');
    bytes.check(o, 8, 'the DT_HASH header');
    return bytes.u32(o + 4);
  }
  if (gnuHash !== undefined) {
    const o = fileOffset(bytes, programHeaders, gnuHash, 'DT_GNU_HASH');
    bytes.check(o, 16, 'the DT_GNU_HASH header');
    const nbuckets = bytes.u32(o);
    const symoffset = bytes.u32(o + 4);
    const buckets = o + 16 + bytes.u32(o + 8) * (bytes.wide ? 8 : 4);
    bytes.check(buckets, nbuckets * 4, 'the DT_GNU_HASH buckets');
    let last = 0;
    for (let i = 0; i < nbuckets; i++) last = Math.max(last, bytes.u32(buckets + 4 * i));
    if (last < symoffset) return symoffset;
    const chains = buckets + nbuckets * 4;
    for (let index = last; ; index++) {
      const c = chains + (index - symoffset) * 4;
      bytes.check(c, 4, 'the DT_GNU_HASH chains');
      if ((bytes.u32(c) & 1) !== 0) return index + 1;
    }
  }
  // No hash table at all: linkers place .dynstr right after .dynsym, so the gap bounds the table.
  return symtab !== undefined && strtab !== undefined && strtab > symtab ? Math.floor((strtab - symtab) / entsize) : 0;
}

/** Where a virtual address from the dynamic section lies in the file, through the PT_LOAD segments. */
function fileOffset(bytes: ElfBytes, programHeaders: ProgramHeader[], address: number, what: string): number {
  const segment = programHeaders.find((ph) => ph.type === 'LOAD' && address >= ph.vaddr && address < ph.vaddr + ph.filesz);
  if (!segment) throw truncated(bytes.name, `${what} address 0x${address.toString(16)} lies in no loadable segment`);
  return segment.offset + (address - segment.vaddr);
}
