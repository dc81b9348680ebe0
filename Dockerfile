# `tunelab serve` in a container. Mount a finished run directory at /run:
#   docker build -t tunelab-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/runs/<timestamp>_<name>:/run:ro" tunelab-serve
# Settings: the run's `serve:` section, or flags after the image name, e.g.
#   docker run ... tunelab-serve /run --host 0.0.0.0 --max-batch-size 64 --api-key-env TUNELAB_API_KEY
# (and -e TUNELAB_API_KEY=... : the key itself only ever lives in the environment).
FROM python:3.11-slim

# CPU wheel of torch by default (small); for CUDA: --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
ARG TORCH=torch==2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false

WORKDIR /app
RUN pip install --index-url "$TORCH_INDEX" "$TORCH"
# requirements.txt as constraints: the tested versions, without the training-only extras.
COPY requirements.txt pyproject.toml README.md ./
COPY src ./src
RUN pip install -c requirements.txt ".[serve]"

# Not root; the run is mounted read-only.
RUN useradd --create-home --uid 10001 tunelab
USER tunelab
EXPOSE 8000

# Liveness for `docker ps`; orchestrators should probe /ready (model loaded) for traffic.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"

# Exec form: tunelab is PID 1 and receives SIGTERM itself (graceful drain, exit 0).
ENTRYPOINT ["tunelab", "serve"]
CMD ["/run", "--host", "0.0.0.0", "--port", "8000"]
