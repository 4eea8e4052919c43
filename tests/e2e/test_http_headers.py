"""What docs/API.md says about odd request headers, as tphd (h2o) does it:
the last of several Host headers is the one checked, conflicting
Content-Length headers change nothing (no body is read), and h2o's own 400
to an unparseable request is plain text with nothing from the client."""
import os
import socket

import pytest

from test_http_api import WebDaemon
from tphd_wire import TPHD

pytestmark = pytest.mark.skipif(not os.path.exists(TPHD), reason=f"{TPHD} not built")


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    d = WebDaemon(tmp_path_factory.mktemp("hdr")).start()
    d.wait_http()
    yield d
    d.stop()


def raw(web, data):
    s = socket.create_connection(("127.0.0.1", web.port), timeout=10)
    s.sendall(data)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out


def request(web, *headers, body=b""):
    lines = ["GET /api/traces HTTP/1.1", f"Cookie: {web.cookie}", "Connection: close", *headers]
    return raw(web, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def status(reply):
    return reply.split(b"\r\n", 1)[0].decode()


def test_the_last_of_several_host_headers_is_checked(web):
    good = f"Host: 127.0.0.1:{web.port}"
    assert status(request(web, good, "Host: evil.example")) == "HTTP/1.1 421 Misdirected Request"
    assert status(request(web, "Host: evil.example", good)) == "HTTP/1.1 200 OK"


def test_conflicting_content_length_changes_nothing(web):
    reply = request(web, f"Host: 127.0.0.1:{web.port}", "Content-Length: 0", "Content-Length: 5",
                    body=b"hello")
    assert status(reply) == "HTTP/1.1 200 OK"
    assert b"\r\n\r\n" in reply and reply.count(b"HTTP/1.1 ") == 1


def test_h2o_own_bad_request_is_plain_text_without_client_data(web):
    reply = raw(web, b"GARBAGE <script>x</script>\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert status(reply) == "HTTP/1.1 400 Bad Request"
    assert b"Content-Type: text/plain; charset=utf-8" in head
    assert body == b"Bad Request"
