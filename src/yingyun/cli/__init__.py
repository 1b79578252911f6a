"""The `yingyun` command line: serve, admin <noun> <verb>, import."""
