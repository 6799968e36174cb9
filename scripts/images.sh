#!/bin/sh
# Builds the connectors' images for `make image-test`, on a running engine
# (scripts/engine.sh): the base (scripts/base-image.sh: Airbyte's, or the stand-in), then
# the source and the destination from the one Dockerfile, and, for each folder of
# `make catalog`, its image as Airbyte's catalog builds a manifest-only connector, FROM a
# `source-declarative-manifest` image at the CDK version uv.lock pins.
#
# Builds use the host's network: pip reaches PyPI the way this machine does. The tags built
# are written to $STATE/images.env, which integration_tests/test_images.py reads.
set -eu

STATE=${IMAGE_TEST_STATE:-.image-test}
mkdir -p "$STATE"
# The CLI may be newer than Debian's engine and have no buildx: the classic builder is the one
# every engine here has.
export DOCKER_BUILDKIT=0

say() { echo "images: $*"; }

build() {  # build TAG LOG ARGS...
    tag=$1; log=$2; shift 2
    started=$(date +%s)
    if ! docker build --network host --tag "$tag" "$@" > "$STATE/$log" 2>&1; then
        say "building $tag failed; the end of $STATE/$log:" >&2
        tail -n 30 "$STATE/$log" >&2
        exit 1
    fi
    say "built $tag in $(($(date +%s) - started)) s"
}

base=$(sh scripts/base-image.sh)
say "base: $base"
build airbyte/source-customers:dev build-source.log --build-arg BASE_IMAGE="$base" .
build airbyte/destination-customers:dev build-destination.log --build-arg BASE_IMAGE="$base" \
    --build-arg CONNECTOR=destination-customers .

cdk=$(sed -n '/^name = "airbyte-cdk"$/{n;s/^version = "\(.*\)"$/\1/p;}' uv.lock)
sdm="airbyte/source-declarative-manifest:$cdk"
if docker image inspect "$sdm" > /dev/null 2>&1 || docker pull --quiet "$sdm" > /dev/null 2>&1; then
    say "source-declarative-manifest: $sdm"
else
    sdm="source-customers/source-declarative-manifest-stand-in:$cdk"
    build "$sdm" build-sdm.log --build-arg BASE_IMAGE="$base" \
        --file scripts/source-declarative-manifest.Dockerfile .
fi

catalog_images=""
for folder in dist/airbyte-catalog/source-*/; do
    name=$(basename "$folder")
    build "airbyte/$name:dev" "build-$name.log" --build-arg BASE_IMAGE="$sdm" \
        --file scripts/manifest-only.Dockerfile "$folder"
    catalog_images="$catalog_images airbyte/$name:dev"
done

cat > "$STATE/images.env" << EOF
SOURCE_IMAGE=airbyte/source-customers:dev
DESTINATION_IMAGE=airbyte/destination-customers:dev
CATALOG_IMAGES=${catalog_images# }
EOF
