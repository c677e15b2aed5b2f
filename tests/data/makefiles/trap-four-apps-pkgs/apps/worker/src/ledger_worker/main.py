from celery import Celery

app = Celery("ledger")
