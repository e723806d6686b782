// Which paths logship may read, when it runs as root among files other users write: a
// symlink a user put in a log directory they can write (`ln -s /etc/shadow /var/log/app/x.log`,
// or a link to a directory walked with `**`) must not make logship ship the target.
//
// The rule, the kernel's own for /tmp (fs.protected_symlinks): a symlink is followed only when
// it is owned by root or by the owner of what it points to. So kubelet's links under
// /var/log/containers (root's) work, and a user's link to their own file works, while a user's
// link to a root file does not. Whatever a path leads to, nothing is read from procfs, sysfs,
// devfs or their kin, wherever mounted (/proc/self/environ would ship logship's own
// environment, secrets included).
// `follow_symlinks: false` follows no symlink at all. A refusal names the link, its owner and
// the target's owner; it is said once per path (events.fileRefused).
// The file judged is the file read: openIdentified() checks that the descriptor it opened is
// the inode the scan stat'ed, so a link swapped in between is not read.

import { lstatSync, realpathSync, statfsSync, statSync, type Stats } from "node:fs";
import { exactName, nameFromBytes } from "../names.ts";

/**
 * The kernel's pseudo file systems, by the magic number statfs reports (linux/magic.h): their
 * files are made up when read (sizes of 0 or 4096 that say nothing; /proc/self/environ holds
 * logship's own secrets), wherever they are mounted. Checked by type as well as by device
 * because a procfs mounted again (a container's `/host/proc`, `mount -t proc proc /x`) has a
 * device of its own. tmpfs is not here: /dev is often one, and so are log directories under
 * /run; /dev is refused by its device number instead.
 */
const PSEUDO_TYPES = new Map<number, string>([
  [0x9fa0, "proc"], [0x62656572, "sysfs"], [0x1373, "devtmpfs"], [0x1cd1, "devpts"],
  [0x64626720, "debugfs"], [0x74726163, "tracefs"], [0x73636673, "securityfs"],
  [0x27e0eb, "cgroup"], [0x63677270, "cgroup2"], [0x62656570, "configfs"], [0xcafe4a11, "bpf"],
  [0x6165676c, "pstore"], [0xde5e81e4, "efivarfs"], [0x42494e4d, "binfmt_misc"], [0x65735543, "fusectl"],
]);

/** Devices judged so far: which pseudo file system, in words, or null for an ordinary one. */
const judgedDevices = new Map<number, string | null>();

function seedDevices(): void {
  const root = statSync("/").dev;
  judgedDevices.set(root, null); // / itself is never refused (in a chroot, /dev may be a plain directory on it)
  for (const dir of ["/proc", "/sys", "/dev"]) {
    try {
      const dev = statSync(dir).dev;
      if (dev !== root) judgedDevices.set(dev, `the ${dir} file system`);
    } catch {
      // not there (a minimal container): nothing to refuse by device
    }
  }
}

/**
 * Why the file `st` (what `path` leads to) must not be read: it lives on a pseudo file system
 * (procfs, sysfs, devfs and their kin, wherever mounted). Null when it may. One statfs per
 * device, remembered only when the path still leads to that device afterwards.
 */
export function pseudoFileRefusal(st: Stats, path: string): string | null {
  if (judgedDevices.size === 0) seedDevices();
  let fs = judgedDevices.get(st.dev);
  if (fs === undefined) {
    try {
      const type = PSEUDO_TYPES.get(Number(statfsSync(exactName(path)).type));
      fs = type ? `a ${type} file system` : null;
      if (statSync(exactName(path)).dev === st.dev) judgedDevices.set(st.dev, fs);
    } catch {
      return null; // gone or unreadable: the open that follows says so
    }
  }
  return fs === null ? null : `it is on ${fs}, whose files logship never reads`;
}

/**
 * Why the symlink at `path` (lstat'ed as `link`) must not be followed; null when it may. With
 * `follow` false, none is. Otherwise its owner must be root or the owner of its target.
 */
export function linkRefusal(path: string, link: Stats, follow: boolean): string | null {
  if (!follow) return "it is a symlink, and follow_symlinks is false";
  let target: Stats;
  try {
    target = statSync(exactName(path));
  } catch {
    return null; // dangling: nothing to read, the caller finds nothing there
  }
  if (link.uid !== 0 && link.uid !== target.uid) {
    let to = "";
    try {
      to = ` to ${nameFromBytes(realpathSync(exactName(path), { encoding: "buffer" }))}`;
    } catch {
      // the target is what matters, and its owner is known
    }
    return `it is a symlink owned by uid ${link.uid}${to}, owned by uid ${target.uid}: only root's links or links to their owner's own files are followed (the protected_symlinks rule)`;
  }
  return pseudoFileRefusal(target, path);
}

/**
 * What a matched path is, judged: the stat of what it leads to, or why it must not be read.
 * Throws the fs error (ENOENT when it is gone).
 */
export function judgePath(path: string, follow: boolean): { st: Stats } | { refused: string } {
  const link = lstatSync(exactName(path));
  if (link.isSymbolicLink()) {
    const refused = linkRefusal(path, link, follow);
    if (refused) return { refused };
  }
  const st = link.isSymbolicLink() ? statSync(exactName(path)) : link;
  const refused = pseudoFileRefusal(st, path);
  return refused ? { refused } : { st };
}
