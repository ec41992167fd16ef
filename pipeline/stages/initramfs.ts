import { cp, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Stage, StageContext } from '../engine/stage.js';
import { BuildError, InputError } from '../errors.js';
import { auditObjects, enforceAuditPolicy, formatAudit, loadAuditPolicy } from '../elf/audit.js';
import { checkLinkage, installLibraries, linkageGraph, linkageRecord, resolveLibraries } from '../elf/linkage.js';
import { readElf } from '../elf/read.js';
import { newcArchive } from '../image/cpio.js';
import { elfFiles, treeEntries } from '../image/tree.js';
import { projectRoot } from '../paths.js';
import { readToolchain, type Toolchain } from '../toolchain/toolchain.js';

/** The sysroot's library directories, where the libc and the loader come from. */
function sysrootLibDirs(tc: Toolchain): string[] {
  if (tc.variant === 'host' && tc.arch === 'x86_64') return ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu'].map((d) => join(tc.sysroot, d));
  return ['lib', 'usr/lib'].map((d) => join(tc.sysroot, d));
}

/**
 * The root filesystem, as a reproducible xz-compressed newc cpio: the runtime from initramfs/,
 * what each package stage declares for the image (its `image`): its files, and of its
 * libraries exactly those the programs need; two device nodes, and a release file. Every ELF
 * object in it passes the hardening audit, or the build stops.
 */
export function initramfsStage(packages: readonly Stage[]): Stage {
  const contents = packages.flatMap((stage) => (stage.image ? [{ stage: stage.name, ...stage.image }] : []));
  const libraryStages = contents.flatMap(({ stage, libraries }) => (libraries ? [{ stage, libraries }] : []));
  return {
    name: 'initramfs',
    title: 'initramfs',
    definition: import.meta.url,
    deps: ['toolchain', ...contents.map((c) => c.stage)],
    config: ['arch', 'profile', 'toolchain.variant', 'logging.kernel', 'logging.userland', 'build.sourceDateEpoch'],
    files: ['initramfs', 'configs/audit-policy.json'],
    tools: [{ command: 'xz', package: 'xz-utils' }],
    async run(ctx) {
      if (ctx.config.get('logging.userland')) throw new InputError('logging.userland is true, but the image has no logging to turn on', { hint: 'Leave it locked to false.' });
      const tc = await readToolchain(ctx.deps.toolchain!.dir);
      const root = join(ctx.work, 'root');
      await cp(join(projectRoot, 'initramfs'), root, { recursive: true });
      for (const { stage, files = [] } of contents) {
        for (const path of files) await cp(join(ctx.deps[stage]!.dir, path), join(root, path), { recursive: true, verbatimSymlinks: true, force: true });
      }
      await writeFile(join(root, 'etc', 'tor-ramdisk-release'), releaseFile(ctx, tc));

      ctx.progress('resolving libraries');
      const executables = await elfFiles(root);
      const libraryDirs = libraryStages.map(({ stage, libraries }) => join(ctx.deps[stage]!.dir, libraries));
      const searchDirs = [...libraryDirs, ...sysrootLibDirs(tc)];
      const needed = await resolveLibraries(executables, searchDirs, { sysroot: tc.sysroot, stage: ctx.stage.name });
      await installLibraries(needed, root, '/lib');
      // The final tree must link among itself: every soname needed inside it is provided inside it.
      const objects = await Promise.all((await elfFiles(root)).map(async (path) => ({ path: path.slice(root.length), info: await readElf(path) })));
      const graphs = linkageGraph(objects);
      checkLinkage(graphs, { stage: ctx.stage.name });
      await writeFile(join(ctx.out, 'linkage.json'), `${JSON.stringify(linkageRecord(graphs), null, 2)}\n`);

      ctx.progress('auditing');
      const policy = await loadAuditPolicy();
      const rows = auditObjects(objects, tc.libc, policy);
      // The host variant's libc is Debian's, not ours: reported, but only what we built is held to the policy.
      const fromSysroot = needed.filter((n) => !libraryDirs.some((dir) => n.file.startsWith(`${dir}/`)));
      const foreign = new Set(tc.variant === 'uclibc' ? [] : fromSysroot.map((n) => (n.kind === 'interpreter' ? n.name : `/lib/${n.name}`)));
      const exempt = rows.filter((r) => foreign.has(r.path)).map((r) => r.path);
      const note = exempt.length > 0 ? `\nnot held to the policy (the ${tc.variant} toolchain's libc, not built here): ${exempt.join(', ')}\n` : '';
      await writeFile(join(ctx.out, 'audit.txt'), `${formatAudit(rows)}\n${note}`);
      await writeFile(join(ctx.out, 'audit.json'), `${JSON.stringify(rows, null, 2)}\n`);
      enforceAuditPolicy(rows.filter((r) => !foreign.has(r.path)), policy, { stage: ctx.stage.name });

      ctx.progress('writing the archive');
      await mkdir(join(root, 'dev'), { recursive: true });
      const entries = [
        ...(await treeEntries(root)),
        { path: 'dev/console', type: 'chardev' as const, mode: 0o600, major: 5, minor: 1 },
        { path: 'dev/null', type: 'chardev' as const, mode: 0o666, major: 1, minor: 3 },
      ];
      // No build path in the image: the stage cache's location must not reach a file.
      const storeRoot = dirname(dirname(dirname(ctx.deps.toolchain!.dir)));
      const leaked = entries.filter((e) => e.type === 'file' && e.data.includes(storeRoot)).map((e) => `/${e.path}`);
      if (leaked.length > 0) {
        throw new BuildError(`build paths (${storeRoot}/…) left in: ${leaked.join(', ')}`, ctx.stage.name, ctx.logPath, { hint: 'Build the package that installs them with -ffile-prefix-map, or strip them.' });
      }
      // What is in the image, for anyone reading the stage output: type, mode, size, path.
      const listing = [...entries]
        .sort((a, b) => (a.path < b.path ? -1 : 1))
        .map((e) => `${e.type.padEnd(8)} ${'mode' in e ? e.mode.toString(8).padStart(4, '0') : '0777'} ${String(e.type === 'file' ? e.data.length : 0).padStart(9)}  /${e.path}${e.type === 'symlink' ? ` -> ${e.target}` : ''}`);
      await writeFile(join(ctx.out, 'contents.txt'), `${listing.join('\n')}\n`);
      const cpio = join(ctx.out, 'initramfs.cpio');
      await writeFile(cpio, newcArchive(entries, Number(ctx.config.get('build.sourceDateEpoch'))));
      // crc32: the kernel's xz decoder checks nothing stronger; one thread: the same bytes every time.
      // The x86 BCJ filter before LZMA2 (the kernel decodes it: XZ_DEC_X86) makes the archive of
      // executables about 6 % smaller.
      await ctx.exec('xz', ['-T1', '--check=crc32', '--x86', '--lzma2=preset=9', cpio]);
    },
  };
}

function releaseFile(ctx: StageContext, tc: Toolchain): string {
  const unlocked = ctx.config.unlocked;
  return [
    `arch=${ctx.config.arch}`,
    `profile=${ctx.config.profile}`,
    `toolchain=${tc.variant} (${tc.target}, ${tc.libc})`,
    `unlocked=${unlocked.length > 0 ? unlocked.join(',') : 'none'}`,
    '',
  ].join('\n');
}
