import { readFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { BuildError, InputError } from '../errors.js';
import { projectRoot } from '../paths.js';
import { HARDENING_PROPERTIES, hardeningOf, type Finding, type Hardening, type HardeningProperty, type Libc } from './hardening.js';
import { objectKind, type Abi, type ElfObject, type ObjectKind } from './read.js';

/** Which properties each kind of object must have; the rest are reported only. */
export interface AuditPolicy {
  /** Where it was read from, for messages. */
  file: string;
  required: { executable: HardeningProperty[]; library: HardeningProperty[] };
  /** Why a property is not required somewhere, keyed `kind.property` or `property`. */
  why: Record<string, string>;
}

export interface AuditRow {
  path: string;
  abi: Abi;
  kind: ObjectKind;
  hardening: Hardening;
  /** The properties the policy requires of this object's kind. */
  required: HardeningProperty[];
}

export interface Violation {
  path: string;
  abi: Abi;
  kind: ObjectKind;
  property: HardeningProperty;
  finding: Finding;
}

export const defaultAuditPolicyPath = join(projectRoot, 'configs', 'audit-policy.json');

export async function loadAuditPolicy(path: string = defaultAuditPolicyPath): Promise<AuditPolicy> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new InputError(`cannot read the audit policy ${path}: ${(error as Error).message}`, { cause: error });
  }
  return parseAuditPolicy(data, path);
}

export function parseAuditPolicy(data: unknown, file: string): AuditPolicy {
  const root = object(data, file, '(top level)');
  allowKeys(root, ['required', 'why'], file, '(top level)');
  const required = object(root.required, file, 'required');
  allowKeys(required, ['executable', 'library'], file, 'required');
  const properties = (kind: 'executable' | 'library'): HardeningProperty[] => {
    const list = required[kind];
    if (!Array.isArray(list)) throw new InputError(`${file}: required.${kind} must be an array of property names`);
    return list.map((name: unknown, i) => {
      if (!HARDENING_PROPERTIES.includes(name as HardeningProperty)) {
        throw new InputError(`${file}: required.${kind}[${i}] is ${JSON.stringify(name)}, not a hardening property`, { hint: `Properties: ${HARDENING_PROPERTIES.join(', ')}` });
      }
      return name as HardeningProperty;
    });
  };
  const why = object(root.why ?? {}, file, 'why');
  for (const [key, text] of Object.entries(why)) {
    if (typeof text !== 'string' || text.length === 0) throw new InputError(`${file}: why.${key} must be a non-empty string`);
  }
  return { file, required: { executable: properties('executable'), library: properties('library') }, why: why as Record<string, string> };
}

/** One row per object: every property, and which of them its kind must have. */
export function auditObjects(objects: ElfObject[], libc: Libc, policy: AuditPolicy): AuditRow[] {
  return objects.map(({ path, info }) => {
    const kind = objectKind(info);
    return { path, abi: info.abi, kind, hardening: hardeningOf(info, libc), required: kind === 'relocatable' ? [] : policy.required[kind] };
  });
}

/** Required properties an object lacks. 'n/a' never violates: a static binary has nothing to bind now. */
export function policyViolations(rows: AuditRow[], policy: AuditPolicy): Violation[] {
  return rows.flatMap((row) => {
    const required = row.kind === 'relocatable' ? [] : policy.required[row.kind];
    return required
      .filter((property) => row.hardening[property].value === 'no')
      .map((property) => ({ path: row.path, abi: row.abi, kind: row.kind, property, finding: row.hardening[property] }));
  });
}

/** Fails with one line per violation, naming the object and the property. */
export function enforceAuditPolicy(rows: AuditRow[], policy: AuditPolicy, options: { stage?: string } = {}): void {
  const violations = policyViolations(rows, policy);
  if (violations.length === 0) return;
  const objects = new Set(violations.map((v) => v.path)).size;
  const lines = violations.map((v) => `  ${v.path} (${v.abi} ${v.kind}): ${v.property}: ${v.finding.reason}`);
  throw new BuildError(`hardening audit failed: ${objects} object${objects === 1 ? '' : 's'} lack${objects === 1 ? 's' : ''} required properties (${policy.file}):\n${lines.join('\n')}`, options.stage, undefined, {
    hint: "Build them with the toolchain's hardening flags (-fPIE -pie, -fstack-protector-strong, -Wl,-z,relro,-z,now, -Wl,-z,noexecstack) instead of the package's own.",
  });
}

/** A text table, one line per object; NO marks a required property that is missing. Reasons for each no follow. */
export function formatAudit(rows: AuditRow[]): string {
  const names = displayNames(rows.map((row) => row.path));
  const header = ['object', 'abi', 'kind', ...HARDENING_PROPERTIES];
  const body = rows.map((row, i) => [
    names[i]!,
    row.abi,
    row.kind,
    ...HARDENING_PROPERTIES.map((p) => (row.hardening[p].value === 'no' && row.required.includes(p) ? 'NO' : row.hardening[p].value)),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((cells) => cells[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  const reasons = rows.flatMap((row, i) =>
    HARDENING_PROPERTIES.filter((p) => row.hardening[p].value === 'no').map((p) => `  ${names[i]}: ${p}: ${row.hardening[p].reason}${row.required.includes(p) ? ' (required)' : ''}`),
  );
  return [line(header), ...body.map(line), ...(reasons.length > 0 ? ['', 'no:', ...reasons] : [])].join('\n');
}

/** Paths without the directory they all share, so the table stays narrow; whole paths if that is only /. */
function displayNames(paths: string[]): string[] {
  const split = paths.map((path) => path.split(sep));
  let shared = 0;
  while (split.every((parts) => parts.length > shared + 1 && parts[shared] === split[0]![shared])) shared++;
  return split.map((parts) => (shared > 1 || (shared === 1 && parts[0] !== '') ? parts.slice(shared).join(sep) : parts.join(sep)));
}

function object(value: unknown, file: string, at: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InputError(`${file}: ${at} must be an object`);
  return value as Record<string, unknown>;
}

function allowKeys(entry: Record<string, unknown>, allowed: string[], file: string, at: string): void {
  for (const key of Object.keys(entry)) {
    if (!allowed.includes(key)) throw new InputError(`${file}: unknown key "${key}" in ${at}`, { hint: `Allowed keys: ${allowed.join(', ')}` });
  }
}
