"""Storage behind small interfaces: the index, blobs, the job queue."""
