# Production image: production requirements only (no test tools), runs as an unprivileged user.
# Build stage: compile mysqlclient into a wheel, so the final image needs no compiler.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r /tmp/requirements.txt

FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libmariadb3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/app app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/* && rm -rf /wheels
WORKDIR /app
COPY . .
ENV SPOTBACKEND_VAR_DIR=/app/var PYTHONUNBUFFERED=1 PORT=5000
# Static files are collected at build time and served by the app itself (WhiteNoise). DEBUG=true only
# lets this build step import the settings without a SECRET_KEY; it is not set at run time.
RUN DEBUG=true python manage.py collectstatic --noinput -v 0 \
    && chown -R app:app /app/var
USER app
EXPOSE 5000
# Bind, workers, graceful timeout and the control socket (under /app/var) come from gunicorn.conf.py.
CMD ["gunicorn", "spotbackend.wsgi:application"]
