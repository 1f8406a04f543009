// One tus-js-client 4.x upload under Node, driven by tests/uploads/test_tus_js_client.py.
//
// Usage: node tus_upload.mjs '<json options>'   (or the JSON on stdin when no argument is given)
//
// Options (JSON):
//   endpoint              tus collection URL (…/files/)
//   file                  path of the file to upload
//   headers               extra request headers (e.g. Authorization)
//   chunkSize             a number of bytes, or "Infinity" (the tus-js-client default)
//   metadata              Upload-Metadata as an object of strings
//   parallelUploads       >1 uses the concatenation extension
//   abortAtFraction       call upload.abort() once this fraction of the bytes was sent
//   urlStorage            path of a JSON file for tus.FileUrlStorage (enables resuming by
//                         fingerprint: findPreviousUploads + resumeFromPreviousUpload)
//   resume                with urlStorage: resume the newest previous upload of this file
//   uploadUrl             resume this upload URL explicitly
//   stream                read the file through a plain Readable (no size known)
//   uploadLengthDeferred  send Upload-Defer-Length: 1 and the length with the last PATCH
//   uploadDataDuringCreation  creation-with-upload
//   retryDelays           tus-js-client retryDelays (default [] so failures surface at once)
//   throttleBytesPerSecond  pace each request body (so progress, and an abort, land mid-PATCH)
//
// Prints ONE line of JSON on stdout: {ok, aborted, url, error, bytesTotal, lastProgress,
// firstProgress, resumeOffset, previousUploads, videoId, sentMetadata, requests}.
// Exit code 0 when the upload succeeded or was aborted on purpose, 1 otherwise.

import fs from 'node:fs';
import { PassThrough, Readable, Transform } from 'node:stream';
import tus from 'tus-js-client';

function readOptions() {
  const raw = process.argv[2] ?? fs.readFileSync(0, 'utf8');
  return JSON.parse(raw);
}

function chunkSizeOf(value) {
  if (value === undefined || value === null || value === 'Infinity') return Number.POSITIVE_INFINITY;
  return Number(value);
}

function openInput(opts) {
  if (opts.stream) {
    // A Readable that is not an fs.ReadStream: tus-js-client cannot know its size.
    const pass = new PassThrough({ highWaterMark: 1024 * 1024 });
    fs.createReadStream(opts.file).pipe(pass);
    return pass;
  }
  return fs.createReadStream(opts.file);
}

// Passes bytes on no faster than `rate` bytes per second.
function pacer(rate) {
  const started = Date.now();
  let passed = 0;
  return new Transform({
    transform(chunk, _encoding, callback) {
      passed += chunk.length;
      const wait = (passed / rate) * 1000 - (Date.now() - started);
      setTimeout(() => callback(null, chunk), Math.max(0, wait));
    },
  });
}

// Wraps tus-js-client's own Node file reader so every slice it hands to the HTTP stack is paced.
class PacedFileReader {
  constructor(inner, rate) {
    this.inner = inner;
    this.rate = rate;
  }

  async openFile(input, chunkSize) {
    const source = await this.inner.openFile(input, chunkSize);
    const rate = this.rate;
    return {
      get size() {
        return source.size;
      },
      close() {
        source.close();
      },
      async slice(start, end) {
        const piece = await source.slice(start, end);
        if (!(piece.value instanceof Readable)) return piece;
        const paced = piece.value.pipe(pacer(rate));
        paced.size = piece.value.size;
        return { value: paced, done: piece.done };
      },
    };
  }
}

const opts = readOptions();
const result = {
  ok: false,
  aborted: false,
  url: null,
  error: null,
  bytesTotal: null,
  firstProgress: null,
  lastProgress: null,
  resumeOffset: null,
  previousUploads: null,
  videoId: null,
  sentMetadata: null,
  requests: [],
};
let finished = false;

function finish(exitCode) {
  if (finished) return;
  finished = true;
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(exitCode));
}

// An empty event loop before a callback fired means the client stalled with nothing pending.
process.on('beforeExit', () => {
  if (finished) return;
  result.url = upload.url;
  result.error = 'tus-js-client stalled: the Node event loop emptied before onSuccess/onError';
  finish(1);
});

const input = openInput(opts);
const options = {
  endpoint: opts.endpoint,
  headers: opts.headers ?? {},
  chunkSize: chunkSizeOf(opts.chunkSize),
  metadata: opts.metadata ?? {},
  parallelUploads: opts.parallelUploads ?? 1,
  uploadLengthDeferred: Boolean(opts.uploadLengthDeferred),
  uploadDataDuringCreation: Boolean(opts.uploadDataDuringCreation),
  retryDelays: opts.retryDelays ?? [],
  removeFingerprintOnSuccess: false,
  onBeforeRequest(req) {
    if (req.getMethod() === 'POST' && req.getHeader('Upload-Concat') !== 'partial') {
      result.sentMetadata = req.getHeader('Upload-Metadata') ?? null;
    }
  },
  onAfterResponse(req, res) {
    result.requests.push({
      method: req.getMethod(),
      url: req.getURL(),
      status: res.getStatus(),
      uploadOffset: res.getHeader('Upload-Offset') ?? null,
    });
    const videoId = res.getHeader('Reelout-Video-Id');
    if (videoId) result.videoId = videoId;
    if (req.getMethod() === 'HEAD' && result.resumeOffset === null) {
      result.resumeOffset = Number(res.getHeader('Upload-Offset'));
    }
  },
  onProgress(bytesSent, bytesTotal) {
    if (result.firstProgress === null) result.firstProgress = bytesSent;
    result.lastProgress = bytesSent;
    result.bytesTotal = bytesTotal;
    const fraction = opts.abortAtFraction;
    if (fraction && !result.aborted && bytesTotal && bytesSent >= fraction * bytesTotal) {
      result.aborted = true;
      upload.abort().then(
        () => {
          result.url = upload.url;
          finish(0);
        },
        (err) => {
          result.error = `abort failed: ${err}`;
          finish(1);
        },
      );
    }
  },
  onSuccess() {
    result.ok = true;
    result.url = upload.url;
    finish(0);
  },
  onError(err) {
    result.url = upload.url;
    result.error = String(err);
    finish(1);
  },
};
if (opts.uploadUrl) options.uploadUrl = opts.uploadUrl;
if (opts.throttleBytesPerSecond) {
  options.fileReader = new PacedFileReader(tus.defaultOptions.fileReader, opts.throttleBytesPerSecond);
}
if (opts.urlStorage) options.urlStorage = new tus.FileUrlStorage(opts.urlStorage);

const upload = new tus.Upload(input, options);

async function main() {
  if (opts.urlStorage) {
    const previous = await upload.findPreviousUploads();
    result.previousUploads = previous.length;
    if (opts.resume && previous.length > 0) {
      previous.sort((a, b) => String(b.creationTime).localeCompare(String(a.creationTime)));
      upload.resumeFromPreviousUpload(previous[0]);
    }
  }
  upload.start();
}

main().catch((err) => {
  result.error = `driver failed: ${err?.stack ?? err}`;
  finish(1);
});
