"""make mutate: a mutation check of the tests, over a plain list of patches.

Each mutation in tests/mutations.txt is one small deliberate bug in
security- or durability-critical code. For each, one at a time: the text is
replaced in its file (it must occur exactly once), the service is rebuilt in
build/mutate/, the tests named for it run against that build, and the file
is restored whatever happens. A mutation is "killed" when those tests fail,
"survived" when they pass. Any survivor (or a mutation that no longer
applies) fails the run: the list is kept in step with the code.

tests/mutations.txt, blocks separated by blank lines:

    ## what the bug is
    file: src/token.c
    - the exact text to replace (one line; \\n for a newline)
    + the text to put instead
    test: tests/api/test_auth.py -k "exp"      (pytest arguments), or
    unit: test_token                            (a unit test binary)

Run from the repository's root: /usr/bin/python3 tests/mutate.py [NAME-SUBSTRING]
"""

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = "build/mutate"
PYTHON = "/usr/bin/python3"


def parse(text):
    muts, cur = [], None
    for raw in text.splitlines():
        line = raw.rstrip("\n")
        if line.startswith("## "):
            cur = {"name": line[3:].strip(), "tests": [], "units": []}
            muts.append(cur)
        elif cur is None or not line.strip() or line.startswith("#"):
            continue
        elif line.startswith("file: "):
            cur["file"] = line[6:].strip()
        elif line.startswith("- "):
            cur["old"] = line[2:].replace("\\n", "\n")
        elif line.startswith("+ "):
            cur["new"] = line[2:].replace("\\n", "\n")
        elif line == "+":
            cur["new"] = ""
        elif line.startswith("test: "):
            cur["tests"].append(shlex.split(line[6:]))
        elif line.startswith("unit: "):
            cur["units"].extend(line[6:].split())
        else:
            raise SystemExit("mutations.txt: cannot read %r" % line)
    for m in muts:
        for key in ("file", "old", "new"):
            if key not in m:
                raise SystemExit("mutation %r has no %s" % (m["name"], key))
        if not m["tests"] and not m["units"]:
            raise SystemExit("mutation %r names no test" % m["name"])
    return muts


def build(units):
    targets = ["all"] + ["%s/tests/%s" % (BUILD, u) for u in units]
    # WARN=-w: a mutant's unused function or parameter must not stop the
    # build (-Werror); whether the tests catch it is the question
    return subprocess.run(["make", "--no-print-directory", "BUILD=" + BUILD, "WARN=-w"] + targets,
                          cwd=ROOT, capture_output=True, text=True)


def failing(m):
    """What failed among the tests named for m against the build (a unit's
    name or pytest's arguments, and the end of its output), or None."""
    env = dict(os.environ, SESSIOND_BIN_DIR=str(ROOT / BUILD))
    for unit in m["units"]:
        r = subprocess.run([str(ROOT / BUILD / "tests" / unit)], cwd=ROOT, env=env,
                           capture_output=True, timeout=600)
        if r.returncode != 0:
            return "%s:\n%s" % (unit, r.stdout.decode(errors="replace")[-2000:])
    for args in m["tests"]:
        r = subprocess.run([PYTHON, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"] + args,
                           cwd=ROOT, env=env, capture_output=True, timeout=1800)
        if r.returncode == 1:  # tests failed (2-5: usage or collection errors)
            return "pytest %s:\n%s" % (" ".join(args), r.stdout.decode(errors="replace")[-3000:])
        if r.returncode not in (0, 1):
            raise SystemExit("pytest %s: exit %d\n%s" % (args, r.returncode, r.stdout[-2000:]))
    return None


def caught(m):
    """True when a test named for m fails against the mutated build."""
    return failing(m) is not None


def main():
    # stopped (a timeout, a cancelled run): the finally below still puts the
    # mutated file back
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    only = sys.argv[1] if len(sys.argv) > 1 else None
    muts = parse((ROOT / "tests" / "mutations.txt").read_text())
    if only:
        muts = [m for m in muts if only in m["name"]]
    # the tests must pass on the code as it is, or "killed" means nothing
    units = sorted({u for m in muts for u in m["units"]})
    b = build(units)
    if b.returncode != 0:
        raise SystemExit("build of the unmutated code failed:\n" + b.stderr[-3000:])
    seen = set()
    for m in muts:
        key = (tuple(m["units"]), tuple(tuple(a) for a in m["tests"]))
        if key not in seen:
            seen.add(key)
            why = failing(m)
            if why is not None:
                raise SystemExit("the tests of %r fail on the unmutated code: %s"
                                 % (m["name"], why))
    survived, broken = [], []
    for i, m in enumerate(muts, 1):
        path = ROOT / m["file"]
        original = path.read_text()
        if original.count(m["old"]) != 1:
            broken.append(m["name"])
            print("[%2d/%d] STALE     %s (the text occurs %d times in %s)"
                  % (i, len(muts), m["name"], original.count(m["old"]), m["file"]), flush=True)
            continue
        t0 = time.monotonic()
        try:
            path.write_text(original.replace(m["old"], m["new"], 1))
            b = build(m["units"])
            if b.returncode != 0:
                verdict = "STALE (does not build)"
                print(b.stderr[-1500:])
            else:
                verdict = "killed" if caught(m) else "SURVIVED"
        finally:
            path.write_text(original)
            os.utime(path)  # newer than the mutated objects: rebuilt next time
        if verdict == "SURVIVED":
            survived.append(m["name"])
        elif verdict.startswith("STALE"):
            broken.append(m["name"])
        print("[%2d/%d] %s: %s (%.0f s)\n        %s: %r -> %r"
              % (i, len(muts), verdict, m["name"], time.monotonic() - t0,
                 m["file"], m["old"].strip()[:90], m["new"].strip()[:90]), flush=True)
    build([])
    print("\nmutate: %d mutations, %d killed, %d survived, %d stale"
          % (len(muts), len(muts) - len(survived) - len(broken), len(survived), len(broken)))
    for name in survived:
        print("  survived: " + name)
    for name in broken:
        print("  stale:    " + name)
    return 1 if survived or broken else 0


if __name__ == "__main__":
    sys.exit(main())
