"""``edirecon serve``: the credit-balance team's web work queue (``pages``) and the JSON API for
downstream billing systems (``api``), one ASGI app (``app.create_app``) over the same store and the
same workflow functions as the CLI."""
