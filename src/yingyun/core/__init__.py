"""Domain logic with no web framework and no sockets."""
