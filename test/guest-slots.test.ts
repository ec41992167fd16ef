import test from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { guestSlots, takeGuestSlot } from '../pipeline/qemu/boot.js';
import { TorRamdiskError } from '../pipeline/errors.js';

// The slots are machine-wide: guests of other test files may hold them too, so these tests
// check the order of events, never how long a wait took.
const boot = fileURLToPath(new URL('../pipeline/qemu/boot.js', import.meta.url));

test.serial('a guest past the limit waits for a slot, and a slot is freed when its process dies', async (t) => {
  process.env.TOR_RAMDISK_GUESTS = '1';
  try {
    // Another process takes the one slot and is killed holding it.
    const holder = execa('node', ['--input-type=module', '-e', `const { takeGuestSlot } = await import(${JSON.stringify(boot)}); await takeGuestSlot(); console.log('held'); setInterval(() => {}, 1000);`], {
      env: { TOR_RAMDISK_GUESTS: '1' },
      reject: false,
    });
    await new Promise<void>((resolve) => holder.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('held') && resolve()));
    let ours = false;
    const taking = takeGuestSlot().then((release) => ((ours = true), release));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    t.false(ours, 'the slot was taken while another process held it');
    holder.kill('SIGKILL');
    await holder;
    const release = await taking;
    t.true(ours);
    // Ours now: a second taker waits until it is released.
    let second = false;
    const next = takeGuestSlot().then((release2) => ((second = true), release2));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    t.false(second);
    release();
    (await next)();
    t.true(second);
  } finally {
    delete process.env.TOR_RAMDISK_GUESTS;
  }
});

test.serial('$TOR_RAMDISK_GUESTS: a whole number, else bad input naming it', (t) => {
  try {
    process.env.TOR_RAMDISK_GUESTS = '3';
    t.is(guestSlots(), 3);
    for (const bad of ['0', 'four', '-1', '2.5']) {
      process.env.TOR_RAMDISK_GUESTS = bad;
      const error = t.throws(() => guestSlots(), { instanceOf: TorRamdiskError });
      t.is(error?.exitCode, 2);
      t.regex(error!.message, /TOR_RAMDISK_GUESTS/);
    }
  } finally {
    delete process.env.TOR_RAMDISK_GUESTS;
  }
  t.true(guestSlots() >= 2);
});
