"""Streamed first byte on Lambda: a one-event Runtime API serves a Function URL event for
http-echo's /stream (3 chunks, 200 ms apart), timestamps the chunks of the streamed /response as
they arrive, and prints when the first (prelude + chunk 1) and the last came after the event left.

    python3 bench/stream_first_byte.py target/x86_64-unknown-linux-musl/release/http-echo

Run from the repository root (it reads crates/fnkit-lambda/tests/data/function-url-request.json).
"""
import json, socket, sys, time, subprocess, os

ev = json.load(open('crates/fnkit-lambda/tests/data/function-url-request.json'))
ev['rawPath'] = '/stream'; ev['rawQueryString'] = 'chunks=3&ms=200'
ev['requestContext']['http']['path'] = '/stream'; ev['requestContext']['http']['method'] = 'GET'
ev['body'] = None; ev['isBase64Encoded'] = False
body = json.dumps(ev).encode()
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 0)); srv.listen(4); port = srv.getsockname()[1]
env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f'127.0.0.1:{port}', AWS_LAMBDA_FUNCTION_NAME='f',
           AWS_LAMBDA_FUNCTION_VERSION='1', AWS_LAMBDA_FUNCTION_MEMORY_SIZE='128', RUST_LOG='off')
p = subprocess.Popen([sys.argv[1]], env=env)
c, _ = srv.accept(); f = c.makefile('rb')
req = f.readline()
while f.readline() not in (b'\r\n', b''): pass
if b'/extension/register' in req:                       # the shutdown hook's extension
    c.sendall(b'HTTP/1.1 200 OK\r\nlambda-extension-identifier: x\r\ncontent-length: 2\r\n\r\n{}')
    req = f.readline()                                  # then GET /next on the same connection
    while f.readline() not in (b'\r\n', b''): pass
deadline = int(time.time() * 1000) + 30000
c.sendall(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: r1\r\n'
          + f'lambda-runtime-deadline-ms: {deadline}\r\ncontent-length: {len(body)}\r\n\r\n'.encode() + body)
sent = time.perf_counter()
# the streamed /response may come on a new connection or the same one
line = f.readline()
while line in (b'\r\n',): line = f.readline()
while f.readline() not in (b'\r\n', b''): pass
stamps = []
while True:
    size = int(f.readline().strip().split(b';')[0], 16)
    if size == 0: break
    f.read(size); f.read(2); stamps.append((time.perf_counter() - sent) * 1000)
print(f"first chunk (prelude + chunk 1) {stamps[0]:.2f} ms after the event; last {stamps[-1]:.1f} ms; {len(stamps)} chunks")
p.kill()
