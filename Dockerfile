# Sea lion counter: the Gradio app (app.py) + detector, ready for a Hugging Face Docker Space or any container host.
#
#   CPU image (default; CPU-only PyTorch wheels, no CUDA libraries):
#     docker build -t sealion-counter .
#   CUDA image (PyPI's Linux torch wheels are CUDA 13 builds; or a CUDA index such as .../whl/cu130):
#     docker build --build-arg TORCH_INDEX_URL=https://pypi.org/simple -t sealion-counter:cuda .
#     docker run --gpus all -p 7860:7860 sealion-counter:cuda
#   Without a registry (offline build machine): scripts/make_base_image.sh, then
#     --build-arg BASE_IMAGE=sealion-base:bookworm-py311; see docs/deploy.md and scripts/container_check.py.
#
# Layers, cheapest to rebuild last: OS libraries + user + venv → Python dependencies (only when requirements.txt
# or the torch args change) → application source and default weights (every code change).

ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# HOME/HF_HOME/YOLO_CONFIG_DIR point into the home of uid 1000, the user a Docker Space runs the container as.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/user \
    HF_HOME=/home/user/.cache/huggingface \
    YOLO_CONFIG_DIR=/home/user/.config/Ultralytics \
    MPLCONFIGDIR=/home/user/.cache/matplotlib \
    YOLO_OFFLINE=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_DISABLE_TELEMETRY=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860

# libgl1 + libglib2.0-0: shared libraries opencv-python (an ultralytics dependency) loads at import.
# The venv belongs to uid 1000, which installs into it below (the layout Hugging Face documents for Docker Spaces).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --shell /bin/bash user \
    && mkdir -p "$HF_HOME" "$YOLO_CONFIG_DIR" "$MPLCONFIGDIR" /home/user/app \
    && python3 -m venv "$VIRTUAL_ENV" \
    && chown -R user:user /home/user "$VIRTUAL_ENV"

# Runtime settings come before the heavy layers on purpose: the classic builder commits a layer for every
# instruction, so after the dependency layer only the source COPY remains and a code change rebuilds one layer.
EXPOSE 7860
# Healthy once Gradio answers its API-info route, i.e. the app and its model have loaded.
HEALTHCHECK --interval=15s --timeout=10s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('GRADIO_SERVER_PORT', '7860')}/gradio_api/info\", timeout=8)"]
CMD ["sealion-app"]
USER 1000:1000
WORKDIR /home/user/app

# Dependencies: torch/torchvision from TORCH_INDEX_URL first, so requirements.txt (ultralytics) finds them satisfied
# and does not pull the CUDA build from PyPI. The default index keeps several GB of CUDA libraries out of the image.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.15.0
ARG TORCHVISION_VERSION=0.29.2
COPY --chown=1000:1000 requirements.txt ./
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" \
    && pip install --no-cache-dir -r requirements.txt \
    && python -c "import cv2, torch, torchvision, ultralytics, gradio; print('torch', torch.__version__)"

# Application source and the shipped default weights (weights/); .dockerignore keeps tests, data and caches out.
# Installed as the README installs it (pip install .): the dependencies above already satisfy it, so this layer only
# adds the package and its console scripts (sealion-app, sealion-count).
COPY --chown=1000:1000 . .
RUN pip install --no-cache-dir . \
    && sealion-count --help > /dev/null
