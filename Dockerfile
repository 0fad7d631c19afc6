# SNPgen Studio: the Streamlit app on CPU, with the built-in demo cohort simulated at build time.
#   docker build -t snpgen-studio .
#   docker run --rm -p 8501:8501 snpgen-studio        # then open http://localhost:8501
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    SNPGEN_EXPORT_DIR=/app/out

WORKDIR /app

# CPU torch first, from PyTorch's CPU index: requirements.txt pins torch==2.13.0, which the local version
# 2.13.0+cpu satisfies, so pip does not pull the much larger CUDA build afterwards.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY pyproject.toml README.md ./
COPY snpgen_core ./snpgen_core
RUN pip install --no-deps .

COPY app.py ./
COPY pages ./pages
COPY assets ./assets
COPY .streamlit ./.streamlit

RUN useradd --create-home --uid 10001 snpgen \
    && mkdir -p /app/data /app/out \
    && chown -R snpgen:snpgen /app/data /app/out
USER snpgen

# The Home page's demo button uses these files (it simulates per session when they are absent).
RUN snpgen simulate --out data/demo/demo --n 2000 --snps 1000 --seed 0

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4).status == 200 else 1)"]
CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true"]
