// The Debian package and the systemd unit (scripts/package.sh, packaging/): the amd64 .deb is
// built with dpkg-deb, inspected (control fields, conffile, file list with modes and owners,
// maintainer scripts), extracted and run: the packaged binary answers --version and accepts
// the packaged config; `systemd-analyze verify` accepts the unit; lintian reports no error.
// Last, it is installed for real with dpkg -i (CI runs as root on a fresh machine), checked
// (binary, user, state directory, conffile) and purged; it refuses to touch a logship package
// already installed by someone else.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { ensureBuilt, ROOT } from "./helpers/agentProcess.ts";

const DEB = join(ROOT, `dist/logship_${pkg.version}_amd64.deb`);
let tmp: string;

function sh(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): { code: number; out: string; err: string } {
  const r = Bun.spawnSync(cmd, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
}

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), "logship-package-"));
  const r = sh(["bash", "scripts/package.sh"], { env: { ARCHES: "amd64" } });
  if (r.code !== 0) throw new Error(`package.sh failed (${r.code}):\n${r.out}\n${r.err}`);
  expect(r.out.trim()).toBe(`dist/logship_${pkg.version}_amd64.deb`);
}, 180_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("the amd64 package", () => {
  test("control fields, conffile and maintainer scripts", () => {
    const field = (f: string) => sh(["dpkg-deb", "-f", DEB, f]).out.trim();
    expect(field("Package")).toBe("logship");
    expect(field("Version")).toBe(pkg.version);
    expect(field("Architecture")).toBe("amd64");
    expect(field("Depends")).toContain("adduser");
    const ctl = join(tmp, "control");
    expect(sh(["dpkg-deb", "-e", DEB, ctl]).code).toBe(0);
    expect(readFileSync(join(ctl, "conffiles"), "utf8").trim()).toBe("/etc/logship/logship.yaml");
    expect(readFileSync(join(ctl, "postinst"), "utf8")).toMatch(/adduser --system --group[^\n]* logship/);
    expect(readFileSync(join(ctl, "postinst"), "utf8")).toContain("install -d -o logship -g logship -m 0700 /var/lib/logship");
    expect(readFileSync(join(ctl, "prerm"), "utf8")).toContain("systemctl stop logship");
    for (const s of ["postinst", "prerm", "postrm"]) expect(sh(["sh", "-n", join(ctl, s)]).code).toBe(0);
  });

  test("files, modes and owners", () => {
    const listing = sh(["dpkg-deb", "-c", DEB]).out.trim().split("\n");
    const entry = (path: string) => listing.find((l) => l.endsWith(` ./${path}`)) ?? `(missing ${path})`;
    expect(entry("usr/bin/logship")).toMatch(/^-rwxr-xr-x root\/root /);
    expect(entry("lib/systemd/system/logship.service")).toMatch(/^-rw-r--r-- root\/root /);
    expect(entry("etc/logship/logship.yaml")).toMatch(/^-rw-r--r-- root\/root /);
    expect(entry("usr/share/doc/logship/copyright")).toMatch(/^-rw-r--r-- root\/root /);
    expect(entry("usr/share/doc/logship/conf.example.yaml")).toMatch(/^-rw-r--r-- root\/root /);
  });

  test("the packaged binary runs and accepts the packaged config; systemd-analyze verify accepts the unit", () => {
    const x = join(tmp, "root");
    expect(sh(["dpkg-deb", "-x", DEB, x]).code).toBe(0);
    const bin = join(x, "usr/bin/logship");
    expect(sh([bin, "--version"]).out.trim()).toBe(`logship ${pkg.version}`);
    // The packaged config, its state path moved into the temp root: valid, with the endpoint on loopback.
    const cfg = join(tmp, "logship.yaml");
    const packaged = readFileSync(join(x, "etc/logship/logship.yaml"), "utf8");
    expect(packaged).toContain("listen: 127.0.0.1:9570");
    writeFileSync(cfg, packaged.replace("/var/lib/logship/state.db", join(tmp, "state.db")));
    const check = sh([bin, "check", "--config", cfg]);
    expect({ code: check.code, err: check.err }).toEqual({ code: 0, err: "" });
    expect(check.out).toContain(`config ${cfg} is valid`);

    const unit = readFileSync(join(x, "lib/systemd/system/logship.service"), "utf8");
    for (const want of ["StateDirectory=logship", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID", "SupplementaryGroups=adm", "User=logship"]) {
      expect(unit).toContain(`\n${want}\n`);
    }
    // TimeoutStopSec above the default shutdown_timeout (30s), so a drain is never killed.
    expect(Number(/\nTimeoutStopSec=(\d+)s\n/.exec(unit)?.[1])).toBeGreaterThan(30);
    // verify checks that ExecStart's binary exists: point it at the extracted one.
    const unitPath = join(tmp, "logship.service");
    writeFileSync(unitPath, unit.replaceAll("/usr/bin/logship", bin));
    const verify = sh(["systemd-analyze", "verify", unitPath]);
    expect({ code: verify.code, out: verify.out + verify.err }).toEqual({ code: 0, out: "" });
  });

  test("lintian reports no error", () => {
    const r = sh(["lintian", DEB]);
    const errors = r.out.split("\n").filter((l) => l.startsWith("E:"));
    expect(errors).toEqual([]);
    expect(r.code).toBe(0);
  }, 120_000);

  test("dpkg -i installs it (binary, user, 0700 state directory, conffile), dpkg --purge removes it all", () => {
    expect({ alreadyInstalled: sh(["dpkg-query", "-W", "-f", "${Status}", "logship"]).out }).toEqual({ alreadyInstalled: "" });
    try {
      const install = sh(["dpkg", "-i", DEB]);
      expect({ code: install.code, err: install.err }).toEqual({ code: 0, err: "" });
      expect(sh(["/usr/bin/logship", "--version"]).out.trim()).toBe(`logship ${pkg.version}`);
      expect(sh(["dpkg-query", "-W", "-f", "${Status} ${Version}", "logship"]).out).toBe(`install ok installed ${pkg.version}`);
      expect(sh(["dpkg-query", "-W", "-f", "${Conffiles}", "logship"]).out).toMatch(/^ \/etc\/logship\/logship\.yaml [0-9a-f]{32}\n?$/);
      expect(existsSync("/lib/systemd/system/logship.service")).toBe(true);
      const user = sh(["getent", "passwd", "logship"]).out.trim().split(":");
      expect(user[0]).toBe("logship");
      expect(sh(["id", "-nG", "logship"]).out.split(/\s+/)).toContain("adm");
      const st = statSync("/var/lib/logship");
      expect({ dir: st.isDirectory(), mode: (st.mode & 0o777).toString(8), uid: st.uid }).toEqual({ dir: true, mode: "700", uid: Number(user[2]) });
    } finally {
      const purge = sh(["dpkg", "--purge", "logship"]);
      expect({ code: purge.code, err: purge.err }).toEqual({ code: 0, err: "" });
    }
    expect(existsSync("/usr/bin/logship")).toBe(false);
    expect(existsSync("/etc/logship/logship.yaml")).toBe(false);
    expect(existsSync("/var/lib/logship")).toBe(false);
    expect(sh(["getent", "passwd", "logship"]).out).toBe("");
  }, 120_000);
});
