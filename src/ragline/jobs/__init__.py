"""Background jobs: durable state in PostgreSQL, run by Celery workers or in-process."""
