"""Asynchronous jobs: ``POST /v1/jobs`` enqueues, ``adcore worker`` (or the server's own pool) runs.

A job is a small JSON request (:mod:`.model`) naming URIs, never carrying large data; paths are
checked against ``ADCORE_JOB_ROOTS`` (:mod:`.roots`) before anything is enqueued. Two queues
implement :class:`.queue.JobQueue`: RQ on Redis (:mod:`.rq_queue`, with priority workers) and an
in-process bounded pool (:mod:`.embedded`, lost on restart). What a job does is :mod:`.runner`.
"""
