# A folder of `make catalog` (dist/airbyte-catalog/source-<vendor>/) built as Airbyte's
# catalog builds a manifest-only connector (its docker-images/Dockerfile.manifest-only-connector):
# FROM `source-declarative-manifest`, the manifest and components.py copied where that
# runner looks for them, run as the user airbyte. Airbyte's template also wraps the command
# in Datadog's ddtrace-run, which only its published runner image has.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

WORKDIR /airbyte/integration_code
# The whole folder, as the template copies it: the runner opens manifest.yaml in the working
# directory first, and imports source_declarative_manifest.components from beside it.
COPY . ./
RUN mkdir -p source_declarative_manifest \
    && cp manifest.yaml components.py ./source_declarative_manifest/

USER airbyte
ENV AIRBYTE_ENTRYPOINT="python /airbyte/integration_code/main.py"
ENTRYPOINT ["python", "/airbyte/integration_code/main.py"]
