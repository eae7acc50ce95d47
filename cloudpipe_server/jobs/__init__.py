"""The jobs domain: the service layer (`service`: what a caller may do with jobs), the
dispatcher (claim with a lease, run on the executor, record the outcome; heartbeat,
reaper, orphan sweep), live output (`output`), watching one job (`attach`), in-process
change notification (`events`), submit-time runner checks (`compat`), and the `runner`
protocol through which the service and watches reach the dispatcher."""
