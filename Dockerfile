# streamproc: one image for every process (worker, sender, api, replay, inspect).
#
#   make image            builds it with docker, podman or buildah, whichever works here
#
# Stage 1 builds wheels for streamproc and all of its dependencies (rocksdict, confluent-kafka
# and pydantic-core come as manylinux wheels, so no compiler is needed even here); stage 2 only
# installs those wheels: no pip cache, no build tools, and a non-root user.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streamproc ./streamproc
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --home-dir /var/lib/streamproc --create-home streamproc
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels streamproc && rm -rf /wheels
USER 10001:10001
WORKDIR /var/lib/streamproc
# Worker RocksDB tables live here (a volume in the Helm chart); the API listens on 8080.
VOLUME ["/var/lib/streamproc"]
EXPOSE 8080
ENTRYPOINT ["streamproc"]
CMD ["--help"]
