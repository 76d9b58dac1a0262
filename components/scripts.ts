import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";

/** The text of one remote script from components/scripts (each lives in its own file). */
export function script(name: string): string {
  return fs.readFileSync(path.join(__dirname, "scripts", `${name}.sh`), "utf8");
}

/** Joins addresses (which may still be unknown) into one space-separated string. */
export function words(values: pulumi.Input<string>[]): pulumi.Output<string> {
  return pulumi.all(values).apply((v) => v.join(" "));
}

/** Renders labels or options as the "key=value" lines the scripts read. */
export function keyValueLines(map: Record<string, string>): string {
  return Object.keys(map)
    .sort()
    .map((k) => `${k}=${map[k]}`)
    .join("\n");
}
