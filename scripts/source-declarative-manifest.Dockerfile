# A stand-in for Airbyte's `source-declarative-manifest` image, the base of every manifest-only
# connector in Airbyte's catalog, for `make image-test` where Airbyte's registry cannot be
# reached. Like the CDK's own image: the CDK on the Python connector base, and
# /airbyte/integration_code/main.py running `source-declarative-manifest`. The CDK and its
# dependencies are the ones uv.lock pins, hash-checked, as in the connector's Dockerfile.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

WORKDIR /airbyte/integration_code

COPY pyproject.toml uv.lock ./
RUN pip install --no-cache-dir --quiet --no-deps --target /tmp/uv uv==0.13.9 \
    && /tmp/uv/bin/uv export --locked --no-dev --no-emit-project --format requirements-txt \
        --quiet --no-cache --output-file /tmp/requirements.txt \
    && pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.txt \
    && rm -rf /tmp/uv /tmp/requirements.txt pyproject.toml uv.lock \
    && printf 'from airbyte_cdk.cli.source_declarative_manifest._run import run\n\nif __name__ == "__main__":\n    run()\n' > main.py \
    && mkdir -p source_declarative_manifest

ENV AIRBYTE_ENTRYPOINT="python /airbyte/integration_code/main.py"
ENTRYPOINT ["python", "/airbyte/integration_code/main.py"]
