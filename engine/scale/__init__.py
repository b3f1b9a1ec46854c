"""The scale-out path: the job queue (``edirecon worker``), detection by key, and shards."""
