/** Unit tests only: the lab suites run through tests/e2e/run.sh. */
module.exports = {
  preset: "ts-jest",
  testEnvironment: "node",
  roots: ["<rootDir>/tests/unit"],
  testTimeout: 30000,
};
