"""Test support: free ports, servers in threads, a throwaway PostgreSQL."""
