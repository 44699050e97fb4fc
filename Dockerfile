# Worker and dashboard image: hpo on a CUDA build of PyTorch, run as an unprivileged user.
#   docker build -t hpo:latest .
# The layout inside mirrors a checkout with the data folder beside it, so the study configs'
# relative paths work unchanged: configs in /srv/hpo/study_configs, outputs in /srv/hpo/runs,
# data in /srv/shared/data.
ARG BASE_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /srv/hpo
# The base image's torch satisfies the project's torch requirement, so pip keeps it.
COPY pyproject.toml README.md ./
COPY hpo ./hpo
RUN pip install ".[s3]"

ARG HPO_UID=1000
ARG HPO_GID=1000
RUN groupadd --gid "${HPO_GID}" hpo \
    && useradd --uid "${HPO_UID}" --gid hpo --create-home --shell /usr/sbin/nologin hpo \
    && mkdir -p /srv/hpo/runs /srv/shared/data \
    && chown hpo:hpo /srv/hpo/runs
COPY study_configs ./study_configs

USER hpo
CMD ["hpo", "--help"]
