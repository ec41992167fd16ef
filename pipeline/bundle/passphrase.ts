import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { InputError } from '../errors.js';

/**
 * The passphrase, from a file (`--passphrase-file`), from standard input when it is not a
 * terminal, or typed at a hidden prompt. Never from the command line: argv is public.
 */
export async function readPassphrase(file: string | undefined, confirm = false, question = 'passphrase: '): Promise<Buffer> {
  let text: string;
  if (file) {
    text = (await readFile(file, 'utf8').catch((error: Error) => {
      throw new InputError(`cannot read passphrase file ${file}: ${error.message}`);
    })).split('\n')[0]!;
  } else if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    text = Buffer.concat(chunks).toString('utf8').split('\n')[0]!;
  } else {
    text = await prompt(question);
    if (confirm && (await prompt('again: ')) !== text) throw new InputError('the passphrases differ');
  }
  if (text.length === 0) throw new InputError('empty passphrase', { hint: 'Give it in a file (--passphrase-file), on standard input, or at the prompt.' });
  const bytes = Buffer.from(text, 'utf8');
  // The image hands it to bundle-crypt on a file descriptor, which reads at most 1023 bytes (as openssl's -pass fd: does).
  if (bytes.length > 1023) throw new InputError(`passphrase of ${bytes.length} bytes: the image can open bundles with passphrases of at most 1023 bytes`);
  return bytes;
}

async function prompt(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  // Echo nothing of what is typed.
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
    if (s === question) process.stderr.write(s);
  };
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}
