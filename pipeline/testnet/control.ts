import { connect, type Socket } from 'node:net';

/** One reply of tor's control protocol: its status code and its lines (data blocks joined in). */
export interface Reply {
  code: number;
  lines: string[];
}

/**
 * A client of tor's control port on a unix socket (control-spec.txt): commands answered in
 * order, asynchronous events (650) handed to listeners. The socket is a file, so a process
 * outside a network namespace talks to a tor inside it without any route between them.
 */
export class TorControl {
  private buffer = '';
  private pending: { resolve: (reply: Reply) => void; reject: (error: Error) => void }[] = [];
  private current: string[] = [];
  private inData = false;
  private listeners = new Set<(event: string) => void>();
  private closed: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    const end = (error?: Error) => {
      this.closed = error ?? new Error('the control connection closed');
      for (const waiter of this.pending.splice(0)) waiter.reject(this.closed);
    };
    socket.on('error', end);
    socket.on('close', () => end());
  }

  /** Connects and authenticates (the socket's own permissions are the authentication: tor runs it with no password). */
  static async connect(path: string): Promise<TorControl> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path, () => resolve(s));
      s.once('error', reject);
    });
    const control = new TorControl(socket);
    await control.command('AUTHENTICATE');
    return control;
  }

  /** Sends one command; resolves with its reply if 2xx, rejects with the reply's text otherwise. */
  command(line: string): Promise<Reply> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise<Reply>((resolve, reject) => {
      this.pending.push({
        resolve: (reply) => (reply.code >= 200 && reply.code < 300 ? resolve(reply) : reject(new Error(`tor answered "${line}" with ${reply.code} ${reply.lines.join(' / ')}`))),
        reject,
      });
      this.socket.write(`${line}\r\n`);
    });
  }

  /** `GETINFO key`: its value (a data block's lines joined by newlines). */
  async getinfo(key: string): Promise<string> {
    const { lines } = await this.command(`GETINFO ${key}`);
    const first = lines[0] ?? '';
    return first.startsWith(`${key}=`) ? [first.slice(key.length + 1), ...lines.slice(1, -1)].join('\n').trim() : '';
  }

  /** Calls `listener` with every event until the returned function is called. */
  onEvent(listener: (event: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the first event for which `match` returns a value; rejects after `timeoutMs`. */
  waitForEvent<T>(match: (event: string) => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`no ${what} from tor within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const listener = (event: string) => {
        const value = match(event);
        if (value === undefined) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(value);
      };
      this.listeners.add(listener);
    });
  }

  /** Whether the connection has ended (tor stopped, or `close`). */
  get isClosed(): boolean {
    return this.closed !== undefined;
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\r\n')) >= 0) {
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (this.inData) {
      if (line === '.') this.inData = false;
      else this.current.push(line.startsWith('..') ? line.slice(1) : line);
      return;
    }
    const code = Number(line.slice(0, 3));
    const kind = line[3];
    this.current.push(line.slice(4));
    if (kind === '+') this.inData = true;
    if (kind !== ' ') return;
    const lines = this.current;
    this.current = [];
    if (code === 650) {
      for (const listener of [...this.listeners]) listener(lines.join('\n'));
    } else {
      this.pending.shift()?.resolve({ code, lines });
    }
  }
}
