# The connector image Airbyte OSS registers as a custom source (see README, "In Airbyte").
FROM docker.io/airbyte/python-connector-base:4.0.2@sha256:9fdb1888c4264cf6fee473649ecb593f56f58e5d0096a87ee0b231777e2e3e73

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

ENV AIRBYTE_ENTRYPOINT="source-customers"
ENTRYPOINT ["source-customers"]
