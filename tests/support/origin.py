"""A small HTTP/1.1 origin server for integration tests, run as its own process.

    python -m tests.support.origin --name s1 [--port 0] [--host 127.0.0.1] [--tls-crt PEM]

prints ``PORT <n>`` on stdout once listening, then serves until killed.  Raw
asyncio, keep-alive, streamed bodies both ways (never held whole in memory).
Every response carries ``X-Server`` (the ``--name``), ``X-Conn-Id`` (a number per
accepted connection, so keep-alive reuse is observable) and ``X-Req-Num`` (the
request's position on its connection).

Routes (query parameters in brackets):

* ``GET /`` and ``GET /fixed[?size=N]`` - a fixed body (``hello from NAME`` or N bytes);
* ``GET /health`` - 200 ``ok``;
* ``GET /slow?delay=SECONDS`` - answers after the delay;
* ``GET /chunked?chunks=N&size=M`` - a chunked response of N chunks of M bytes;
* ``GET /download?size=N`` - an N-byte body streamed with Content-Length;
* ``POST /count`` (any method with a body) - reads the body (Content-Length or
  chunked) and answers ``bytes=N sha256=HEX``;
* ``POST /echo`` - streams the request body back, chunked;
* ``GET /status?code=N`` - an empty response with that status;
* ``GET /headers`` - the request head as received (to see what the proxy sent);
* ``GET /close`` - answers with ``Connection: close`` and closes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import ssl
import sys
from urllib.parse import parse_qs, urlsplit

MAX_HEAD = 64 * 1024
BLOCK = 64 * 1024

REASONS = {
    200: "OK",
    204: "No Content",
    404: "Not Found",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class BadRequest(Exception):
    pass


async def read_blocks(reader: asyncio.StreamReader, size: int):
    """``size`` bytes of the stream, in blocks of at most BLOCK bytes."""
    left = size
    while left:
        block = await reader.read(min(left, BLOCK))
        if not block:
            raise asyncio.IncompleteReadError(b"", left)
        left -= len(block)
        yield block


class Origin:
    def __init__(self, name: str):
        self.name = name
        self.conn_ids = itertools.count(1)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn_id = next(self.conn_ids)
        try:
            for req_num in itertools.count(1):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                keep = await self.serve_one(head, reader, writer, conn_id, req_num)
                if not keep:
                    return
        except (ConnectionError, BadRequest, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def serve_one(self, head, reader, writer, conn_id, req_num) -> bool:
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            raise BadRequest(lines[0]) from None
        headers = {}
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        base = [("X-Server", self.name), ("X-Conn-Id", str(conn_id)), ("X-Req-Num", str(req_num))]

        def start(status, extra, length=None, chunked=False):
            out = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
            out += [f"{k}: {v}" for k, v in base + extra]
            if chunked:
                out.append("Transfer-Encoding: chunked")
            elif length is not None:
                out.append(f"Content-Length: {length}")
            if not keep:
                out.append("Connection: close")
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))

        async def body_blocks():
            if "chunked" in headers.get("transfer-encoding", "").lower():
                while True:
                    size_line = await reader.readuntil(b"\r\n")
                    size = int(size_line.split(b";")[0].strip(), 16)
                    if size == 0:
                        while (await reader.readuntil(b"\r\n")) != b"\r\n":
                            pass
                        return
                    async for block in read_blocks(reader, size):
                        yield block
                    await reader.readexactly(2)
            else:
                async for block in read_blocks(reader, int(headers.get("content-length", "0") or 0)):
                    yield block

        path = url.path
        has_body = "content-length" in headers or "transfer-encoding" in headers
        if path == "/echo":
            start(200, [("Content-Type", "application/octet-stream")], chunked=True)
            async for block in body_blocks():
                writer.write(b"%x\r\n%s\r\n" % (len(block), block))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return keep
        if path == "/count" or has_body:
            total = 0
            digest = hashlib.sha256()
            async for block in body_blocks():
                total += len(block)
                digest.update(block)
            text = f"bytes={total} sha256={digest.hexdigest()}".encode()
            start(200, [("Content-Type", "text/plain")], len(text))
            writer.write(text)
        elif path == "/health":
            start(200, [("Content-Type", "text/plain")], 2)
            writer.write(b"ok")
        elif path == "/slow":
            await asyncio.sleep(float(query.get("delay", "5")))
            text = f"slow from {self.name}".encode()
            start(200, [], len(text))
            writer.write(text)
        elif path == "/chunked":
            chunks, size = int(query.get("chunks", "3")), int(query.get("size", "10"))
            start(200, [("Content-Type", "text/plain")], chunked=True)
            for i in range(chunks):
                block = bytes([0x61 + i % 26]) * size
                writer.write(b"%x\r\n%s\r\n" % (len(block), block))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        elif path == "/download":
            size = int(query.get("size", "0"))
            start(200, [("Content-Type", "application/octet-stream")], size)
            block = b"x" * BLOCK
            left = size
            while left:
                n = min(left, BLOCK)
                writer.write(block[:n])
                left -= n
                await writer.drain()
        elif path == "/status":
            start(int(query.get("code", "200")), [], 0)
        elif path == "/headers":
            start(200, [("Content-Type", "text/plain")], len(head))
            writer.write(head)
        elif path == "/close":
            keep = False
            text = b"closing"
            start(200, [], len(text))
            writer.write(text)
        elif path in ("/", "/fixed") or path.startswith("/app"):
            size = query.get("size")
            text = b"y" * int(size) if size else f"hello from {self.name}".encode()
            start(200, [("Content-Type", "text/plain")], len(text))
            writer.write(text)
        else:
            text = b"not found"
            start(404, [], len(text))
            writer.write(text)
        await writer.drain()
        return keep


async def serve(name: str, host: str, port: int, tls_crt: str | None = None) -> None:
    origin = Origin(name)
    context = None
    if tls_crt:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls_crt)
    server = await asyncio.start_server(
        origin.handle, host, port, limit=MAX_HEAD, reuse_address=True, ssl=context
    )
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {bound}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="test origin server")
    parser.add_argument("--name", default="origin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-crt", help="serve HTTPS with this PEM (certificate + key)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.name, args.host, args.port, args.tls_crt))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
