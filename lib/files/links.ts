// Which paths logship may read, when it runs as root among files other users write: a
// symlink a user put in a log directory they can write (`ln -s /etc/shadow /var/log/app/x.log`,
// or a link to a directory walked with `**`) must not make logship ship the target.
//
// The rule, the kernel's own for /tmp (fs.protected_symlinks): a symlink is followed only when
// it is owned by root or by the owner of what it points to. So kubelet's links under
// /var/log/containers (root's) work, and a user's link to their own file works, while a user's
// link to a root file does not. Whatever a path leads to, nothing is read from procfs, sysfs
// or devfs (/proc/self/environ would ship logship's own environment, secrets included).
// `follow_symlinks: false` follows no symlink at all. A refusal names the link, its owner and
// the target's owner; it is said once per path (events.fileRefused).
// The file judged is the file read: openIdentified() checks that the descriptor it opened is
// the inode the scan stat'ed, so a link swapped in between is not read.

import { lstatSync, realpathSync, statSync, type Stats } from "node:fs";

/** Devices of the pseudo file systems nothing is read from (looked up once). */
let pseudo: Map<number, string> | null = null;

function pseudoDevices(): Map<number, string> {
  if (pseudo) return pseudo;
  pseudo = new Map();
  for (const dir of ["/proc", "/sys", "/dev"]) {
    try {
      pseudo.set(statSync(dir).dev, dir);
    } catch {
      // not there (a minimal container): nothing to refuse
    }
  }
  return pseudo;
}

/** Why the file `st` (what a path leads to) must not be read: it lives in /proc, /sys or /dev. Null when it may. */
export function pseudoFileRefusal(st: Stats): string | null {
  const dir = pseudoDevices().get(st.dev);
  return dir ? `it is on the ${dir} file system, which logship never reads` : null;
}

/**
 * Why the symlink at `path` (lstat'ed as `link`) must not be followed; null when it may. With
 * `follow` false, none is. Otherwise its owner must be root or the owner of its target.
 */
export function linkRefusal(path: string, link: Stats, follow: boolean): string | null {
  if (!follow) return "it is a symlink, and follow_symlinks is false";
  let target: Stats;
  try {
    target = statSync(path);
  } catch {
    return null; // dangling: nothing to read, the caller finds nothing there
  }
  if (link.uid !== 0 && link.uid !== target.uid) {
    let to = "";
    try {
      to = ` to ${realpathSync(path)}`;
    } catch {
      // the target is what matters, and its owner is known
    }
    return `it is a symlink owned by uid ${link.uid}${to}, owned by uid ${target.uid}: only root's links or links to their owner's own files are followed (the protected_symlinks rule)`;
  }
  return pseudoFileRefusal(target);
}

/**
 * What a matched path is, judged: the stat of what it leads to (and whether through a symlink),
 * or why it must not be read.
 * Throws the fs error (ENOENT when it is gone).
 */
export function judgePath(path: string, follow: boolean): { st: Stats; linked: boolean } | { refused: string } {
  const link = lstatSync(path);
  const linked = link.isSymbolicLink();
  if (linked) {
    const refused = linkRefusal(path, link, follow);
    if (refused) return { refused };
  }
  const st = linked ? statSync(path) : link;
  const refused = pseudoFileRefusal(st);
  return refused ? { refused } : { st, linked };
}
