/**
 * The front door's settings (swarmcloud:edge): off by default and then absent from the parsed
 * config (so a stack without it builds exactly what it built before); each bad value reported
 * with its key and fix, all at once with every other problem; the holders; the ports it adds.
 */
import { appPorts, DEFAULTS, edgeNodes, inSubnet, parseConfig, type RawConfig } from "../../components/config";

const parse = (raw: RawConfig, environment = "local") =>
  parseConfig({ environment, ...raw }, { sshPrivateKey: true, digitaloceanToken: true });

const SSH_NODES = [
  { name: "pi-1", role: "manager", address: "192.168.1.21" },
  { name: "pi-2", role: "manager", address: "192.168.1.22", labels: { edge: "true" } },
  { name: "pi-3", role: "manager", address: "192.168.1.23", labels: { edge: "true" } },
  { name: "pi-4", role: "worker", address: "192.168.1.24" },
];

describe("swarmcloud:edge", () => {
  test("off by default, and off means absent: the parsed config is the one without the key", () => {
    expect(parse({}).config.edge).toBeUndefined();
    expect(parse({ edge: DEFAULTS.edge }).config).toEqual(parse({}).config);
    expect(parse({ edge: { enabled: false, address: "172.30.0.200" } }).config).toEqual(parse({}).config);
  });

  test("on: the defaults fill what is unset, the interface is left to detection", () => {
    const { config, errors } = parse({ edge: { enabled: true, address: "172.30.0.200" } });
    expect(errors).toEqual([]);
    expect(config.edge).toEqual({ ...DEFAULTS.edge, enabled: true, address: "172.30.0.200" });
    expect(config.edge?.interface).toBeUndefined();
  });

  test("every bad value is reported at once, each naming the key and the fix", () => {
    const { errors } = parse({
      edge: {
        enabled: true,
        address: "300.1.1.1",
        interface: "eth0; rm -rf /",
        holders: "everyone",
        routerId: 256,
        domain: "not a domain",
        acmeEmail: "nobody",
        acmeDirectory: "http://acme.example/dir",
        acmeRoot: "nope",
        portainerPort: 0,
        colour: "blue",
      },
      ghost: { port: "x" },
    });
    expect(errors).toEqual([
      expect.stringMatching(/^swarmcloud:ghost\.port = "x"/),
      expect.stringMatching(
        /^swarmcloud:edge\.colour = "blue": unknown setting; known settings here: enabled, address, interface, holders/,
      ),
      expect.stringMatching(/^swarmcloud:edge\.holders = "everyone": must be one of managers, labelled$/),
      expect.stringMatching(/^swarmcloud:edge\.routerId = 256: must be between 1 and 255$/),
      expect.stringMatching(/^swarmcloud:edge\.portainerPort = 0: must be a TCP\/UDP port/),
      expect.stringMatching(/^swarmcloud:edge\.address = "300\.1\.1\.1": must be an IPv4 address/),
      expect.stringMatching(/^swarmcloud:edge\.interface = .*: must be a network interface name such as eth0/),
      expect.stringMatching(/^swarmcloud:edge\.domain = "not a domain": must be a DNS name/),
      expect.stringMatching(/^swarmcloud:edge\.acmeEmail = "nobody": must be an e-mail address/),
      expect.stringMatching(/^swarmcloud:edge\.acmeDirectory = .*: must be an https:\/\/ URL/),
      expect.stringMatching(/^swarmcloud:edge\.acmeRoot = "nope": must be a PEM certificate/),
    ]);
    // The other sections' problems are in the same report.
    const withGhost = parse({ edge: { enabled: true }, ghost: { port: "x" } }).errors;
    expect(withGhost).toEqual([
      expect.stringMatching(/^swarmcloud:ghost\.port = "x"/),
      expect.stringMatching(
        /^swarmcloud:edge\.address = \(not set\): the local environment needs a floating address.*inside local\.subnet 172\.30\.0\.0\/24/,
      ),
    ]);
  });

  test("the address: required off DigitalOcean, inside the nodes' network, nobody's own", () => {
    expect(parse({ edge: { enabled: true, address: "10.9.9.9" } }).errors).toEqual([
      'swarmcloud:edge.address = "10.9.9.9": must lie inside local.subnet 172.30.0.0/24, the nodes\' network',
    ]);
    expect(parse({ edge: { enabled: true, address: "172.30.0.12" } }).errors).toEqual([
      "swarmcloud:edge.address = \"172.30.0.12\": is the network's gateway or a node container's address (172.30.0.1, then 172.30.0.11 onwards); pick a free one such as 172.30.0.200",
    ]);
    expect(parse({ edge: { enabled: true, address: "172.30.0.1" } }).errors).toHaveLength(1);
    expect(parse({ edge: { enabled: true, address: "172.30.0.16" } }).errors).toEqual([]);
    expect(parse({ edge: { enabled: true, address: "192.168.56.250" } }, "vagrant").errors).toEqual([]);
    expect(parse({ edge: { enabled: true, address: "192.168.57.250" } }, "vagrant").errors).toEqual([
      'swarmcloud:edge.address = "192.168.57.250": must lie on the VMs\' network 192.168.56.0/24 (vagrant.networkPrefix)',
    ]);
    expect(parse({ nodes: SSH_NODES, edge: { enabled: true, address: "192.168.1.22" } }, "ssh").errors).toEqual([
      'swarmcloud:edge.address = "192.168.1.22": is node pi-2\'s address; pick a free one',
    ]);
  });

  test("DigitalOcean: the load balancer is the address, so address and interface are refused there", () => {
    const raw = { digitalocean: { adminCidrs: ["203.0.113.7/32"] }, sshPublicKey: "ssh-ed25519 AAAA me" };
    expect(parse({ ...raw, edge: { enabled: true } }, "digitalocean").errors).toEqual([]);
    expect(
      parse({ ...raw, edge: { enabled: true, address: "10.20.0.200", interface: "eth1" } }, "digitalocean").errors,
    ).toEqual([
      "swarmcloud:edge.address = \"10.20.0.200\": DigitalOcean's load balancer is the front door's address there; remove it",
      "swarmcloud:edge.interface = \"eth1\": DigitalOcean's load balancer is the front door's address there; remove it",
    ]);
  });

  test("holders: the managers, or the nodes labelled edge=true; none labelled is refused, one warned about", () => {
    const managers = parse({ nodes: SSH_NODES, edge: { enabled: true, address: "192.168.1.250" } }, "ssh");
    expect(managers.errors).toEqual([]);
    expect(edgeNodes(managers.config.nodes, managers.config.edge!).map((n) => n.name)).toEqual([
      "pi-1",
      "pi-2",
      "pi-3",
    ]);
    const labelled = parse(
      { nodes: SSH_NODES, edge: { enabled: true, address: "192.168.1.250", holders: "labelled" } },
      "ssh",
    );
    expect(edgeNodes(labelled.config.nodes, labelled.config.edge!).map((n) => n.name)).toEqual(["pi-2", "pi-3"]);
    const none = parse({ edge: { enabled: true, address: "172.30.0.200", holders: "labelled" } });
    expect(none.errors).toEqual([
      expect.stringMatching(/^swarmcloud:edge\.holders = "labelled": no node is labelled edge=true; add labels/),
    ]);
    const one = parse({
      managers: 1,
      workers: 0,
      gluster: { replica: 1 },
      edge: { enabled: true, address: "172.30.0.200" },
    });
    expect(one.errors).toEqual([]);
    expect(one.warnings).toEqual([
      expect.stringMatching(/^swarmcloud:edge\.holders: only manager-1 may hold the front door/),
    ]);
  });

  test("ACME: a directory needs a domain, a root needs a directory", () => {
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const ok = parse({
      edge: {
        enabled: true,
        address: "172.30.0.200",
        domain: "blog.lab.test",
        acmeEmail: "me@lab.test",
        acmeDirectory: "https://172.30.0.1:14000/dir",
        acmeRoot: pem,
      },
    });
    expect(ok.errors).toEqual([]);
    expect(
      parse({ edge: { enabled: true, address: "172.30.0.200", acmeDirectory: "https://acme.lab.test/dir" } }).errors,
    ).toEqual([
      'swarmcloud:edge.acmeDirectory = "https://acme.lab.test/dir": needs edge.domain: without a domain Caddy\'s internal CA signs the address; set edge.domain or remove acmeDirectory',
    ]);
    expect(
      parse({ edge: { enabled: true, address: "172.30.0.200", domain: "blog.lab.test", acmeRoot: pem } }).errors,
    ).toEqual([
      'swarmcloud:edge.acmeRoot = "[PEM]": needs edge.acmeDirectory: Let\'s Encrypt needs no root of its own; set acmeDirectory or remove acmeRoot',
    ]);
  });

  test("ports: 80 and 443 for everyone, Ghost's own port and the edge's Portainer port for admins; a clash is refused", () => {
    const { config } = parse({ edge: { enabled: true, address: "172.30.0.200" } });
    expect(appPorts(config)).toEqual([
      ["ghost.port", 2368, "admin"],
      ["portainer.httpsPort", 9443, "admin"],
      ["edge (HTTP)", 80, "public"],
      ["edge (HTTPS)", 443, "public"],
      ["edge.portainerPort", 8443, "admin"],
    ]);
    expect(parse({ edge: { enabled: true, address: "172.30.0.200" }, ghost: { port: 443 } }).errors).toEqual([
      "swarmcloud:edge (HTTPS) = 443: port 443 is already taken by ghost.port; pick another port",
    ]);
  });

  test("inSubnet", () => {
    expect(inSubnet("172.30.0.200", "172.30.0.0/24")).toBe(true);
    expect(inSubnet("172.30.1.1", "172.30.0.0/24")).toBe(false);
    expect(inSubnet("10.1.2.3", "10.0.0.0/8")).toBe(true);
  });
});
