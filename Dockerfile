FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
ENV SPOTBACKEND_VAR_DIR=/app/var
EXPOSE 5000
CMD ["gunicorn", "spotbackend.wsgi:application", "--bind", "0.0.0.0:5000"]
