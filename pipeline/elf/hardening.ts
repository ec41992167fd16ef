import type { Toolchain } from '../toolchain/toolchain.js';
import { objectKind, type ElfInfo, type ElfSymbol, type ObjectKind } from './read.js';

export type Libc = Toolchain['libc'];

export const HARDENING_PROPERTIES = ['pie', 'relro', 'bindNow', 'stackProtector', 'nxStack', 'noWX', 'noTextrel', 'fortify'] as const;
export type HardeningProperty = (typeof HARDENING_PROPERTIES)[number];

export type Verdict = 'yes' | 'no' | 'n/a';
export interface Finding {
  value: Verdict;
  /** What in the object decided the value, e.g. "no PT_GNU_RELRO segment". */
  reason: string;
}
export type Hardening = Record<HardeningProperty, Finding>;

const yes = (reason: string): Finding => ({ value: 'yes', reason });
const no = (reason: string): Finding => ({ value: 'no', reason });
const notApplicable = (reason: string): Finding => ({ value: 'n/a', reason });

/** What can be read off one object about how it was compiled and linked. */
export function hardeningOf(info: ElfInfo, libc: Libc): Hardening {
  const kind = objectKind(info);
  const symbols = [...info.dynamicSymbols, ...(info.symbols ?? [])];
  if (kind === 'relocatable') {
    const unlinked = notApplicable('relocatable object: not linked yet');
    return {
      pie: unlinked, relro: unlinked, bindNow: unlinked, nxStack: unlinked, noWX: unlinked, noTextrel: unlinked,
      stackProtector: stackProtectorOf(info, kind, symbols),
      fortify: fortifyOf(libc, symbols),
    };
  }
  return {
    pie: pieOf(info, kind),
    relro: info.programHeaders.some((ph) => ph.type === 'GNU_RELRO') ? yes('PT_GNU_RELRO segment') : no('no PT_GNU_RELRO segment'),
    bindNow: bindNowOf(info),
    stackProtector: stackProtectorOf(info, kind, symbols),
    nxStack: nxStackOf(info),
    noWX: noWXOf(info),
    noTextrel: noTextrelOf(info),
    fortify: fortifyOf(libc, symbols),
  };
}

function pieOf(info: ElfInfo, kind: ObjectKind): Finding {
  if (kind === 'library') return notApplicable('shared library: position-independent by nature');
  if (info.type === 'EXEC') return no('ET_EXEC: loaded at a fixed address');
  return info.dynamic?.flags1.pie ? yes('ET_DYN with DF_1_PIE') : yes('ET_DYN with PT_INTERP');
}

function bindNowOf(info: ElfInfo): Finding {
  const dynamic = info.dynamic;
  if (!dynamic) return notApplicable('statically linked: nothing to bind');
  if (dynamic.flags.bindNow) return yes('DT_FLAGS has BIND_NOW');
  if (dynamic.flags1.now) return yes('DT_FLAGS_1 has NOW');
  if (dynamic.bindNowEntry) return yes('DT_BIND_NOW');
  return no('lazy binding: no BIND_NOW in DT_FLAGS or NOW in DT_FLAGS_1');
}

function nxStackOf(info: ElfInfo): Finding {
  const stack = info.programHeaders.find((ph) => ph.type === 'GNU_STACK');
  if (!stack) return no('no PT_GNU_STACK: the stack defaults to executable');
  return stack.flags.execute ? no('PT_GNU_STACK is executable') : yes('PT_GNU_STACK is not executable');
}

/** PT_GNU_STACK is left to nxStack, so an executable stack is reported once, under its own name. */
function noWXOf(info: ElfInfo): Finding {
  const both = info.programHeaders.filter((ph) => ph.type !== 'GNU_STACK' && ph.flags.write && ph.flags.execute);
  if (both.length === 0) return yes('no segment is both writable and executable');
  return no(`writable and executable: ${both.map((ph) => `${ph.type} at 0x${ph.vaddr.toString(16)}`).join(', ')}`);
}

function noTextrelOf(info: ElfInfo): Finding {
  const dynamic = info.dynamic;
  if (!dynamic) return yes('statically linked: no load-time relocations');
  if (dynamic.textrelEntry) return no('DT_TEXTREL: the loader must write into code pages');
  if (dynamic.flags.textrel) return no('DT_FLAGS has TEXTREL: the loader must write into code pages');
  return yes('no DT_TEXTREL');
}

/**
 * A function with a protected frame calls __stack_chk_fail (i386 PIC code goes through the
 * local __stack_chk_fail_local; some i386 libcs keep the canary in __stack_chk_guard).
 * An object with no function that needs a canary has no reference either: the two look alike.
 */
function stackProtectorOf(info: ElfInfo, kind: ObjectKind, symbols: ElfSymbol[]): Finding {
  const names = ['__stack_chk_fail', '__stack_chk_fail_local', ...(info.machine === 'i386' ? ['__stack_chk_guard'] : [])];
  const referenced = symbols.find((s) => !s.defined && names.includes(s.name));
  if (referenced) return yes(`references ${referenced.name}`);
  const defined = symbols.find((s) => s.defined && names.includes(s.name));
  if (defined) return yes(kind === 'library' ? `defines ${defined.name} (libc itself)` : `defines ${defined.name} (statically linked)`);
  return no(symbols.length === 0 ? 'no __stack_chk_fail reference (no symbol table left to look in)' : 'no __stack_chk_fail reference');
}

/** FORTIFY_SOURCE turns checked calls into glibc's __*_chk variants; uClibc-ng has none to call. */
function fortifyOf(libc: Libc, symbols: ElfSymbol[]): Finding {
  if (libc === 'uclibc-ng') return notApplicable('uClibc-ng has no FORTIFY');
  const checked = symbols.find((s) => !s.defined && /^__\w+_chk$/.test(s.name));
  return checked ? yes(`references ${checked.name}`) : no('no __*_chk reference');
}
