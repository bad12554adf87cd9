# The reference service (and, with another command, the Locust load generator) of driftgate.
#   docker build -t driftgate .
#   docker run --rm -p 127.0.0.1:8000:8000 driftgate
# Packages are installed at build time; at run time nothing is downloaded (the dataset ships
# inside statsmodels, and the models are trained from it on first start into /models).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DRIFTGATE_MODEL_CACHE_DIR=/models

WORKDIR /app
COPY pyproject.toml README.md ./
COPY driftgate ./driftgate
COPY target_service ./target_service
COPY loadtests ./loadtests
COPY sla ./sla
COPY scenarios ./scenarios
RUN pip install . && useradd --create-home driftgate && mkdir /models && chown driftgate /models

USER driftgate
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz')"
CMD ["python", "-m", "target_service", "--host", "0.0.0.0", "--port", "8000"]
