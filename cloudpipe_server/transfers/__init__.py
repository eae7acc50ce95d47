"""Job inputs fetched before a job starts and outputs uploaded after it ended DONE:
s3:// objects (any S3-compatible store, through the `minio` client) and http(s)://
files, fetched and uploaded by the server, never by the job's container (which has no
network by default).

`urls` checks what a job asks for at submit (pure), `guard` is the one HTTP client both
kinds go through (it refuses loopback, private, link-local and metadata addresses
unless the server allows them), `credentials` reads the storage secret's JSON,
`fetch` stages inputs into a tar for the container and `upload` sends a container's
archive of an output path to the bucket. Every size is bounded and nothing is held
whole in memory: a file goes through a temporary file at most.
"""
