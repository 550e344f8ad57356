"""The server's one home: ``python -m models.serve`` serves finished runs over HTTP (generate, train new runs,
a gallery page).

``cli`` is the command line (flags, checks, start and stop), ``__main__`` runs it; ``app`` is the Flask app and
its routes, ``guard`` the Host/origin/content-type checks, ``wsgi_server`` waitress, ``access_log`` one line per
request, ``registry`` the runs it serves, ``params`` and ``configs`` what requests may ask for, ``jobs`` and
``job_process`` the training jobs, ``errors`` the JSON error answers; ``templates/`` and ``static/`` the page.
Its tests are ``tests/serve/``.
"""
