-- Runs: an executor's hold on a job (a lease, renewed by heartbeats) and
-- what it reported of the job. One row a job, from its first claim on;
-- each claim raises generation, so a report on an older lease matches
-- nothing. A lease that has ended (the job was finished, or went back to
-- the queue) has no expires_at.
CREATE TABLE job_runs (
    job_id           INTEGER PRIMARY KEY REFERENCES jobs (id),
    executor         TEXT    NOT NULL,
    generation       INTEGER NOT NULL CHECK (generation >= 1),
    expires_at       TIMESTAMP,
    external_id      TEXT,
    heartbeat_at     TIMESTAMP,
    started_at       TIMESTAMP,
    ended_at         TIMESTAMP,
    exit_code        INTEGER,
    reason           TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1))
);

--bun:split

-- The leases to reap when they expire.
CREATE INDEX job_runs_expires_at ON job_runs (expires_at) WHERE expires_at IS NOT NULL;
