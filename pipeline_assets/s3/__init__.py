"""The local S3-compatible server (S3Proxy on its filesystem backend), as `redset s3` runs it and the
tests start it. May import: runtime/ and the shared modules."""
