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
Agent (STANDIN_ROLE=agent) serves 9001 over TLS: GET /ping -> 204, GET / -> a page.
"""
import argparse
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
    for addr in addrs:
        entry = {"address": addr, "reachable": False}
        try:
            with socket.create_connection((addr, port), timeout=3) as raw, ctx.wrap_socket(raw) as tls:
                tls.sendall(b"GET /ping HTTP/1.0\r\nHost: agent\r\n\r\n")
                data = tls.recv(200).decode(errors="replace")
                entry["reachable"] = data.startswith("HTTP/1.0 204") or data.startswith("HTTP/1.1 204")
                for line in data.split("\r\n"):
                    if line.lower().startswith("x-standin-node:"):
                        entry["node"] = line.split(":", 1)[1].strip()
        except OSError as err:
            entry["error"] = str(err)
        found.append(entry)
    return {"endpoint": State.args.H, "agents": found}


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
        srv.socket = tls_ctx.wrap_socket(srv.socket, server_side=True)
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


def main():
    p = argparse.ArgumentParser(prog="portainer-standin", allow_abbrev=False)
    p.add_argument("-H", default="")
    p.add_argument("--tlsskipverify", action="store_true")
    p.add_argument("--admin-password-file", default="")
    p.add_argument("--admin-password", default="")
    p.add_argument("--data", default="/data")
    p.add_argument("--bind", default=":9000")
    p.add_argument("--bind-https", default=":9443")
    p.add_argument("--http-disabled", action="store_true")
    args, unknown = p.parse_known_args()
    if unknown:
        log(f"ignoring Portainer flags the stand-in does not implement: {' '.join(unknown)}")
    State.args = args
    if ROLE == "agent":
        serve(9001, self_signed("/tmp/standin-certs"))
    else:
        if args.admin_password:
            log("--admin-password (a bcrypt hash) is not supported by the stand-in; use --admin-password-file")
            sys.exit(1)
        init_admin(args)
        serve(int(args.bind_https.rsplit(":", 1)[1]), self_signed(os.path.join(args.data, "certs")))
        if not args.http_disabled:
            serve(int(args.bind.rsplit(":", 1)[1]))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
