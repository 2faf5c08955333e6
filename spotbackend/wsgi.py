"""WSGI entry point (gunicorn spotbackend.wsgi:application)."""
import gc
import os
import sys

from django.core.wsgi import get_wsgi_application

# The web processes run two request threads each; a thread back from Redis or MariaDB waits for the
# other to hand over the interpreter lock, up to this many seconds (Python's default: 0.005). Shorter
# hands over sooner (docs/PERFORMANCE.md, the ablation table).
sys.setswitchinterval(0.001)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotbackend.settings")
application = get_wsgi_application()

# Everything loaded so far (Django, DRF, the models, the URL patterns: ~125,000 objects) lives as long
# as the process: moved out of the collector's reach, a full collection no longer walks it. Each full
# collection used to stall a worker for ~60 ms, a few times a minute, which was most of the agent calls'
# p99 (docs/PERFORMANCE.md, the ablation table).
gc.collect()
gc.freeze()
