// Flat config: @eslint/js + typescript-eslint recommended, plus @pulumi/eslint-plugin on TypeScript.
import js from "@eslint/js";
import pulumi from "@pulumi/eslint-plugin";
import { defineConfig, globalIgnores } from "eslint/config";
import tseslint from "typescript-eslint";

/** Node globals used by the plain-JS files (TypeScript files get theirs from the compiler). */
const nodeGlobals = {
  __dirname: "readonly",
  console: "readonly",
  module: "writable",
  process: "readonly",
  require: "readonly",
};

export default defineConfig(
  globalIgnores(["**/node_modules/", "bin/", "reports/", "coverage/", "tests/lab/**/node_modules/"]),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    // Same convention as tsc's noUnusedParameters: a leading underscore marks "unused on purpose".
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_" },
      ],
    },
  },
  {
    // CONTRIBUTING.md, Conventions: no function over 80 lines outside the tests (a long one is
    // split into small named functions). tools/golint.sh checks the Go source the same way.
    files: ["**/*.ts", "**/*.js", "**/*.cjs", "**/*.mjs"],
    ignores: ["tests/**"],
    rules: { "max-lines-per-function": ["error", { max: 80 }] },
  },
  {
    // The Pulumi rules ask the type checker whether an expression is an Output, so they need
    // the TypeScript program (project service, tsconfig.json).
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { "@pulumi": pulumi },
    rules: {
      "@pulumi/no-output-in-template-literal": "error",
      "@pulumi/no-output-instance-in-template-literal": "error",
    },
  },
  {
    files: ["**/*.js", "**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: nodeGlobals },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    files: ["**/*.mjs"],
    languageOptions: { sourceType: "module", globals: nodeGlobals },
  },
  {
    // Dynamic providers are serialized into the state file, so the modules they use are
    // required inline inside the functions; allow that here only (remote.ts, generated-key.ts,
    // generated-secret.ts, generated-ca.ts and nodes/vagrant-command.ts, and hostkey.ts whose
    // functions their providers call).
    files: [
      "components/remote.ts",
      "components/nodes/vagrant-command.ts",
      "components/generated-key.ts",
      "components/generated-secret.ts",
      "components/generated-ca.ts",
      "components/hostkey.ts",
    ],
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
);
