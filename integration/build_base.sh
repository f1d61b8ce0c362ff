#!/usr/bin/env bash
# Build the suite's base image without any registry: debootstrap a minimal
# Debian bookworm with python3, then `docker import` it.
#
#   integration/build_base.sh TAG
#
# Nothing is done when TAG already exists (the suite names TAG after this
# script's own hash, so editing the script builds a new image). The mirror is
# the Debian one this machine's apt already uses, or $PYINIT_DEBIAN_MIRROR.
set -euo pipefail

TAG=${1:?usage: $0 TAG}
SUITE=bookworm
# python3-venv: the Dockerfile installs pyinit into its own venv, as it does on
# python:*-slim; procps: `ps` for `docker exec ... ps` in the tests.
INCLUDE=python3,python3-venv,procps

say() { printf 'base image: %s\n' "$*" >&2; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
    say "$TAG is cached"
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
fi

mirror() {
    # The first Debian mirror in apt's sources that serves $SUITE itself.
    python3 - "$SUITE" <<'PY'
import glob, re, sys

suite = sys.argv[1]
found = []
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]:
    try:
        text = open(path).read()
    except OSError:
        continue
    if path.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
            if "deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split():
                found += fields.get("URIs", "").split()
    else:
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                found.append(words[1])
debian = [uri for uri in found if uri.rstrip("/").endswith("/debian")]
print((debian or found or ["http://deb.debian.org/debian"])[0])
PY
}

MIRROR=${PYINIT_DEBIAN_MIRROR:-$(mirror)}
WORK=$(mktemp -d /var/tmp/pyinit-base.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOTFS=$WORK/rootfs

say "debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
    say "debootstrap failed; its log ends:"
    tail -n 30 "$WORK/debootstrap.log" >&2
    tail -n 30 "$ROOTFS/debootstrap/debootstrap.log" >&2 2>/dev/null || true
    exit 1
fi
# What an image does not need: downloaded packages and package lists.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/tmp/*

say "importing as $TAG"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "debootstrap --variant=minbase --include=$INCLUDE $SUITE" \
    - "$TAG" >/dev/null
say "built $TAG"
