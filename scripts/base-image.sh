#!/bin/sh
# The base image the connector images are built FROM, printed on the last line of stdout.
#
# The Dockerfile's default base is Airbyte's pinned python-connector-base (BASE_IMAGE
# below). Where Airbyte's registry cannot be reached (CI, this project's machines), a stand-in
# is made from Debian's own packages instead, shaped like that base: bookworm, its Python 3.11
# and pip, user `airbyte` (uid 1000), /airbyte owned by it, UTC. pip trusts the certificates
# this machine trusts (those added in /usr/local/share/ca-certificates), so it reaches PyPI
# the way the machine does. The stand-in is imported under a tag naming this script's hash:
# a second run finds it and skips the build; a changed recipe gets a new tag.
#
#   sh scripts/base-image.sh            # the real base if it can be pulled, else the stand-in
#   STAND_IN=1 sh scripts/base-image.sh # the stand-in, without trying the registry
set -eu

BASE_IMAGE=$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)
STATE=${IMAGE_TEST_STATE:-.image-test}
RECIPE=$(sha256sum "$0" | cut -c1-12)
STAND_IN_TAG="source-customers/python-connector-base-stand-in:bookworm-py3.11-$RECIPE"
PULL_WAIT=60

say() { echo "base-image: $*" >&2; }
mkdir -p "$STATE"

if [ -z "${STAND_IN:-}" ]; then
    if docker image inspect "$BASE_IMAGE" > /dev/null 2>&1; then
        echo "$BASE_IMAGE"; exit 0
    fi
    say "pulling $BASE_IMAGE"
    if timeout "$PULL_WAIT" docker pull --quiet "$BASE_IMAGE" > "$STATE/pull.log" 2>&1; then
        echo "$BASE_IMAGE"; exit 0
    fi
    say "cannot pull it ($(tail -n 1 "$STATE/pull.log")): using a stand-in from Debian's packages"
fi

if docker image inspect "$STAND_IN_TAG" > /dev/null 2>&1; then
    say "stand-in $STAND_IN_TAG is built already"
    echo "$STAND_IN_TAG"; exit 0
fi

command -v debootstrap > /dev/null 2>&1 || {
    say "debootstrap is missing (sh scripts/engine.sh start installs it as root)"; exit 1; }
# The Debian mirror this machine's apt uses (deb822 or one-line sources).
MIRROR=$(sed -n 's/^URIs: *\([^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | head -n 1)
[ -n "$MIRROR" ] || MIRROR=$(sed -n 's/^deb \(http[^ ]*\/debian\) .*/\1/p' /etc/apt/sources.list \
    2>/dev/null | head -n 1)
[ -n "$MIRROR" ] || { say "no Debian mirror found in /etc/apt/sources.list*"; exit 1; }

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/base-image.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
say "debootstrap bookworm from $MIRROR (log: $STATE/debootstrap.log)"
debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates,tzdata \
    bookworm "$ROOT" "$MIRROR" > "$STATE/debootstrap.log" 2>&1 \
    || { say "debootstrap failed; the end of its log:"; tail -n 20 "$STATE/debootstrap.log" >&2; exit 1; }

# The machine's own certificate authorities, trusted by the image's store and so by pip.
if ls /usr/local/share/ca-certificates/*.crt > /dev/null 2>&1; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
fi
chroot "$ROOT" update-ca-certificates >> "$STATE/debootstrap.log" 2>&1
cat > "$ROOT/etc/pip.conf" << 'EOF'
[global]
cert = /etc/ssl/certs/ca-certificates.crt
disable-pip-version-check = true
EOF
# Like the real base, pip installs into the system Python (/usr/local): bookworm marks its
# Python externally managed (PEP 668), which the real base's python.org build does not.
rm -f "$ROOT"/usr/lib/python3.*/EXTERNALLY-MANAGED
ln -sf python3 "$ROOT/usr/bin/python"
ln -snf /usr/share/zoneinfo/Etc/UTC "$ROOT/etc/localtime"
chroot "$ROOT" useradd --uid 1000 --user-group --no-create-home --home-dir /airbyte airbyte
mkdir -m 755 "$ROOT/airbyte"
chroot "$ROOT" chown airbyte:airbyte /airbyte
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/tmp/*

say "importing $STAND_IN_TAG"
tar -C "$ROOT" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$STAND_IN_TAG" > /dev/null
echo "$STAND_IN_TAG"
