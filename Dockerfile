# The connector image Airbyte OSS registers as a custom connector (docs/running.md, "In
# Airbyte"). One package, two connectors: the build argument CONNECTOR picks the one the image
# runs, `source-customers` (the default, metadata.yaml) or `destination-customers`
# (destination-metadata.yaml):
#   docker build -t airbyte/source-customers:dev .
#   docker build --build-arg CONNECTOR=destination-customers -t airbyte/destination-customers:dev .
# BASE_IMAGE: Airbyte's pinned base by default (the one metadata.yaml names). `make image-test`
# builds on a stand-in made from Debian's packages where Airbyte's registry cannot be reached
# (scripts/base-image.sh); both provide Python 3.11, pip and the user airbyte (uid 1000).
ARG BASE_IMAGE=docker.io/airbyte/python-connector-base:4.0.2@sha256:9fdb1888c4264cf6fee473649ecb593f56f58e5d0096a87ee0b231777e2e3e73
FROM ${BASE_IMAGE}

WORKDIR /airbyte/integration_code

# The runtime dependencies exactly as uv.lock pins them, hash-checked: uv (the version the
# Makefile uses, in a throwaway folder) only exports the lock's pins without the extras; pip
# installs those and nothing else. The image runs the versions `make test` ran.
COPY pyproject.toml uv.lock ./
RUN pip install --no-cache-dir --quiet --no-deps --target /tmp/uv uv==0.13.9 \
    && /tmp/uv/bin/uv export --locked --no-dev --no-emit-project --format requirements-txt \
        --quiet --no-cache --output-file /tmp/requirements.txt \
    && pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.txt \
    && rm -rf /tmp/uv /tmp/requirements.txt

# The connector itself, as a wheel, resolving nothing: built without isolation by the
# setuptools the lock pins (airbyte-cdk depends on it), so nothing unpinned is downloaded.
COPY README.md ./
COPY source_customers ./source_customers
COPY manifests ./manifests
RUN pip install --no-cache-dir --no-deps --no-build-isolation .

# Declared after the installs, so that both images share every layer above. The build fails
# here unless CONNECTOR is one of the package's console scripts ([project.scripts]).
ARG CONNECTOR=source-customers
RUN case "${CONNECTOR}" in source-customers|destination-customers) ;; \
        *) echo "CONNECTOR must be source-customers or destination-customers" >&2; exit 1 ;; \
    esac \
    && command -v "${CONNECTOR}" > /dev/null
# Airbyte's platform reads the command from AIRBYTE_ENTRYPOINT; the entry point runs it, with
# the arguments `docker run` gives (spec, check, discover, read or write, and their options).
ENV AIRBYTE_ENTRYPOINT="${CONNECTOR}"
# Every command runs as the base's non-root user, as the platform runs connectors; nothing is
# written in the image at run time (config and catalog may be mounted read-only).
USER airbyte
ENTRYPOINT ["/bin/sh", "-c", "exec \"$AIRBYTE_ENTRYPOINT\" \"$@\"", "connector"]
