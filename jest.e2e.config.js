/** Lab suites: real engine, real nodes. Run through tests/e2e/run.sh (one suite at a time). */
module.exports = {
  preset: "ts-jest",
  testEnvironment: "node",
  roots: ["<rootDir>/tests/e2e"],
  testMatch: ["**/*.e2e.ts"],
  testTimeout: 1800000,
  verbose: true,
};
