#!/usr/bin/env python3
"""swarmcloud LAB ONLY: a stand-in for Portainer (server and agent). It is NOT Portainer.

Server (STANDIN_ROLE=server, the default) takes Portainer's own arguments, e.g.
    -H tcp://tasks.agent:9001 --tlsskipverify --admin-password-file /run/secrets/x
reads the admin password file at start (and fails like Portainer when it cannot), keeps the
first admin in /data (a later, different file does not change it, as with Portainer), and serves
    9443 HTTPS (self-signed, made at start) and 9000 HTTP:
      GET  /                 a page that says it is a stand-in
      GET  /api/status       {"Version": "standin", ...}
      POST /api/auth         {"username","password"} -> 200 {"jwt": ...} or 422
      GET  /api/standin/agents   the agent tasks behind -H, each probed on its port
      GET  /api/standin/agents   the agent tasks behind -H, each probed on its port: /ping, and
                                 /info signed as Portainer signs (AGENT_SECRET from the environment)
Agent (STANDIN_ROLE=agent) serves 9001 over TLS: GET /ping -> 204 (open, as Portainer's agent),
every other path only for a request Portainer's way signed (else 403):
      GET  /info             {"Node": ..., "Standin": true}
      GET  /                 a page
Arguments as Portainer's agent takes them (kingpin): `@FILE` is replaced by FILE's lines (one
argument each, `#` lines skipped), `--secret=S` (or AGENT_SECRET) is the shared secret.

The signature, as Portainer and its agent make and check it (portainer/agent crypto/ecdsa.go):
the server sends its ECDSA P-256 public key (hex of its DER form) in X-PortainerAgent-PublicKey
and, in X-PortainerAgent-Signature, the base64 (no padding) of r||s signed over md5(message),
where message is the shared secret, or "Portainer-App" without one. An agent with a secret
checks every request against it; one without trusts the first key that signs correctly and only
that key from then on. ECDSA is done by openssl (pkeyutl signs and verifies the digest as given).

    portainer-standin probe URL [--secret S | --no-signature]
prints `<address> <HTTP status>` for each address URL's host resolves to (a GET over TLS,
certificate not checked), signed as the server would with S (default: AGENT_SECRET), or unsigned.
"""
import argparse
import base64
import hashlib
import hmac
import html
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

ROLE = os.environ.get("STANDIN_ROLE", "server")
HOST = socket.gethostname()


def log(msg):
    print(f"[portainer-standin {ROLE}] {msg}", file=sys.stderr, flush=True)


def self_signed(directory):
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    if not (os.path.exists(cert) and os.path.exists(key)):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
             "-subj", "/CN=portainer-standin", "-keyout", key, "-out", cert],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def hash_password(password, salt):
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 100_000).hex()


class State:
    admin = None  # {"username", "salt", "hash"}
    args = None
    started = time.time()
    secret = ""  # the shared agent secret ("" for none)
    trusted_key = None  # an agent without a secret: the first key that signed correctly
    signer = None  # the server: (public key hex, signature) made at start


# ---- Portainer's agent signature, through openssl ------------------------------------------

SIGNATURE_MESSAGE = "Portainer-App"


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, check=True, capture_output=True).stdout


def der_int(value):
    body = value.lstrip(b"\0") or b"\0"
    if body[0] & 0x80:
        body = b"\0" + body
    return b"\x02" + bytes([len(body)]) + body


def raw_to_der(raw):
    """r||s (32 + 32 bytes) as the DER ECDSA-Sig-Value openssl takes."""
    seq = der_int(raw[:32]) + der_int(raw[32:])
    return b"\x30" + bytes([len(seq)]) + seq


def der_to_raw(der):
    """A DER ECDSA-Sig-Value as r||s, each 32 bytes."""
    i, out = 2, b""
    for _ in range(2):
        length = der[i + 1]
        out += der[i + 2:i + 2 + length].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + length
    return out


def sign(message):
    """A fresh key pair; returns (public key hex, signature) as the server sends them."""
    with tempfile.TemporaryDirectory() as d:
        key = os.path.join(d, "key.pem")
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
        public = openssl("ec", "-in", key, "-pubout", "-outform", "DER")
        digest = os.path.join(d, "digest")
        with open(digest, "wb") as f:
            f.write(hashlib.md5(message.encode()).digest())
        der = openssl("pkeyutl", "-sign", "-inkey", key, "-in", digest)
    signature = base64.b64encode(der_to_raw(der)).decode().rstrip("=")
    return public.hex(), signature


def verified(public_hex, signature, message):
    """Whether the signature (base64 r||s) over md5(message) is the key's (hex DER)."""
    try:
        raw = base64.b64decode(signature + "=" * (-len(signature) % 4))
        public = bytes.fromhex(public_hex)
    except ValueError:
        return False
    if len(raw) != 64:
        return False
    with tempfile.TemporaryDirectory() as d:
        files = {"pub": public, "digest": hashlib.md5(message.encode()).digest(), "sig": raw_to_der(raw)}
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER",
                            "-inkey", os.path.join(d, "pub"), "-in", os.path.join(d, "digest"),
                            "-sigfile", os.path.join(d, "sig")], capture_output=True)
    return r.returncode == 0


def signed_by_portainer(headers):
    """The agent's check of a request: with a secret, against it; without, the first key trusted."""
    public = headers.get("X-PortainerAgent-PublicKey", "")
    signature = headers.get("X-PortainerAgent-Signature", "")
    if not public or not signature:
        return False
    if State.secret:
        return verified(public, signature, State.secret)
    if State.trusted_key is not None:
        return public == State.trusted_key and verified(public, signature, SIGNATURE_MESSAGE)
    if verified(public, signature, SIGNATURE_MESSAGE):
        State.trusted_key = public
        log("no AGENT_SECRET: trusting the first key that signed (as Portainer's agent does)")
        return True
    return False


def request(url, headers, timeout=5):
    """GET over TLS (certificate not checked) to each address the host resolves to: [(addr, status)]."""
    parsed = urlparse(url)
    port = parsed.port or 443
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    addrs = sorted({ai[4][0] for ai in socket.getaddrinfo(parsed.hostname, port, socket.AF_INET, socket.SOCK_STREAM)})
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    results = []
    for addr in addrs:
        try:
            with socket.create_connection((addr, port), timeout=timeout) as raw, ctx.wrap_socket(raw) as tls:
                tls.sendall(f"GET {parsed.path or '/'} HTTP/1.0\r\nHost: {parsed.hostname}\r\n{lines}\r\n".encode())
                status = tls.recv(200).decode(errors="replace").split(" ")[1]
        except (OSError, IndexError) as err:
            status = f"error:{err}"
        results.append((addr, status))
    return results


def signature_headers(secret):
    public, signature = sign(secret or SIGNATURE_MESSAGE)
    return {"X-PortainerAgent-PublicKey": public, "X-PortainerAgent-Signature": signature}


def agents():
    """Resolve the -H host (tasks.agent) to every agent task and try a TLS handshake with each."""
    if not State.args.H:
        return {"endpoint": None, "agents": []}
    url = urlparse(State.args.H)
    host, port = url.hostname, url.port or 9001
    try:
        addrs = sorted({ai[4][0] for ai in socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)})
    except OSError as err:
        return {"endpoint": State.args.H, "error": str(err), "agents": []}
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    found = []
    public, signature = State.signer
    signed = f"X-PortainerAgent-PublicKey: {public}\r\nX-PortainerAgent-Signature: {signature}\r\n"
    for addr in addrs:
        entry = {"address": addr, "reachable": False, "authorized": False}
        try:
            with socket.create_connection((addr, port), timeout=3) as raw, ctx.wrap_socket(raw) as tls:
                tls.sendall(b"GET /ping HTTP/1.0\r\nHost: agent\r\n\r\n")
                data = tls.recv(200).decode(errors="replace")
                entry["reachable"] = data.startswith("HTTP/1.0 204") or data.startswith("HTTP/1.1 204")
                for line in data.split("\r\n"):
                    if line.lower().startswith("x-standin-node:"):
                        entry["node"] = line.split(":", 1)[1].strip()
            with socket.create_connection((addr, port), timeout=3) as raw, ctx.wrap_socket(raw) as tls:
                tls.sendall(f"GET /info HTTP/1.0\r\nHost: agent\r\n{signed}\r\n".encode())
                status = tls.recv(200).decode(errors="replace").split(" ")[1]
                entry["infoStatus"] = int(status)
                entry["authorized"] = status == "200"
        except (OSError, IndexError, ValueError) as err:
            entry["error"] = str(err)
        found.append(entry)
    return {"endpoint": State.args.H, "signedWithSecret": bool(State.secret), "agents": found}


class Handler(BaseHTTPRequestHandler):
    server_version = "portainer-standin"

    def log_message(self, fmt, *args):
        log(f"{self.address_string()} {fmt % args}")

    def send(self, code, body=b"", ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Standin-Node", HOST)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def json(self, code, obj):
        self.send(code, json.dumps(obj).encode() + b"\n")

    def page(self, title, lines):
        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        body = (f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
                f"<p><strong>This is a swarmcloud lab stand-in, not Portainer.</strong> Portainer's images "
                f"cannot be pulled in the lab; real clusters run portainer/portainer-ce.</p><ul>{items}</ul>")
        self.send(200, body.encode(), "text/html; charset=utf-8")

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = urlparse(self.path).path
        if ROLE == "agent":
            if path == "/ping":
                return self.send(204)
            if not signed_by_portainer(self.headers):
                return self.json(403, {"message": "Unauthorized: the request is not signed by this agent's Portainer"})
            if path == "/info":
                return self.json(200, {"Node": HOST, "Standin": True, "Secured": bool(State.secret)})
            return self.page("Portainer agent stand-in", [f"node {HOST}",
                             f"docker socket mounted: {os.path.exists('/var/run/docker.sock')}"])
        if path in ("/api/status", "/api/system/status"):
            return self.json(200, {"Version": "standin", "InstanceID": HOST, "Standin": True,
                                   "Uptime": int(time.time() - State.started)})
        if path == "/api/standin/agents":
            return self.json(200, agents())
        if path in ("/", "/index.html"):
            return self.page("Portainer stand-in (swarmcloud lab)", [
                f"task on {HOST}", f"admin user: {State.admin['username']}",
                f"agent endpoint: {State.args.H or '(none)'}", f"data folder: {State.args.data}"])
        return self.json(404, {"message": "Not found (stand-in)"})

    def do_POST(self):
        if ROLE == "agent" or urlparse(self.path).path != "/api/auth":
            return self.json(404, {"message": "Not found (stand-in)"})
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            user, password = str(body.get("username", "")), str(body.get("password", ""))
        except (ValueError, AttributeError):
            return self.json(400, {"message": "Invalid request payload"})
        admin = State.admin
        ok = user == admin["username"] and hmac.compare_digest(
            hash_password(password, bytes.fromhex(admin["salt"])), admin["hash"])
        if not ok:
            return self.json(422, {"message": "Invalid credentials"})
        return self.json(200, {"jwt": "standin." + secrets.token_urlsafe(24)})


def serve(port, tls_ctx=None):
    srv = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    if tls_ctx is not None:
        # The handshake in the connection's own thread, not in accept(): a client that connects
        # and says nothing (a port scan) must not stall the listener.
        srv.socket = tls_ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    log(f"listening on {port}{' (TLS)' if tls_ctx else ''}")


def init_admin(args):
    """Like Portainer: the password file sets the admin on the first start only."""
    password = None
    if args.admin_password_file:
        try:
            with open(args.admin_password_file, encoding="utf-8") as f:
                password = f.read().rstrip("\n")
        except OSError as err:
            log(f"cannot read --admin-password-file: {err}")
            sys.exit(1)
    os.makedirs(args.data, exist_ok=True)
    store = os.path.join(args.data, "portainer-standin.json")
    if os.path.exists(store):
        with open(store, encoding="utf-8") as f:
            State.admin = json.load(f)
        log("instance already has an administrator; skipping admin password flags")
        return
    if password is None:
        log("no --admin-password-file: the admin would be set on the first-login page (not in the stand-in)")
        password = secrets.token_urlsafe(16)
    salt = os.urandom(16)
    State.admin = {"username": "admin", "salt": salt.hex(), "hash": hash_password(password, salt)}
    tmp = store + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(State.admin, f)
    os.replace(tmp, store)
    log("created admin user from --admin-password-file")


def expand_args(argv):
    """kingpin's `@FILE`: the file's lines as arguments, `#` lines left out."""
    out = []
    for arg in argv:
        if arg.startswith("@"):
            with open(arg[1:], encoding="utf-8") as f:
                out.extend(line.rstrip("\n") for line in f if not line.startswith("#"))
        else:
            out.append(arg)
    return out


def probe(argv):
    p = argparse.ArgumentParser(prog="portainer-standin probe")
    p.add_argument("url")
    p.add_argument("--secret", default=os.environ.get("AGENT_SECRET", ""))
    p.add_argument("--no-signature", action="store_true")
    a = p.parse_args(argv)
    headers = {} if a.no_signature else signature_headers(a.secret)
    for addr, status in request(a.url, headers):
        print(addr, status)


def main():
    if sys.argv[1:2] == ["probe"]:
        return probe(sys.argv[2:])
    p = argparse.ArgumentParser(prog="portainer-standin", allow_abbrev=False)
    p.add_argument("-H", default="")
    p.add_argument("--tlsskipverify", action="store_true")
    p.add_argument("--admin-password-file", default="")
    p.add_argument("--admin-password", default="")
    p.add_argument("--data", default="/data")
    p.add_argument("--bind", default=":9000")
    p.add_argument("--bind-https", default=":9443")
    p.add_argument("--http-disabled", action="store_true")
    p.add_argument("--secret", default=None)
    p.add_argument("--port", type=int, default=int(os.environ.get("AGENT_PORT", "9001")))
    args, unknown = p.parse_known_args(expand_args(sys.argv[1:]))
    if unknown:
        log(f"ignoring Portainer flags the stand-in does not implement: {' '.join(unknown)}")
    State.args = args
    # As kingpin's Envar: the flag, else the environment.
    State.secret = args.secret if args.secret is not None else os.environ.get("AGENT_SECRET", "")
    if ROLE == "agent":
        log("AGENT_SECRET set: only requests signed with it are served" if State.secret
            else "no AGENT_SECRET: the first Portainer that signs is trusted")
        serve(args.port, self_signed("/tmp/standin-certs"))
    else:
        if args.admin_password:
            log("--admin-password (a bcrypt hash) is not supported by the stand-in; use --admin-password-file")
            sys.exit(1)
        init_admin(args)
        State.signer = sign(State.secret or SIGNATURE_MESSAGE)
        serve(int(args.bind_https.rsplit(":", 1)[1]), self_signed(os.path.join(args.data, "certs")))
        if not args.http_disabled:
            serve(int(args.bind.rsplit(":", 1)[1]))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
