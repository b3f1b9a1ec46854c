"""``edirecon report``: worklist, audit, analytics, the CMS-838, letters and the dashboard."""
