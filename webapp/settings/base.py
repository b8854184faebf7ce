"""Settings shared by every environment; each value that differs per machine comes from the environment."""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("REFINERY_VAR_DIR", BASE_DIR / "var"))

# No default here: dev.py and test.py set one, production must get it from the environment.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
DEBUG = False
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_rq",
    "ninja",  # only for its bundled Swagger UI static files: the API docs page loads no CDN
    "webapp.accounts",
    "webapp.core",
    "webapp.library",
    "webapp.registry",
    "webapp.runs",
    "webapp.generate",
    "webapp.training",
    "webapp.spin",
    "webapp.augcon",
    "webapp.aft",
    "webapp.almost",
    "webapp.evaluation",
    "webapp.annotation",
    "webapp.webhooks",
    "webapp.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "webapp.accounts.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Under /api/: a Bearer token sets the user, anything else gets 401 JSON (not the login redirect).
    "webapp.api.middleware.ApiTokenMiddleware",
    "webapp.accounts.middleware.LoginRequiredEverywhereMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "webapp.core.submissions.SubmissionKeyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webapp.accounts.context_processors.role",
                "webapp.accounts.context_processors.csp_nonce",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        # Health checks: a process that kept its connection across a database restart reconnects on
        # its next request or job instead of failing it (tests/faults/test_postgres_restart.py).
        default=f"sqlite:///{VAR_DIR / 'refinery.sqlite3'}", conn_max_age=60, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Workers and the web process write concurrently; wait for the lock instead of failing.
    # WAL lets pages read while a worker writes; IMMEDIATE transactions avoid lock-upgrade deadlocks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
# Failed logins per username and client address before refusing, and the window they count in
# (webapp/accounts/throttle.py). Behind a proxy, name the header holding the client's address
# (e.g. HTTP_X_REAL_IP) that the proxy sets; without it every client shares the proxy's address.
LOGIN_THROTTLE_FAILURES = int(os.environ.get("LOGIN_THROTTLE_FAILURES", 5))
LOGIN_THROTTLE_WINDOW_SECONDS = int(os.environ.get("LOGIN_THROTTLE_WINDOW_SECONDS", 300))
LOGIN_THROTTLE_CLIENT_IP_HEADER = os.environ.get("LOGIN_THROTTLE_CLIENT_IP_HEADER", "")
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

# Every artifact, run directory and upload lives here; share it between hosts when scaling out.
ARTIFACT_ROOT = Path(os.environ.get("ARTIFACT_ROOT", VAR_DIR / "artifacts"))
MEDIA_ROOT = ARTIFACT_ROOT / "uploads"
# Models converted from bundled weights (GGUF -> safetensors) are cached here once.
MODEL_CACHE_DIR = Path(os.environ.get("MODEL_CACHE_DIR", VAR_DIR / "models"))

# Uploads stream to disk beyond 2.5 MB; the importer reads them line by line.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 10_485_760
LIBRARY_MAX_UPLOAD_BYTES = int(os.environ.get("LIBRARY_MAX_UPLOAD_BYTES", 2 * 1024**3))
# One document (a JSONL line, a .txt file, an archive entry, a parquet cell) is refused above this.
LIBRARY_MAX_DOCUMENT_BYTES = int(os.environ.get("LIBRARY_MAX_DOCUMENT_BYTES", 16 * 1024**2))
# An archive entry that unpacks to more than this many times its compressed size is refused (zip bombs).
LIBRARY_MAX_COMPRESSION_RATIO = float(os.environ.get("LIBRARY_MAX_COMPRESSION_RATIO", 100))

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
RQ = {
    "COMMIT_MODE": "on_db_commit",
    # Jobs run inside the worker process so a loaded model is reused by the next job (workers/worker.py).
    "WORKER_CLASS": "workers.worker.ModelCachingWorker",
}
RQ_QUEUES = {
    # Generation and training: hours, never RQ's 180 s default.
    "gpu": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 7 * 24 * 3600},
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 6 * 3600},
}
# Memory of one GPU on the training workers, for the check made before a training job is queued
# (the web host may have no GPU, and the web process never imports torch to ask).
TRAINING_GPU_MEMORY_GIB = float(os.environ.get("TRAINING_GPU_MEMORY_GIB", 80))
# Whether the gpu queue's workers have a CUDA GPU with bitsandbytes, which QLoRA's 4-bit base needs; forms that
# offer QLoRA refuse it when this is off (the web process cannot ask torch, and the workers may be other hosts).
REFINERY_GPU_WORKERS = os.environ.get("REFINERY_GPU_WORKERS", "0") == "1"
# The devices a training worker owns (docs/operators.md, "Training on many devices"): its CUDA GPUs as
# comma-separated ids (one training process each), or else this many CPU processes; 1 (and no GPU list)
# trains in the worker's own process. A run may ask for fewer with its config's "distributed.processes".
REFINERY_TRAINING_DEVICES = [
    device.strip() for device in os.environ.get("REFINERY_TRAINING_DEVICES", "").split(",") if device.strip()
]
REFINERY_TRAINING_PROCESSES = int(os.environ.get("REFINERY_TRAINING_PROCESSES", 1))
# A running run whose heartbeat is older than this is shown as lost (its worker died).
RUN_HEARTBEAT_STALE_SECONDS = int(os.environ.get("RUN_HEARTBEAT_STALE_SECONDS", 30))
# How often the workers look for lost runs (workers/lost_run_sweep.py), one worker per interval between
# them; 0 turns it off (then run `manage.py mark_lost_runs` from cron). Pages never look.
REFINERY_LOST_RUN_CHECK_SECONDS = float(os.environ.get("REFINERY_LOST_RUN_CHECK_SECONDS", 30))

# Model endpoints (pipelines/llm/endpoint_policy.py): which URLs workers may call and which environment
# variables may be sent as their API key. Link-local and cloud metadata addresses are always refused;
# loopback and private ranges only when allowed here (dev and test allow loopback for a local server).
# JSON API rate limits per token ("<count>/<s|min|hour|day>"): run creation and uploads (webapp/api/throttle.py).
REFINERY_API_RUN_CREATE_RATE = os.environ.get("REFINERY_API_RUN_CREATE_RATE", "60/hour")
REFINERY_API_UPLOAD_RATE = os.environ.get("REFINERY_API_UPLOAD_RATE", "60/hour")

REFINERY_ENDPOINT_ALLOW_LOOPBACK = os.environ.get("REFINERY_ENDPOINT_ALLOW_LOOPBACK", "0") == "1"
REFINERY_ENDPOINT_ALLOW_PRIVATE = os.environ.get("REFINERY_ENDPOINT_ALLOW_PRIVATE", "0") == "1"
REFINERY_ENDPOINT_KEY_PREFIX = os.environ.get("REFINERY_ENDPOINT_KEY_PREFIX", "REFINERY_ENDPOINT_KEY_")
REFINERY_ENDPOINT_KEY_VARIABLES = [
    name.strip() for name in os.environ.get("REFINERY_ENDPOINT_KEY_VARIABLES", "").split(",") if name.strip()
]

# Webhooks (webapp/webhooks, docs/webhooks.md): hooks may reach this machine or private networks only when
# allowed here; each POST waits at most the timeout; a failed one is retried after each delay in turn.
REFINERY_WEBHOOK_ALLOW_PRIVATE = os.environ.get("REFINERY_WEBHOOK_ALLOW_PRIVATE", "0") == "1"
REFINERY_WEBHOOK_TIMEOUT_SECONDS = int(os.environ.get("REFINERY_WEBHOOK_TIMEOUT_SECONDS", 5))
REFINERY_WEBHOOK_RETRY_SECONDS = [
    int(seconds) for seconds in os.environ.get("REFINERY_WEBHOOK_RETRY_SECONDS", "10,60,300,1800").split(",") if seconds.strip()
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
