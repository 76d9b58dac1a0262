/** The preview-time refusal of manager changes that would lose the swarm's Raft quorum. */
import { quorumProblem } from "../../components/config";
import { remoteScriptProvider } from "../../components/remote";

const m = (name: string) => ({ name, role: "manager" as const });
const w = (name: string) => ({ name, role: "worker" as const });

test("the first update has nothing to compare with", () => {
  expect(quorumProblem(undefined, [m("a")])).toBeUndefined();
});

test("removing one of three managers is allowed; two at once is refused with the arithmetic", () => {
  const before = [m("a"), m("b"), m("c"), w("d")];
  expect(quorumProblem(before, [m("a"), m("b"), w("d")])).toBeUndefined();
  const problem = quorumProblem(before, [m("a"), w("d")]);
  expect(problem).toMatch(
    /^swarmcloud:nodes: this update removes or demotes 2 of the swarm's 3 managers \(b, c\), leaving 1/,
  );
  expect(problem).toMatch(/keeps its quorum only while 2 remain/);
  expect(problem).toMatch(/Change at most 1 manager\(s\) per pulumi up/);
});

test("demoting counts like removing; adding new managers at the same time does not rescue it", () => {
  const before = [m("a"), m("b"), m("c")];
  expect(quorumProblem(before, [m("a"), w("b"), w("c"), m("x"), m("y")])).toMatch(/removes or demotes 2 of/);
});

test("replacing one manager (one in, one out) is allowed; five managers tolerate two", () => {
  expect(quorumProblem([m("a"), m("b"), m("c")], [m("b"), m("c"), m("d")])).toBeUndefined();
  const five = ["a", "b", "c", "d", "e"].map(m);
  expect(quorumProblem(five, [m("a"), m("b"), m("c")])).toBeUndefined();
  expect(quorumProblem(five, [m("a"), m("b")])).toMatch(/3 of the swarm's 5 managers/);
});

test("a lone manager is not swapped in one step: add the new one first, then retire the old", () => {
  expect(quorumProblem([m("a")], [m("b")])).toMatch(/1 of the swarm's 1 managers/);
});

test("an empty create script runs nothing (no SSH): the resource exists for its delete", async () => {
  const conn = { host: "127.0.0.1", port: 1, user: "root", privateKey: "KEY", dialErrorLimit: 1 };
  const result = await remoteScriptProvider.create!({ node: "n", connection: conn, create: "", delete: "echo bye" });
  expect(result.outs).toMatchObject({ stdout: "", delete: "echo bye" });
});
