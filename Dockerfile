# syntax=docker/dockerfile:1
# One image for every BondWatch process: `serve`, `ingest`, `api`, `db migrate`, `edge`, ...
# Build: docker build -t bondwatch:0.1.0 .   (docker-compose.yml builds it as well)

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY . .
RUN python -m venv /opt/bondwatch \
 && /opt/bondwatch/bin/pip install .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/bondwatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BONDWATCH_STATE_DIR=/var/lib/bondwatch
RUN groupadd --system --gid 10001 bondwatch \
 && useradd --system --uid 10001 --gid bondwatch --home-dir /var/lib/bondwatch --create-home \
        --shell /usr/sbin/nologin bondwatch
COPY --from=build /opt/bondwatch /opt/bondwatch
USER bondwatch
WORKDIR /var/lib/bondwatch
# REST API (BONDWATCH_API_PORT)
EXPOSE 8716
ENTRYPOINT ["bondwatch"]
CMD ["serve"]
