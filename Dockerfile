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
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin arc

COPY requirements/base.txt requirements/base.txt
RUN pip install --require-hashes --no-deps -r requirements/base.txt

COPY manage.py ./
COPY web web
COPY posture posture
COPY templates templates
COPY static static

# Static files are collected at build time with a throwaway key; no secret enters the image.
RUN DJANGO_SETTINGS_MODULE=web.settings.base SECRET_KEY=collectstatic-only \
    python manage.py collectstatic --noinput --verbosity 0 \
 && chown -R arc:arc /app/var

USER arc
EXPOSE 8000
CMD ["gunicorn", "web.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", \
     "--timeout", "60", "--access-logfile", "-", "--forwarded-allow-ips", "*"]
