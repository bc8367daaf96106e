// A TCP proxy on 127.0.0.1 in front of a test registry that injects faults:
//   - resetFirst: the first N HTTP connections are reset as soon as they send data;
//   - unavailableFirst: the first N HTTP connections get "503 Retry-After: 1";
//   - cutUploads: any connection carrying a blob upload (PUT/PATCH to
//     /blobs/uploads/) is reset after `cutUploads` bytes of it went through.
// With `tls`, TLS connections count too (the API server speaks only TLS).
// Everything else is passed through unchanged. Loopback only, and it stops
// with close().
import { createServer, connect, type Socket, type Server } from 'node:net';

export interface FaultyProxyOptions {
  target: { host: string; port: number };
  resetFirst?: number;
  unavailableFirst?: number;
  cutUploads?: number;
  /** Count TLS connections too (for a TLS server such as the API server); resets only, a 503 needs plain HTTP. */
  tls?: boolean;
}

export interface FaultyProxy {
  host: string;
  port: number;
  connections(): number;
  faults(): number;
  close(): Promise<void>;
}

const UPLOAD_RE = /^(PUT|PATCH) \/v2\/\S*\/blobs\/uploads\//m;

export async function startFaultyProxy(opts: FaultyProxyOptions): Promise<FaultyProxy> {
  let connections = 0;
  let faults = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    client.pause();
    client.once('readable', () => {
      const first = client.read() as Buffer | null;
      if (!first) {
        client.destroy();
        return;
      }
      // TLS probes (a ClientHello starts with 0x16) pass through uncounted:
      // faults are meant for HTTP requests.
      const isHttp = opts.tls || first[0] !== 0x16;
      if (isHttp) connections++;
      const n = connections;
      if (isHttp && opts.resetFirst && n <= opts.resetFirst) {
        faults++;
        client.resetAndDestroy();
        return;
      }
      if (isHttp && opts.unavailableFirst && n <= opts.unavailableFirst) {
        faults++;
        client.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nunavailable');
        return;
      }
      forward(client, first);
    });
  });

  function forward(client: Socket, first: Buffer): void {
    const upstream = connect(opts.target.port, opts.target.host);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    upstream.pipe(client);

    let uploading = false;
    let uploadedBytes = 0;
    const onData = (chunk: Buffer): void => {
      if (opts.cutUploads !== undefined) {
        if (!uploading && UPLOAD_RE.test(chunk.toString('latin1'))) uploading = true;
        if (uploading) {
          const room = opts.cutUploads - uploadedBytes;
          if (chunk.length > room) {
            faults++;
            if (room > 0) upstream.write(chunk.subarray(0, room));
            upstream.destroy();
            client.resetAndDestroy();
            return;
          }
          uploadedBytes += chunk.length;
        }
      }
      upstream.write(chunk);
    };
    onData(first);
    client.on('data', onData);
    client.resume();
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    port,
    connections: () => connections,
    faults: () => faults,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
