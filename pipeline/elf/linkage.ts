import { copyFile, lstat, mkdir, readlink, realpath, stat, symlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import { BuildError, InputError } from '../errors.js';
import { objectKind, readElf, type Abi, type ElfInfo, type ElfObject } from './read.js';

/** The NEEDED.ELF.2 idea for one ABI: who needs which soname, and who provides it. */
export interface LinkageGraph {
  abi: Abi;
  /** Object path → its DT_NEEDED sonames. */
  needs: Map<string, string[]>;
  /** Soname → paths of the objects that need it (the inverse of `needs`). */
  consumers: Map<string, string[]>;
  /** Soname → path of the shared object providing it (its DT_SONAME, else its file name). */
  providers: Map<string, string>;
}

export function linkageGraph(objects: ElfObject[]): Map<Abi, LinkageGraph> {
  const graphs = new Map<Abi, LinkageGraph>();
  for (const { path, info } of objects) {
    let graph = graphs.get(info.abi);
    if (!graph) graphs.set(info.abi, (graph = { abi: info.abi, needs: new Map(), consumers: new Map(), providers: new Map() }));
    const needed = info.dynamic?.needed ?? [];
    graph.needs.set(path, [...needed]);
    for (const soname of needed) graph.consumers.set(soname, [...(graph.consumers.get(soname) ?? []), path]);
    if (objectKind(info) !== 'library') continue;
    const soname = info.dynamic?.soname ?? basename(path);
    const other = graph.providers.get(soname);
    if (other !== undefined && other !== path) {
      throw new InputError(`${path} and ${other} both provide ${soname} (${info.abi})`, { hint: 'Only one of them can go into the image; remove the other.' });
    }
    graph.providers.set(soname, path);
  }
  return graphs;
}

export interface UnresolvedSoname {
  abi: Abi;
  soname: string;
  consumers: string[];
}

/** Sonames some object needs and no object of the same ABI provides. */
export function unresolvedSonames(graphs: Map<Abi, LinkageGraph>): UnresolvedSoname[] {
  const unresolved: UnresolvedSoname[] = [];
  for (const graph of graphs.values()) {
    for (const [soname, consumers] of graph.consumers) {
      if (!graph.providers.has(soname)) unresolved.push({ abi: graph.abi, soname, consumers });
    }
  }
  return unresolved.sort((a, b) => a.abi.localeCompare(b.abi) || a.soname.localeCompare(b.soname));
}

/** Fails, naming each consumer and soname, when the objects do not link among themselves. */
export function checkLinkage(graphs: Map<Abi, LinkageGraph>, options: { stage?: string } = {}): void {
  const unresolved = unresolvedSonames(graphs);
  if (unresolved.length === 0) return;
  const lines = unresolved.flatMap((u) => u.consumers.map((consumer) => `  ${consumer} needs ${u.soname} (${u.abi}), which no object provides`));
  throw new BuildError(`unresolved sonames:\n${lines.join('\n')}`, options.stage, undefined, {
    hint: 'Add the library that provides each soname to the image, or rebuild the consumer without it.',
  });
}

/** A file an executable needs at run time, and the name the loader will look for it by. */
export interface NeededFile {
  /** The DT_NEEDED soname to install under, or for the dynamic loader its PT_INTERP path. */
  name: string;
  kind: 'library' | 'interpreter';
  abi: Abi;
  /** The real file in the sysroot, symlinks followed. */
  file: string;
  /** Objects that need it: executables as given, libraries by their real file. */
  neededBy: string[];
  info: ElfInfo;
}

export interface ResolveOptions {
  /** The target's root: absolute RPATH/RUNPATH entries and PT_INTERP paths are looked up under it. */
  sysroot?: string;
  /** For error messages: the stage resolving. */
  stage?: string;
}

interface Loaded {
  file: string;
  /** $ORIGIN: the directory it was found in (the executable's real directory). */
  origin: string;
  info: ElfInfo;
  /** DT_RPATH directories of the objects that loaded it, up to the executable: ld.so searches them too. */
  loaderRpath: string[];
}

/**
 * Resolves, as the loader would, every DT_NEEDED of the executables and of what they pull in,
 * transitively: exactly the library files the image needs, and the dynamic loader.
 */
export async function resolveLibraries(executables: string[], searchDirs: string[], options: ResolveOptions = {}): Promise<NeededFile[]> {
  const fail = (message: string, hint: string) => new BuildError(message, options.stage, undefined, { hint });
  const found = new Map<string, NeededFile>();
  const cache: ElfCache = new Map();
  const sysroot = options.sysroot === undefined ? undefined : await realpath(options.sysroot).catch(() => options.sysroot!);
  const record = (name: string, kind: NeededFile['kind'], hit: { file: string; info: ElfInfo }, consumer: string): boolean => {
    const key = `${hit.info.abi}\0${name}`;
    const known = found.get(key);
    if (known && known.file !== hit.file) {
      throw fail(`${name} (${hit.info.abi}) resolves to both ${known.file} and ${hit.file} (for ${consumer})`, 'Fix the RPATH/RUNPATH or the search directories so every soname has one file.');
    }
    if (known) {
      if (!known.neededBy.includes(consumer)) known.neededBy.push(consumer);
      return false;
    }
    found.set(key, { name, kind, abi: hit.info.abi, file: hit.file, neededBy: [consumer], info: hit.info });
    return true;
  };

  const queue: Loaded[] = [];
  for (const executable of executables) {
    const info = await readElf(executable);
    const origin = dirname(await realpath(executable));
    queue.push({ file: executable, origin, info, loaderRpath: [] });
    if (info.interpreter === undefined) continue;
    const candidates = sysroot !== undefined ? [join(sysroot, info.interpreter)] : searchDirs.map((dir) => join(dir, basename(info.interpreter!)));
    const loader = await firstOf(candidates, info.abi, cache, sysroot);
    if (!loader) {
      throw fail(`${executable} asks for the dynamic loader ${info.interpreter}, which is not at ${candidates.join(', ')}`, 'Install the libc (with its loader) into the sysroot, or pass the sysroot that has it.');
    }
    if (record(info.interpreter, 'interpreter', loader, executable)) queue.push({ ...loader, loaderRpath: [] });
  }

  for (let item = queue.shift(); item; item = queue.shift()) {
    for (const soname of item.info.dynamic?.needed ?? []) {
      const dirs = searchPath(item, searchDirs, sysroot);
      const hit = await firstOf(dirs.map((dir) => join(dir, soname)), item.info.abi, cache, sysroot);
      if (!hit) {
        throw fail(`${item.file} needs ${soname} (${item.info.abi}), which is in none of: ${dirs.join(', ') || '(no directories)'}`, 'Build the package that provides it into the sysroot, or add its directory to the library search path.');
      }
      if (record(soname, 'library', hit, item.file)) queue.push({ ...hit, loaderRpath: [...expand(item.info.dynamic?.rpath ?? [], item.origin, sysroot), ...item.loaderRpath] });
    }
  }
  return [...found.values()].sort((a, b) => a.abi.localeCompare(b.abi) || a.name.localeCompare(b.name));
}

/**
 * ld.so's order: unless the object has a DT_RUNPATH, its DT_RPATH and those of its loaders up to
 * the executable; then its DT_RUNPATH (its own only); then the default directories.
 */
function searchPath(item: Loaded, searchDirs: string[], sysroot: string | undefined): string[] {
  const runpath = item.info.dynamic?.runpath ?? [];
  const rpath = runpath.length > 0 ? [] : [...expand(item.info.dynamic?.rpath ?? [], item.origin, sysroot), ...item.loaderRpath];
  return [...new Set([...rpath, ...expand(runpath, item.origin, sysroot), ...searchDirs])];
}

/**
 * $ORIGIN becomes the object's directory. Other absolute entries are target paths: looked up
 * under the sysroot, or dropped without one, so a host library never slips into the image.
 */
function expand(entries: string[], origin: string, sysroot: string | undefined): string[] {
  return entries.flatMap((entry) => {
    if (/^\$(ORIGIN|\{ORIGIN\})(\/|$)/.test(entry)) return [join(origin, entry.replace(/^\$(ORIGIN|\{ORIGIN\})/, ''))];
    if (isAbsolute(entry) && sysroot !== undefined) return [join(sysroot, entry)];
    return [];
  });
}

/** Real path → the object there, or undefined when it is not ELF; one per resolution, so a rebuilt file is read again. */
type ElfCache = Map<string, Promise<ElfInfo | undefined>>;

/** The first candidate that exists and is an ELF object of the ABI; ld.so too skips the others. */
async function firstOf(candidates: string[], abi: Abi, cache: ElfCache, sysroot: string | undefined): Promise<{ file: string; origin: string; info: ElfInfo } | undefined> {
  for (const candidate of candidates) {
    const file = await realFile(candidate, sysroot);
    if (!file || !(await stat(file)).isFile()) continue;
    let info = cache.get(file);
    if (!info) cache.set(file, (info = readElf(file).catch((error: unknown) => (error instanceof InputError ? undefined : Promise.reject(error)))));
    const read = await info;
    if (read?.abi === abi) return { file, origin: dirname(candidate), info: read };
  }
  return undefined;
}

/**
 * realpath, except that inside the sysroot an absolute symlink (lib64/ld-linux-x86-64.so.2 →
 * /lib/…) is followed within the sysroot, as on the target, never to the host's file.
 */
async function realFile(path: string, sysroot: string | undefined): Promise<string | undefined> {
  const inside = sysroot === undefined ? undefined : relative(sysroot, path);
  if (sysroot === undefined || sysroot === sep || inside === undefined || inside.startsWith('..') || isAbsolute(inside)) return realpath(path).catch(() => undefined);
  const pending = inside.split(sep).filter((part) => part.length > 0);
  let current = sysroot;
  for (let links = 0; pending.length > 0; ) {
    const part = pending.shift()!;
    if (part === '.' || (part === '..' && current === sysroot)) continue;
    if (part === '..') {
      current = dirname(current);
      continue;
    }
    const next = join(current, part);
    const info = await lstat(next).catch(() => undefined);
    if (!info) return undefined;
    if (!info.isSymbolicLink()) {
      current = next;
      continue;
    }
    if (++links > 40) return undefined;
    const target = await readlink(next);
    if (isAbsolute(target)) current = sysroot;
    pending.unshift(...target.split('/').filter((p) => p.length > 0));
  }
  return current;
}

/**
 * Copies the resolved files into an image root: the loader at its PT_INTERP path, libraries
 * under `libDir` by their soname. A file needed under two names (glibc's loader is also
 * libc.so.6's DT_NEEDED) is copied once; the second name is a relative symlink to it.
 * Returns the paths written, as paths inside the image.
 */
export async function installLibraries(files: NeededFile[], root: string, libDir = '/lib'): Promise<string[]> {
  const written = new Map<string, string>();
  const copies = new Map<string, string>();
  const ordered = [...files.filter((f) => f.kind === 'interpreter'), ...files.filter((f) => f.kind !== 'interpreter')];
  for (const needed of ordered) {
    const target = needed.kind === 'interpreter' ? needed.name : join(libDir, needed.name);
    const previous = written.get(target);
    if (previous === needed.file) continue;
    if (previous !== undefined) throw new BuildError(`both ${previous} and ${needed.file} would be installed as ${target}`, undefined, undefined, { hint: 'Install each ABI into its own image root.' });
    await mkdir(dirname(join(root, target)), { recursive: true });
    const copy = copies.get(needed.file);
    if (copy === undefined) {
      await copyFile(needed.file, join(root, target));
      copies.set(needed.file, target);
    } else {
      await symlink(relative(dirname(target), copy), join(root, target));
    }
    written.set(target, needed.file);
  }
  return [...written.keys()].sort();
}

/** The graphs as the initramfs stage records them (linkage.json): per ABI, needs and providers. */
export type LinkageRecord = Record<string, { needs: Record<string, string[]>; providers: Record<string, string> }>;

export function linkageRecord(graphs: Map<Abi, LinkageGraph>): LinkageRecord {
  const sorted = <T>(map: Map<string, T>) => Object.fromEntries([...map].sort(([a], [b]) => a.localeCompare(b)));
  return Object.fromEntries([...graphs].map(([abi, g]) => [abi, { needs: sorted(g.needs), providers: sorted(g.providers) }]));
}

/** object → needed sonames, one line per object; with `consumersOf`, the inverse for that soname. */
export function formatLinkage(record: LinkageRecord, consumersOf?: string): string {
  const lines: string[] = [];
  for (const [abi, { needs, providers }] of Object.entries(record)) {
    if (consumersOf === undefined) {
      const width = Math.max(...Object.keys(needs).map((p) => p.length));
      lines.push(`${abi}: ${Object.keys(needs).length} objects`);
      for (const [path, sonames] of Object.entries(needs)) lines.push(`  ${path.padEnd(width)}  → ${sonames.length > 0 ? sonames.join(', ') : '(nothing)'}`);
      continue;
    }
    const consumers = Object.entries(needs).filter(([, sonames]) => sonames.includes(consumersOf)).map(([path]) => path);
    if (consumers.length === 0 && providers[consumersOf] === undefined) continue;
    lines.push(`${consumersOf} (${abi}), provided by ${providers[consumersOf] ?? 'nothing'}, needed by ${consumers.length} object${consumers.length === 1 ? '' : 's'}`);
    for (const path of consumers) lines.push(`  ${path}`);
  }
  if (consumersOf !== undefined && lines.length === 0) {
    const known = [...new Set(Object.values(record).flatMap((g) => Object.keys(g.providers)))].sort();
    throw new InputError(`no object in the image provides or needs ${consumersOf}`, { hint: `Sonames in the image: ${known.join(', ')}` });
  }
  return lines.join('\n');
}
