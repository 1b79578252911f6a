// Installs the published builds listed under "prebuilt" in package.json (today OHIF's @ohif/app): only the
// package's own tarball, from the npm registry through `npm pack`, checked against the pinned integrity and
// unpacked into node_modules/<name>/. Why not a dependency: @ohif/app's dependencies are what OHIF builds
// dist/ from, never loaded by the built viewer, and some of their pinned versions are not on the registry, so
// `npm ci` cannot resolve them; the built viewer needs none of them.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const pkg = JSON.parse(readFileSync("package.json", "utf8"));
for (const [name, pin] of Object.entries(pkg.prebuilt ?? {})) {
  const dest = join("node_modules", name);
  const stamp = join(dest, ".prebuilt-integrity");
  try {
    if (readFileSync(stamp, "utf8") === pin.integrity) continue;
  } catch {}
  const tmp = mkdtempSync(join(tmpdir(), "prebuilt-"));
  try {
    execFileSync("npm", ["pack", `${name}@${pin.version}`, "--pack-destination", tmp, "--silent", "--prefer-offline"],
                 { stdio: ["ignore", "ignore", "inherit"] });
    const tgz = join(tmp, readdirSync(tmp).find((f) => f.endsWith(".tgz")));
    const got = "sha512-" + createHash("sha512").update(readFileSync(tgz)).digest("base64");
    if (got !== pin.integrity) {
      throw new Error(`${name}@${pin.version}: integrity ${got} is not the pinned ${pin.integrity}`);
    }
    rmSync(dest, { recursive: true, force: true });
    mkdirSync(dest, { recursive: true });
    execFileSync("tar", ["xzf", tgz, "-C", dest, "--strip-components=1", "--no-same-owner", ...pin.keep]);
    writeFileSync(stamp, pin.integrity);
    console.log(`installed ${name}@${pin.version} (prebuilt) into ${dest}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
