# One image for every trainq service: the API, the workers, the one-shot migration, Flower.
#   docker build -t trainq .                                     # CPU: numpy
#   docker build -t trainq-gpu --build-arg GPU_PACKAGES=torch==2.13.0 .   # GPU: torch's CUDA build
FROM python:3.11-slim

# extra packages for a GPU worker's array library (torch or cupy-cuda12x); empty for CPU
ARG GPU_PACKAGES=""

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 TRAINQ_HOME=/var/lib/trainq

RUN useradd --create-home --uid 1000 trainq \
    && mkdir -p /var/lib/trainq/datasets && chown -R trainq:trainq /var/lib/trainq

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY services services
COPY api api
COPY worker worker
COPY cli cli
COPY migrations migrations
# a regular install: the migrations travel inside the package (trainq.migrations)
RUN pip install '.[monitoring]' \
    && if [ -n "$GPU_PACKAGES" ]; then pip install $GPU_PACKAGES; fi

USER trainq
EXPOSE 8000 5555
CMD ["trainq", "api", "--host", "0.0.0.0", "--port", "8000"]
