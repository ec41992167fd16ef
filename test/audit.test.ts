import test from 'ava';
import { execa } from 'execa';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { auditObjects, enforceAuditPolicy, formatAudit, loadAuditPolicy, parseAuditPolicy, policyViolations } from '../pipeline/elf/audit.js';
import { hardeningOf, type Hardening, type HardeningProperty, type Verdict } from '../pipeline/elf/hardening.js';
import { readElf } from '../pipeline/elf/read.js';
import { BuildError, InputError } from '../pipeline/errors.js';

// Hardened and deliberately unhardened builds from the host's compilers, audited for real.
const fixture = (name: string) => fileURLToPath(new URL(`../../test/fixtures/elf/${name}`, import.meta.url));
const abis = [
  { abi: 'x86_64', cc: 'gcc', strip: 'strip', libc: '/lib/x86_64-linux-gnu/libc.so.6' },
  { abi: 'i386', cc: 'i686-linux-gnu-gcc', strip: 'i686-linux-gnu-strip', libc: '/usr/i686-linux-gnu/lib/libc.so.6' },
] as const;

const HARDENED = ['-O2', '-fPIE', '-pie', '-fstack-protector-strong', '-Wl,-z,relro', '-Wl,-z,now', '-Wl,-z,noexecstack'];
const UNHARDENED = ['-O0', '-fno-stack-protector', '-no-pie', '-Wl,-z,execstack', '-Wl,-z,norelro'];
const LIBRARY = ['-O2', '-fPIC', '-shared', '-fstack-protector-strong', '-Wl,-z,relro', '-Wl,-z,now', '-Wl,-z,noexecstack'];

async function compile(cc: string, name: string, source: string, flags: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tor-ramdisk-audit-'));
  const out = join(dir, name);
  await execa(cc, [...flags, '-o', out, fixture(source)]);
  return out;
}

const values = (hardening: Hardening) => Object.fromEntries(Object.entries(hardening).map(([property, finding]) => [property, finding.value])) as Record<HardeningProperty, Verdict>;

for (const target of abis) {
  test(`${target.abi}: a hardened build has every property, stripped or not`, async (t) => {
    const app = await compile(target.cc, 'greet-hardened', 'greet.c', HARDENED);
    const stripped = `${app}-stripped`;
    await execa(target.strip, ['-o', stripped, app]);
    for (const path of [app, stripped]) {
      const hardening = hardeningOf(await readElf(path), 'glibc');
      t.deepEqual(values(hardening), { pie: 'yes', relro: 'yes', bindNow: 'yes', stackProtector: 'yes', nxStack: 'yes', noWX: 'yes', noTextrel: 'yes', fortify: 'no' }, path);
      t.is(hardening.stackProtector.reason, 'references __stack_chk_fail');
      t.is(hardening.pie.reason, 'ET_DYN with DF_1_PIE');
    }
  });

  test(`${target.abi}: an unhardened build fails the audit, naming the binary and each missing property`, async (t) => {
    const policy = await loadAuditPolicy();
    const app = await compile(target.cc, 'greet-unhardened', 'greet.c', UNHARDENED);
    const rows = auditObjects([{ path: app, info: await readElf(app) }], 'uclibc-ng', policy);
    t.log(formatAudit(rows));
    t.deepEqual(values(rows[0]!.hardening), { pie: 'no', relro: 'no', bindNow: 'no', stackProtector: 'no', nxStack: 'no', noWX: 'yes', noTextrel: 'yes', fortify: 'n/a' });
    t.deepEqual(policyViolations(rows, policy).map((v) => v.property), ['pie', 'relro', 'bindNow', 'stackProtector', 'nxStack']);
    const error = t.throws(() => enforceAuditPolicy(rows, policy, { stage: 'tor' }), { instanceOf: BuildError });
    t.is(error!.exitCode, 4);
    t.is((error as BuildError).stage, 'tor');
    t.deepEqual(error!.message.split('\n'), [
      `hardening audit failed: 1 object lacks required properties (${policy.file}):`,
      `  ${app} (${target.abi} executable): pie: ET_EXEC: loaded at a fixed address`,
      `  ${app} (${target.abi} executable): relro: no PT_GNU_RELRO segment`,
      `  ${app} (${target.abi} executable): bindNow: lazy binding: no BIND_NOW in DT_FLAGS or NOW in DT_FLAGS_1`,
      `  ${app} (${target.abi} executable): stackProtector: no __stack_chk_fail reference`,
      `  ${app} (${target.abi} executable): nxStack: PT_GNU_STACK is executable`,
    ]);
  });

  test(`${target.abi}: a hardened library passes without a stack protector reference, and libc itself has one`, async (t) => {
    const policy = await loadAuditPolicy();
    const lib = await compile(target.cc, 'libA.so.1', 'liba.c', [...LIBRARY, '-Wl,-soname,libA.so.1']);
    const rows = auditObjects([{ path: lib, info: await readElf(lib) }, { path: target.libc, info: await readElf(target.libc) }], 'glibc', policy);
    t.log(formatAudit(rows));
    const [libA, libc] = rows as [(typeof rows)[0], (typeof rows)[0]];
    t.is(libA.kind, 'library');
    t.deepEqual(values(libA.hardening), { pie: 'n/a', relro: 'yes', bindNow: 'yes', stackProtector: 'no', nxStack: 'yes', noWX: 'yes', noTextrel: 'yes', fortify: 'no' });
    t.is(libA.hardening.pie.reason, 'shared library: position-independent by nature');
    t.deepEqual(policyViolations([libA], policy), [], 'the policy does not require a stack protector of libraries');
    t.is(libc.kind, 'library');
    t.deepEqual(libc.hardening.stackProtector, { value: 'yes', reason: 'defines __stack_chk_fail (libc itself)' });
  });

  test(`${target.abi}: a segment both writable and executable fails noWX`, async (t) => {
    const wx = await compile(target.cc, 'wx', 'wx.c', HARDENED);
    const hardening = hardeningOf(await readElf(wx), 'glibc');
    t.is(hardening.noWX.value, 'no');
    t.regex(hardening.noWX.reason, /^writable and executable: LOAD at 0x[0-9a-f]+$/);
    t.is(hardening.nxStack.value, 'yes', 'the stack is a separate matter');
  });
}

test('FORTIFY: glibc __*_chk calls are found; uClibc-ng has none to find', async (t) => {
  const fortified = await compile('gcc', 'greet-fortified', 'greet.c', [...HARDENED, '-D_FORTIFY_SOURCE=2']);
  const info = await readElf(fortified);
  t.deepEqual(hardeningOf(info, 'glibc').fortify, { value: 'yes', reason: 'references __snprintf_chk' });
  t.deepEqual(hardeningOf(info, 'uclibc-ng').fortify, { value: 'n/a', reason: 'uClibc-ng has no FORTIFY' });
});

test('i386: a non-PIC shared library has text relocations', async (t) => {
  const lib = await compile('i686-linux-gnu-gcc', 'libtextrel.so', 'textrel.c', ['-O2', '-shared', '-fno-PIC', '-Wl,-z,relro', '-Wl,-z,now']);
  const policy = await loadAuditPolicy();
  const rows = auditObjects([{ path: lib, info: await readElf(lib) }], 'uclibc-ng', policy);
  t.deepEqual(rows[0]!.hardening.noTextrel, { value: 'no', reason: 'DT_TEXTREL: the loader must write into code pages' });
  t.deepEqual(policyViolations(rows, policy).map((v) => `${v.path} ${v.property}`), [`${lib} noTextrel`]);
});

test('static executables: static-pie is PIE through DF_1_PIE; nothing to bind in either', async (t) => {
  const staticPie = await compile('gcc', 'greet-static-pie', 'greet.c', ['-O2', '-static-pie', '-fstack-protector-strong', '-Wl,-z,relro', '-Wl,-z,now']);
  const fixed = await compile('gcc', 'greet-static', 'greet.c', ['-O2', '-static']);
  const pie = hardeningOf(await readElf(staticPie), 'glibc');
  t.deepEqual(pie.pie, { value: 'yes', reason: 'ET_DYN with DF_1_PIE' });
  t.is(pie.bindNow.value, 'yes', 'static-pie still has a dynamic section for its own relocations');
  const exec = hardeningOf(await readElf(fixed), 'glibc');
  t.deepEqual(exec.pie, { value: 'no', reason: 'ET_EXEC: loaded at a fixed address' });
  t.deepEqual(exec.bindNow, { value: 'n/a', reason: 'statically linked: nothing to bind' });
});

test('formatAudit lines up one row per object and marks required properties that are missing', async (t) => {
  const policy = await loadAuditPolicy();
  const good = await compile('gcc', 'good', 'greet.c', HARDENED);
  const bad = await compile('gcc', 'bad', 'greet.c', UNHARDENED);
  const table = formatAudit(auditObjects([{ path: good, info: await readElf(good) }, { path: bad, info: await readElf(bad) }], 'uclibc-ng', policy));
  t.log(table);
  const [header, first, second] = table.split('\n');
  t.regex(header!, /^object\s+abi\s+kind\s+pie\s+relro\s+bindNow\s+stackProtector\s+nxStack\s+noWX\s+noTextrel\s+fortify$/);
  t.regex(first!, /good\s+x86_64\s+executable\s+yes\s+yes\s+yes\s+yes\s+yes\s+yes\s+yes\s+n\/a$/);
  t.regex(second!, /bad\s+x86_64\s+executable\s+NO\s+NO\s+NO\s+NO\s+NO\s+yes\s+yes\s+n\/a$/);
  t.is(header!.indexOf('pie'), first!.indexOf('yes'), 'columns line up');
  t.true(table.includes('stackProtector: no __stack_chk_fail reference (required)'));
});

test('the audit policy file is checked: unknown keys and properties name the file and the key', (t) => {
  const file = 'configs/audit-policy.json';
  t.throws(() => parseAuditPolicy({ required: { executable: ['pie', 'aslr'], library: [] } }, file), {
    instanceOf: InputError,
    message: `${file}: required.executable[1] is "aslr", not a hardening property`,
  });
  t.throws(() => parseAuditPolicy({ required: { executable: [], library: [], plugin: [] } }, file), { instanceOf: InputError, message: `${file}: unknown key "plugin" in required` });
  t.throws(() => parseAuditPolicy({ required: { executable: 'pie', library: [] } }, file), { message: `${file}: required.executable must be an array of property names` });
});

test('the shipped policy requires what the design asks, and never FORTIFY', async (t) => {
  const policy = await loadAuditPolicy();
  t.deepEqual(policy.required.executable, ['pie', 'relro', 'bindNow', 'stackProtector', 'nxStack', 'noWX', 'noTextrel']);
  t.deepEqual(policy.required.library, ['relro', 'bindNow', 'nxStack', 'noWX', 'noTextrel']);
  t.truthy(policy.why['library.stackProtector']);
  t.truthy(policy.why.fortify);
});
