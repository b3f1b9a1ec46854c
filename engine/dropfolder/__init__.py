"""``edirecon watch``: the drop-folder protocol, acknowledgments, outbound files and rejects."""
