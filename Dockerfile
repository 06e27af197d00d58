# One image for every role: web (gunicorn), collect worker, default worker and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ARC_VAR_DIR=/app/var \
    STATIC_COLLECTED=true \
    DJANGO_SETTINGS_MODULE=web.settings.production

WORKDIR /app
# WeasyPrint's libraries (PDF evidence reports) and a font for them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin arc

COPY requirements/base.txt requirements/base.txt
RUN pip install --require-hashes --no-deps -r requirements/base.txt

COPY manage.py gunicorn.conf.py ./
COPY web web
COPY posture posture
COPY templates templates
COPY static static

# Static files are collected at build time with a throwaway key; no secret enters the image.
RUN DJANGO_SETTINGS_MODULE=web.settings.base SECRET_KEY=collectstatic-only DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput --verbosity 0 \
 && chown -R arc:arc /app/var

USER arc
EXPOSE 8000
# Proxies whose X-Forwarded-* headers are believed: gunicorn.conf.py and the app read ARC_TRUSTED_PROXIES.
# Workers and threads come from gunicorn.conf.py (WEB_CONCURRENCY).
CMD ["gunicorn", "web.wsgi", "--bind", "0.0.0.0:8000", \
     "--timeout", "60", "--access-logfile", "-"]
# /healthz answers over plain HTTP (exempt from the HTTPS redirect) under the first allowed host name.
# Worker and beat containers run other commands and override or disable it (docker-compose.yml).
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; host = os.environ.get('ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('.') or 'localhost'; u.urlopen(u.Request('http://127.0.0.1:8000/healthz', headers={'Host': host}), timeout=5)"]
