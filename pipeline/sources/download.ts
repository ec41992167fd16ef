import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import got from 'got';
import { localFsError } from '../errors.js';

export interface DownloadOptions {
  /** Longest silence allowed: waiting for the response, or between two chunks of the body. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Fetches one URL into a file. Passed in, so tests and other transports can stand in for HTTP. */
export interface Downloader {
  download(url: string, destination: string, options: DownloadOptions): Promise<void>;
}

/** What a failed attempt means for the retry loop. */
export type FailureKind =
  | 'not-found' // the server answered that the file is not there: do not retry
  | 'unreachable' // no such host or connection refused: do not retry, skip the host
  | 'transient'; // reset, timeout, premature end, 5xx: retry

export class DownloadFailure extends Error {
  constructor(
    message: string,
    readonly kind: FailureKind,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const UNREACHABLE = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH']);

export function classifyFailure(error: unknown): DownloadFailure {
  if (error instanceof DownloadFailure) return error;
  const err = error as { code?: string; message?: string; response?: { statusCode?: number } };
  // A body cut short also carries its (200) response: only an error status counts here.
  const status = err.response?.statusCode;
  if (status !== undefined && status >= 400) {
    const kind: FailureKind = status >= 500 || status === 429 || status === 408 ? 'transient' : 'not-found';
    return new DownloadFailure(`HTTP ${status}`, kind, { cause: error });
  }
  if (err.code && UNREACHABLE.has(err.code)) return new DownloadFailure(`${err.code} (host unreachable)`, 'unreachable', { cause: error });
  const what = err.code === 'ETIMEDOUT' ? `timed out (${err.message ?? ''})` : `${err.code ?? 'error'}: ${err.message ?? String(error)}`;
  return new DownloadFailure(what, 'transient', { cause: error });
}

export const httpDownloader: Downloader = {
  async download(url, destination, { timeoutMs, signal }) {
    const stream = got.stream(url, {
      retry: { limit: 0 }, // the fetcher owns the retry loop
      timeout: { lookup: timeoutMs, connect: timeoutMs, secureConnect: timeoutMs, response: timeoutMs, socket: timeoutMs },
      followRedirect: true,
      decompress: false,
      ...(signal ? { signal } : {}),
    });
    try {
      await pipeline(stream, createWriteStream(destination));
    } catch (error) {
      // Writing the file failed (disk full, read-only): the network is not at fault.
      throw localFsError(error, `cannot write the download of ${url}`) ?? classifyFailure(error);
    }
  },
};
