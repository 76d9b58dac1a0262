/**
 * A real SSH server on loopback for the provider's tests: ssh2's own server, running each
 * command with the local shell, counting what it saw.
 */
import { spawn } from "child_process";
import { AddressInfo } from "net";
import { Server, utils } from "ssh2";

export interface KeyPair {
  private: string;
  public: string;
  /** The public key blob. */
  publicSSH: Buffer;
  /** The public key as an OpenSSH line, `<type> <base64>`: what `ssh-keyscan` prints. */
  line: string;
}

/**
 * An ed25519 key pair that ssh2 can read back: about 1 in 200 of the keys its own generator
 * makes are refused by its parser ("Malformed OpenSSH public key"), so draw again.
 */
export function keyPair(): KeyPair {
  for (;;) {
    const k = utils.generateKeyPairSync("ed25519");
    const pub = utils.parseKey(k.public);
    const priv = utils.parseKey(k.private);
    if (!(pub instanceof Error) && !(priv instanceof Error)) {
      const publicSSH = pub.getPublicSSH();
      return { ...k, publicSSH, line: `${pub.type} ${publicSSH.toString("base64")}` };
    }
  }
}

/** The key every test server accepts. */
export const clientKey = keyPair();

export interface Lab {
  port: number;
  /** The server's host key. */
  hostKey: KeyPair;
  /** TCP connections so far. */
  connections: number;
  /** Authentication requests of any method (`none` included) so far. */
  authAttempts: number;
  /** Authenticated connections so far. */
  logins: number;
  /** Sessions (scripts) so far. */
  sessions: number;
  /** Commands run so far. */
  commands: string[];
  /** Most sessions open at once on one connection. */
  maxPerConnection: number;
  /** Drops every open connection (a node that restarted sshd). */
  dropAll: () => void;
  close: () => Promise<void>;
}

export interface LabOptions {
  sessionsPerConnection?: number;
  silentAfter?: number;
  /** Host key; default a fresh one. */
  hostKey?: KeyPair;
  /** Port to listen on (another server's, closed before); default any free one. */
  port?: number;
}

export async function sshServer(opts: LabOptions = {}): Promise<Lab> {
  const hostKey = opts.hostKey ?? keyPair();
  const sockets = new Set<{ end: () => void }>();
  const lab = { hostKey, connections: 0, authAttempts: 0, logins: 0, sessions: 0, maxPerConnection: 0 } as Lab;
  lab.commands = [];
  const server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    let open = 0;
    lab.connections++;
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => undefined);
    client.on("authentication", (ctx) => {
      lab.authAttempts++;
      if (ctx.method === "publickey" && ctx.key.data.equals(clientKey.publicSSH)) return ctx.accept();
      ctx.reject(["publickey"]);
    });
    client.on("ready", () => {
      lab.logins++;
      client.on("session", (accept, reject) => {
        // A node that vanished: the connection stays open, nothing answers any more.
        if (opts.silentAfter !== undefined && lab.sessions >= opts.silentAfter) return;
        if (open >= (opts.sessionsPerConnection ?? 10)) return reject();
        const session = accept();
        open++;
        lab.sessions++;
        lab.maxPerConnection = Math.max(lab.maxPerConnection, open);
        session.on("exec", (acceptExec, _rejectExec, info) => {
          lab.commands.push(info.command);
          const stream = acceptExec();
          const child = spawn("sh", ["-c", info.command]);
          child.stdin.on("error", () => undefined); // a command that never reads its stdin
          stream.pipe(child.stdin);
          child.stdout.pipe(stream, { end: false });
          child.stderr.pipe(stream.stderr, { end: false });
          child.on("close", (code) => {
            open--;
            stream.exit(code ?? 1);
            stream.end();
          });
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, "127.0.0.1", resolve));
  lab.port = (server.address() as AddressInfo).port;
  lab.dropAll = () => sockets.forEach((s) => s.end());
  lab.close = () =>
    new Promise<void>((resolve) => {
      lab.dropAll();
      server.close(() => resolve());
    });
  return lab;
}
